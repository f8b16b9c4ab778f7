"""Your own collection: documents with no queries and no qrels (a BEIR corpus.jsonl alone, a JSONL/CSV/TSV file,
a Hugging Face dataset, an ir_datasets id without qrels) load, refuse label reads in one line, and are checked as
fit for training (tests/test_estimate.py runs them to a trained model and the label-free estimate)."""

from __future__ import annotations

import json

import pytest

from inparsx.datasets import resolve_dataset
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.datasets.check import check_dataset
from inparsx.datasets.files import DocumentFile
from inparsx.errors import DataError, InparsxError
from inparsx.testing.cli import run_cli
from inparsx.testing.collections import corpus_only


def test_a_beir_folder_with_corpus_jsonl_alone(scifact_small, tmp_path):
    folder = corpus_only(scifact_small, tmp_path / "c", 20)
    dataset = resolve_dataset(str(folder))
    assert isinstance(dataset, BeirFolderDataset) and dataset.docs_count() == 20
    assert dataset.splits() == [] and not dataset.has_labels()
    with pytest.raises(InparsxError, match=r"c: no 'test' queries or qrels: this collection has no labels"):
        dataset.queries("test")
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\t4983\t1\n")
    with pytest.raises(DataError, match=r"queries.jsonl: missing: qrels/test.tsv judges queries"):
        BeirFolderDataset(folder)


def test_jsonl_csv_and_tsv_files_of_documents(tmp_path):
    (tmp_path / "docs.jsonl").write_text(
        '{"id": "7", "contents": "first text"}\n{"id": "8", "contents": "second", "title": " T "}\n'
    )
    (tmp_path / "docs.csv").write_text(
        'doc_id,title,text\n00123,"Aspirin, low dose","one, two"\n00124,,"a text\nover two lines"\n'
    )
    (tmp_path / "docs.tsv").write_text("pmid\theadline\tabstract\nA1\tH\tsome words\n")
    jsonl = [(d.doc_id, d.text, d.title) for d in resolve_dataset(str(tmp_path / "docs.jsonl")).docs_iter()]
    assert jsonl == [("7", "first text", ""), ("8", "second", "T")]
    csv_docs = DocumentFile(tmp_path / "docs.csv")
    assert [(d.doc_id, d.text, d.title) for d in csv_docs.docs_iter()] == [
        ("00123", "one, two", "Aspirin, low dose"),
        ("00124", "a text\nover two lines", ""),
    ]  # ids stay text
    named = resolve_dataset(f"{tmp_path / 'docs.tsv'}?id=pmid&text=abstract&title=headline")
    assert [(d.doc_id, d.full_text) for d in named.docs_iter()] == [("A1", "H some words")]
    assert (
        not named.has_labels()
        and named.fingerprint() != DocumentFile(tmp_path / "docs.tsv", "pmid", "abstract").fingerprint()
    )
    with pytest.raises(
        DataError,
        match=r"docs.tsv: no id column: expected one of _id, id, doc_id.*columns: pmid, "
        "headline, abstract",
    ):
        resolve_dataset(str(tmp_path / "docs.tsv"))
    (tmp_path / "bad.csv").write_text("id,text\n1,a\n2,b,c\n")
    with pytest.raises(DataError, match=r"bad.csv:3: 3 fields where the header has 2"):
        list(DocumentFile(tmp_path / "bad.csv").docs_iter())


def test_a_hugging_face_dataset(tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "hf-cache"))
    rows = {"pmid": [11, 12, 13], "abstract": ["a b", "c d", "e f"], "title": ["x", None, "z"]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "saved"))
    saved = resolve_dataset(f"hf:{tmp_path / 'saved'}?id=pmid&text=abstract")
    assert [(d.doc_id, d.text, d.title) for d in saved.docs_iter()] == [
        ("11", "a b", "x"),
        ("12", "c d", ""),
        ("13", "e f", "z"),
    ]
    assert saved.docs_count() == 3 and not saved.has_labels() and saved.name.startswith("hf:")
    (tmp_path / "c.jsonl").write_text('{"_id": "d1", "text": "t1"}\n{"_id": "d2", "text": "t2"}\n')
    assert [d.doc_id for d in resolve_dataset(f"hf:{tmp_path / 'c.jsonl'}").docs_iter()] == ["d1", "d2"]
    with pytest.raises(InparsxError, match=r"hf:org/nowhere: the datasets library cannot load it"):
        resolve_dataset("hf:org/nowhere")  # offline here: one line, no traceback
    with pytest.raises(InparsxError, match=r"colour='red': expected one of config, split"):
        resolve_dataset("hf:x?colour=red")


