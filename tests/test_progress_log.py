"""Progress where there is no terminal: a run whose stderr goes to a file (nohup, a cluster job, CI) writes plain
progress lines (stage, done/total, rate, ETA; step and loss while training), the rate a bar shows is the one
the summary prints, a failed bar leaves no stale spinner, and "resuming" is said only when something was."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

from inparsx import progress

RECIPE = """[recipe]
name = "log"
[dataset]
name = "{data}"
[retrieve]
use = "bm25s"
k = 20
[generate]
use = "ict"
min_words = 2
remove_sentence = false
[filter]
use = ["length"]
min_tokens = 1
[triples]
use = "bm25-negatives"
depth = 10
retriever = "bm25s"
[train]
use = "cross-encoder"
base_model = "{bert}"
max_steps = 3
batch_size = 2
max_length = 48
logging_steps = 1
save_steps = 0
[rerank]
use = "cross-encoder"
model = "@train"
depth = 5
max_length = 48
[evaluate]
metrics = ["ndcg@10"]
"""


def run_logged(recipe: Path, run_dir: Path, log: Path, **env: str) -> int:
    """``inparsx run`` with stderr written to ``log`` (not a terminal), progress settings as a user has them."""
    clean = {k: v for k, v in os.environ.items() if k not in ("INPARSX_NO_PROGRESS", "INPARSX_PROGRESS", "CI")}
    with open(log, "w") as handle:
        return subprocess.run(
            [sys.executable, "-m", "inparsx.cli.main", "run", str(recipe), "--run-dir", str(run_dir)],
            stdout=subprocess.DEVNULL,
            stderr=handle,
            env={**clean, **env},
            timeout=600,
        ).returncode


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory) -> tuple[Path, str]:
    """A small recipe run with stderr to a file: ``(run directory, the log's text)``."""
    from inparsx.testing import tiny_beir, tiny_bert

    tmp_path = tmp_path_factory.mktemp("logged")
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(data=tiny_beir(tmp_path / "beir"), bert=tiny_bert(tmp_path / "bert")))
    log = tmp_path / "run.log"
    assert run_logged(recipe, tmp_path / "run", log, INPARSX_PROGRESS_INTERVAL="0") == 0, log.read_text()[-3000:]
    return tmp_path / "run", log.read_text()


def test_a_run_logged_to_a_file_writes_plain_progress_lines(logged_run):
    _, text = logged_run
    ours = [line for line in text.splitlines() if not line.startswith("[transformers]")]  # its load report is bold
    assert not any("\r" in line or "\x1b[" in line for line in ours)  # no live bar, no colours: a readable log
    for stage, unit in (("bm25s search", "queries"), (r"generate \(ict\)", "docs"), ("rerank", "pairs")):
        assert re.search(
            rf"^{stage}: \d+/\d+ {unit} \(100%\) · [\d.,]+ {unit}/s · done in \d+:\d\d:\d\d", text, re.M
        ), stage
    # training: steps, rate, ETA while it runs, and the loss
    assert re.search(
        r"^training: [12]/3 steps \(\d+%\) · .*steps/s · elapsed \d+:\d\d:\d\d · eta \d+:\d\d:\d\d · "
        r"loss \d+\.\d{4}",
        text,
        re.M,
    )
    assert re.search(r"^training: 3/3 steps \(100%\) · [\d.,]+ steps/s · done in .* loss \d+\.\d{4}", text, re.M)
    # the rate the bar ends on is the one the stage's summary prints
    bar = re.search(r"^rerank: (\d+)/\1 pairs \(100%\) · ([\d.,]+) pairs/s", text, re.M)  # 1,291.8 above 1000
    summary = re.search(r"^rerank: \d+ queries, (\d+) pairs in [\d.]+ s \(([\d.,]+) pairs/s\)", text, re.M)
    assert bar and summary and bar.group(1) == summary.group(1) and bar.group(2) == summary.group(2)


