"""A collection in one file of documents: JSON lines, CSV or TSV, one document per line (row), no labels.

Each record has an id, a text and, optionally, a title. The columns are found by name, the first present of
:data:`ID_FIELDS`, :data:`TEXT_FIELDS` and :data:`TITLE_FIELDS` (so a BEIR ``corpus.jsonl``, a Pyserini JSONL
with ``id``/``contents`` and a spreadsheet export with ``doc_id,title,text`` all load as they are), or named
after the path: ``docs.csv?id=pmid&text=abstract&title=headline``. CSV and TSV files need a header row and are
read with Python's :mod:`csv` (quoted fields may hold the delimiter and line breaks). Ids are kept as text, so
``00123`` stays ``00123``.

Such a collection has no queries and no qrels (:meth:`~inparsx.datasets.base.Dataset.has_labels` is false):
every stage that needs no labels runs on it, and ``[estimate]`` measures the trained model without labels.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qsl

from inparsx.datasets.base import DocumentsOnly
from inparsx.datasets.check import BOM, CheckReport, _check_document, _lines
from inparsx.errors import DataError, InparsxError
from inparsx.records import Document

ID_FIELDS = ("_id", "id", "doc_id", "docid", "docno", "pid")
"""Column names taken as the document id, in order of preference."""

TEXT_FIELDS = ("text", "contents", "body", "abstract", "passage", "content")
"""Column names taken as the document text, in order of preference."""

TITLE_FIELDS = ("title",)
"""Column names taken as the (optional) title."""

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".tsv": "tsv"}
"""File suffix -> format."""

OPTIONS = ("id", "text", "title")
"""The keys of a ``?key=value&...`` suffix: the column holding each field."""

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # long documents exceed csv's default of 131,072 characters


def split_options(spec: str) -> tuple[str, dict[str, str]]:
    """``docs.csv?id=pmid&text=abstract`` -> (``docs.csv``, ``{"id_field": "pmid", "text_field": "abstract"}``).

    Raises:
        InparsxError: a key other than ``id``, ``text`` or ``title``, or one without a value.
    """
    path, sep, query = spec.partition("?")
    if not sep:
        return spec, {}
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key not in OPTIONS or not value:
            raise InparsxError(f"dataset {spec!r}: {key}={value!r}: expected id=COLUMN, text=COLUMN or title=COLUMN")
        options[f"{key}_field"] = value
    return path, options


def file_format(path: Path) -> str:
    """``jsonl``, ``csv`` or ``tsv`` from the file's suffix.

    Raises:
        InparsxError: another suffix.
    """
    found = FORMATS.get(path.suffix.lower())
    if found is None:
        raise InparsxError(
            f"{path}: not a file of documents inparsx reads (expected {', '.join(FORMATS)}; "
            "a BEIR collection is a folder, a Hugging Face dataset is hf:<name or path>)"
        )
    return found


def pick_fields(
    columns: list[str],
    where: str | Path,
    id_field: str | None = None,
    text_field: str | None = None,
    title_field: str | None = None,
) -> tuple[str, str, str]:
    """The (id, text, title) columns among ``columns``: the given names, else the first present of
    :data:`ID_FIELDS`, :data:`TEXT_FIELDS` and :data:`TITLE_FIELDS` (``title`` when none is present: a record
    without it has an empty title; ``""``, no title, when the text is read from ``title``).

    Raises:
        DataError: no id or no text column (``where`` and the columns found are named).
    """

    def choose(given: str | None, names: tuple[str, ...], what: str, required: bool) -> str | None:
        if given is not None:
            if given not in columns:
                raise DataError(where, f"no column {given!r} for the {what}; columns: {', '.join(columns) or '(none)'}")
            return given
        found = next((name for name in names if name in columns), None)
        if found is None and required:
            raise DataError(
                where,
                f"no {what} column: expected one of {', '.join(names)} (or name it: "
                f"?{what}=COLUMN after the path); columns: {', '.join(columns) or '(none)'}",
            )
        return found

    ident = choose(id_field, ID_FIELDS, "id", True)
    text = choose(text_field, TEXT_FIELDS, "text", True)
    # a JSONL record may leave out an empty title: read "title" wherever it appears
    title = choose(title_field, tuple(n for n in TITLE_FIELDS if n != text), "title", False)
    return ident, text, title or ("" if text == TITLE_FIELDS[0] else TITLE_FIELDS[0])  # type: ignore[return-value]


def read_records(path: Path, fmt: str) -> Iterator[tuple[int, dict]]:
    """``(line number, record)`` of every record: a JSON object per line, or a CSV/TSV row as
    ``{column: value}`` (the line where the row ends; a row with too many or too few fields is an error).

    Raises:
        DataError: bytes that are not UTF-8, a line that is not a JSON object, a malformed row (file and line).
    """
    if fmt == "jsonl":
        from inparsx.io import read_jsonl

        yield from read_jsonl(path)
        return
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            reader = csv.reader(handle, delimiter="\t" if fmt == "tsv" else ",")
            header = next(reader, None)
            if header is None:
                return
            for row in reader:
                if not any(cell.strip() for cell in row):
                    continue
                if len(row) != len(header):
                    raise DataError(path, f"{len(row)} fields where the header has {len(header)}", reader.line_num)
                yield reader.line_num, dict(zip(header, row))
    except UnicodeDecodeError as exc:
        raise DataError(
            path, f"not UTF-8 text ({exc.reason} at byte {exc.start}); `inparsx check {path}` names the line"
        ) from None
    except csv.Error as exc:
        raise DataError(path, f"not a valid {fmt.upper()} file ({exc})") from None


def columns_of(path: Path, fmt: str) -> list[str]:
    """The columns of ``path``: the header row of a CSV/TSV file, the keys of a JSONL file's first record."""
    for _, record in read_records(path, fmt):
        return list(record)
    return []


