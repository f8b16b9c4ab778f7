"""``inparsx sweep``: runs share stages through the store (computed once), a killed sweep resumes, the dry run's
commands rebuild the same folders, ``--collect`` rebuilds the same table, and bad input is one line."""

from __future__ import annotations

import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import sweep_fakes
from typer.testing import CliRunner

from inparsx.pipeline import DONE_MARKER, STARTED_MARKER, read_marker

FAKES = Path(sweep_fakes.__file__)


@pytest.fixture()
def fakes(monkeypatch, tmp_path):
    calls = tmp_path / "calls.txt"
    monkeypatch.setenv("SWEEP_CALLS", str(calls))
    monkeypatch.chdir(tmp_path)
    sweep_fakes.install()
    yield calls
    sweep_fakes.uninstall()


def calls_of(path: Path) -> list[tuple[str, str]]:
    if not path.is_file():
        return []
    return [tuple(line.split(" ", 1)) for line in path.read_text().splitlines()]


def recipe_file(tmp_path: Path, data: Path, extra: str = "") -> Path:
    path = tmp_path / "r.toml"
    path.write_text(sweep_fakes.RECIPE.format(data=data) + extra)
    return path


def cli(*args: str):
    from inparsx.cli.main import _add_plugin_commands, app

    _add_plugin_commands()
    return CliRunner().invoke(app, list(args))


GRID = [
    "--grid",
    "train.value=1,2",
    "--grid",
    "generate.value=1,3",
    "--seeds",
    "1,2",
    "--set",
    "retrieve.seed=1",
    "--set",
    "generate.seed=1",
]


def test_a_sweep_computes_shared_stages_once(tmp_path, scifact_small, fakes):
    recipe = recipe_file(tmp_path, scifact_small)
    result = cli("sweep", str(recipe), *GRID)
    assert result.exit_code == 0, result.output
    calls = calls_of(fakes)
    counted = {stage: sum(1 for s, _ in calls if s == stage) for stage in ("retrieve", "generate", "train", "evaluate")}
    # 4 variants x 2 seeds: BM25 once for all; generation pinned to seed 1, once per generate.value; training per run
    assert counted == {"retrieve": 1, "generate": 2, "train": 8, "evaluate": 8}
    store = tmp_path / "runs" / "r-sweep" / "store"
    entries = sorted(p.name.rpartition("-")[0] for p in store.iterdir() if not p.name.startswith("."))
    assert entries == ["generate"] * 2 + ["retrieve"] + ["train"] * 8  # the evaluate stage is never stored
    runs = sorted((tmp_path / "runs" / "r-sweep").glob("*/seed-*"))
    assert len(runs) == 8
    retrieves = [read_marker(run / "retrieve" / DONE_MARKER) for run in runs]
    assert len({m["fingerprint"] for m in retrieves}) == 1 and sum("from_store" in m for m in retrieves) == 7
    shared = runs[-1] / "retrieve" / "run.txt"
    entry = Path(retrieves[-1].get("from_store") or retrieves[0]["from_store"]) / "run.txt"
    assert shared.read_text() == "bm25 1 seed 1\n" and os.path.samefile(shared, entry)  # a hard link, not a copy
    seeds = {(run.parent.name, run.name): (run / "generate" / "queries.txt").read_text() for run in runs}
    assert seeds[("train.value=1+generate.value=3", "seed-2")] == "queries 3 seed 1\n"  # the pinned seed
    assert (runs[-1] / "train" / "model.txt").read_text().endswith("seed 2\n")
    result = cli("sweep", str(recipe), *GRID)  # everything finished: nothing runs
    assert result.exit_code == 0 and len(calls_of(fakes)) == len(calls)
    assert result.output.count("finished") >= 8


