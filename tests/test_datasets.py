"""Datasets: BEIR folders (CRLF qrels), ir_datasets through an offline cache, name resolution, malformed input."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from inparsx.datasets import resolve_dataset, split_spec
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import DataError, InparsxError


def test_beir_scifact_from_data_home(scifact_dir):
    dataset = resolve_dataset("beir:scifact")
    assert isinstance(dataset, BeirFolderDataset) and dataset.root == scifact_dir
    assert dataset.docs_count() == 5183
    assert dataset.splits() == ["test", "train"]
    test_qrels = dataset.qrels("test")
    assert len(test_qrels) == 300 and sum(len(v) for v in test_qrels.values()) == 339
    assert len(dataset.qrels("train")) == 809
    queries = dataset.queries("test")
    assert len(queries) == 300 and set(queries) == set(test_qrels)
    assert all(not d.endswith("\r") for docs in test_qrels.values() for d in docs)  # CRLF stripped
    doc = dataset.get_docs(["4983"])["4983"]
    assert doc.title.startswith("Microstructural development") and doc.full_text.startswith(doc.title + " ")


def test_fingerprint_tracks_corpus_content(scifact_small, tmp_path):
    import shutil

    copy = Path(shutil.copytree(scifact_small, tmp_path / "copy"))
    assert BeirFolderDataset(copy).fingerprint() == BeirFolderDataset(scifact_small).fingerprint()
    with open(copy / "corpus.jsonl", "a") as handle:
        handle.write(json.dumps({"_id": "new", "title": "", "text": "x"}) + "\n")
    assert BeirFolderDataset(copy).fingerprint() != BeirFolderDataset(scifact_small).fingerprint()


def test_plain_folder_path(scifact_small):
    dataset = resolve_dataset(str(scifact_small))
    assert dataset.splits() == ["test", "train"] and len(dataset.queries("test")) == 30


def test_bad_json_line_names_file_and_line(scifact_small, tmp_path):
    import shutil

    copy = Path(shutil.copytree(scifact_small, tmp_path / "bad"))
    lines = (copy / "corpus.jsonl").read_text().splitlines(keepends=True)
    lines[4] = '{"_id": "x", "text": \n'
    (copy / "corpus.jsonl").write_text("".join(lines))
    with pytest.raises(DataError, match=r"corpus.jsonl:5: invalid JSON"):
        BeirFolderDataset(copy).docs()


def test_qrels_row_with_two_columns(scifact_small, tmp_path):
    import shutil

    copy = Path(shutil.copytree(scifact_small, tmp_path / "badq"))
    with open(copy / "qrels" / "test.tsv", "a") as handle:
        handle.write("1\t2\n")
    expected_line = len((copy / "qrels" / "test.tsv").read_text().splitlines())
    with pytest.raises(DataError, match=rf"test.tsv:{expected_line}: a qrels row needs 3"):
        BeirFolderDataset(copy).qrels("test")


def test_missing_split_lists_available(scifact_small):
    with pytest.raises(InparsxError, match="no qrels for split 'dev'; available: test, train"):
        BeirFolderDataset(scifact_small).qrels("dev")


def test_unknown_scheme_and_missing_folder():
    with pytest.raises(InparsxError, match="unknown dataset 'bier'.*did you mean 'beir'"):
        resolve_dataset("bier:scifact")
    with pytest.raises(InparsxError, match="no such folder"):
        resolve_dataset("/no/such/folder")


def test_split_spec():
    assert split_spec("beir:scifact/test") == ("beir:scifact", "test")
    assert split_spec("irds:beir/scifact/train") == ("irds:beir/scifact", "train")
    assert split_spec("beir:cqadupstack/android") == ("beir:cqadupstack/android", None)


@pytest.fixture(scope="module")
def irds_home(scifact_dir):
    """The session's ir_datasets home (tests/conftest.py sets it before ir_datasets is imported), holding BEIR
    SciFact's source.zip built from the local copy, so nothing is downloaded."""
    home = Path(os.environ["IR_DATASETS_HOME"])
    target = home / "beir" / "scifact"
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target / "source.zip", "w") as archive:
        archive.write(scifact_dir / "corpus.jsonl", "scifact/corpus.jsonl")
        archive.write(scifact_dir / "queries.jsonl", "scifact/queries.jsonl")
        for split in ("train", "test"):
            text = (scifact_dir / "qrels" / f"{split}.tsv").read_text().replace("\r\n", "\n")
            archive.writestr(f"scifact/qrels/{split}.tsv", text)
    return home


def test_irds_matches_local_folder(irds_home, monkeypatch):
    monkeypatch.delenv("INPARSX_DATA_HOME")
    via_beir = resolve_dataset("beir:scifact")
    via_irds = resolve_dataset("irds:beir/scifact")
    for dataset in (via_beir, via_irds):
        assert dataset.name.startswith("irds:")
        assert dataset.splits() == ["train", "test"]
        assert dataset.docs_count() == 5183
        assert len(dataset.qrels("test")) == 300 and len(dataset.queries("test")) == 300
        assert dataset.get_docs(["4983"])["4983"].title.startswith("Microstructural development")
    assert (Path(irds_home) / "beir" / "scifact" / "docs.pklz4").exists()  # ir_datasets built its doc store


def test_a_command_without_a_collection_gets_a_dataset_that_refuses_reads():
    """``inparsx train`` on a triples file names no dataset: its context's dataset has no name and every read is
    a clean error, not a NotImplementedError."""
    from inparsx.datasets.base import NoDataset
    from inparsx.pipeline import StageContext
    from inparsx.recipe import one_stage_recipe

    ctx = StageContext(one_stage_recipe("train", "cross-encoder", []), "train", Path("unused"), [])
    dataset = ctx.component_context().dataset
    assert isinstance(dataset, NoDataset) and dataset.name == "" and dataset.fingerprint() == ""
    with pytest.raises(InparsxError, match="no dataset: this command reads no collection, so it has no test qrels"):
        dataset.qrels("test")
