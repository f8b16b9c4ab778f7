"""A stage's own seed (``[stage] seed``) and the shared stage store (``inparsx run --store``)."""

from __future__ import annotations

import os
import sys
import threading
import time

import pytest
import sweep_fakes

from inparsx.pipeline import DONE_MARKER, StageContext, read_marker, run_recipe, stage_fingerprints
from inparsx.plugins import get_registry
from inparsx.recipe import RecipeErrors, load_recipe, validate_recipe
from inparsx.store import StageStore


@pytest.fixture()
def fakes(monkeypatch, tmp_path):
    monkeypatch.setenv("SWEEP_CALLS", str(tmp_path / "calls.txt"))
    sweep_fakes.install()
    yield tmp_path / "calls.txt"
    sweep_fakes.uninstall()


def recipe(tmp_path, data, *sets, text: str = ""):
    path = tmp_path / "r.toml"
    path.write_text(sweep_fakes.RECIPE.format(data=data) + text)
    return load_recipe(path, list(sets))


def stages_run(calls) -> list[str]:
    return [line.split()[0] for line in calls.read_text().splitlines()] if calls.is_file() else []


def test_a_pinned_stage_keeps_its_fingerprint_across_recipe_seeds(tmp_path, scifact_small, fakes):
    prints = {
        seed: stage_fingerprints(recipe(tmp_path, scifact_small, f"recipe.seed={seed}", "generate.seed=7"), "c")
        for seed in (1, 2)
    }
    assert prints[1]["retrieve"] != prints[2]["retrieve"]  # not pinned: the recipe seed counts
    pinned = {
        seed: stage_fingerprints(
            recipe(tmp_path, scifact_small, f"recipe.seed={seed}", "retrieve.seed=1", "generate.seed=7"), "c"
        )
        for seed in (1, 2)
    }
    assert pinned[1]["retrieve"] == pinned[2]["retrieve"] and pinned[1]["generate"] == pinned[2]["generate"]
    assert pinned[1]["train"] != pinned[2]["train"]  # training follows the recipe seed
    plain = stage_fingerprints(recipe(tmp_path, scifact_small), "c")
    same = stage_fingerprints(recipe(tmp_path, scifact_small, "retrieve.seed=1", "generate.seed=1"), "c")
    assert plain == same  # pinning the recipe's own seed changes nothing


def test_a_pinned_seed_reaches_the_components_and_the_filled_recipe(tmp_path, scifact_small, fakes):
    loaded = recipe(tmp_path, scifact_small, "recipe.seed=3", "generate.seed=7")
    assert loaded.stage_seed("generate") == 7 and loaded.stage_seed("train") == 3
    assert loaded.filled()["generate"] == {"use": "echo", "seed": 7, "value": 1}
    ctx = StageContext(loaded, "generate", tmp_path, [])
    assert ctx.seed == 7 and ctx.component_context(dataset=object()).seed == 7
    run_dir = run_recipe(loaded, tmp_path / "run")
    assert (run_dir / "generate" / "queries.txt").read_text() == "queries 1 seed 7\n"
    assert (run_dir / "train" / "model.txt").read_text().endswith("seed 3\n")
    assert "seed = 7" in (run_dir / "recipe.toml").read_text()


def test_a_bad_stage_seed_names_its_key(tmp_path, scifact_small, fakes):
    with pytest.raises(RecipeErrors, match=r"r.toml:\d+: generate.seed: Input should be a valid integer"):
        recipe(tmp_path, scifact_small, 'generate.seed="x"')
    data = {
        "recipe": {"name": "f"},
        "dataset": {"name": "d"},
        "filter": {"use": ["length"], "seed": 4, "min_tokens": 3},
    }
    assert validate_recipe(data, "f", "", get_registry()).stage_seed("filter") == 4