class DocumentFile(DocumentsOnly):
    """One JSONL, CSV or TSV file of documents: a collection without labels (see the module docstring).

    Args:
        path: the file.
        id_field, text_field, title_field: the columns to read (default: found by name).
        name: the dataset's name (default: the file's name).

    Raises:
        InparsxError: the file does not exist or has another suffix. DataError: no id or text column.
    """

    def __init__(
        self,
        path: str | Path,
        id_field: str | None = None,
        text_field: str | None = None,
        title_field: str | None = None,
        name: str | None = None,
    ):
        self.path = Path(path)
        if not self.path.is_file():
            raise InparsxError(f"dataset {str(path)!r}: no such file")
        self.format = file_format(self.path)
        self.name = name or self.path.name
        self.given = (id_field, text_field, title_field)
        self.fields = pick_fields(columns_of(self.path, self.format), self.path, *self.given)
        self._fingerprint: str | None = None

    def docs_iter(self) -> Iterator[Document]:
        ident, text, title = self.fields
        for number, record in read_records(self.path, self.format):
            doc_id = record.get(ident)
            if doc_id is None or str(doc_id).strip() == "":
                raise DataError(self.path, f"record has no {ident!r}", number)
            yield Document(str(doc_id), _text(record.get(text)), _text(record.get(title)).strip() if title else "")

    def check(self) -> CheckReport:
        """Check every record, naming line and id (:func:`check_document_file`)."""
        return check_document_file(self.path, self.name, *self.given)

    def fingerprint(self) -> str:
        """sha256 of the file's bytes (16 hex digits), plus the columns read when they were named."""
        if self._fingerprint is None:
            digest = hashlib.sha256()
            with open(self.path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
            if any(self.given):
                digest.update(json.dumps(self.fields).encode())
            self._fingerprint = digest.hexdigest()[:16]
        return self._fingerprint


def _text(value: object) -> str:
    return "" if value is None else value if isinstance(value, str) else str(value)


def check_document_file(
    path: str | Path,
    name: str | None = None,
    id_field: str | None = None,
    text_field: str | None = None,
    title_field: str | None = None,
) -> CheckReport:
    """Check a JSONL/CSV/TSV file of documents line by line, as :func:`~inparsx.datasets.check.check_beir_folder`
    checks a corpus: bytes that are not UTF-8, lines that are not JSON objects or rows with the wrong number of
    fields (errors), repeated or missing ids, empty texts, fields that are not strings, a byte-order mark
    (warnings); it has no labels (a note). Never raises on bad content. Raises ``OSError`` only if the file
    cannot be opened, :class:`~inparsx.errors.InparsxError` for a suffix it does not read.
    """
    path = Path(path)
    fmt = file_format(path)
    report = CheckReport(name or str(path))
    relative = path.name
    records = _jsonl_records(path, report) if fmt == "jsonl" else _table_records(path, fmt, report)
    fields: tuple[str, str, str] | None = None
    first_line: dict[str, int] = {}
    for number, record in records:
        if fields is None:
            try:
                fields = pick_fields(list(record), path, id_field, text_field, title_field)
            except DataError as exc:
                report.add("missing-column", relative, number, detail=exc.reason)
                break
        ident, text, title = fields
        doc_id = record.get(ident)
        if doc_id is None or str(doc_id).strip() == "":
            report.add("missing-id", relative, number, detail=f"no {ident!r}")
            continue
        doc_id = str(doc_id)
        if doc_id != doc_id.strip():
            report.add("id-whitespace", relative, number, doc_id)
        if doc_id in first_line:
            report.add("repeated-id", relative, number, doc_id, f"first on line {first_line[doc_id]}")
        else:
            first_line[doc_id] = number
        renamed = {"text": record[text]} if text in record else {}
        if title and title in record:
            renamed["title"] = record[title]
        _check_document(renamed, relative, number, doc_id, report)
    report.stats.update(documents=len(first_line), qrels_rows={})
    report.add("no-labels", relative, detail="one file of documents")
    return report


def _jsonl_records(path: Path, report: CheckReport) -> Iterator[tuple[int, dict]]:
    for number, text in _lines(path.parent, path.name, report):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            report.add("invalid-json", path.name, number, detail=f"{exc.msg} at column {exc.colno}")
            continue
        if not isinstance(obj, dict):
            report.add("not-object", path.name, number)
            continue
        yield number, obj


def _table_records(path: Path, fmt: str, report: CheckReport) -> Iterator[tuple[int, dict]]:
    """The rows of a CSV/TSV file; undecodable lines are findings (and replaced, so the rest is still read)."""
    for _ in _lines(path.parent, path.name, report):  # encoding marks, line endings, bytes that are not UTF-8
        pass
    raw = path.read_bytes()
    text = (
        raw[len(BOM) :].decode("utf-8", errors="replace")
        if raw.startswith(BOM)
        else raw.decode("utf-8", errors="replace")
    )
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if fmt == "tsv" else ",")
    try:
        header = next(reader, None)
        if header is None:
            return
        for row in reader:
            if not any(cell.strip() for cell in row):
                continue
            if len(row) != len(header):
                report.add("bad-row", path.name, reader.line_num, detail=f"{len(row)} fields, header {len(header)}")
                continue
            yield reader.line_num, dict(zip(header, row))
    except csv.Error as exc:
        report.add("bad-row", path.name, reader.line_num, detail=str(exc))
