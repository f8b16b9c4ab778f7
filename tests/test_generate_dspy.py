"""The ``dspy`` generator: records with the chain of thought kept, parse failures counted, a local transformers
model through the engine object, and a compiled program loaded from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inparsx.context import ComponentContext
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.generate.dspy_generator import DSPyGenerator, DSPyOptions, TransformersEngine, build_program
from inparsx.generate.stage import generate_queries


@pytest.fixture()
def ctx(scifact_small: Path, tmp_path: Path) -> ComponentContext:
    return ComponentContext(BeirFolderDataset(scifact_small, name="beir:scifact"), tmp_path)


def scripted(generator: DSPyGenerator, answers: list[dict]) -> None:
    """Make ``generator`` talk to DSPy's DummyLM instead of a model."""
    from dspy.utils import DummyLM

    lm = DummyLM(answers)
    generator.lm = lambda ctx: lm  # type: ignore[method-assign]


def test_chain_of_thought_records_keep_the_rationale_and_count_parse_failures(ctx):
    generator = DSPyGenerator(DSPyOptions(model="unused", num_docs=3))
    scripted(
        generator,
        [
            {"reasoning": "It is about cells.", "query": "What do cells do?"},
            {"reasoning": "Mice.", "query": "Do mice sleep?"},
        ],
    )
    out = ctx.dir / "queries.jsonl"
    summary = generate_queries(ctx, generator, out)
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert summary.docs == 3 and len(records) == 3
    answered = [r for r in records if r["query"]]
    assert [r["query"] for r in answered] == ["What do cells do?", "Do mice sleep?"]
    assert answered[0]["extra"]["rationale"] == "It is about cells." and answered[0]["generator"].startswith(
        "dspy:ChainOfThought"
    )
    failed = [r for r in records if not r["query"]]
    assert len(failed) == 1 and "parse_error" in failed[0]["extra"]
    assert json.loads((ctx.dir / "dspy.stats.json").read_text())["parse_failures"] == 1


def test_predict_has_no_rationale(ctx):
    generator = DSPyGenerator(DSPyOptions(model="unused", num_docs=1, module="Predict"))
    scripted(generator, [{"query": "Is it?"}])
    generate_queries(ctx, generator, ctx.dir / "q.jsonl")
    record = json.loads((ctx.dir / "q.jsonl").read_text())
    assert record["query"] == "Is it?" and "rationale" not in record["extra"]


def test_local_transformers_model_through_the_engine(ctx, tmp_path):
    """A random model cannot follow DSPy's format: every document is a counted parse failure, and the engine
    really generated tokens for each request."""
    from inparsx.testing import tiny_llama

    model = tiny_llama(tmp_path / "llama")
    generator = DSPyGenerator(DSPyOptions(model=str(model), num_docs=2, max_new_tokens=5, dtype="fp32"))
    generate_queries(ctx, generator, ctx.dir / "q.jsonl")
    stats = json.loads((ctx.dir / "dspy.stats.json").read_text())
    assert stats == {"documents": 2, "parse_failures": 2, "module": "ChainOfThought", "program": None}
    assert generator.generated_tokens > 0 and generator._engine.calls >= 2
    ran = json.loads((ctx.dir / "q.stats.json").read_text())["ran_with"]  # what ran, resolved
    assert ran == {"model": str(model), "device": "cpu", "precision": "fp32", "precision_reason": "asked for"}


def test_engine_renders_the_request_and_decodes_greedily(tmp_path):
    import dspy
    from dspy.lm15 import Config, Message, Request

    from inparsx.generate.hf import HFOptions, load_model
    from inparsx.testing import tiny_llama

    path = str(tiny_llama(tmp_path / "llama"))
    model, tokenizer = load_model(path, HFOptions(model=path, dtype="fp32"))
    engine = TransformersEngine(model, tokenizer, max_new_tokens=4)
    request = Request(
        model="local", messages=(Message.user("Document: cells"),), system="Be brief.", config=Config(max_tokens=4)
    )
    assert engine.render(request) == "system: Be brief.\nuser: Document: cells\nassistant:"
    first, second = engine.complete(request), engine.complete(request)
    assert first.message.text == second.message.text and first.usage.output_tokens <= 4
    assert isinstance(dspy.LM("local/x", engine=engine, cache=False), dspy.LM)


def test_a_saved_program_is_loaded(ctx, tmp_path):
    import dspy

    program = build_program("ChainOfThought")
    program.predict.demos = [dspy.Example(document="A doc about mice.", reasoning="mice", query="Mice?")]
    program.predict.signature = program.predict.signature.with_instructions("Ask like a biologist.")
    program.save(str(tmp_path / "program.json"))
    generator = DSPyGenerator(DSPyOptions(model="unused", num_docs=1, program=str(tmp_path / "program.json")))
    loaded = generator.program(ctx)
    assert loaded.predict.signature.instructions == "Ask like a biologist."
    assert loaded.predict.demos[0]["query"] == "Mice?"