def test_the_estimate_holdout_seed_is_part_of_a_pinned_stage_fingerprint(tmp_path, scifact_small, fakes):
    def generate_print(recipe_seed: int, estimate: dict) -> str:
        data = {
            "recipe": {"name": "h", "seed": recipe_seed},
            "dataset": {"name": str(scifact_small)},
            "generate": {"use": "ict", "seed": 1},
            "rerank": {"use": "bi-encoder", "model": "m"},
            "estimate": {"docs": 5, **estimate},
        }
        return stage_fingerprints(validate_recipe(data, "h", "", get_registry()), "c")["generate"]

    # the held-out documents are drawn with the estimate's seed: another training view, another generation
    assert generate_print(1, {}) != generate_print(2, {})
    assert generate_print(1, {"seed": 1}) == generate_print(2, {"seed": 1})


def test_a_stage_in_the_store_is_linked_not_run(tmp_path, scifact_small, fakes):
    store = tmp_path / "store"
    first = run_recipe(recipe(tmp_path, scifact_small), tmp_path / "a", store=store)
    second = run_recipe(recipe(tmp_path, scifact_small, "train.value=2"), tmp_path / "b", store=store)
    assert stages_run(fakes) == ["retrieve", "generate", "train", "evaluate", "train", "evaluate"]
    marker = read_marker(second / "generate" / DONE_MARKER)
    entry = StageStore(store).entry("generate", marker["key"])
    assert marker["from_store"] == str(entry) and not read_marker(first / "generate" / DONE_MARKER).get("from_store")
    assert os.path.samefile(second / "generate" / "queries.txt", entry / "queries.txt")
    assert [e["stage"] for e in StageStore(store).entries()] == ["generate", "retrieve", "train", "train"]


def test_a_forced_stage_runs_and_replaces_its_entry(tmp_path, scifact_small, fakes):
    store = tmp_path / "store"
    run_recipe(recipe(tmp_path, scifact_small), tmp_path / "a", store=store)
    other = run_recipe(recipe(tmp_path, scifact_small), tmp_path / "b", start="train", store=store)
    assert stages_run(fakes) == ["retrieve", "generate", "train", "evaluate", "train", "evaluate"]
    key = read_marker(other / "train" / DONE_MARKER)["key"]
    assert os.path.samefile(other / "train" / "model.txt", StageStore(store).entry("train", key) / "model.txt")


def test_two_processes_never_compute_the_same_stage_at_once(tmp_path, scifact_small, fakes, capsys):
    """The second run waits on the entry's lock while the first computes the stage, then takes it."""
    store, started, release = tmp_path / "store", threading.Event(), threading.Event()
    runners = sys.modules["sweep_fake_runners"]

    def slow_generate(ctx):
        started.set()
        assert release.wait(30)
        sweep_fakes.generate(ctx)

    runners.generate = slow_generate
    loaded = recipe(tmp_path, scifact_small)
    errors: list[BaseException] = []

    def run(name):
        try:
            run_recipe(loaded, tmp_path / name, store=store)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    first = threading.Thread(target=run, args=("a",))
    first.start()
    assert started.wait(30)
    second = threading.Thread(target=run, args=("b",))
    second.start()
    deadline = time.monotonic() + 30
    while "waiting for pid" not in capsys.readouterr().err and time.monotonic() < deadline:
        time.sleep(0.05)
    assert time.monotonic() < deadline, "the second run did not wait for the first"
    release.set()
    first.join(30)
    second.join(30)
    assert not errors
    assert stages_run(fakes).count("generate") == 1
    assert read_marker(tmp_path / "b" / "generate" / DONE_MARKER).get("from_store")


def test_a_resumed_rerank_file_never_appends_to_a_linked_file(tmp_path):
    from inparsx.io import ResumableJsonl
    from inparsx.rerank.reranking import resume_records

    shared = tmp_path / "entry.jsonl"
    shared.write_text('{"meta": {"m": 1}}\n{"qid": "1", "scores": {}}\n')
    linked = tmp_path / "run" / "scores.jsonl"
    linked.parent.mkdir()
    os.link(shared, linked)
    store = ResumableJsonl(linked)
    assert resume_records(store, {"m": 1}) == [{"qid": "1", "scores": {}}]
    store.append([{"qid": "2", "scores": {}}])
    store.finish()
    assert shared.read_text().count("\n") == 2 and linked.read_text().count("\n") == 3
