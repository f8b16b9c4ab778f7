"""Checking a collection before trusting numbers computed on it: ``inparsx check DATASET``.

Findings have three levels, chosen the way BEIR and ir_datasets users read their files:

* **error**: what cannot be read at all (a missing file, bytes that are not UTF-8, a line that is not a JSON
  object, a record with no ``_id``, a qrels row with the wrong number of columns or a relevance that is not a
  number). inparsx's readers stop on these.
* **warning**: what can be read but looks wrong, and changes results in silence: repeated ids (the last record
  wins), records missing ``text`` or with a field that is not a string, empty texts, ids with surrounding
  spaces, qrels naming documents or queries that do not exist, duplicate or conflicting qrels rows, a query
  judged in two splits (train/test leakage), a UTF-8 byte-order mark (spreadsheet exports), mixed line endings
  (a file merged from several sources).
* **note**: harmless facts worth knowing, such as consistent CRLF line endings (BEIR's own SciFact qrels have
  them; every reader strips them), documents with an empty title (common in BEIR), and a collection without
  labels (documents only: fit for training and the label-free estimate, not for evaluation).

Each kind is counted, with the first few occurrences named by file, line and id, and the summary line ends
with the verdict (:meth:`CheckReport.verdict`: fit for training and evaluation, fit for training only, or not
fit). A BEIR folder is checked file by file (:func:`check_beir_folder`), a JSONL/CSV/TSV file of documents
line by line (:func:`inparsx.datasets.files.check_document_file`); any other dataset through the
:class:`~inparsx.datasets.base.Dataset` API (:func:`check_records`, ids but no line numbers).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from inparsx.datasets.base import Dataset

Level = Literal["error", "warning", "note"]

KINDS: dict[str, tuple[Level, str]] = {
    "missing-file": ("error", "missing files"),
    "not-utf8": ("error", "lines with bytes that are not UTF-8"),
    "invalid-json": ("error", "lines that are not valid JSON"),
    "not-object": ("error", "lines that are not a JSON object"),
    "missing-id": ("error", "records without '_id'"),
    "bad-qrels-row": ("error", "qrels rows without 3 (BEIR) or 4 (TREC) columns"),
    "bad-relevance": ("error", "qrels rows whose relevance is not a number"),
    "missing-column": ("error", "files without an id or a text column"),
    "bad-row": ("error", "CSV/TSV rows with another number of fields than the header"),
    "queries-without-qrels": (
        "warning",
        "queries.jsonl without qrels/<split>.tsv: its queries are in no split and are not used",
    ),
    "bom": ("warning", "files starting with a UTF-8 byte-order mark (spreadsheet exports)"),
    "mixed-line-endings": ("warning", "files with mixed line endings (CRLF and LF lines)"),
    "repeated-id": ("warning", "repeated ids (the last record wins)"),
    "missing-field": ("warning", "records missing a field"),
    "not-text": ("warning", "fields that are not strings"),
    "empty-text": ("warning", "empty texts"),
    "id-whitespace": ("warning", "ids with spaces around them"),
    "unknown-doc": ("warning", "qrels rows naming a document that is not in the corpus"),
    "unknown-query": ("warning", "qrels rows naming a query that is not in queries.jsonl"),
    "duplicate-qrels-row": ("warning", "duplicate qrels rows (same query, document and relevance)"),
    "conflicting-qrels-row": ("warning", "qrels rows judging one pair twice with different relevance (the last wins)"),
    "split-overlap": ("warning", "queries judged in more than one split"),
    "crlf": ("note", "files with CRLF (Windows) line endings; readers strip them"),
    "empty-title": ("note", "documents with an empty title"),
    "no-labels": (
        "note",
        "collections without queries or qrels (documents only): fit for training and the "
        "label-free estimate ([estimate]), not for evaluation",
    ),
}
"""Every kind of finding: ``kind -> (level, what it means)``."""

MAX_EXAMPLES = 5
"""Occurrences kept (and printed) per kind; the rest are only counted."""

BOM = b"\xef\xbb\xbf"


@dataclass
class Finding:
    """One occurrence: ``kind`` (a key of :data:`KINDS`), the ``file`` (relative to the dataset), its 1-based
    ``line`` and the record's ``id`` when known, and a ``detail``."""

    kind: str
    file: str
    line: int | None = None
    id: str | None = None
    detail: str = ""

    @property
    def where(self) -> str:
        """``qrels/test.tsv:12 id '42'``."""
        text = f"{self.file}:{self.line}" if self.line else self.file
        return text + (f" id {self.id!r}" if self.id is not None else "")

    def to_json(self) -> dict[str, Any]:
        """``{"file", "line", "id", "detail"}`` (an example in ``check.json``)."""
        return {"file": self.file, "line": self.line, "id": self.id, "detail": self.detail}


