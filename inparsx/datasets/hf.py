"""``hf:<name or path>``: a Hugging Face dataset of documents, read with the ``datasets`` library (Lhoest et al.,
EMNLP 2021 demos), as a collection without labels.

The part after ``hf:`` is a hub name (``hf:BeIR/scifact?config=corpus``, downloaded into the ``datasets`` cache,
or read from it offline), a folder written by ``Dataset.save_to_disk`` (``datasets.load_from_disk``), a folder
of data files, or one data file (``.parquet``, ``.arrow``, ``.jsonl``/``.json``, ``.csv``, ``.tsv``;
``datasets.load_dataset`` with the matching builder). A ``?key=value&...`` suffix gives ``config`` (the hub
configuration), ``split`` (default: the only split, else ``corpus``, else ``train``), ``revision``, and ``id``,
``text``, ``title``: the columns to read (default: found by name as in :mod:`inparsx.datasets.files`).
``datasets`` is imported on first use only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import inparsx
from inparsx.datasets.base import Dataset, DatasetLoader, DocumentsOnly
from inparsx.datasets.files import pick_fields
from inparsx.errors import InparsxError
from inparsx.records import Document

KEYS = ("config", "split", "revision", "id", "text", "title")
"""The keys of an ``hf:`` name's ``?key=value`` suffix."""

BUILDERS = {".parquet": "parquet", ".arrow": "arrow", ".jsonl": "json", ".json": "json", ".csv": "csv", ".tsv": "csv"}
"""Data file suffix -> the ``datasets`` builder that reads it."""

SAVED = ("dataset_info.json", "state.json", "dataset_dict.json")
"""Files that mark a folder written by ``save_to_disk``."""


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """``BeIR/scifact?config=corpus`` -> (``BeIR/scifact``, ``{"config": "corpus"}``).

    Raises:
        InparsxError: an unknown key or one without a value.
    """
    source, _, query = spec.partition("?")
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in KEYS or not value:
            raise InparsxError(f"dataset 'hf:{spec}': {key}={value!r}: expected one of {', '.join(KEYS)} with a value")
        options[key] = value
    if not source:
        raise InparsxError("dataset 'hf:': give a hub name, a folder or a data file after hf:")
    return source, options


def load_table(source: str, options: dict[str, str]) -> Any:
    """The ``datasets.Dataset`` (one split) that ``source`` names (see the module docstring).

    Raises:
        InparsxError: ``datasets`` cannot load it (one line: what was tried and why it failed), or several
            splits and none chosen.
    """
    import datasets

    datasets.disable_progress_bars()
    path = Path(source).expanduser()
    try:
        if path.is_dir() and any((path / marker).is_file() for marker in SAVED):
            loaded = datasets.load_from_disk(str(path))
        elif path.is_file():
            builder = BUILDERS.get(path.suffix.lower())
            if builder is None:
                raise InparsxError(f"hf:{source}: not a data file datasets reads (expected {', '.join(BUILDERS)})")
            extra = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
            loaded = datasets.load_dataset(builder, data_files=str(path), **extra)
        else:
            loaded = datasets.load_dataset(
                str(path) if path.is_dir() else source, options.get("config"), revision=options.get("revision")
            )
    except InparsxError:
        raise
    except Exception as exc:  # datasets raises many kinds (ConnectionError, FileNotFoundError, ValueError...)
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InparsxError(f"hf:{source}: the datasets library cannot load it ({reason})") from None
    return _one_split(loaded, source, options.get("split"))


def _one_split(loaded: Any, source: str, split: str | None) -> Any:
    import datasets

    if isinstance(loaded, datasets.Dataset):
        return loaded
    names = list(loaded)
    if split is None:
        split = names[0] if len(names) == 1 else next((s for s in ("corpus", "train") if s in names), None)
    if split not in names:
        raise InparsxError(
            f"hf:{source}: "
            + (f"no split {split!r}" if split else "several splits")
            + f"; choose one with ?split=NAME: {', '.join(names)}"
        )
    return loaded[split]


class HfDataset(DocumentsOnly):
    """A Hugging Face dataset of documents (one row each), without labels.

    Raises:
        InparsxError: it cannot be loaded. DataError: no id or no text column.
    """

    def __init__(self, spec: str):
        self.spec = spec
        self.name = f"hf:{spec}"
        source, options = parse_spec(spec)
        self.table = load_table(source, options)
        self.fields = pick_fields(
            list(self.table.column_names), self.name, options.get("id"), options.get("text"), options.get("title")
        )

    def docs_iter(self) -> Iterator[Document]:
        ident, text, title = self.fields
        columns = [c for c in dict.fromkeys(self.fields) if c in self.table.column_names]
        for batch in self.table.select_columns(columns).iter(batch_size=1000):
            titles = batch.get(title) or [None] * len(batch[ident])
            for doc_id, body, head in zip(batch[ident], batch[text], titles):
                yield Document(
                    str(doc_id), "" if body is None else str(body), "" if head is None else str(head).strip()
                )

    def docs_count(self) -> int:
        return self.table.num_rows

    def fingerprint(self) -> str:
        """The ``datasets`` fingerprint of the table (it changes with the data and its transforms), with the
        columns read."""
        import hashlib

        text = f"{self.table._fingerprint}:{self.fields}"
        return "hf-" + hashlib.sha256(text.encode()).hexdigest()[:16]


class HfLoader(DatasetLoader):
    """``hf:<name or path>[?config=..&split=..&id=..&text=..&title=..]``: a Hugging Face dataset of documents."""

    name = "hf"

    def load(self, spec: str) -> Dataset:
        return HfDataset(spec)


@inparsx.hookimpl
def register_datasets(register):
    register(HfLoader)