def test_an_ir_datasets_id_without_qrels(tmp_path):
    import ir_datasets
    from ir_datasets.datasets.base import Dataset
    from ir_datasets.formats import GenericDoc, JsonlDocs
    from ir_datasets.util import LocalDownload

    (tmp_path / "docs.jsonl").write_text(
        "".join(json.dumps({"doc_id": f"d{i}", "text": f"text {i}"}) + "\n" for i in range(4))
    )
    name = "inparsx-test/docs-only"
    if name not in ir_datasets.registry:
        ir_datasets.registry.register(
            name, Dataset(JsonlDocs(LocalDownload(tmp_path / "docs.jsonl"), doc_cls=GenericDoc))
        )
    dataset = resolve_dataset(f"irds:{name}")
    assert [d.doc_id for d in dataset.docs_iter()] == ["d0", "d1", "d2", "d3"] and not dataset.has_labels()
    with pytest.raises(InparsxError, match="this collection has no labels"):
        dataset.qrels("test")
    assert check_dataset(f"irds:{name}").fit_for() == ["training", "estimate"]


def test_check_calls_a_collection_without_labels_fit_for_training(scifact_small, tmp_path, monkeypatch, capsys):
    folder = corpus_only(scifact_small, tmp_path / "c", 20)
    code, out, _ = run_cli(monkeypatch, capsys, "check", str(folder))
    assert code == 0 and out.strip().splitlines()[-1].endswith(
        "(20 documents); fit for training and the label-free estimate; not for evaluation (no qrels)"
    ), out
    code, out, _ = run_cli(monkeypatch, capsys, "check", str(scifact_small), "--json")
    assert code == 0 and json.loads(out)["fit_for"] == ["training", "evaluation"]
    (tmp_path / "d.csv").write_text("id,text\n1,first\n1,again\n2,\n3,x,y\n")
    code, out, _ = run_cli(monkeypatch, capsys, "check", str(tmp_path / "d.csv"))
    assert code == 2 and "error: 1 CSV/TSV rows with another number of fields than the header: d.csv:5" in out
    assert "repeated ids (the last record wins): d.csv:3 id '1' (first on line 2)" in out
    assert "empty texts: d.csv:4 id '2'" in out and out.strip().endswith(
        "not fit for use: the stages stop on the errors above"
    )


def test_one_off_retrieve_and_rerank_of_test_queries_are_refused_in_one_line(
    scifact_small, tmp_path, monkeypatch, capsys
):
    folder = corpus_only(scifact_small, tmp_path / "c", 5)
    (tmp_path / "run.trec").write_text("q1 Q0 4983 1 1.0 x\n")
    for args, what in (
        (["retrieve", "--dataset", str(folder), "--out", str(tmp_path / "r.trec")], "retrieved"),
        (
            [
                "rerank",
                "--run",
                str(tmp_path / "run.trec"),
                "--dataset",
                str(folder),
                "--model",
                "m",
                "--out",
                str(tmp_path / "o.trec"),
            ],
            "reranked",
        ),
    ):
        code, _, err = run_cli(monkeypatch, capsys, *args)
        assert code == 2 and err.strip().splitlines() == [
            f"error: {folder}: a collection without labels has no test queries to be {what}; a recipe's [estimate] "
            "retrieves and reranks synthetic queries of held-out documents"
        ], err
    assert not list(tmp_path.glob(".*.inparsx"))
