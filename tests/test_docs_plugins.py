"""The walkthroughs of docs/plugins.md run: their Python blocks, one module, register through the hooks, and
the contract tests they show pass on the tiny collection."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"
WALKTHROUGHS = ("a reranker plugin", "a trainer plugin", "a retriever plugin")


def walkthrough_code(page: str) -> str:
    """The Python blocks of the page's ``## Walkthrough: ...`` sections, in order, as one module's source."""
    sections = [part for part in re.split(r"^## ", page, flags=re.M) if part.startswith("Walkthrough: ")]
    blocks = [block for part in sections for block in re.findall(r"^```python\n(.*?)^```", part, flags=re.M | re.S)]
    return "\n\n".join(blocks)


def walkthrough_module() -> types.ModuleType:
    """The walkthroughs' code as the module ``inparsx_overlap``."""
    module = types.ModuleType("inparsx_overlap")
    exec(compile(walkthrough_code(PAGE.read_text(encoding="utf-8")), f"{PAGE}:walkthroughs", "exec"), module.__dict__)
    return module


MODULE = walkthrough_module()
CASES = [
    (cls, name)
    for cls in vars(MODULE).values()
    if isinstance(cls, type) and cls.__name__.startswith("Test")
    for name in dir(cls)
    if name.startswith("test_")
]


def test_the_page_walks_a_reranker_a_trainer_and_a_retriever_plugin():
    page = PAGE.read_text(encoding="utf-8")
    for title in WALKTHROUGHS:
        assert f"\n## Walkthrough: {title}\n" in page
    assert {cls.__name__ for cls, _ in CASES} == {"TestOverlapReranker", "TestOverlapTrainer", "TestIdfRetriever"}


def test_the_walkthrough_code_is_extracted_block_by_block():
    page = "## Walkthrough: x\n```python\na = 1\n```\n```toml\nb = 2\n```\n## Other\n```python\nc = 3\n```\n"
    assert walkthrough_code(page).strip() == "a = 1"


def test_the_walkthrough_components_register_through_the_hooks():
    from inparsx.testing.plugins import registered

    with registered(MODULE) as registry:
        assert registry.get("rerankers", "overlap") is MODULE.OverlapReranker
        assert registry.get("trainers", "overlap") is MODULE.OverlapTrainer
        assert registry.get("retrievers", "idf") is MODULE.IdfRetriever
        assert registry.build("rerankers", "overlap", {"default_weight": 0.5}).options.default_weight == 0.5


@pytest.mark.parametrize("cls, name", CASES, ids=[f"{cls.__name__}.{name}" for cls, name in CASES])
def test_the_walkthrough_contract_tests_pass(cls, name, tmp_path):
    getattr(cls(), name)(tmp_path)


def test_the_trained_weights_rank_the_positive_first(tmp_path):
    import json

    triples = tmp_path / "triples.jsonl"
    triples.write_text(
        json.dumps(
            {
                "query_id": "q",
                "query": "caffeine sleep adults",
                "pos_id": "a",
                "pos_text": "caffeine delays sleep",
                "neg_ids": ["b"],
                "neg_texts": ["adults drink caffeine"],
            }
        )
        + "\n"
    )
    folder = MODULE.OverlapTrainer(MODULE.OverlapTrainer.Options()).train(triples, tmp_path / "model")
    reranker = MODULE.OverlapReranker(MODULE.OverlapReranker.Options())
    reranker.load(str(folder))
    positive, negative = reranker.score(
        ["caffeine sleep adults"] * 2, ["caffeine delays sleep", "adults drink caffeine"]
    )
    assert positive > negative
