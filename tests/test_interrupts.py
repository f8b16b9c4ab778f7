"""Ctrl-C on a real ``inparsx run``: during a Lucene search, during generation and during start-up. The run
stops within seconds with exit code 130 and one line saying where, and running the same command again resumes."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from inparsx.testing import tiny_llama, train_tokenizer

SECONDS_TO_STOP = 5.0
"""Ctrl-C to exit, at most (the watchdog ends a process 3 s after Ctrl-C; the rest is slack for a busy machine)."""


def env(cache: Path) -> dict[str, str]:
    return {**os.environ, "INPARSX_NO_PROGRESS": "1", "PYTHONUNBUFFERED": "1", "INPARSX_CACHE": str(cache)}


def command(recipe: Path, run_dir: Path) -> list[str]:
    return [sys.executable, "-m", "inparsx.cli.main", "run", str(recipe), "--run-dir", str(run_dir)]


def interrupt_when(process: subprocess.Popen, ready, timeout: float = 180) -> tuple[int, float, str]:
    """Send SIGINT once ``ready()`` holds; return (exit code, seconds from SIGINT to exit, stderr). The process
    is killed whatever happens, so a failed test leaves nothing running."""
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert process.poll() is None, process.stderr.read()
            assert time.monotonic() < deadline, "the run never reached the point to interrupt"
            time.sleep(0.02)
        sent = time.monotonic()
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=30)
        return code, time.monotonic() - sent, process.stderr.read()
    finally:
        process.kill()
        process.wait()


def assert_one_line_interrupt(code: int, seconds: float, stderr: str, stage: str) -> None:
    assert code == 130, stderr[-3000:]
    assert seconds < SECONDS_TO_STOP, f"took {seconds:.1f} s to stop"
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.startswith("interrupted")]
    assert len(lines) == 1 and f"stage {stage!r}" in lines[0] and "run the same command again to resume" in lines[0], (
        stderr
    )


@pytest.fixture()
def many_queries(scifact_dir: Path, tmp_path: Path) -> Path:
    """300 real SciFact documents and 3,000 queries made of their words, each judging one document: a Lucene
    search that lasts several seconds over an index built in under one."""
    folder = tmp_path / "many"
    (folder / "qrels").mkdir(parents=True)
    lines = (scifact_dir / "corpus.jsonl").read_text().splitlines()[:300]
    docs = [json.loads(line) for line in lines]
    (folder / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    rng = random.Random(0)
    queries, qrels = [], ["query-id\tcorpus-id\tscore"]
    for i in range(3000):
        doc = rng.choice(docs)
        words = doc["text"].split()
        queries.append(json.dumps({"_id": f"q{i}", "text": " ".join(rng.sample(words, min(8, len(words))))}))
        qrels.append(f"q{i}\t{doc['_id']}\t1")
    (folder / "queries.jsonl").write_text("\n".join(queries) + "\n")
    (folder / "qrels" / "test.tsv").write_text("\n".join(qrels) + "\n")
    return folder


def test_ctrl_c_during_a_lucene_search_stops_and_the_rerun_resumes(many_queries: Path, tmp_path: Path):
    recipe = tmp_path / "bm25.toml"
    recipe.write_text(
        textwrap.dedent(f"""\
        [recipe]
        name = "sigint-bm25"
        [dataset]
        name = "{many_queries}"
        [retrieve]
        use = "bm25"
        k = 10
        batch_size = 16
        threads = 1
        """)
    )
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    process = subprocess.Popen(
        command(recipe, run_dir), env=env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    searching = lambda: any(cache.glob("indexes/lucene-*/inparsx-index.json"))  # noqa: E731
    code, seconds, stderr = interrupt_when(process, searching)
    assert_one_line_interrupt(code, seconds, stderr, "retrieve")
    assert not (run_dir / "retrieve" / "run.trec").exists()
    rerun = subprocess.run(command(recipe, run_dir), env=env(cache), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming" in rerun.stderr
    assert len({line.split()[0] for line in (run_dir / "retrieve" / "run.trec").read_text().splitlines()}) > 2900


@pytest.fixture(scope="module")
def llama(scifact, tmp_path_factory) -> str:
    texts = [doc.full_text for _, doc in zip(range(200), scifact.docs_iter())]
    return str(tiny_llama(tmp_path_factory.mktemp("llama") / "m", train_tokenizer(texts, vocab_size=800)))


def test_ctrl_c_during_generation_stops_and_the_rerun_resumes(llama: str, tmp_path: Path):
    recipe = tmp_path / "gen.toml"
    recipe.write_text(
        textwrap.dedent(f"""\
        [recipe]
        name = "sigint-generate"
        [dataset]
        name = "beir:scifact"
        [generate]
        use = "hf"
        model = "{llama}"
        num_docs = 60
        batch_size = 1
        max_new_tokens = 8
        max_doc_tokens = 64
        """)
    )
    run_dir, cache = tmp_path / "run", tmp_path / "cache"
    partial = run_dir / "generate" / "queries.jsonl.partial"
    process = subprocess.Popen(
        command(recipe, run_dir), env=env(cache), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    code, seconds, stderr = interrupt_when(process, lambda: partial.exists() and partial.read_bytes().count(b"\n") >= 3)
    assert_one_line_interrupt(code, seconds, stderr, "generate")
    assert not (run_dir / "generate" / "queries.jsonl").exists(), "the run finished before Ctrl-C"
    rerun = subprocess.run(command(recipe, run_dir), env=env(cache), capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming" in rerun.stderr
    records = [json.loads(line) for line in (run_dir / "generate" / "queries.jsonl").read_text().splitlines()]
    assert len({r["doc_id"] for r in records}) == len(records) == 60


def test_ctrl_c_during_start_up_is_one_line_too(tmp_path: Path, scifact_small: Path):
    """While the CLI imports its libraries and plugins, Ctrl-C gives the same line, no traceback."""
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[recipe]\nname = "s"\n[dataset]\nname = "{scifact_small}"\n[retrieve]\nuse = "bm25"\n')
    script = Path(sys.executable).with_name("inparsx")  # the console script, as users start it
    process = subprocess.Popen(
        [str(script), *command(recipe, tmp_path / "run")[3:]],
        env=env(tmp_path / "cache"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = time.monotonic()
    code, seconds, stderr = interrupt_when(process, lambda: time.monotonic() - started > 1.0)
    assert code == 130, stderr[-3000:]
    assert seconds < SECONDS_TO_STOP and "Traceback" not in stderr, stderr[-3000:]
    assert [line for line in stderr.splitlines() if line.startswith("interrupted")], stderr
