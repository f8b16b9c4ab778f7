"""BEIR-format folders (Thakur et al., NeurIPS 2021): corpus.jsonl, queries.jsonl, qrels/<split>.tsv."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from pathlib import Path

import inparsx
from inparsx.datasets.base import Dataset, DatasetLoader, no_labels_error
from inparsx.datasets.check import CheckReport, check_beir_folder
from inparsx.errors import DataError, InparsxError
from inparsx.io import read_jsonl, read_qrels
from inparsx.records import Document, Qrels, Query

DATA_HOME_ENV = "INPARSX_DATA_HOME"


class BeirFolderDataset(Dataset):
    """A local BEIR folder. Queries of a split are those judged in ``qrels/<split>.tsv`` (BEIR's own rule).

    ``corpus.jsonl`` alone is a collection without labels (:meth:`Dataset.has_labels` is false): every stage
    that needs no queries or qrels runs on it. ``queries.jsonl`` is needed only once ``qrels/`` holds a split.

    Raises:
        DataError: a missing file, a bad JSON line, a record without ``_id``, or a malformed qrels row.
    """

    def __init__(self, root: str | Path, name: str | None = None):
        self.root = Path(root)
        self.name = name or self.root.name
        if not (self.root / "corpus.jsonl").is_file():
            raise DataError(
                self.root / "corpus.jsonl",
                "missing: a BEIR folder needs corpus.jsonl (and, to be evaluated, queries.jsonl and qrels/<split>.tsv)",
            )
        if self.splits() and not (self.root / "queries.jsonl").is_file():
            raise DataError(
                self.root / "queries.jsonl",
                f"missing: qrels/{self.splits()[0]}.tsv judges queries that queries.jsonl must hold",
            )
        self._all_queries: dict[str, Query] | None = None
        self._qrels: dict[str, Qrels] = {}
        self._fingerprint: str | None = None

    def docs_iter(self) -> Iterator[Document]:
        path = self.root / "corpus.jsonl"
        for number, obj in read_jsonl(path):
            if "_id" not in obj:
                raise DataError(path, "record has no '_id'", number)
            yield Document(str(obj["_id"]), obj.get("text") or "", (obj.get("title") or "").strip())

    def all_queries(self) -> dict[str, Query]:
        """Every query of queries.jsonl, whatever its split."""
        if self._all_queries is None:
            path = self.root / "queries.jsonl"
            table = {}
            for number, obj in read_jsonl(path):
                if "_id" not in obj:
                    raise DataError(path, "record has no '_id'", number)
                table[str(obj["_id"])] = Query(str(obj["_id"]), obj.get("text") or "")
            self._all_queries = table
        return self._all_queries

    def queries(self, split: str) -> dict[str, Query]:
        judged = self.qrels(split)
        every = self.all_queries()
        return {qid: every[qid] for qid in judged if qid in every}

    def qrels(self, split: str) -> Qrels:
        if split not in self._qrels:
            path = self.root / "qrels" / f"{split}.tsv"
            if not self.splits():
                raise no_labels_error(self.name, split)
            if not path.is_file():
                raise InparsxError(
                    f"{self.root}: no qrels for split {split!r}; available: {', '.join(self.splits()) or '(none)'}"
                )
            self._qrels[split] = read_qrels(path)
        return self._qrels[split]

    def splits(self) -> list[str]:
        return sorted(p.stem for p in (self.root / "qrels").glob("*.tsv"))

    def docs_count_hint(self) -> int | None:
        """The non-blank lines of ``corpus.jsonl`` (nothing parsed)."""
        with open(self.root / "corpus.jsonl", "rb") as handle:
            return sum(1 for line in handle if line.strip())

    def check(self) -> CheckReport:
        """Check every file of the folder, naming file, line and id
        (:func:`~inparsx.datasets.check.check_beir_folder`)."""
        return check_beir_folder(self.root, self.name)

    def fingerprint(self) -> str:
        if self._fingerprint is None:
            digest = hashlib.sha256()
            with open(self.root / "corpus.jsonl", "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint


class FolderLoader(DatasetLoader):
    """A local path: a BEIR-format folder, or one file of documents (``.jsonl``, ``.csv``, ``.tsv``; see
    :mod:`inparsx.datasets.files`, whose ``?id=...&text=...`` suffix names the columns)."""

    name = "folder"

    def load(self, spec: str) -> Dataset:
        from inparsx.datasets.files import DocumentFile, split_options

        path_text, options = split_options(spec)
        path = Path(path_text).expanduser()
        if path.is_file() or options:
            return DocumentFile(path, **options)
        if not path.is_dir():
            raise InparsxError(
                f"dataset {spec!r}: no such folder or file (expected a BEIR folder, a .jsonl, .csv "
                "or .tsv file of documents, beir:<name>, irds:<id> or hf:<name>)"
            )
        return BeirFolderDataset(path)


class BeirLoader(DatasetLoader):
    """``beir:<name>``: the folder ``$INPARSX_DATA_HOME/beir/<name>`` when present, else ir_datasets ``beir/<name>``."""

    name = "beir"

    def load(self, spec: str) -> Dataset:
        home = os.environ.get(DATA_HOME_ENV)
        if home and (Path(home) / "beir" / spec / "corpus.jsonl").is_file():
            return BeirFolderDataset(Path(home) / "beir" / spec, name=f"beir:{spec}")
        from inparsx.datasets.irds import IrdsDataset

        looked = (
            f"no local copy in {Path(home) / 'beir' / spec} (${DATA_HOME_ENV}/beir/{spec}/corpus.jsonl)"
            if home
            else f"${DATA_HOME_ENV} is not set, so no local copy was looked for"
        )
        local = (
            f"set {DATA_HOME_ENV} to a folder holding beir/{spec}/corpus.jsonl, queries.jsonl and "
            "qrels/<split>.tsv (or name such a BEIR folder as the dataset)"
        )
        return IrdsDataset(f"beir/{spec}", fallback_of=(f"beir:{spec}", looked, local))


@inparsx.hookimpl
def register_datasets(register):
    register(BeirLoader)
    register(FolderLoader)