@dataclass
class CheckReport:
    """What a check found in one dataset: ``counts`` per kind and the first :data:`MAX_EXAMPLES` ``examples``
    of each; ``stats`` (documents, queries, qrels rows per split)."""

    dataset: str
    counts: Counter = field(default_factory=Counter)
    examples: dict[str, list[Finding]] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)

    def add(self, kind: str, file: str, line: int | None = None, id: str | None = None, detail: str = "") -> None:
        """Count one occurrence of ``kind`` (an unknown kind raises ``KeyError``)."""
        KINDS[kind]  # noqa: B018 -- fail early on a misspelt kind
        self.counts[kind] += 1
        found = self.examples.setdefault(kind, [])
        if len(found) < MAX_EXAMPLES:
            found.append(Finding(kind, file, line, id, detail))

    def total(self, level: Level) -> int:
        """Occurrences of every kind of ``level``."""
        return sum(count for kind, count in self.counts.items() if KINDS[kind][0] == level)

    @property
    def ok(self) -> bool:
        """No error (warnings and notes allowed)."""
        return self.total("error") == 0

    def kinds(self) -> list[str]:
        """The kinds found, errors first, then warnings, then notes."""
        order = {"error": 0, "warning": 1, "note": 2}
        return sorted(self.counts, key=lambda kind: (order[KINDS[kind][0]], list(KINDS).index(kind)))

    def lines(self) -> list[str]:
        """The report as text: one line per kind (``warning: 3 repeated ids (the last record wins): corpus.jsonl:7
        id 'd1' (first on line 2); ...``), then a summary line."""
        result = []
        for kind in self.kinds():
            level, meaning = KINDS[kind]
            shown = "; ".join(f.where + (f" ({f.detail})" if f.detail else "") for f in self.examples[kind])
            hidden = self.counts[kind] - len(self.examples[kind])
            more = f"; and {hidden} more" if hidden else ""
            result.append(f"{level}: {self.counts[kind]} {meaning}: {shown}{more}")
        result.append(self.summary())
        return result

    def summary(self) -> str:
        """One line: ``beir:scifact: 0 errors, 0 warnings, 2 notes (5183 documents, 1109 queries, qrels rows: test
        339, train 919); fit for training and evaluation``, ending with :meth:`verdict`."""
        stats = self.stats
        qrels = ", ".join(f"{split} {rows}" for split, rows in sorted(stats.get("qrels_rows", {}).items()))
        facts = [
            f"{stats['documents']} documents" if stats.get("documents") is not None else "",
            f"{stats['queries']} queries" if stats.get("queries") is not None else "",
            f"qrels rows: {qrels}" if qrels else "",
        ]
        facts_text = ", ".join(f for f in facts if f)
        return (
            f"{self.dataset}: {self.total('error')} errors, {self.total('warning')} warnings, "
            f"{self.total('note')} notes" + (f" ({facts_text})" if facts_text else "") + f"; {self.verdict()}"
        )

    def fit_for(self) -> list[str]:
        """What the collection can be used for: ``["training", "evaluation"]`` with qrels, ``["training",
        "estimate"]`` without labels (the label-free estimate), ``[]`` with errors."""
        if not self.ok:
            return []
        return ["training", "evaluation"] if self.stats.get("qrels_rows") else ["training", "estimate"]

    def verdict(self) -> str:
        """The collection's fitness in words: ``fit for training and evaluation``, ``fit for training and the
        label-free estimate; not for evaluation (no qrels)``, or ``not fit: ...`` with errors."""
        fit = self.fit_for()
        if not fit:
            return "not fit for use: the stages stop on the errors above"
        if "evaluation" in fit:
            return "fit for training and evaluation"
        return "fit for training and the label-free estimate; not for evaluation (no qrels)"

    def to_json(self) -> dict[str, Any]:
        """What ``check.json`` holds: the summary counts, the stats, and per kind its level, meaning, count and
        examples."""
        return {
            "dataset": self.dataset,
            "errors": self.total("error"),
            "warnings": self.total("warning"),
            "notes": self.total("note"),
            "fit_for": self.fit_for(),
            "stats": self.stats,
            "findings": {
                kind: {
                    "level": KINDS[kind][0],
                    "meaning": KINDS[kind][1],
                    "count": self.counts[kind],
                    "examples": [f.to_json() for f in self.examples[kind]],
                }
                for kind in self.kinds()
            },
        }