def test_the_table_is_mean_and_sd_over_seeds_with_paired_tests(tmp_path, scifact_small, fakes):
    from scipy.stats import ttest_rel

    recipe = recipe_file(tmp_path, scifact_small)
    assert cli("sweep", str(recipe), *GRID).exit_code == 0
    found = json.loads((tmp_path / "runs" / "r-sweep" / "sweep.json").read_text())
    cell = found["cells"]["train.value=2, generate.value=3"]["rerank"]["ndcg@10"]
    means = [statistics.fmean(sweep_fakes.scores(3, 2, seed)["rerank"].values()) for seed in (1, 2)]
    assert cell["values"] == pytest.approx(means) and cell["seeds"] == [1, 2]
    assert cell["mean"] == pytest.approx(statistics.fmean(means)) and cell["sd"] == pytest.approx(
        statistics.stdev(means)
    )
    test = found["tests"][0]
    assert test["against"] == {"row": "train.value=1,generate.value=1", "column": None}
    tested = test["cells"]["train.value=2, generate.value=3"]["rerank"]
    per_query = {seed: sweep_fakes.scores(3, 2, seed)["rerank"] for seed in (1, 2)}
    base = {seed: sweep_fakes.scores(1, 1, seed)["rerank"] for seed in (1, 2)}
    ours = [statistics.fmean(per_query[s][q] for s in (1, 2)) for q in sweep_fakes.QUERIES]
    theirs = [statistics.fmean(base[s][q] for s in (1, 2)) for q in sweep_fakes.QUERIES]
    assert tested["against"] == ["train.value=1, generate.value=1", "rerank"]
    assert tested["ndcg@10"]["delta"] == pytest.approx(statistics.fmean(ours) - statistics.fmean(theirs))
    assert tested["ndcg@10"]["p_value"] == pytest.approx(ttest_rel(ours, theirs).pvalue, rel=1e-6)
    table = (tmp_path / "runs" / "r-sweep" / "table.txt").read_text()
    assert f"{cell['mean']:.4f} ± {cell['sd']:.4f}" in table
    html = (tmp_path / "runs" / "r-sweep" / "report.html").read_text()
    assert html.count("<img") >= 1 and "mean ± sd over seeds 1, 2" in html


def test_collect_builds_the_same_table(tmp_path, scifact_small, fakes):
    recipe = recipe_file(tmp_path, scifact_small)
    assert cli("sweep", str(recipe), *GRID).exit_code == 0
    folder = tmp_path / "runs" / "r-sweep"
    table, found = (folder / "table.txt").read_text(), json.loads((folder / "sweep.json").read_text())
    (folder / "table.txt").unlink()
    before = len(calls_of(fakes))
    result = cli("sweep", str(recipe), *GRID, "--collect")
    assert result.exit_code == 0, result.output
    assert len(calls_of(fakes)) == before  # nothing ran
    assert (folder / "table.txt").read_text() == table
    assert json.loads((folder / "sweep.json").read_text())["cells"] == found["cells"]
    import shutil

    shutil.rmtree(folder / "train.value=2+generate.value=3" / "seed-2" / "evaluate")
    result = cli("sweep", str(recipe), *GRID, "--collect")
    assert "not run yet (1): train.value=2,generate.value=3 seed 2" in result.output
    assert (
        json.loads((folder / "sweep.json").read_text())["cells"]["train.value=2, generate.value=3"]["rerank"][
            "ndcg@10"
        ]["n"]
        == 1
    )
    recipe.write_text(recipe.read_text().replace('[retrieve]\nuse = "echo"', '[retrieve]\nuse = "echo"\nvalue = 4'))
    result = cli("sweep", str(recipe), *GRID, "--collect")  # the recipe changed: every folder is of other settings
    assert result.exit_code == 0 and "stale, left out (7" in result.output and len(calls_of(fakes)) == before


def test_dry_run_commands_rebuild_the_same_folders(tmp_path, scifact_small, fakes):
    recipe = recipe_file(tmp_path, scifact_small)
    assert cli("sweep", str(recipe), *GRID).exit_code == 0
    printed = cli("sweep", str(recipe), *GRID, "--dry-run", "--sweep-dir", "elsewhere")
    assert printed.exit_code == 0, printed.output
    commands = [line for line in printed.stdout.splitlines() if line.startswith("inparsx run ")]
    assert len(commands) == 8 and all("--store elsewhere/store" in c for c in commands)
    before = len(calls_of(fakes))
    for command in commands:  # as a cluster would: each its own `inparsx run`, sharing the store
        result = cli(*shlex.split(command)[1:])
        assert result.exit_code == 0, result.output
    counted = [stage for stage, _ in calls_of(fakes)[before:]]
    assert counted.count("retrieve") == 1 and counted.count("generate") == 2 and counted.count("train") == 8
    ours, theirs = tmp_path / "runs" / "r-sweep", tmp_path / "elsewhere"
    for run in sorted(ours.glob("*/seed-*")):
        twin = theirs / run.relative_to(ours)
        for stage in ("retrieve", "generate", "train", "evaluate"):
            files = sorted(p.name for p in (run / stage).iterdir() if not p.name.startswith("."))
            assert files == sorted(p.name for p in (twin / stage).iterdir() if not p.name.startswith("."))
            assert all((run / stage / f).read_text() == (twin / stage / f).read_text() for f in files)
            assert (
                read_marker(run / stage / DONE_MARKER)["fingerprint"]
                == read_marker(twin / stage / DONE_MARKER)["fingerprint"]
            )
    collected = cli("sweep", str(recipe), *GRID, "--collect", "--sweep-dir", "elsewhere")
    assert collected.exit_code == 0, collected.output
    assert (theirs / "table.txt").read_text() == (ours / "table.txt").read_text()
    assert "not run yet" not in collected.output


