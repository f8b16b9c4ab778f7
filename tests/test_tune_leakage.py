"""No tuner can read the evaluated split: the tune stage hands tuners a dataset view without its queries and
qrels, and every built-in tuner is run here with every read of any dataset's queries or qrels recorded."""

from __future__ import annotations

from pathlib import Path

import pytest

from inparsx.context import ComponentContext
from inparsx.datasets.base import SplitHiddenError, WithoutSplit
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.generate.dspy_generator import DSPyGenerator
from inparsx.pipeline import run_recipe
from inparsx.recipe import load_recipe
from inparsx.testing.plugins import plugin_module, registered
from inparsx.tune.base import Tuner

HEAD = """[recipe]
name = "leak"
[dataset]
name = "{data}"
eval_split = "test"
[tune]
"""

TUNERS = {
    "cpo": """use = "cpo"
base_model = "{llama}"
generator = {{ max_new_tokens = 4, max_doc_tokens = 16, dtype = "fp32", prompt = "promptagator", template = "promptagator-scifact", n_fewshot = 1 }}
n_docs = 3
n_candidates = 2
eval_docs = 1
judge.by = "mix"
judge.retriever = "bm25s"
judge.reranker = {{ use = "cross-encoder", model = "{bert}", max_length = 32, dtype = "fp32" }}
lora_r = 2
target_modules = ["q_proj"]
precision = "fp32"
max_steps = 1
max_length = 1024
""",  # noqa: E501 (a TOML inline table is one line)
    "dspy": """use = "dspy"
model = "scripted"
optimizer = "BootstrapFewShot"
num_docs = 3
judge.by = "mix"
judge.retriever = "bm25s"
judge.reranker = {{ use = "cross-encoder", model = "{bert}", max_length = 32, dtype = "fp32" }}
""",
    "path": """use = "path"
generator = {{ model = "{llama}", max_new_tokens = 4, max_doc_tokens = 16, dtype = "fp32", prompt = "promptagator", template = "promptagator-scifact", n_fewshot = 1 }}
num_docs = 4
n_gold = 3
seed_instructions = ["Write a question."]
breadth = 1
rounds = 1
retrieve = {{ use = "bm25s", k = 10 }}
triples = {{ use = "bm25-negatives", depth = 10, retriever = "bm25s" }}
train = {{ use = "cross-encoder", base_model = "{bert}", max_steps = 1, batch_size = 2, max_length = 32, save_steps = 0 }}
rerank = {{ use = "cross-encoder", model = "@train", depth = 3, max_length = 32, dtype = "fp32" }}
""",  # noqa: E501 (a TOML inline table is one line)
}


@pytest.fixture()
def tiny(tiny_word_models) -> dict[str, str]:
    return tiny_word_models


@pytest.fixture()
def reads(monkeypatch) -> list[tuple[str, str]]:
    """Every ``queries(split)`` and ``qrels(split)`` call on any BEIR dataset, in order."""
    seen: list[tuple[str, str]] = []
    for method in ("queries", "qrels"):
        real = getattr(BeirFolderDataset, method)

        def spy(self, split, _real=real, _method=method):
            seen.append((_method, split))
            return _real(self, split)

        monkeypatch.setattr(BeirFolderDataset, method, spy)
    return seen


@pytest.mark.parametrize("tuner", sorted(TUNERS))
def test_no_tuner_reads_the_evaluated_split(tuner, tmp_path, scifact_small, tiny, reads, monkeypatch):
    from dspy.utils import DummyLM

    answer = {
        "reasoning": "r",
        "query": "What is the role of cells?",
        "proposed_instruction": "Ask about cells.",
        "proposed_prefix_for_output_field": "Q:",
    }
    scripted = DummyLM([answer] * 200)
    monkeypatch.setattr(DSPyGenerator, "lm", lambda self, ctx: scripted)
    monkeypatch.setattr(DSPyGenerator, "models", lambda self: [])  # the scripted LM loads no model
    path = tmp_path / "r.toml"
    path.write_text(HEAD.format(data=scifact_small) + TUNERS[tuner].format(**tiny))
    run_recipe(load_recipe(path), tmp_path / "run")
    assert (tmp_path / "run" / "tune" / ".inparsx-done.json").is_file()
    assert reads, "the spy saw no read at all: it would not see a leak either"
    assert ("queries", "test") not in reads and ("qrels", "test") not in reads, reads


class Peeker(Tuner):
    """A tuner that tries to read the evaluated split."""

    name = "peeker"
    seen: list[ComponentContext] = []

    def tune(self, ctx: ComponentContext) -> Path:
        self.seen.append(ctx)
        ctx.dataset.qrels(ctx.eval_split)
        raise AssertionError("unreachable")


def test_a_tuner_that_reads_the_evaluated_split_is_stopped(tmp_path, scifact_small):
    path = tmp_path / "r.toml"
    path.write_text(HEAD.format(data=scifact_small) + 'use = "peeker"\n')
    with registered(plugin_module("peeker", tuners=[Peeker])):
        with pytest.raises(SplitHiddenError, match="'test' is the evaluated split"):
            run_recipe(load_recipe(path), tmp_path / "run")
    seen = Peeker.seen[-1]
    assert type(seen) is ComponentContext and not hasattr(seen, "recipe") and not hasattr(seen, "run_dir")
    assert seen.outputs == {} and seen.dir == tmp_path / "run" / "tune"


def test_the_view_hides_one_split_and_passes_the_rest(scifact_small):
    base = BeirFolderDataset(scifact_small)
    view = WithoutSplit(base, "test")
    assert view.splits() == [s for s in base.splits() if s != "test"]
    assert view.queries("train") == base.queries("train") and view.docs_count() == base.docs_count()
    for read in (view.queries, view.qrels):
        with pytest.raises(SplitHiddenError):
            read("test")
