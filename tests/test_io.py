"""TREC runs and qrels, atomic writes, resumable JSON lines."""

from __future__ import annotations

import pytest

from inparsx.errors import DataError
from inparsx.io import (
    ResumableJsonl,
    atomic_write,
    read_jsonl,
    read_qrels,
    read_trec_run,
    write_trec_qrels,
    write_trec_run,
)


def test_trec_run_roundtrip_ranked_and_deterministic(tmp_path):
    run = {"10": {"b": 1.0, "a": 1.0, "c": 3.5}, "2": {"x": -1.0}}
    write_trec_run(tmp_path / "run.trec", run, tag="t")
    lines = (tmp_path / "run.trec").read_text().splitlines()
    assert lines == ["2 Q0 x 1 -1.0 t", "10 Q0 c 1 3.5 t", "10 Q0 a 2 1.0 t", "10 Q0 b 3 1.0 t"]
    assert read_trec_run(tmp_path / "run.trec") == run


def test_trec_run_keeps_full_precision(tmp_path):
    run = {"1": {"a": 0.9999999995, "b": 0.9999999991}}
    write_trec_run(tmp_path / "r", run)
    assert read_trec_run(tmp_path / "r") == run


def test_trec_run_depth(tmp_path):
    write_trec_run(tmp_path / "r", {"1": {str(i): float(i) for i in range(10)}}, depth=3)
    assert list(read_trec_run(tmp_path / "r")["1"]) == ["9", "8", "7"]


def test_malformed_run_names_line(tmp_path):
    (tmp_path / "r").write_text("1 Q0 a 1 2.0 t\n1 Q0 b 2 t\n")
    with pytest.raises(DataError, match=r"r:2: a TREC run line needs 6 columns"):
        read_trec_run(tmp_path / "r")
    (tmp_path / "s").write_text("1 Q0 a 1 high t\n")
    with pytest.raises(DataError, match=r"s:1: score 'high' is not a number"):
        read_trec_run(tmp_path / "s")


def test_qrels_trec_and_beir_forms(tmp_path):
    (tmp_path / "q.tsv").write_bytes(b"query-id\tcorpus-id\tscore\r\n1\td1\t1\r\n1\td2\t0\r\n")
    assert read_qrels(tmp_path / "q.tsv") == {"1": {"d1": 1, "d2": 0}}
    write_trec_qrels(tmp_path / "q.trec", {"1": {"d1": 2}})
    assert (tmp_path / "q.trec").read_text() == "1 0 d1 2\n"
    assert read_qrels(tmp_path / "q.trec") == {"1": {"d1": 2}}
    with pytest.raises(DataError, match="file not found"):
        read_qrels(tmp_path / "missing")


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(target) as handle:
            handle.write("new")
            raise RuntimeError("crash")
    assert target.read_text() == "old" and not (tmp_path / "f.txt.tmp").exists()


def test_read_jsonl_rejects_non_objects(tmp_path):
    (tmp_path / "a.jsonl").write_text('{"a": 1}\n\n[1, 2]\n')
    with pytest.raises(DataError, match=r"a.jsonl:3: expected a JSON object"):
        list(read_jsonl(tmp_path / "a.jsonl"))


def test_resumable_jsonl_drops_torn_line_and_finishes(tmp_path):
    out = ResumableJsonl(tmp_path / "q.jsonl")
    out.append([{"i": 0}, {"i": 1}])
    out.close()
    with open(out.partial, "a") as handle:
        handle.write('{"i": 2, "tor')  # a crash mid-write
    again = ResumableJsonl(tmp_path / "q.jsonl")
    assert again.existing() == [{"i": 0}, {"i": 1}]
    again.append([{"i": 2}])
    again.finish()
    assert [r for _, r in read_jsonl(tmp_path / "q.jsonl")] == [{"i": 0}, {"i": 1}, {"i": 2}]
    assert not again.partial.exists()