def test_a_killed_sweep_resumes(tmp_path, scifact_small):
    """A real process killed (SIGKILL) in the middle of a sweep: the rerun skips finished runs, resumes the one
    that was running from its markers, and nothing waits on the dead process's store lock."""
    recipe = recipe_file(tmp_path, scifact_small)
    calls = tmp_path / "calls.txt"
    path = os.pathsep.join([str(FAKES.parent), os.environ.get("PYTHONPATH", "")])  # the fakes, the tree under test
    env = {**os.environ, "SWEEP_CALLS": str(calls), "PYTHONPATH": path}
    command = [
        sys.executable,
        str(FAKES),
        "sweep",
        str(recipe),
        "--grid",
        "train.value=1,2",
        "--seeds",
        "1,2",
        "--set",
        "retrieve.seed=1",
    ]
    blocked = tmp_path / "runs" / "r-sweep" / "train.value=2" / "seed-1" / "train" / "blocked"
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**env, "SWEEP_BLOCK": "train.value=2/seed-1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and not blocked.exists():
        time.sleep(0.05)
    assert blocked.exists(), "the sweep never reached the second run's training"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    first, second = tmp_path / "runs" / "r-sweep" / "train.value=1" / "seed-1", blocked.parent.parent
    assert read_marker(first / "evaluate" / DONE_MARKER)  # the first run had finished
    assert read_marker(second / "train" / STARTED_MARKER) and not read_marker(second / "train" / DONE_MARKER)
    calls.unlink()
    rerun = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    done = calls_of(calls)
    assert not [c for c in done if c[1] == str(first.relative_to(tmp_path))]  # finished run: skipped
    assert [s for s, d in done if d == str(second.relative_to(tmp_path))] == ["train", "evaluate"]  # resumed
    assert "retrieve" not in [s for s, _ in done]  # once for the whole sweep, before the kill
    assert "resuming" in rerun.stderr and "4 runs" in rerun.stderr and "1 finished" in rerun.stderr
    assert (tmp_path / "runs" / "r-sweep" / "table.txt").is_file()


def test_a_sweep_file_names_variants_rows_columns_and_tests(tmp_path, scifact_small, fakes):
    recipe_file(tmp_path, scifact_small)
    sweeps = tmp_path / "sweeps"
    sweeps.mkdir()
    (sweeps / "s.toml").write_text(
        textwrap.dedent("""\
        [sweep]
        recipe = "../r.toml"
        seeds = [1, 2]
        set = ["retrieve.seed=1"]
        curve = "train value"

        [variants.small]
        set = ["train.value=1"]
        x = 1
        [variants.large]
        set = ["train.value=3"]
        x = 3
        label = "a large value"

        [columns]
        "model" = "rerank"

        [[rows]]
        name = "BM25"
        runs = {"model" = "retrieve"}

        [[compare]]
        name = "against BM25"
        row = "BM25"

        [[compare]]
        name = "against small"
        row = "small"
        """)
    )
    result = cli("sweep", str(sweeps / "s.toml"))
    assert result.exit_code == 0, result.output
    found = json.loads((tmp_path / "runs" / "s" / "sweep.json").read_text())
    assert [row["name"] for row in found["rows"]] == ["BM25", "small", "a large value"]
    assert found["columns"] == ["model"] and set(found["cells"]["BM25"]) == {"model"}
    assert found["cells"]["BM25"]["model"]["run"] == "retrieve"
    large = found["tests"][0]["cells"]["a large value"]["model"]
    assert large["against"] == ["BM25", "model"] and large["ndcg@10"]["delta"] > 0.1
    assert "a large value" in found["tests"][1]["cells"] and "small" not in found["tests"][1]["cells"]
    html = (tmp_path / "runs" / "s" / "report.html").read_text()
    assert html.count("<img") == 2  # every cell, and the curve of the variants with an x
    assert cli("validate", str(sweeps / "s.toml")).exit_code == 0


