"""The runner: stage folders, fingerprints, skipping finished stages, re-running changed ones, --from/--to."""

from __future__ import annotations

import json
import sys
import types

import pytest

from inparsx import pipeline
from inparsx.errors import InparsxError
from inparsx.evaluate.base import Evaluator
from inparsx.generate.base import Generator
from inparsx.plugins import Component, Options
from inparsx.retrieve.base import Retriever
from inparsx.recipe import load_recipe
from inparsx.testing.plugins import plugin_module, registered

CALLS: list[str] = []


class Echo(Component):
    name = "echo"

    class Options(Options):
        value: int = 1
        fail: bool = False


def _kind(base):
    """Echo as a component of ``base``'s kind (registration checks the base class)."""
    return type(f"Echo{base.__name__}", (Echo, base), {"Options": Echo.Options})


def _runner(stage):
    def run_stage(ctx):
        CALLS.append(stage)
        (ctx.dir / "out.txt").write_text(str(ctx.component.options.value))
        if ctx.component.options.fail:
            raise RuntimeError("boom")
    return run_stage


@pytest.fixture()
def fake_stages(monkeypatch):
    module = types.ModuleType("fake_stage_runners")
    for stage in ("retrieve", "generate", "evaluate"):
        setattr(module, stage, _runner(stage))
        monkeypatch.setitem(pipeline.STAGE_RUNNERS, stage, f"fake_stage_runners:{stage}")
    monkeypatch.setitem(sys.modules, "fake_stage_runners", module)
    CALLS.clear()
    with registered(plugin_module("echo", retrievers=[_kind(Retriever)], generators=[_kind(Generator)],
                                   evaluators=[_kind(Evaluator)])):
        yield


RECIPE = """[recipe]
name = "p"
[dataset]
name = "{data}"
[retrieve]
use = "echo"
[generate]
use = "echo"
[evaluate]
use = "echo"
"""


def run(tmp_path, scifact_small, *sets, **kwargs):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(data=scifact_small))
    return pipeline.run_recipe(load_recipe(path, list(sets)), tmp_path / "run", **kwargs)


def test_second_run_skips_everything(tmp_path, scifact_small, fake_stages):
    run_dir = run(tmp_path, scifact_small)
    assert CALLS == ["retrieve", "generate", "evaluate"]
    assert 'use = "echo"' in (run_dir / "recipe.toml").read_text()
    marker = json.loads((run_dir / "generate" / pipeline.DONE_MARKER).read_text())
    assert len(marker["fingerprint"]) == 16 and marker["use"] == ["echo"]
    CALLS.clear()
    run(tmp_path, scifact_small)
    assert CALLS == []


def test_changed_option_reruns_that_stage_and_later(tmp_path, scifact_small, fake_stages):
    run(tmp_path, scifact_small)
    CALLS.clear()
    run(tmp_path, scifact_small, "generate.value=2")
    assert CALLS == ["generate", "evaluate"]
    assert (tmp_path / "run" / "generate" / "out.txt").read_text() == "2"


def test_from_and_to(tmp_path, scifact_small, fake_stages):
    run(tmp_path, scifact_small, stop="generate")
    assert CALLS == ["retrieve", "generate"]
    CALLS.clear()
    run(tmp_path, scifact_small, start="generate")
    assert CALLS == ["generate", "evaluate"]
    with pytest.raises(InparsxError, match="--from tune: not a stage of this recipe"):
        run(tmp_path, scifact_small, start="tune")


def test_failed_stage_is_not_marked_done_and_keeps_partial_work(tmp_path, scifact_small, fake_stages):
    with pytest.raises(RuntimeError):
        run(tmp_path, scifact_small, "generate.fail=true")
    folder = tmp_path / "run" / "generate"
    assert not (folder / pipeline.DONE_MARKER).exists() and (folder / "out.txt").exists()
    CALLS.clear()
    run(tmp_path, scifact_small)  # another fingerprint: the folder is cleared and the stage re-runs
    assert CALLS == ["generate", "evaluate"]


def test_stage_context_runs_and_excluded_qids(tmp_path, scifact_small, fake_stages):
    run_dir = run(tmp_path, scifact_small)
    (run_dir / "retrieve" / "run.trec").write_text("1 Q0 d 1 1.0 t\n")
    (run_dir / "generate" / "runs").mkdir()
    (run_dir / "generate" / "runs" / "extra.trec").write_text("1 Q0 d 1 1.0 t\n")
    (run_dir / "generate" / pipeline.EXCLUDED_QIDS).write_text("3\n5\n")
    recipe = load_recipe(tmp_path / "r.toml")
    ctx = pipeline.StageContext(recipe, "evaluate", run_dir, [])
    assert list(ctx.runs()) == ["retrieve", "extra"] and ctx.excluded_qids() == {"3", "5"}
    assert ctx.resolve_model("org/model") == "org/model"
    with pytest.raises(InparsxError, match="needs .*train/model.*add \\[train\\]"):
        ctx.resolve_model("@train")