def test_the_run_says_which_device_and_precision_each_model_ran_with(logged_run):
    import json

    run_dir, text = logged_run
    resolved = "bf16" if progress_free_native_bf16() else "fp32"
    assert re.search(rf"^train \(cross-encoder\): .*bert on cpu, {resolved} \(auto: this CPU ", text, re.M)
    assert re.search(rf"^rerank: \d+ queries, .* on cpu, {resolved} \(auto: ", text, re.M)
    summary = json.loads((run_dir / "rerank" / "summary.json").read_text())["rerank"]
    assert (summary["device"], summary["precision"], summary["dtype"]) == ("cpu", resolved, resolved)
    info = json.loads((run_dir / "train" / "model" / "inparsx_training.json").read_text())
    assert (info["device"], info["precision"], info["options"]["precision"]) == ("cpu", resolved, resolved)
    card = (run_dir / "train" / "model" / "README.md").read_text()
    assert f"| `precision` | `{resolved}` |" in card and f"device and precision: cpu, {resolved} (auto: " in card
    report = (run_dir / "report.html").read_text()
    assert "Devices and precision" in report and "auto</td>" not in report
    for document in (json.dumps(summary), json.dumps(info), card):
        assert '"auto"' not in document and "`auto`" not in document  # the resolved value is recorded, never auto


def progress_free_native_bf16() -> bool:
    import torch

    from inparsx.precision import native_bf16

    return native_bf16(torch.device("cpu"))


def test_log_lines_come_at_most_once_per_interval(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=stream, width=80))
    monkeypatch.setenv("INPARSX_PROGRESS", "log")
    monkeypatch.setenv("INPARSX_PROGRESS_INTERVAL", "3600")
    with progress.progress_task("score", 5, "pairs") as (bar, task):
        for _ in range(5):
            bar.advance(task)
    lines = stream.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("score: 5/5 pairs (100%) · ")  # only the closing line


def test_a_slow_task_still_shows_a_rate_and_an_eta(monkeypatch):
    """rich estimates speed over the last 30 s; with one step a minute its window holds too few updates, and the
    log said "? steps/s" with no ETA. The average so far stands in."""
    clock = [0.0]
    stream = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=stream, width=120))
    monkeypatch.setenv("INPARSX_PROGRESS", "log")
    monkeypatch.setenv("INPARSX_PROGRESS_INTERVAL", "0")
    bar = progress.make_progress()
    bar.get_time = lambda: clock[0]  # rich's clock
    task = bar.add_task("training", total=10, unit="steps")
    for _ in range(2):
        clock[0] += 60.0
        bar.advance(task)
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("training: 2/10 steps (20%) · 0.017 steps/s · elapsed 0:02:00 · eta 0:08:00"), last
    assert progress.rate_text(18.24, "pairs") == "18.2 pairs/s" and progress.rate_text(None, "it") == "? it/s"


def test_a_failed_bar_is_erased_and_says_where_it_stopped(monkeypatch):
    stream = io.StringIO()
    monkeypatch.setattr(progress, "console", Console(file=stream, force_terminal=True, width=100))
    monkeypatch.setenv("INPARSX_PROGRESS", "bar")
    with pytest.raises(RuntimeError):
        with progress.progress_task("generate (hf)", 10, "docs") as (bar, task):
            bar.advance(task, 3)
            raise RuntimeError("model failed")
    assert bar.live.transient  # the live display is cleared, not left as a stale spinner
    assert stream.getvalue().rstrip().endswith("generate (hf): stopped at 3/10 docs")
    stream.truncate(0)
    with pytest.raises(RuntimeError):
        with progress.progress_task("reading runs", 2, "runs"):
            raise RuntimeError("no such file")
    assert "stopped at" not in stream.getvalue()  # nothing done: nothing to say


def test_resuming_is_said_only_when_something_is_resumed(tmp_path):
    from inparsx.testing import tiny_beir
    from inparsx.testing.models import tiny_bert

    bert = tiny_bert(tmp_path / "bert")
    (bert / "model.safetensors").write_bytes(b"not a safetensors file")  # found by the pre-flight check, not loadable
    recipe = tmp_path / "r.toml"
    recipe.write_text(RECIPE.format(data=tiny_beir(tmp_path / "beir"), bert=bert))
    log = tmp_path / "run.log"
    assert run_logged(recipe, tmp_path / "run", log) == 2  # the base model cannot be loaded
    assert "cannot load base model" in log.read_text() and "Traceback" not in log.read_text()
    assert run_logged(recipe, tmp_path / "run", log) == 2
    header = next(line for line in log.read_text().splitlines() if "train (cross-encoder)" in line)
    assert "resuming" not in header
    partial = tmp_path / "run" / "train" / "model" / "checkpoints" / "checkpoint-1"
    partial.mkdir(parents=True)
    (partial / "trainer_state.json").write_text("{}")
    assert run_logged(recipe, tmp_path / "run", log) == 2
    header = next(line for line in log.read_text().splitlines() if "train (cross-encoder)" in line)
    assert "resuming" in header  # a checkpoint was there to resume from
