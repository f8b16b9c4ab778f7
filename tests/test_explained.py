"""What used to pass in silence is said: a filter that drops (almost) everything, metrics deeper than the run, a
short count of generated queries; and library noise that tells a user nothing is silenced."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from inparsx.cli.main import main


def cli(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "argv", ["inparsx", *args])
    code = 0
    try:
        main()
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    return code, captured.out, captured.err


@pytest.fixture()
def beir(tmp_path) -> Path:
    from inparsx.testing import tiny_beir

    return tiny_beir(tmp_path / "beir")


def test_a_filter_that_drops_every_query_is_named(tmp_path, beir, monkeypatch, capsys):
    code, _, err = cli(
        monkeypatch,
        capsys,
        "generate",
        "--dataset",
        str(beir),
        "--use",
        "ict",
        "--set",
        "min_words=2",
        "--set",
        "remove_sentence=false",
        "--out",
        str(tmp_path / "q.jsonl"),
    )
    assert code == 0, err
    code, out, err = cli(
        monkeypatch,
        capsys,
        "filter",
        str(tmp_path / "q.jsonl"),
        "--dataset",
        str(beir),
        "--run-dir",
        str(tmp_path / "run"),
        "--set",
        "min_tokens=1",
    )  # the default filters
    assert code == 0, err
    assert "warning: filter 'copied' dropped all" in err and "leave it out with the ict generator" in err
    summary = json.loads((tmp_path / "run" / "filter" / "summary.json").read_text())
    step = next(s for s in summary["filters"] if s["filter"] == "copied")
    assert step["kept"] == 0 and "dropped all" in step["warning"]
    assert "warning" not in next(s for s in summary["filters"] if s["filter"] == "length")
    code, _, err = cli(monkeypatch, capsys, "report", str(tmp_path / "run"))
    assert code == 0, err
    assert "<b>warning:</b> filter 'copied' dropped all" in (tmp_path / "run" / "report.html").read_text()


def test_drop_warning_threshold():
    from collections import Counter

    from inparsx.filter.stage import drop_warning
    from inparsx.records import SyntheticQuery

    seen = [SyntheticQuery(query_id=str(i), doc_id="d", query="q", generator="hf:m") for i in range(20)]
    assert drop_warning("scores", seen, 2, Counter({"below top k": 18})) == ""  # 90% exactly: no warning
    text = drop_warning("scores", seen, 1, Counter({"below top k": 19}))
    assert text.startswith("filter 'scores' dropped 19 of the 20 synthetic queries it saw (95%): below top k (19)")
    assert "ict" not in text and "nothing is left" not in text


def test_metrics_deeper_than_the_run_are_flagged(tmp_path, beir, monkeypatch, capsys):
    from inparsx.io import read_qrels

    qrels = read_qrels(beir / "qrels" / "test.tsv")
    docs = [json.loads(line)["_id"] for line in (beir / "corpus.jsonl").read_text().splitlines()]
    shallow = tmp_path / "shallow.trec"  # a first stage cut at depth 5, as retrieve.k = 5 writes it
    shallow.write_text(
        "".join(f"{qid} Q0 {doc} {rank} {10 - rank} bm25\n" for qid in qrels for rank, doc in enumerate(docs[:5], 1))
    )
    judged = tmp_path / "judged.trec"  # the judged documents, and one more for the first query: not a cut run
    first = next(iter(qrels))
    judged.write_text(
        "".join(f"{qid} Q0 {doc} 1 1.0 oracle\n" for qid, found in qrels.items() for doc in found)
        + f"{first} Q0 {next(d for d in docs if d not in qrels[first])} 2 0.5 oracle\n"
    )
    code, out, err = cli(
        monkeypatch,
        capsys,
        "eval",
        "-r",
        f"bm25={shallow}",
        "-r",
        f"oracle={judged}",
        "-q",
        f"{beir}/test",
        "-m",
        "ndcg@3,recall@10",
    )
    assert code == 0, err
    assert "warning: run 'bm25' holds at most 5 documents per query, so recall@10 count(s) only those 5" in err
    assert "oracle" not in err.split("warning: run 'bm25'")[1].split("\n")[0]
    bm25 = next(line for line in out.splitlines() if line.strip("│ ").startswith("bm25"))
    oracle = next(line for line in out.splitlines() if "oracle" in line and "│" in line)
    assert bm25.count("†") == 1 and "†" not in oracle  # recall@10 only; ndcg@3 is within the run
    assert "†: deeper than the run, which ranks at most so many documents per query (bm25 5)" in out


def test_a_short_count_is_explained(tmp_path, beir, monkeypatch, capsys):
    corpus = beir / "corpus.jsonl"
    lines = corpus.read_text().splitlines()
    first = json.loads(lines[0])
    lines[0] = json.dumps({**first, "text": "Too short."})  # no sentence of 5 words: ict writes no query
    corpus.write_text("\n".join(lines) + "\n")
    code, out, err = cli(
        monkeypatch,
        capsys,
        "generate",
        "--dataset",
        str(beir),
        "--use",
        "ict",
        "--set",
        "num_docs=100",
        "--set",
        "remove_sentence=false",
        "--out",
        str(tmp_path / "q.jsonl"),
    )
    assert code == 0, err
    assert "num_docs = 100, but the collection holds 15 documents: all of them are used" in err
    assert (
        "1 of the 15 sampled documents got no query (ict writes none for a document without a sentence of 5 to "
        "64 words)" in err
    )
    stats = json.loads((tmp_path / "q.stats.json").read_text())
    assert first["_id"] in stats["docs_without_query"] and stats["sampled"] == 15


def test_library_noise_is_silenced(caplog):
    from inparsx.progress import quiet_library_bars

    quiet_library_bars()
    logger = logging.getLogger("bitsandbytes.backends.cpu.ops")
    with caplog.at_level(logging.WARNING):
        logger.warning("Failed to load CPU gemm_4bit_forward from kernels-community: No module named 'kernels'.")
        logger.warning("another bitsandbytes warning")
    shown = [record.getMessage() for record in caplog.records]
    assert shown == ["another bitsandbytes warning"]


def test_ir_datasets_info_lines_are_silenced(capfd):
    import ir_datasets.log

    from inparsx.progress import quiet_ir_datasets

    quiet_ir_datasets()
    quiet_ir_datasets()  # idempotent
    log = ir_datasets.log.easy("ir_datasets.test_explained")
    log.info("[starting] https://example.org/scifact.zip")
    log.warn("a real warning")
    list(log.pbar(range(3), desc="download"))  # no bar: stderr is not a terminal here
    err = capfd.readouterr().err
    assert "[starting]" not in err and "a real warning" in err and "download" not in err
