"""What a stage needs before it runs, from the stage spec (``StageSpec.reads``, :class:`inparsx.stages.Input`):
a required input that is missing fails before the stage's folder is touched, naming the artifact, its file and
the stage that writes it; an optional one, or one whose predicate says it is not needed, does not."""

from __future__ import annotations

import json
from types import SimpleNamespace

import echo_fakes
import pytest
from echo_fakes import CALLS, RECIPE

from inparsx import pipeline, stages
from inparsx.artifacts import (
    HELDOUT_QUERIES,
    KEPT_HELDOUT,
    KEPT_QUERIES,
    RUN,
    SYNTHETIC_QUERIES,
    TRIPLES,
    Artifact,
)
from inparsx.errors import InparsxError
from inparsx.recipe import load_recipe
from inparsx.stages import Input, as_input

WRITTEN = Artifact("fake-written", "retrieve", "out.txt", "what the fake retrieve stage wrote")
UNWRITTEN = Artifact("fake-unwritten", "retrieve", "missing.txt", "what no fake stage writes")


@pytest.fixture()
def fake_stages(monkeypatch):
    with echo_fakes.fake_stages(monkeypatch, "fake_input_runners", ()):
        yield monkeypatch


def run(tmp_path, scifact_small, *sets):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(data=scifact_small))
    return pipeline.run_recipe(load_recipe(path, list(sets)), tmp_path / "run", check=False)


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_missing_required_input_fails_before_the_folder_is_touched(tmp_path, scifact_small, fake_stages):
    fake_stages.setitem(pipeline.STAGE_READS, "generate", (WRITTEN, UNWRITTEN))
    folder = tmp_path / "run" / "generate"
    folder.mkdir(parents=True)
    (folder / pipeline.STARTED_MARKER).write_text(json.dumps({"fingerprint": "another", "key": "another"}))
    (folder / "partial.jsonl").write_text('{"done": 1}\n')  # another key: a run would clear it
    before = _snapshot(folder)
    with pytest.raises(InparsxError) as raised:
        run(tmp_path, scifact_small)
    message = str(raised.value)
    assert message.startswith("stage 'generate' needs artifact 'fake-unwritten', ")
    assert f"{tmp_path / 'run' / 'retrieve' / 'missing.txt'}, the output of stage 'retrieve'" in message
    assert "(what no fake stage writes): add [retrieve] to the recipe or run it first" in message
    assert CALLS == ["retrieve"] and _snapshot(folder) == before


def test_a_missing_input_never_touches_a_new_folder(tmp_path, scifact_small, fake_stages):
    fake_stages.setitem(pipeline.STAGE_READS, "generate", (Input((UNWRITTEN,), required=lambda ctx: True),))
    with pytest.raises(InparsxError, match="needs artifact 'fake-unwritten'"):
        run(tmp_path, scifact_small)
    assert not (tmp_path / "run" / "generate").exists()


@pytest.mark.parametrize(
    "read",
    [Input((UNWRITTEN,), required=False), Input((UNWRITTEN,), required=lambda ctx: ctx.stage != "generate")],
    ids=["optional", "not-required-here"],
)
def test_a_missing_optional_input_does_not_stop_the_stage(tmp_path, scifact_small, fake_stages, read):
    fake_stages.setitem(pipeline.STAGE_READS, "generate", (WRITTEN, read))
    run(tmp_path, scifact_small)
    assert CALLS == ["retrieve", "generate", "evaluate"]


def test_alternatives_require_the_one_the_recipe_writes(tmp_path, scifact_small, fake_stages):
    other = Artifact("fake-kept", "filter", "out.txt", "what a filter stage would keep")
    fake_stages.setitem(pipeline.STAGE_READS, "evaluate", ((other, UNWRITTEN),))  # no [filter]: the second
    with pytest.raises(InparsxError, match=r"needs artifact 'fake-unwritten', .*retrieve/missing.txt"):
        run(tmp_path, scifact_small)
    CALLS.clear()
    fake_stages.setitem(pipeline.STAGE_READS, "evaluate", ((other, WRITTEN),))
    run(tmp_path, scifact_small)
    assert CALLS == ["evaluate"]


def _ctx(stage, recipe_stages, labels=True, holdout=None, first_stage="retrieve"):
    """What :meth:`Input.needed` asks of a StageContext."""
    return SimpleNamespace(
        stage=stage,
        recipe=SimpleNamespace(stages=dict.fromkeys(recipe_stages)),
        dataset=SimpleNamespace(has_labels=lambda: labels),
        holdout=holdout,
        settings=SimpleNamespace(first_stage=first_stage),
    )


def _needed(stage, recipe_stages, **kwargs):
    ctx = _ctx(stage, recipe_stages, **kwargs)
    found = [as_input(read).needed(ctx) for read in stages.stage_spec(stage).reads]
    return [item for item in found if item is not None]


def test_what_each_shipped_stage_requires():
    everything = [spec.name for spec in stages.STAGE_SPECS]
    assert _needed("retrieve", everything) == _needed("tune", everything) == _needed("generate", everything) == []
    assert _needed("filter", everything) == [(SYNTHETIC_QUERIES, None)]
    assert _needed("filter", everything, holdout=object()) == [(SYNTHETIC_QUERIES, None), (HELDOUT_QUERIES, None)]
    assert _needed("triples", everything) == [(KEPT_QUERIES, None)]
    assert _needed("triples", ["generate", "triples"]) == [(SYNTHETIC_QUERIES, None)]
    assert _needed("triples", ["triples"]) == [(SYNTHETIC_QUERIES, None)]  # none in the recipe: the last, named
    assert _needed("train", everything) == [(TRIPLES, None)]
    assert _needed("rerank", everything) == [(RUN, "retrieve")]
    assert _needed("rerank", everything, first_stage="tune") == [(RUN, "tune")]
    assert _needed("rerank", everything, labels=False) == []  # a collection without labels: nothing reranked
    assert _needed("estimate", everything) == [(KEPT_HELDOUT, None)]
    assert _needed("estimate", ["generate", "estimate"]) == [(HELDOUT_QUERIES, None)]
    assert _needed("evaluate", everything) == []  # runs, notes, excluded ids: each read where present


def test_a_required_input_of_any_stage_says_whose():
    with pytest.raises(ValueError, match="input run: written by any stage; say whose is required"):
        Input((RUN,))
    assert as_input(RUN).required is False and as_input(TRIPLES).required is True
    assert as_input((KEPT_QUERIES, SYNTHETIC_QUERIES)) == Input((KEPT_QUERIES, SYNTHETIC_QUERIES))