def check_beir_folder(root: str | Path, name: str | None = None) -> CheckReport:
    """Check a BEIR folder (``corpus.jsonl``, ``queries.jsonl``, ``qrels/<split>.tsv``) file by file.

    Reads every file once, line by line (memory: the ids of the corpus and queries). Never raises on bad
    content: every problem becomes a finding. Raises ``OSError`` only if a file cannot be opened.
    """
    root = Path(root)
    report = CheckReport(name or str(root))
    files = sorted((root / "qrels").glob("*.tsv"))
    doc_ids = _check_jsonl(root, "corpus.jsonl", report, _check_document)
    query_ids = None
    if files or (root / "queries.jsonl").is_file():
        query_ids = _check_jsonl(root, "queries.jsonl", report, _check_query)
    report.stats.update(
        documents=len(doc_ids) if doc_ids is not None else None,
        queries=len(query_ids) if query_ids is not None else None,
        qrels_rows={},
    )
    if not files:
        if query_ids is not None:
            report.add(
                "queries-without-qrels", "queries.jsonl", detail="a split is the queries its qrels/<split>.tsv judges"
            )
        report.add("no-labels", "qrels/", detail="no qrels/<split>.tsv")
    judged: dict[str, str] = {}
    for path in files:
        _check_qrels(root, path, report, doc_ids, query_ids, judged)
    return report


def _lines(root: Path, relative: str, report: CheckReport) -> Iterator[tuple[int, str]]:
    """``(line number, text without its line ending)`` of each non-blank line; encoding marks, line endings and
    undecodable bytes become findings."""
    path = root / relative
    crlf = lf = 0
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            if number == 1 and raw.startswith(BOM):
                report.add("bom", relative, 1)
                raw = raw[len(BOM) :]
            if raw.endswith(b"\r\n"):
                crlf += 1
            elif raw.endswith(b"\n"):
                lf += 1
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                bad = raw[exc.start : exc.start + 1]
                report.add("not-utf8", relative, number, detail=f"byte {exc.start + 1}: {bad!r}")
                continue
            text = text.rstrip("\r\n")
            if text.strip():
                yield number, text
    if crlf and lf:
        report.add("mixed-line-endings", relative, detail=f"{crlf} CRLF and {lf} LF lines")
    elif crlf:
        report.add("crlf", relative, detail=f"{crlf} lines")


def _check_jsonl(root: Path, relative: str, report: CheckReport, check_record) -> set[str] | None:
    """Check a JSON-lines file of records with ``_id``; returns the ids found (``None`` if the file is missing)."""
    if not (root / relative).is_file():
        report.add("missing-file", relative)
        return None
    first_line: dict[str, int] = {}
    for number, text in _lines(root, relative, report):
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as exc:
            report.add("invalid-json", relative, number, detail=f"{exc.msg} at column {exc.colno}")
            continue
        if not isinstance(obj, dict):
            report.add("not-object", relative, number)
            continue
        if "_id" not in obj:
            report.add("missing-id", relative, number)
            continue
        record_id = str(obj["_id"])
        if record_id != record_id.strip():
            report.add("id-whitespace", relative, number, record_id)
        if record_id in first_line:
            report.add("repeated-id", relative, number, record_id, f"first on line {first_line[record_id]}")
        else:
            first_line[record_id] = number
        check_record(obj, relative, number, record_id, report)
    return set(first_line)


def _check_document(obj: dict[str, Any], relative: str, number: int | None, doc_id: str, report: CheckReport) -> None:
    text = _text_field(obj, "text", relative, number, doc_id, report)
    title = _text_field(obj, "title", relative, number, doc_id, report, required=False)
    if not text.strip() and not title.strip():
        report.add("empty-text", relative, number, doc_id, "no title and no text")
    elif not title.strip():
        report.add("empty-title", relative, number, doc_id)


def _check_query(obj: dict[str, Any], relative: str, number: int | None, query_id: str, report: CheckReport) -> None:
    if not _text_field(obj, "text", relative, number, query_id, report).strip():
        report.add("empty-text", relative, number, query_id, "empty query")


def _text_field(
    obj: dict[str, Any],
    key: str,
    relative: str,
    number: int | None,
    record_id: str,
    report: CheckReport,
    required: bool = True,
) -> str:
    """The string value of ``obj[key]`` ('' when absent or not a string, each a finding)."""
    if key not in obj:
        if required:
            report.add("missing-field", relative, number, record_id, f"no {key!r}")
        return ""
    value = obj[key]
    if value is None or isinstance(value, str):
        return value or ""
    report.add("not-text", relative, number, record_id, f"{key!r} is a {type(value).__name__}")
    return str(value)


