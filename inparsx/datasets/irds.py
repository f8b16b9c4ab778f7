"""ir_datasets collections (MacAvaney et al., SIGIR 2021). ``ir_datasets`` is imported on first use only.

ir_datasets downloads a collection on first use. A download that fails (no network, a host that does not
answer) is one :class:`~inparsx.errors.InparsxError` line naming the URL, the reason, where a local copy was
looked for and the ways out, wherever the collection is read; :meth:`IrdsDataset.prepare` makes that download
happen before any stage clears its folder.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from collections.abc import Iterable, Iterator

import inparsx
from inparsx.datasets.base import Dataset, DatasetLoader, no_labels_error
from inparsx.errors import InparsxError
from inparsx.records import Document, Qrels, Query

SPLITS = ("train", "dev", "validation", "test")


class IrdsDataset(Dataset):
    """An ir_datasets id. A split is the sub-dataset ``<id>/<split>`` (BEIR's layout), or the id itself when it
    has its own qrels (e.g. ``msmarco-passage/dev/small``). An id with neither is a collection without labels
    (its documents only; :meth:`~inparsx.datasets.base.Dataset.has_labels` is false).

    Raises:
        InparsxError: an id unknown to ir_datasets, or a split with neither form.
    """

    def __init__(self, dataset_id: str, fallback_of: tuple[str, str, str] | None = None):
        """Args:
        dataset_id: the ir_datasets id.
        fallback_of: when this stands in for a local copy that was not found (``beir:<name>``): the name
            given, where the copy was looked for, and how to provide one, for the message of a failed
            download.
        """
        import ir_datasets

        from inparsx.progress import quiet_ir_datasets

        quiet_ir_datasets()
        self.id = dataset_id
        self.name = f"irds:{dataset_id}"
        self.fallback_of = fallback_of
        self._prepared = False
        try:
            self._base = ir_datasets.load(dataset_id)
        except KeyError:
            raise InparsxError(f"ir_datasets has no dataset {dataset_id!r} (see https://ir-datasets.com)") from None
        self._cache: dict[str, object] = {}

    def _subset(self, split: str):
        import ir_datasets

        if split not in self._cache:
            candidate = f"{self.id}/{split}"
            if candidate in ir_datasets.registry:
                self._cache[split] = ir_datasets.load(candidate)
            elif self._base.has_qrels() and split in (self.id.rsplit("/", 1)[-1], "default"):
                self._cache[split] = self._base
            elif not self.splits():
                raise no_labels_error(self.name, split)
            else:
                raise InparsxError(
                    f"{self.name}: no split {split!r}; available: {', '.join(self.splits()) or '(none)'}"
                )
        return self._cache[split]

    def docs_iter(self) -> Iterator[Document]:
        with self.download_errors():
            for doc in self._base.docs_iter():
                yield Document(doc.doc_id, getattr(doc, "text", "") or "", (getattr(doc, "title", "") or "").strip())

    def get_docs(self, doc_ids: Iterable[str]) -> dict[str, Document]:
        if getattr(self, "_docs_table", None) is not None:
            return super().get_docs(doc_ids)
        with self.download_errors():
            store = self._base.docs_store()
            return {
                i: Document(d.doc_id, getattr(d, "text", "") or "", (getattr(d, "title", "") or "").strip())
                for i, d in store.get_many(list(doc_ids)).items()
            }

    def docs_count(self) -> int:
        return self._base.docs_count() or super().docs_count()

    def docs_count_hint(self) -> int | None:
        """ir_datasets' metadata count, when it has one (nothing is downloaded)."""
        return self._base.docs_count()

    def queries(self, split: str) -> dict[str, Query]:
        subset = self._subset(split)
        with self.download_errors():
            return {q.query_id: Query(q.query_id, q.text) for q in subset.queries_iter()}

    def qrels(self, split: str) -> Qrels:
        qrels: Qrels = {}
        with self.download_errors():
            for qrel in self._subset(split).qrels_iter():
                qrels.setdefault(qrel.query_id, {})[qrel.doc_id] = int(qrel.relevance)
        return qrels

    def prepare(self) -> None:
        """Download what reading needs, now: the documents and every split's queries and qrels (ir_datasets
        keeps them in ``$IR_DATASETS_HOME``, default ``~/.ir_datasets``; nothing is fetched when they are there).
        ir_datasets' log lines are silenced meanwhile, and its progress bars too when stderr is not a terminal.

        Raises:
            InparsxError: a download failed (see :meth:`download_errors`).
        """
        if self._prepared:
            return
        with self.download_errors(), _quiet_ir_datasets():
            next(iter(self._base.docs_iter()), None)
            for split in self.splits():
                subset = self._subset(split)
                next(iter(subset.queries_iter()), None)
                next(iter(subset.qrels_iter()), None)
        self._prepared = True

    @contextlib.contextmanager
    def download_errors(self) -> Iterator[None]:
        """Turn a failed ir_datasets download inside the block into one :class:`InparsxError` line: the
        dataset, where a local copy was looked for (``beir:<name>``), the URL, the reason, and the two ways
        out (a local copy, or a network that reaches the URL)."""
        try:
            yield
        except Exception as exc:
            failure = download_failure(exc)
            if failure is None:
                raise
            raise InparsxError(self._download_message(*failure)) from None

    def _download_message(self, url: str, reason: str) -> str:
        from urllib.parse import urlsplit

        host = urlsplit(url).netloc or url
        if self.fallback_of is not None:
            name, looked, local = self.fallback_of
            return (
                f"dataset {name}: {looked}, and ir_datasets could not download {url} ({reason}); either {local}, "
                f"or run where {host} can be reached (ir_datasets then keeps it in {_irds_home()})"
            )
        return (
            f"dataset {self.name}: ir_datasets could not download {url} ({reason}); run where {host} can be "
            f"reached, or put the files ir_datasets expects in {_irds_home()} (see https://ir-datasets.com)"
        )

    def splits(self) -> list[str]:
        import ir_datasets

        found = [s for s in SPLITS if f"{self.id}/{s}" in ir_datasets.registry]
        return found or ([self.id.rsplit("/", 1)[-1]] if self._base.has_qrels() else [])

    def fingerprint(self) -> str:
        return f"irds-{self.id.replace('/', '-')}-{self.docs_count()}"


def download_failure(exc: BaseException) -> tuple[str, str] | None:
    """``(url, reason)`` when ``exc`` is a failed ir_datasets download (a requests error, or ir_datasets'
    "All download sources failed" with the errors of each mirror), else ``None``."""
    import requests

    if isinstance(exc, RuntimeError) and exc.args and exc.args[0] == "All download sources failed":
        tried = [(getattr(mirror, "url", "?"), error) for mirror, error in exc.args[1]]
        failures = [
            (url, network_reason(error)) for url, error in tried if isinstance(error, requests.RequestException)
        ]
        return (" and ".join(u for u, _ in failures), failures[0][1]) if failures else None
    if isinstance(exc, requests.RequestException):
        url = exc.request.url if exc.request is not None else None
        return (url.decode() if isinstance(url, bytes) else url or "?"), network_reason(exc)
    return None


def network_reason(exc: BaseException) -> str:
    """A few words for a failed request: host not found, proxy refused, timed out, HTTP <status>, or the
    error's type."""
    import requests

    text = str(exc)
    if isinstance(exc, requests.exceptions.ProxyError):
        return "the proxy refused the connection"
    if "Failed to resolve" in text or "Name or service not known" in text or "NameResolutionError" in text:
        return "the host name cannot be resolved: no network?"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.HTTPError) and exc.response is not None:
        return f"HTTP {exc.response.status_code}"
    if isinstance(exc, requests.ConnectionError):
        return "the connection failed"
    return type(exc).__name__


def _irds_home() -> str:
    import os
    from pathlib import Path

    return str(Path(os.environ.get("IR_DATASETS_HOME", Path.home() / ".ir_datasets")))


@contextlib.contextmanager
def _quiet_ir_datasets() -> Iterator[None]:
    """ir_datasets' ``[INFO]``/``[WARNING]`` log lines off for the block (our error says what failed), and its
    progress bars too when stderr is not a terminal (in a log file they are noise; on a terminal they show a
    long download's progress and clear themselves)."""
    logging.disable(logging.WARNING)
    try:
        if sys.stderr.isatty():
            yield
        else:
            with contextlib.redirect_stderr(io.StringIO()):
                yield
    finally:
        logging.disable(logging.NOTSET)


class IrdsLoader(DatasetLoader):
    """``irds:<id>``: any dataset of ir_datasets."""

    name = "irds"

    def load(self, spec: str) -> Dataset:
        return IrdsDataset(spec)


@inparsx.hookimpl
def register_datasets(register):
    register(IrdsLoader)