@pytest.mark.parametrize(
    "args,message",
    [
        (["--grid", "train.value"], "--grid: train.value: expected KEY=V1,V2"),
        (["--grid", "train.value=1,,2"], "an empty value"),
        (["--grid", "train.value=1,1"], "a value repeats"),
        (["--grid", "recipe.seed=1,2"], "--seeds 1,2,3, not a grid"),
        (["--seeds", "1,x"], "'x' is not an integer seed"),
        (["--set", "recipe.seed=3"], "give seeds"),
        (["--grid", "train.valu=1,2"], "--grid: train.valu: unknown key; expected one of: value"),
        (["--baseline", "nothing"], "'nothing' names no row or variant"),
        (["--dry-run", "--collect"], "give one of them"),
    ],
)
def test_bad_command_line_input_is_one_line(tmp_path, scifact_small, fakes, args, message):
    recipe = recipe_file(tmp_path, scifact_small)
    result = run_main("sweep", str(recipe), "--grid", "generate.value=1,2", *args)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.stderr


@pytest.mark.parametrize(
    "text,message",
    [
        ('[sweep]\nrecipe = "r.toml"\nseeds = [1]\nnmae = "x"\n', "s.toml:4: sweep.nmae: unknown key"),
        (
            '[sweep]\nrecipe = "r.toml"\n[variants.a]\nset = ["train.vlue=2"]\n',
            "s.toml:4: variants.a.set: train.vlue=2: train.vlue: unknown key",
        ),
        ('[sweep]\nrecipe = "r.toml"\n[variants."a b"]\nset = []\n', "s.toml:3: variants.a b: a variant's name"),
        ('[sweep]\nrecipe = "r.toml"\n[grid]\n"train.value" = []\n', "s.toml:4: grid.train.value: no values"),
        ('[sweep]\nrecipe = "missing.toml"\n', "missing.toml: no such recipe file"),
        (
            '[sweep]\nrecipe = "r.toml"\n[columns]\nm = "rerank"\n[[rows]]\nname = "B"\nruns = {x = "retrieve"}\n',
            "s.toml:5: rows.0: runs: 'x' is not a column",
        ),
        (
            '[sweep]\nrecipe = "r.toml"\n[[compare]]\nname = "c"\nrow = "zz"\n',
            "s.toml:3: compare.0.row: 'zz' names no row",
        ),
        ('[sweep]\nrecipe = "r.toml"\nseeds = [1, 1]\n', "s.toml:3: sweep.seeds: seeds repeat"),
    ],
)
def test_bad_sweep_files_are_one_line_with_file_line_and_key(tmp_path, scifact_small, fakes, text, message):
    recipe_file(tmp_path, scifact_small)
    (tmp_path / "s.toml").write_text(text)
    result = run_main("sweep", "s.toml", "--dry-run")
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def run_main(*args: str) -> subprocess.CompletedProcess:
    """The CLI's ``main`` in-process (its error handling included), as a completed process."""
    import contextlib
    import io

    from inparsx.cli.main import main

    stdout, stderr = io.StringIO(), io.StringIO()
    code = 0
    argv = sys.argv
    sys.argv = ["inparsx", *args]
    try:
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


SWEEPS = sorted((Path(__file__).resolve().parent.parent / "recipes" / "sweeps").glob("*.toml"))


@pytest.mark.parametrize("path", SWEEPS, ids=[p.stem for p in SWEEPS])
def test_shipped_sweeps_validate(path, data_home, monkeypatch):
    monkeypatch.setenv("INPARSX_DATA_HOME", str(data_home))
    result = cli("validate", str(path))
    assert result.exit_code == 0, result.output
    assert "valid (sweep" in result.output


def test_the_labels_vs_synthetic_sweep_is_the_measurement(data_home, monkeypatch):
    from inparsx.sweep.spec import load_sweep

    monkeypatch.setenv("INPARSX_DATA_HOME", str(data_home))
    sweep = load_sweep(Path(SWEEPS[0].parent, "scifact-labels-vs-synthetic.toml"))
    assert sweep.seeds == [1, 2, 3] and [v.x for v in sweep.variants][:4] == [10, 50, 200, 809]
    assert [row.name for row in sweep.extra_rows] == ["BM25", "zero-shot MiniLM"]
    assert list(sweep.columns.values()) == ["rerank-alone", "rerank-interpolated", "rerank"]
    recipes = {run.variant.name: sweep.recipe(run) for run in sweep.runs() if run.seed == 2}
    assert all(r.stage_seed("retrieve") == 1 and r.dataset.eval_split == "test" for r in recipes.values())
    assert recipes["inpars"].stage_seed("generate") == 1 and recipes["gold-10"].stage_seed("generate") == 2
    assert [recipes[k].stages["generate"].components[0][1].num_queries for k in ("gold-10", "gold-809")] == [10, None]
    assert recipes["ict"].stages["generate"].use == ["ict"] and recipes["inpars"].stages["generate"].use == ["vllm"]
    trains = {k: r.filled()["train"] for k, r in recipes.items()}
    assert len({json.dumps(t, sort_keys=True) for t in trains.values()}) == 1  # one trainer for every row