def _check_qrels(
    root: Path,
    path: Path,
    report: CheckReport,
    doc_ids: set[str] | None,
    query_ids: set[str] | None,
    judged: dict[str, str],
) -> None:
    """Check one qrels file; ``judged`` maps each query id to the first split judging it (across files)."""
    relative, split = f"qrels/{path.name}", path.stem
    seen: dict[tuple[str, str], tuple[int, str]] = {}
    rows = 0
    for number, text in _lines(root, relative, report):
        cols = text.split()
        if number == 1 and cols[:2] == ["query-id", "corpus-id"]:
            continue
        if len(cols) not in (3, 4):
            report.add("bad-qrels-row", relative, number, detail=f"{len(cols)} columns")
            continue
        qid, docid, rel = (cols[0], cols[2], cols[3]) if len(cols) == 4 else cols
        try:
            float(rel)
        except ValueError:
            report.add("bad-relevance", relative, number, qid, f"relevance {rel!r}")
            continue
        rows += 1
        _check_qrels_row(report, relative, number, (qid, docid, rel), seen, doc_ids, query_ids)
        if judged.setdefault(qid, split) != split:
            report.add("split-overlap", relative, number, qid, f"also judged in {judged[qid]}")
            judged[qid] = split  # name each query once per later split
    report.stats["qrels_rows"][split] = rows


def _check_qrels_row(
    report: CheckReport,
    relative: str,
    number: int,
    row: tuple[str, str, str],
    seen: dict[tuple[str, str], tuple[int, str]],
    doc_ids: set[str] | None,
    query_ids: set[str] | None,
) -> None:
    qid, docid, rel = row
    if query_ids is not None and qid not in query_ids:
        report.add("unknown-query", relative, number, qid)
    if doc_ids is not None and docid not in doc_ids:
        report.add("unknown-doc", relative, number, docid, f"judged for query {qid!r}")
    if (qid, docid) in seen:
        first, first_rel = seen[(qid, docid)]
        same = float(first_rel) == float(rel)
        report.add(
            "duplicate-qrels-row" if same else "conflicting-qrels-row",
            relative,
            number,
            qid,
            f"document {docid!r}, first on line {first}" + ("" if same else f" with relevance {first_rel}"),
        )
    else:
        seen[(qid, docid)] = (number, rel)


def check_records(dataset: Dataset) -> CheckReport:
    """Check any dataset through its API (no file or line numbers): repeated document ids, empty texts, and
    qrels naming unknown documents or queries, per split. For datasets that are not BEIR folders (ir_datasets)."""
    report = CheckReport(dataset.name)
    seen: set[str] = set()
    for doc in dataset.docs_iter():
        if doc.doc_id in seen:
            report.add("repeated-id", "corpus", id=doc.doc_id)
        seen.add(doc.doc_id)
        _check_document({"text": doc.text, "title": doc.title}, "corpus", None, doc.doc_id, report)
    report.stats.update(documents=len(seen), qrels_rows={})
    if not dataset.splits():
        report.add("no-labels", "qrels", detail="the dataset has no split with qrels")
    judged: dict[str, str] = {}
    for split in dataset.splits():
        queries, qrels = dataset.queries(split), dataset.qrels(split)
        for qid, query in queries.items():
            _check_query({"text": query.text}, f"queries ({split})", None, qid, report)
        for qid, judgements in qrels.items():
            if qid not in queries:
                report.add("unknown-query", f"qrels ({split})", id=qid)
            if judged.setdefault(qid, split) != split:
                report.add("split-overlap", f"qrels ({split})", id=qid, detail=f"also judged in {judged[qid]}")
            for docid in judgements:
                if docid not in seen:
                    report.add("unknown-doc", f"qrels ({split})", id=docid, detail=f"judged for query {qid!r}")
        report.stats["qrels_rows"][split] = sum(len(j) for j in qrels.values())
    return report


def check_dataset(spec: str) -> CheckReport:
    """Check the dataset named ``spec``: a folder path is checked as a BEIR folder even when files are missing
    (each a finding), a file as a JSONL/CSV/TSV file of documents; any other name is resolved (``beir:``,
    ``irds:``, ``hf:``, ``docs.csv?text=...``) and checked through ``Dataset.check``.

    Raises:
        InparsxError: a name that resolves to no dataset (e.g. a folder that does not exist), or a collection
            that cannot be downloaded (:meth:`~inparsx.datasets.base.Dataset.prepare`).
    """
    from inparsx.datasets.base import resolve_dataset

    path = Path(spec).expanduser()
    if path.is_dir():
        return check_beir_folder(path)
    if path.is_file():
        from inparsx.datasets.files import check_document_file

        return check_document_file(path)
    dataset = resolve_dataset(spec)
    dataset.prepare()
    return dataset.check()
