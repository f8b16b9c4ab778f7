"""File formats and safe writing: JSON lines, TREC runs and qrels, BEIR qrels, atomic and resumable writes.

Every file is written under a temporary name and renamed when complete (``atomic_write``); long stages
append to a ``.partial`` file that survives a crash and is renamed when the stage ends (``ResumableJsonl``).
Malformed input raises :class:`~inparsx.errors.DataError` naming the file and line.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any, BinaryIO, Literal, TextIO, overload

from inparsx.errors import DataError, StorageError
from inparsx.records import Qrels, Run


@overload
def atomic_write(path: str | Path, mode: Literal["w"] = "w") -> contextlib.AbstractContextManager[TextIO]: ...
@overload
def atomic_write(path: str | Path, mode: Literal["wb"]) -> contextlib.AbstractContextManager[BinaryIO]: ...
@overload
def atomic_write(path: str | Path, mode: str) -> contextlib.AbstractContextManager[IO[Any]]: ...
def atomic_write(path: str | Path, mode: str = "w") -> contextlib.AbstractContextManager[IO[Any]]:
    """Open a uniquely named temporary file beside ``path`` and rename it to ``path`` only if the block succeeds.

    ``mode`` is an :func:`open` mode: ``"w"`` (the default) yields a UTF-8 text handle, ``"wb"`` a binary one.
    The temporary name (``.<name>.<random>.tmp``, from :func:`tempfile.mkstemp`) is unique, so two writers of
    the same file never share one; the last rename wins and each reader sees a complete file. A crash leaves
    the previous ``path`` (if any) untouched and no half-written file under the final name.

    Raises:
        StorageError: the file cannot be written (permission denied, disk full, a path component that is a
            file...), with ``path`` named.
    """
    return _atomic_write(Path(path), mode)


@contextlib.contextmanager
def _atomic_write(path: Path, mode: str) -> Iterator[IO[Any]]:
    with storage_errors(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(name)
    try:
        with storage_errors(path), os.fdopen(descriptor, mode, encoding=None if "b" in mode else "utf-8") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        with storage_errors(path):
            os.chmod(tmp, 0o666 & ~_UMASK)
            os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _read_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_UMASK = _read_umask()
"""The umask at import (read once: ``os.umask`` is process-wide). ``mkstemp`` creates files 0600; a finished
file gets the usual ``0666 & ~umask``."""


def follow_umask(path: str | Path) -> None:
    """Give a file or folder made by :func:`tempfile.mkstemp` (0600) or :func:`tempfile.mkdtemp` (0700) the
    mode every other output has: ``0666 & ~umask`` for a file, ``0777 & ~umask`` for a folder."""
    path = Path(path)
    with storage_errors(path):
        os.chmod(path, (0o777 if path.is_dir() else 0o666) & ~_UMASK)


def follow_umask_tree(folder: str | Path) -> None:
    """:func:`follow_umask` on ``folder`` and everything under it: for a model folder written by
    ``save_pretrained``, whose ``*.safetensors`` files safetensors creates 0600."""
    folder = Path(folder)
    for path in (folder, *folder.rglob("*")):
        if not path.is_symlink():
            follow_umask(path)


@contextlib.contextmanager
def storage_errors(path: str | Path) -> Iterator[None]:
    """Turn an ``OSError`` raised in the block into a :class:`~inparsx.errors.StorageError` naming ``path``
    (or the path the OS names, unless it is one of our temporary files), so the CLI prints one line such as
    ``runs/x/rerank/run.trec: no space left on device`` instead of a traceback. ``OSError`` from a write has no
    file name: this is where it gets one."""
    try:
        yield
    except StorageError:
        raise
    except OSError as exc:
        named = exc.filename is not None and not str(exc.filename).endswith(".tmp")
        raise StorageError.from_os_error(exc, None if named else path) from exc


def write_json(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_write(path) as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")


def read_jsonl(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSON-lines file (a UTF-8 byte-order mark is
    skipped).

    Raises:
        DataError: a line that is not a JSON object, or not UTF-8 (file and 1-based line named).
    """
    path = Path(path)
    with storage_errors(path), open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            line = decode_line(raw, path, number, first=number == 1)
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(path, f"invalid JSON ({exc.msg} at column {exc.colno})", number) from None
            if not isinstance(obj, dict):
                raise DataError(path, "expected a JSON object", number)
            yield number, obj


def decode_line(raw: bytes, path: str | Path, number: int, first: bool = False) -> str:
    """One line of a text file as UTF-8 (a byte-order mark on the first line is skipped).

    Raises:
        DataError: bytes that are not UTF-8, named by file, line and byte column (a file in another encoding,
            or an output torn inside a multi-byte character); a gzip file or a UTF-16 one is named as such.
    """
    if first and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(path, not_utf8(raw, exc), number) from None


def not_utf8(data: bytes, exc: UnicodeDecodeError) -> str:
    """Why ``data`` is not UTF-8, in words: a gzip file, UTF-16 (byte-order mark), or the first bad byte."""
    if data.startswith(b"\x1f\x8b"):
        return "a gzip-compressed file, not UTF-8 text: decompress it first (gunzip)"
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return "UTF-16 text, not UTF-8: save it as UTF-8"
    return (
        f"not UTF-8: byte 0x{data[exc.start]:02x} at byte column {exc.start + 1} (another encoding, such as "
        "Latin-1, or a file torn inside a character); save it as UTF-8"
    )


