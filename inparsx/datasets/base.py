"""The dataset contract and name resolution."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from inparsx.errors import InparsxError
from inparsx.plugins import Component, get_registry, unknown_name_message
from inparsx.records import Document, Qrels, Query

if TYPE_CHECKING:
    from inparsx.datasets.check import CheckReport


class Dataset:
    """A document collection with queries and qrels per split (``train``, ``dev``, ``test``...).

    Subclasses implement ``docs_iter``, ``queries``, ``qrels``, ``splits`` and ``fingerprint``; document
    lookup by id (``get_docs``) defaults to an in-memory table built on first use.
    """

    name: str = ""
    """The dataset's name as a recipe gives it (``beir:scifact``, ``irds:...``, a folder path); ``""`` when it
    has none. Shown in tables and messages, and used to pick dataset-specific prompts."""

    _docs_table: dict[str, Document] | None = None

    def docs_iter(self) -> Iterator[Document]:
        """Every document, in corpus order."""
        raise NotImplementedError

    def queries(self, split: str) -> dict[str, Query]:
        """The queries of ``split`` (those judged in its qrels), by qid."""
        raise NotImplementedError

    def qrels(self, split: str) -> Qrels:
        """The qrels of ``split``: ``{qid: {docid: relevance}}``."""
        raise NotImplementedError

    def splits(self) -> list[str]:
        """The splits that have qrels."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A short string that changes whenever the corpus changes (keys index and embedding caches)."""
        raise NotImplementedError

    def docs(self) -> dict[str, Document]:
        """All documents by docid, loaded once and kept in memory."""
        cached = self._docs_table
        if cached is None:
            cached = {doc.doc_id: doc for doc in self.docs_iter()}
            self._docs_table = cached
        return cached

    def get_docs(self, doc_ids: Iterable[str]) -> dict[str, Document]:
        """The documents with the given ids (missing ids are left out)."""
        table = self.docs()
        return {i: table[i] for i in doc_ids if i in table}

    def docs_count(self) -> int:
        """Number of documents."""
        return len(self.docs())

    def docs_count_hint(self) -> int | None:
        """The number of documents when it is known cheaply (without reading the corpus or downloading it),
        else ``None`` (this default). The pre-flight check caps a generator's documents with it."""
        return None

    def prepare(self) -> None:
        """Make the collection readable now (a download, when it is not on this machine), so that a failure
        comes before any stage clears its folder. Default: nothing to do.

        Raises:
            InparsxError: the collection cannot be made available (one line: where it looked, what it tried,
                what to do).
        """

    def check(self) -> "CheckReport":
        """Look for defects a careful user would want to know about (repeated ids, empty texts, qrels naming
        unknown documents...); see :mod:`inparsx.datasets.check`. This default reads the dataset through its
        API; datasets backed by files override it to name file and line."""
        from inparsx.datasets.check import check_records

        return check_records(self)


class SplitHiddenError(InparsxError):
    """A component asked a :class:`WithoutSplit` view for the split it hides (the evaluated split)."""


class WithoutSplit(Dataset):
    """A view of ``base`` without the queries and qrels of ``hidden`` (the evaluated split): what the tune
    stage sees, so that tuning on test queries is impossible by construction rather than by care.

    The corpus and every other split pass through unchanged; ``splits()`` leaves ``hidden`` out. ``extra``
    maps a new split name to ``(queries, qrels)`` (e.g. PATH's gold queries drawn from the train split);
    ``drop`` maps a split name to query ids removed from it (those gold queries, so few-shot examples never
    repeat them).

    Raises:
        SplitHiddenError: ``queries(hidden)`` or ``qrels(hidden)``.
    """

    def __init__(self, base: Dataset, hidden: str, extra: dict[str, tuple[dict[str, Query], Qrels]] | None = None,
                 drop: dict[str, set[str]] | None = None):
        self.base, self.hidden = base, hidden
        self.extra, self.drop = dict(extra or {}), dict(drop or {})
        self.name = base.name

    def _check(self, split: str) -> None:
        if split == self.hidden:
            raise SplitHiddenError(f"split {split!r} is the evaluated split: the tune stage never sees its queries "
                                   f"or qrels (available: {', '.join(self.splits()) or 'none'})")

    def docs_iter(self) -> Iterator[Document]:
        return self.base.docs_iter()

    def docs(self) -> dict[str, Document]:
        return self.base.docs()

    def queries(self, split: str) -> dict[str, Query]:
        self._check(split)
        if split in self.extra:
            return dict(self.extra[split][0])
        removed = self.drop.get(split, set())
        return {qid: q for qid, q in self.base.queries(split).items() if qid not in removed}

    def qrels(self, split: str) -> Qrels:
        self._check(split)
        if split in self.extra:
            return {qid: dict(docs) for qid, docs in self.extra[split][1].items()}
        removed = self.drop.get(split, set())
        return {qid: docs for qid, docs in self.base.qrels(split).items() if qid not in removed}

    def splits(self) -> list[str]:
        return [s for s in self.base.splits() if s != self.hidden] + [s for s in self.extra if s != self.hidden]

    def fingerprint(self) -> str:
        return self.base.fingerprint()

    def docs_count_hint(self) -> int | None:
        return self.base.docs_count_hint()

    def prepare(self) -> None:
        self.base.prepare()


class NoDataset(Dataset):
    """The dataset of a one-off command that reads no collection (``inparsx train`` on a triples file): no name,
    an empty fingerprint, and every read raises :class:`~inparsx.errors.InparsxError` naming what was asked."""

    def _refuse(self, what: str) -> InparsxError:
        return InparsxError(f"no dataset: this command reads no collection, so it has no {what}")

    def docs_iter(self) -> Iterator[Document]:
        raise self._refuse("documents")

    def queries(self, split: str) -> dict[str, Query]:
        raise self._refuse(f"{split} queries")

    def qrels(self, split: str) -> Qrels:
        raise self._refuse(f"{split} qrels")

    def splits(self) -> list[str]:
        raise self._refuse("splits")

    def fingerprint(self) -> str:
        return ""


class DatasetLoader(Component):
    """A dataset name scheme (``beir``, ``irds``, ``folder``): ``load(rest_of_name) -> Dataset``."""

    name: ClassVar[str] = ""

    def load(self, spec: str) -> Dataset:
        """Load the dataset named ``spec`` (the part after ``scheme:``)."""
        raise NotImplementedError


def split_spec(spec: str) -> tuple[str, str | None]:
    """``beir:scifact/test`` -> (``beir:scifact``, ``test``); for qrels arguments of ``inparsx eval``.

    A spec whose last path component names no split (e.g. ``beir:scifact``) returns ``(spec, None)``.
    """
    head, _, tail = spec.rpartition("/")
    if head and tail in {"train", "dev", "test", "validation", "val"} and ":" in head:
        return head, tail
    return spec, None


def resolve_dataset(spec: str) -> Dataset:
    """Load a dataset from its name: ``scheme:rest`` through the registered loaders, or a local folder path.

    Raises:
        InparsxError: an unknown scheme (available ones listed) or a path that is not a BEIR folder.
    """
    registry = get_registry()
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in registry.entries["datasets"]:
        return registry.build("datasets", scheme).load(rest)
    if Path(spec).exists() or not sep:
        return registry.build("datasets", "folder").load(spec)
    raise InparsxError(f"dataset {spec!r}: " + unknown_name_message("datasets", scheme, registry.names("datasets")))
