"""The ``dspy`` tuner: a program compiled on train-split examples against the judge's metric, saved as JSON,
loaded by the ``dspy`` generator with ``program = "@tune"``, and sending the model the same prompts."""

from __future__ import annotations

import json

import pytest

from inparsx.context import ComponentContext
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.generate.dspy_generator import DSPyGenerator, DSPyOptions
from inparsx.pipeline import run_recipe
from inparsx.recipe import load_recipe
from inparsx.tune import dspy_tuner

ANSWER = {
    "reasoning": "It studies cells.",
    "query": "What do cells do?",
    "proposed_instruction": "Write the question a biologist asks.",
    "proposed_prefix_for_output_field": "Query:",
}

RECIPE = """[recipe]
name = "dspy-tiny"
[dataset]
name = "{data}"
[tune]
use = "dspy"
model = "scripted"
optimizer = "{optimizer}"
optimizer_options = {options}
num_docs = 4
judge = {{ by = "consistency", retriever = "bm25s", depth = 10 }}
[generate]
use = "dspy"
model = "scripted"
program = "@tune"
num_docs = 2
"""


@pytest.fixture()
def scripted(monkeypatch):
    """Every DSPy call of the generator and the tuner goes to DSPy's DummyLM, which records the prompts."""
    from dspy.utils import DummyLM

    lm = DummyLM([ANSWER] * 500)
    monkeypatch.setattr(DSPyGenerator, "lm", lambda self, ctx: lm)
    monkeypatch.setattr(DSPyGenerator, "models", lambda self: [])  # the scripted LM loads no model
    return lm


@pytest.mark.parametrize(
    "optimizer, options",
    [
        ("BootstrapFewShot", "{ max_bootstrapped_demos = 2, max_labeled_demos = 2 }"),
        ("COPRO", "{ breadth = 2, depth = 1 }"),
    ],
)
def test_compiled_program_round_trip(tmp_path, scifact_small, scripted, monkeypatch, optimizer, options):
    compiled = {}
    save = dspy_tuner.save_program
    monkeypatch.setattr(
        dspy_tuner, "save_program", lambda program, path: compiled.setdefault("p", program) and save(program, path)
    )
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(data=scifact_small, optimizer=optimizer, options=options))
    run_dir = run_recipe(load_recipe(path), tmp_path / "run")
    state = json.loads((run_dir / "tune" / "program.json").read_text())
    predict = next(value for key, value in state.items() if key != "metadata")
    if optimizer == "BootstrapFewShot":
        assert len(predict["demos"]) == 2
    else:
        assert predict["signature"]["instructions"] == ANSWER["proposed_instruction"]
    records = [json.loads(line) for line in (run_dir / "generate" / "queries.jsonl").read_text().splitlines()]
    assert [r["query"] for r in records] == ["What do cells do?"] * 2

    dataset = BeirFolderDataset(scifact_small, name="beir:scifact")
    ctx = ComponentContext(dataset, tmp_path)
    loaded = DSPyGenerator(DSPyOptions(model="scripted", program=str(run_dir / "tune" / "program.json"))).program(ctx)
    doc = next(dataset.docs_iter())
    prompts = []
    for program in (compiled["p"], loaded):
        import dspy

        with dspy.context(lm=scripted):
            program(document=doc.full_text)
        prompts.append(scripted.history[-1]["messages"])
    assert prompts[0] == prompts[1]


def test_examples_come_from_the_train_split_only(scifact_small, tmp_path):
    from inparsx.datasets.base import SplitHiddenError, WithoutSplit

    dataset = WithoutSplit(BeirFolderDataset(scifact_small, name="beir:scifact"), "train")
    with pytest.raises(SplitHiddenError):
        dspy_tuner.train_examples(ComponentContext(dataset, tmp_path, eval_split="train"), "train", 3, 50)
    visible = WithoutSplit(BeirFolderDataset(scifact_small, name="beir:scifact"), "test")
    examples = dspy_tuner.train_examples(ComponentContext(visible, tmp_path), "train", 3, 50)
    train_queries = {q.text for q in visible.queries("train").values()}
    assert len(examples) == 3 and all(e.query in train_queries for e in examples)


def test_bootstrapping_keeps_only_demos_the_judge_accepts():
    """BootstrapFewShot keeps a trace as a demo when the metric is true; a float score always was (a compiled
    program kept the query "ZMYND11\\n\\n[## completed ## ]"), so with a trace the metric answers score >= threshold."""
    import dspy

    class Judge:
        def score(self, records):
            return {"metric": {"good query": 0.9, "weak query": 0.2}.get(records[0].query, 0.7)}

    metric = dspy_tuner.judge_metric(Judge(), threshold=0.5)
    example = dspy.Example(document="d", query="q", doc_id="1").with_inputs("document")
    answer = lambda query: dspy.Prediction(query=query)  # noqa: E731
    assert metric(example, answer("good query"), trace=[]) is True
    assert metric(example, answer("weak query"), trace=[]) is False
    assert metric(example, answer("ZMYND11\n\n[## completed ## ]"), trace=[]) is False
    assert metric(example, answer("[[ ## query ## ]] x"), trace=[]) is False
    assert metric(example, answer(""), trace=[]) is False
    assert metric(example, answer("weak query")) == 0.2 and metric(example, answer("ZMYND11\n\nx")) == 0.0
    opts = dspy_tuner.DSPyTunerOptions(model="m", judge={"by": "consistency", "retriever": "bm25s"})
    assert dspy_tuner.demo_threshold(opts) == 0.5
    assert dspy_tuner.demo_threshold(opts.model_copy(update={"demo_threshold": 0.1})) == 0.1