def read_json(path: str | Path) -> Any:
    """A JSON file's content.

    Raises:
        DataError: the file is not UTF-8 or not valid JSON (e.g. torn by a crash), with file and line named.
        StorageError: it cannot be read.
    """
    path = Path(path)
    with storage_errors(path):
        data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise DataError(path, not_utf8(data, exc), data.count(b"\n", 0, exc.start) + 1) from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(
            path,
            f"not valid JSON ({exc.msg} at column {exc.colno}; torn by a crash? run the stage that writes it again)",
            exc.lineno,
        ) from None


def write_jsonl(path: str | Path, records: Iterable[dict[str, Any]]) -> int:
    """Write dicts as JSON lines atomically; returns the number written."""
    count = 0
    with atomic_write(path) as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


class ResumableJsonl:
    """An append-only JSON-lines file that survives crashes: the basis of resumable stages.

    Records go to ``<path>.partial``, flushed and fsynced after each ``append`` call (one batch), so a crash
    or Ctrl-C loses at most the batch in flight. ``existing()`` reads what an interrupted run left (a torn
    last line is dropped); ``finish()`` renames the partial file to ``path``.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.partial = self.path.with_name(self.path.name + ".partial")
        self._handle: TextIO | None = None

    def existing(self) -> list[dict[str, Any]]:
        """Records already in the partial file; a torn (unterminated, invalid JSON or invalid UTF-8) line and
        everything after it is discarded."""
        if not self.partial.exists():
            return []
        records, good_bytes = [], 0
        with open(self.partial, "rb") as handle:
            for raw in handle:
                if not raw.endswith(b"\n"):
                    break
                try:
                    records.append(json.loads(raw))
                except ValueError:  # invalid JSON, or bytes torn inside a UTF-8 character
                    break
                good_bytes += len(raw)
        with open(self.partial, "r+b") as handle:
            handle.truncate(good_bytes)
        return records

    def append(self, records: Iterable[dict[str, Any]]) -> None:
        """Append records and make them durable before returning.

        Raises:
            StorageError: the partial file cannot be written (disk full, permission denied...); the records
                appended before are kept.
        """
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        with storage_errors(self.partial):
            if self._handle is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                self._handle = open(self.partial, "a", encoding="utf-8")
            self._handle.write(text)
            self._handle.flush()
            os.fsync(self._handle.fileno())

    def close(self) -> None:
        """Close the partial file (keeps it for a later resume)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None

    def finish(self) -> None:
        """Close and rename ``<path>.partial`` to ``path`` (an empty file when nothing was appended)."""
        self.close()
        with storage_errors(self.path):
            if not self.partial.exists():
                self.partial.touch()
            os.replace(self.partial, self.path)


def write_trec_run(path: str | Path, run: Run, tag: str = "inparsx", depth: int | None = None) -> None:
    """Write a run in TREC format (``qid Q0 docid rank score tag``), ranked by score, atomically.

    Scores are written at full precision (the shortest text that reads back as the same float), so scores that
    differ only far behind the decimal point, such as monoT5 P(true) values near 1, keep their order. Ties are
    broken by docid so the file is deterministic. ``depth`` keeps only the top ``depth`` per query.
    """
    with atomic_write(path) as handle:
        for qid in sorted(run, key=_natural_key):
            ranked = sorted(run[qid].items(), key=lambda item: (-item[1], item[0]))[:depth]
            handle.writelines(
                f"{qid} Q0 {docid} {rank} {float(score)!r} {tag}\n" for rank, (docid, score) in enumerate(ranked, 1)
            )


def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run file (six whitespace-separated columns) into ``{qid: {docid: score}}``.

    Raises:
        DataError: a line without six columns or with a non-numeric score.
    """
    run: Run = {}
    for number, cols in _rows(path):
        if len(cols) != 6:
            raise DataError(
                path, f"a TREC run line needs 6 columns (qid Q0 docid rank score tag), found {len(cols)}", number
            )
        try:
            run.setdefault(cols[0], {})[cols[2]] = float(cols[4])
        except ValueError:
            raise DataError(path, f"score {cols[4]!r} is not a number", number) from None
    return run


def read_qrels(path: str | Path) -> Qrels:
    """Read qrels in TREC format (``qid 0 docid rel``) or BEIR TSV (``query-id corpus-id score``, header optional).

    CRLF line endings and a UTF-8 byte-order mark are tolerated.

    Raises:
        DataError: a row with the wrong number of columns or a non-integer relevance.
    """
    qrels: Qrels = {}
    for number, cols in _rows(path):
        if number == 1 and cols[:2] == ["query-id", "corpus-id"]:
            continue
        if len(cols) == 4:
            qid, docid, rel = cols[0], cols[2], cols[3]
        elif len(cols) == 3:
            qid, docid, rel = cols
        else:
            raise DataError(path, f"a qrels row needs 3 (BEIR) or 4 (TREC) columns, found {len(cols)}", number)
        try:
            qrels.setdefault(qid, {})[docid] = int(float(rel))
        except ValueError:
            raise DataError(path, f"relevance {rel!r} is not a number", number) from None
    return qrels


def write_trec_qrels(path: str | Path, qrels: Qrels) -> None:
    """Write qrels in TREC format (``qid 0 docid rel``), atomically."""
    with atomic_write(path) as handle:
        for qid in sorted(qrels, key=_natural_key):
            handle.writelines(f"{qid} 0 {docid} {rel}\n" for docid, rel in sorted(qrels[qid].items()))


def _rows(path: str | Path) -> Iterator[tuple[int, list[str]]]:
    path = Path(path)
    if not path.exists():
        raise DataError(path, "file not found")
    with storage_errors(path), open(path, "rb") as handle:
        for number, raw in enumerate(handle, 1):
            cols = decode_line(raw, path, number, first=number == 1).split()
            if cols:
                yield number, cols


def _natural_key(text: str) -> tuple[int, int | str]:
    return (0, int(text)) if text.isdigit() else (1, text)
