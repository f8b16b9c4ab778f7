"""``inparsx check``: every kind of defect on small collections built here, the levels chosen (errors for what
cannot be read, warnings with counts for what looks wrong, notes for the harmless), the real SciFact (clean,
CRLF qrels a note), the CLI's exit codes and the retrieve stage's ``check.json``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inparsx.datasets.base import Dataset
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.datasets.check import KINDS, check_beir_folder, check_dataset
from inparsx.errors import DataError
from inparsx.pipeline import run_recipe
from inparsx.recipe import load_recipe
from inparsx.records import Document, Query
from inparsx.testing.cli import run_cli

DOCS = [
    {"_id": "d1", "title": "Aspirin", "text": "Aspirin lowers fever."},
    {"_id": "d2", "title": "Malaria", "text": "Malaria is spread by mosquitoes."},
    {"_id": "d3", "title": "Sleep", "text": "Sleep helps memory."},
]
QUERIES = [
    {"_id": "q1", "text": "does aspirin lower fever"},
    {"_id": "q2", "text": "how is malaria spread"},
    {"_id": "q3", "text": "sleep and memory"},
]
QRELS = {"test": [("q1", "d1", 1), ("q2", "d2", 1)], "train": [("q3", "d3", 1)]}


def jsonl(records: list) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def qrels_tsv(rows: list) -> str:
    return "query-id\tcorpus-id\tscore\n" + "".join("\t".join(map(str, row)) + "\n" for row in rows)


def collection(root: Path, docs=None, queries=None, qrels=None, raw: dict[str, bytes] | None = None) -> Path:
    """A BEIR folder from records (defaults: a clean three-document collection); ``raw`` overrides files by bytes."""
    (root / "qrels").mkdir(parents=True, exist_ok=True)
    (root / "corpus.jsonl").write_text(jsonl(DOCS if docs is None else docs))
    (root / "queries.jsonl").write_text(jsonl(QUERIES if queries is None else queries))
    for split, rows in (QRELS if qrels is None else qrels).items():
        (root / "qrels" / f"{split}.tsv").write_text(qrels_tsv(rows))
    for name, data in (raw or {}).items():
        (root / name).write_bytes(data)
    return root


def findings(report) -> dict[str, list[tuple]]:
    return {kind: [(f.file, f.line, f.id) for f in report.examples[kind]] for kind in report.counts}


def test_a_clean_collection_has_nothing_to_report(tmp_path):
    report = check_beir_folder(collection(tmp_path))
    assert report.ok and not report.counts
    assert report.stats == {"documents": 3, "queries": 3, "qrels_rows": {"test": 2, "train": 1}}


def test_the_real_scifact_is_clean_and_its_crlf_qrels_are_a_note(scifact_dir):
    report = check_beir_folder(scifact_dir, "beir:scifact")
    assert report.total("error") == report.total("warning") == 0
    assert findings(report) == {"crlf": [("qrels/test.tsv", None, None), ("qrels/train.tsv", None, None)]}
    assert report.stats["documents"] == 5183 and report.stats["qrels_rows"] == {"test": 339, "train": 919}


def test_what_looks_wrong_is_a_warning_naming_file_line_and_id(tmp_path):
    docs = [
        *DOCS,
        {"_id": "d2", "title": "Again", "text": "a repeated id"},  # line 4
        {"_id": "d4", "title": "No text"},  # line 5
        {"_id": "d5", "title": "", "text": ""},  # line 6
        {"_id": "d6", "title": "Number", "text": 42},  # line 7
        {"_id": " d7", "title": "Spaces", "text": "an id with a space"},  # line 8
        {"_id": "d8", "title": "", "text": "no title"},
    ]  # line 9
    queries = [*QUERIES, {"_id": "q4", "text": "  "}, {"_id": "q1", "text": "repeated"}]
    qrels = {
        "test": [
            ("q1", "d1", 1),
            ("q1", "d1", 1),
            ("q2", "d2", 1),
            ("q2", "d2", 2),
            ("q1", "d99", 1),
            ("q99", "d1", 1),
            ("q3", "d3", 1),
        ],
        "train": [("q3", "d3", 1)],
    }
    report = check_beir_folder(collection(tmp_path, docs, queries, qrels))
    assert report.ok
    assert findings(report) == {
        "repeated-id": [("corpus.jsonl", 4, "d2"), ("queries.jsonl", 5, "q1")],
        "missing-field": [("corpus.jsonl", 5, "d4")],
        "empty-text": [("corpus.jsonl", 6, "d5"), ("queries.jsonl", 4, "q4")],
        "not-text": [("corpus.jsonl", 7, "d6")],
        "id-whitespace": [("corpus.jsonl", 8, " d7")],
        "duplicate-qrels-row": [("qrels/test.tsv", 3, "q1")],
        "conflicting-qrels-row": [("qrels/test.tsv", 5, "q2")],
        "unknown-doc": [("qrels/test.tsv", 6, "d99")],
        "unknown-query": [("qrels/test.tsv", 7, "q99")],
        "split-overlap": [("qrels/train.tsv", 2, "q3")],
        "empty-title": [("corpus.jsonl", 9, "d8")],
    }
    assert all(KINDS[kind][0] == "warning" for kind in report.counts if kind != "empty-title")
    lines = report.lines()
    assert (
        "warning: 2 repeated ids (the last record wins): corpus.jsonl:4 id 'd2' (first on line 2); "
        "queries.jsonl:5 id 'q1' (first on line 1)" in lines
    )
    assert lines[-1].startswith(f"{tmp_path}: 0 errors, 12 warnings, 1 notes (8 documents, 4 queries")


def test_encoding_marks_and_line_endings(tmp_path):
    bom = b"\xef\xbb\xbf" + jsonl(DOCS).encode()
    mixed = qrels_tsv(QRELS["test"]).replace("\n", "\r\n", 2).encode()
    crlf = qrels_tsv(QRELS["train"]).replace("\n", "\r\n").encode()
    root = collection(tmp_path, raw={"corpus.jsonl": bom, "qrels/test.tsv": mixed, "qrels/train.tsv": crlf})
    report = check_beir_folder(root)
    assert findings(report) == {
        "bom": [("corpus.jsonl", 1, None)],
        "mixed-line-endings": [("qrels/test.tsv", None, None)],
        "crlf": [("qrels/train.tsv", None, None)],
    }
    assert report.ok and report.total("warning") == 2
    dataset = BeirFolderDataset(root)  # what the check calls readable, the readers read
    assert [d.doc_id for d in dataset.docs_iter()] == ["d1", "d2", "d3"] and dataset.qrels("test") == {
        "q1": {"d1": 1},
        "q2": {"d2": 1},
    }


def test_what_cannot_be_read_is_an_error(tmp_path):
    corpus = (
        jsonl(DOCS).encode()
        + b'{"_id": "d4", "text": "caf\xe9"}\n'
        + b'{"_id": "d5", \n'
        + b'["a list"]\n'
        + b'{"title": "no id", "text": "x"}\n'
    )
    qrels = qrels_tsv([("q1", "d1", 1)]) + "q2\td2\n" + "q2\td2\thigh\n"
    root = collection(tmp_path, raw={"corpus.jsonl": corpus, "qrels/test.tsv": qrels.encode()})
    (root / "queries.jsonl").unlink()
    report = check_beir_folder(root)
    assert not report.ok
    assert findings(report) == {
        "not-utf8": [("corpus.jsonl", 4, None)],
        "invalid-json": [("corpus.jsonl", 5, None)],
        "not-object": [("corpus.jsonl", 6, None)],
        "missing-id": [("corpus.jsonl", 7, None)],
        "missing-file": [("queries.jsonl", None, None)],
        "bad-qrels-row": [("qrels/test.tsv", 3, None)],
        "bad-relevance": [("qrels/test.tsv", 4, "q2")],
    }
    assert "error: 1 lines with bytes that are not UTF-8: corpus.jsonl:4 (byte 27: b'\\xe9')" in report.lines()
    (root / "qrels" / "test.tsv").unlink()
    (root / "qrels" / "train.tsv").unlink()
    assert "no-labels" in check_beir_folder(root).counts


def test_examples_are_capped_and_counted(tmp_path):
    docs = DOCS + [{"_id": "d1", "title": "t", "text": "again"}] * 12
    report = check_beir_folder(collection(tmp_path, docs=docs))
    assert report.counts["repeated-id"] == 12 and len(report.examples["repeated-id"]) == 5
    assert report.lines()[0].endswith("; and 7 more")


class InMemory(Dataset):
    """A dataset that is not a folder: checked through the Dataset API (ids, no lines)."""

    name = "memory"

    def docs_iter(self):
        yield from (Document("a", "text", "A"), Document("a", "again", "A"), Document("b", ""))

    def splits(self):
        return ["test"]

    def queries(self, split):
        return {"q1": Query("q1", "a query"), "q2": Query("q2", "")}

    def qrels(self, split):
        return {"q1": {"a": 1, "zz": 1}, "q9": {"b": 1}}


def test_any_dataset_is_checked_through_its_api():
    report = InMemory().check()
    assert findings(report) == {
        "repeated-id": [("corpus", None, "a")],
        "empty-text": [("corpus", None, "b"), ("queries (test)", None, "q2")],
        "unknown-query": [("qrels (test)", None, "q9")],
        "unknown-doc": [("qrels (test)", None, "zz")],
    }


def test_the_command_exit_codes_and_json(monkeypatch, capsys, tmp_path):
    clean = collection(tmp_path / "clean")
    assert run_cli(monkeypatch, capsys, "check", str(clean))[0] == 0
    warned = collection(tmp_path / "warned", docs=[*DOCS, DOCS[0]])
    code, out, _ = run_cli(monkeypatch, capsys, "check", str(warned))
    assert code == 0 and "warning: 1 repeated ids (the last record wins): corpus.jsonl:4 id 'd1'" in out
    assert run_cli(monkeypatch, capsys, "check", str(warned), "--strict")[0] == 1
    code, out, _ = run_cli(monkeypatch, capsys, "check", str(warned), "--json")
    assert json.loads(out)["findings"]["repeated-id"]["examples"] == [
        {"file": "corpus.jsonl", "line": 4, "id": "d1", "detail": "first on line 1"}
    ]
    broken = collection(tmp_path / "broken", raw={"corpus.jsonl": b"{not json\n"})
    code, out, _ = run_cli(monkeypatch, capsys, "check", str(broken))
    assert code == 2 and out.startswith("error: 1 lines that are not valid JSON: corpus.jsonl:1")


def test_a_name_that_is_not_a_folder_is_resolved(data_home, monkeypatch):
    monkeypatch.setenv("INPARSX_DATA_HOME", str(data_home))
    assert check_dataset("beir:scifact").dataset == "beir:scifact"


def test_the_retrieve_stage_writes_the_check_and_stops_on_errors(tmp_path):
    root = collection(tmp_path / "c", docs=[*DOCS, DOCS[1]])
    recipe = tmp_path / "r.toml"
    recipe.write_text(f'[recipe]\nname = "c"\n[dataset]\nname = "{root}"\n[retrieve]\nuse = "bm25s"\n')
    run_dir = run_recipe(load_recipe(recipe), tmp_path / "run")
    written = json.loads((run_dir / "retrieve" / "check.json").read_text())
    assert written["warnings"] == 1 and written["findings"]["repeated-id"]["examples"][0]["line"] == 4
    (root / "corpus.jsonl").write_text(jsonl(DOCS) + "{broken\n")
    with pytest.raises(DataError, match="cannot be read: error: 1 lines that are not valid JSON: corpus.jsonl:4"):
        run_recipe(load_recipe(recipe), tmp_path / "run2")
    assert json.loads((tmp_path / "run2" / "retrieve" / "check.json").read_text())["errors"] == 1
