"""The runner: stage folders, fingerprints, skipping finished stages, re-running changed ones, --from/--to."""

from __future__ import annotations

import json
import sys

import echo_fakes
import pytest
from echo_fakes import CALLS, RECIPE

from inparsx import pipeline
from inparsx.artifacts import Artifact
from inparsx.errors import InparsxError
from inparsx.generate.base import Generator
from inparsx.models import ModelRef
from inparsx.plugins import Options
from inparsx.recipe import load_recipe
from inparsx.testing.plugins import plugin_module, registered

FAKE_OUT = Artifact("fake-out", None, "out.txt", "what a fake stage wrote")


@pytest.fixture()
def fake_stages(monkeypatch):
    with echo_fakes.fake_stages(monkeypatch, "fake_stage_runners", (FAKE_OUT,)):  # the evaluate reads every out.txt
        yield


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


def _snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_failed_download_leaves_the_finished_stage_intact(tmp_path, scifact_small):
    """The case of the report: a finished run, then the same command in a shell without INPARSX_DATA_HOME and
    without network. Run as a user runs it (the CLI in a fresh process: ir_datasets fixes its cache folder
    when it is imported)."""
    import os
    import subprocess

    home = tmp_path / "home"
    (home / "beir").mkdir(parents=True)
    (home / "beir" / "scifact").symlink_to(scifact_small)
    recipe = tmp_path / "r.toml"
    recipe.write_text('[recipe]\nname = "r"\n[dataset]\nname = "beir:scifact"\n[retrieve]\nuse = "bm25s"\nk = 10\n')
    command = [sys.executable, "-m", "inparsx.cli.main", "run", str(recipe), "--run-dir", str(tmp_path / "run")]
    env = {**os.environ, "INPARSX_DATA_HOME": str(home)}
    assert subprocess.run(command, capture_output=True, text=True, env=env, timeout=300).returncode == 0
    before = _snapshot(tmp_path / "run" / "retrieve")
    assert {"run.trec", "check.json", "summary.json", pipeline.DONE_MARKER} <= set(before)
    offline = {k: v for k, v in os.environ.items() if k not in ("INPARSX_DATA_HOME", "no_proxy", "NO_PROXY")}
    offline.update(
        IR_DATASETS_HOME=str(tmp_path / "ir_datasets"),
        https_proxy="http://127.0.0.1:9",
        http_proxy="http://127.0.0.1:9",
    )  # no network: every request goes to a closed port
    failed = subprocess.run(command, capture_output=True, text=True, env=offline, timeout=300)
    assert failed.returncode == 2
    assert "error: dataset beir:scifact: $INPARSX_DATA_HOME is not set" in failed.stderr
    assert _snapshot(tmp_path / "run" / "retrieve") == before


class Loader(Generator):
    """An echo generator that declares the model it would load."""

    name = "loader"

    class Options(Options):
        model: str
        value: int = 1
        fail: bool = False


def test_a_stage_whose_model_cannot_load_keeps_its_folder(tmp_path, scifact_small, fake_stages, monkeypatch):
    from inparsx.preflight import PreflightError
    from inparsx.recipe import one_stage_recipe

    monkeypatch.setattr(Loader, "models", lambda self: [ModelRef("model", self.options.model, "generator")])
    with registered(plugin_module("loader", generators=[Loader])):
        good = one_stage_recipe("generate", "loader", [f"model={scifact_small}"], str(scifact_small))
        pipeline.run_one_stage(good, "generate", tmp_path / "run")
        before = _snapshot(tmp_path / "run")
        bad = one_stage_recipe("generate", "loader", ["model=./no/such/model", "value=2"], str(scifact_small))
        with pytest.raises(
            PreflightError,
            match=r"stage 'generate' cannot start, its folder is kept as it was: "
            r"generate.model = './no/such/model' is missing",
        ):
            pipeline.run_one_stage(bad, "generate", tmp_path / "run")
        assert _snapshot(tmp_path / "run") == before
        with pytest.raises(
            PreflightError,
            match=r"pre-flight check failed, nothing was run: generate.model "
            r"./no/such/model is missing",
        ):
            pipeline.run_recipe(bad, tmp_path / "run")
        assert _snapshot(tmp_path / "run") == {**before, "recipe.toml": (tmp_path / "run" / "recipe.toml").read_bytes()}
