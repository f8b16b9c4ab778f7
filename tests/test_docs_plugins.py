"""The walkthroughs of docs/plugins.md run: their Python blocks, one module, register through the hooks, and
the contract tests they show pass on the tiny collection."""

from __future__ import annotations

import re
import sys
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


def spec_example() -> types.ModuleType:
    """The Python block after ``<!-- spec-example -->`` (a filter with a retriever spec option), as a module."""
    code = re.search(r"<!-- spec-example -->\n```python\n(.*?)^```", PAGE.read_text(encoding="utf-8"), re.M | re.S)
    assert code is not None, "docs/plugins.md lost its spec example"
    module = types.ModuleType("inparsx_found")
    sys.modules[module.__name__] = module  # pydantic resolves the field types in the module's namespace
    exec(compile(code.group(1), f"{PAGE}:spec-example", "exec"), module.__dict__)
    return module


def test_the_spec_example_validates_its_retriever_and_filters_with_it(tmp_path):
    from pydantic import ValidationError

    from inparsx.plugins import get_registry
    from inparsx.testing.contracts import FilterContract

    found = spec_example().FoundFilter
    with pytest.raises(ValidationError, match="k"):  # a retriever spec refuses k: the depth is the filter's
        found.Options.model_validate({"retriever": {"use": "bm25s", "k": 5}}, context={"registry": get_registry()})
    with pytest.raises(ValidationError, match="nope"):
        found.Options.model_validate({"retriever": {"use": "nope"}}, context={"registry": get_registry()})

    class TestFound(FilterContract):
        def make_filter(self):
            return found(found.Options(depth=1))

    TestFound().test_one_decision_per_record_with_reasons(tmp_path)
    contract = TestFound()
    ctx = contract.context(tmp_path / "again")
    records = contract.title_records(ctx)
    decisions = contract.make_filter().apply(records, ctx)
    kept = [d.keep for d in decisions]
    assert sum(kept) >= len(kept) // 2  # a title finds its own document at depth 1 in most cases
