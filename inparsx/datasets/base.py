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
        """The splits that have qrels; ``[]`` for a collection without labels (its documents alone)."""
        raise NotImplementedError

    def has_labels(self) -> bool:
        """Whether any split has qrels. ``False`` for a collection without labels (a BEIR ``corpus.jsonl``
        alone, a JSONL/CSV/TSV file of documents, a Hugging Face dataset, an ir_datasets id without qrels):
        the stages that need no labels run on it; retrieval and reranking of test queries and the evaluate
        stage say in one line why they are skipped, and ``[estimate]`` gives a label-free estimate."""
        return bool(self.splits())

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

    def check(self) -> CheckReport:
        """Look for defects a careful user would want to know about (repeated ids, empty texts, qrels naming
        unknown documents...); see :mod:`inparsx.datasets.check`. This default reads the dataset through its
        API; datasets backed by files override it to name file and line."""
        from inparsx.datasets.check import check_records

        return check_records(self)


def no_labels_error(dataset: str, split: str) -> InparsxError:
    """The error for asking a collection without labels (``dataset``, its name) for ``split``'s queries or
    qrels."""
    return InparsxError(
        f"{dataset}: no {split!r} queries or qrels: this collection has no labels (documents "
        "only); the label-free estimate ([estimate]) needs none"
    )


class DocumentsOnly(Dataset):
    """A collection without labels: its documents alone. Subclasses implement ``docs_iter`` and
    ``fingerprint``; asking for any split's queries or qrels raises :func:`no_labels_error`, and
    :meth:`splits` is empty, so :meth:`~Dataset.has_labels` is false."""

    def queries(self, split: str) -> dict[str, Query]:
        raise no_labels_error(self.name, split)

    def qrels(self, split: str) -> Qrels:
        raise no_labels_error(self.name, split)

    def splits(self) -> list[str]:
        return []


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

    def __init__(
        self,
        base: Dataset,
        hidden: str,
        extra: dict[str, tuple[dict[str, Query], Qrels]] | None = None,
        drop: dict[str, set[str]] | None = None,
    ):
        self.base, self.hidden = base, hidden
        self.extra, self.drop = dict(extra or {}), dict(drop or {})
        self.name = base.name

    def _check(self, split: str) -> None:
        if split == self.hidden:
            raise SplitHiddenError(
                f"split {split!r} is the evaluated split: the tune stage never sees its queries "
                f"or qrels (available: {', '.join(self.splits()) or 'none'})"
            )

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


class SampledSplit(Dataset):
    """A view of ``base`` in which split ``split`` holds only ``size`` of its queries (and their qrels), drawn
    with ``seed``: what ``[dataset] eval_queries`` evaluates on, for quick choices of settings (e.g. on 100 of
    SciFact's 809 train queries).

    The draw shuffles the split's query ids (sorted first, so the draw does not depend on file order) with
    ``random.Random(f"{seed}:eval_queries")`` and keeps the first ``size``: the sample of a smaller ``size`` is
    part of a larger one's with the same seed. With ``size`` at least the split's size, every query is kept.
    The corpus, the other splits and the fingerprint (which keys index and embedding caches) pass through.

    Attributes:
        qids: the sampled query ids, in draw order.
        total: the number of queries the split has in ``base``.
    """

    def __init__(self, base: Dataset, split: str, size: int, seed: int):
        import random

        self.base, self.split, self.size, self.seed = base, split, size, seed
        self.name = base.name
        everything = sorted(base.queries(split))
        random.Random(f"{seed}:eval_queries").shuffle(everything)
        self.total = len(everything)
        self.qids = everything[:size]
        self._kept = set(self.qids)

    def docs_iter(self) -> Iterator[Document]:
        return self.base.docs_iter()

    def docs(self) -> dict[str, Document]:
        return self.base.docs()

    def queries(self, split: str) -> dict[str, Query]:
        found = self.base.queries(split)
        return {qid: q for qid, q in found.items() if qid in self._kept} if split == self.split else found

    def qrels(self, split: str) -> Qrels:
        found = self.base.qrels(split)
        return {qid: docs for qid, docs in found.items() if qid in self._kept} if split == self.split else found

    def splits(self) -> list[str]:
        return self.base.splits()

    def fingerprint(self) -> str:
        return self.base.fingerprint()

    def check(self) -> CheckReport:
        """The whole collection's check (the sample is a view; the files are those of ``base``)."""
        return self.base.check()

    def describe(self) -> str:
        """``"100 of 809 queries of split 'train' (dataset.eval_queries, seed 1)"``, for tables and messages."""
        return (
            f"{len(self.qids)} of {self.total} queries of split {self.split!r} (dataset.eval_queries, seed {self.seed})"
        )


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
        loader: DatasetLoader = registry.build("datasets", scheme)
        return loader.load(rest)
    if Path(spec).exists() or not sep:
        folder: DatasetLoader = registry.build("datasets", "folder")
        return folder.load(spec)
    raise InparsxError(f"dataset {spec!r}: " + unknown_name_message("datasets", scheme, registry.names("datasets")))
