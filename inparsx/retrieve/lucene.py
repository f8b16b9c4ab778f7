"""``bm25``: Lucene BM25 through Pyserini (Lin et al., SIGIR 2021), as in Pyserini's BEIR regressions.

Two field layouts, both those of Pyserini's BEIR (v1.0.0) baselines (``pyserini/2cr/beir.yaml``):

* ``flat``: title and text joined into one ``contents`` field (Pyserini's ``BeirFlatCollection``; SciFact
  test nDCG@10 0.6789, R@100 0.9253);
* ``multifield``: text in ``contents`` and title in its own ``title`` field, searched together with
  ``--fields contents=1.0 title=1.0`` (``BeirMultifieldCollection``; SciFact 0.6647, R@100 0.9076).

Analysis is Anserini's default (Lucene ``StandardTokenizer``, English stop words, Porter stemmer) at index and
query time. Scoring is Lucene's ``BM25Similarity`` with Pyserini's BEIR settings ``k1=0.9, b=0.4`` by default.
The index is cached per corpus fingerprint and layout (see :mod:`inparsx.retrieve.cache`); ``k1`` and ``b``
are search-time settings and share one index.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field

from inparsx.datasets import Dataset
from inparsx.errors import InparsxError
from inparsx.io import write_json
from inparsx.progress import console, progress_task
from inparsx.records import Document, Run
from inparsx.retrieve.base import Retriever, RetrieverOptions
from inparsx.retrieve.cache import METADATA, building, index_dir, index_key, load_metadata
from inparsx.retrieve.jvm import lucene

LAYOUT_VERSION = 1
"""Bump when the way documents are written into the index changes (it is part of the cache key)."""


def cpu_count() -> int:
    """Cores this process may use (the affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class LuceneBM25Options(RetrieverOptions):
    """Options of ``bm25``.

    ``k1``, ``b``: BM25 parameters (Robertson & Zaragoza 2009; Lucene's ``BM25Similarity``), Pyserini's BEIR
    defaults. ``fields``: ``flat`` (title and text in one field) or ``multifield`` (separate fields, searched
    together). ``threads``: search and indexing threads (default: every core this process may use).
    ``batch_size``: queries per ``batch_search`` call (also the progress bar's step).
    """

    k1: float = Field(0.9, ge=0)
    b: float = Field(0.4, ge=0, le=1)
    fields: Literal["flat", "multifield"] = "flat"
    threads: int | None = Field(None, ge=1)
    batch_size: int = Field(256, ge=1)


class LuceneBM25(Retriever):
    """BM25 over a Lucene index built with Pyserini (flat or multifield layout, cached per corpus)."""

    name: ClassVar[str] = "bm25"
    Options: ClassVar[type[LuceneBM25Options]] = LuceneBM25Options
    options: LuceneBM25Options

    def __init__(self, options: LuceneBM25Options | None = None):
        super().__init__(options)
        self.index_path: Path | None = None
        self._searcher = None

    @property
    def threads(self) -> int:
        return self.options.threads or cpu_count()

    def index_key(self, dataset: Dataset) -> str:
        """The cache key: layout (``flat``/``multifield``), layout version and the corpus fingerprint."""
        return index_key("lucene", dataset.fingerprint(), fields=self.options.fields, v=LAYOUT_VERSION)

    def index(self, dataset: Dataset) -> None:
        """Open the cached Lucene index of ``dataset``'s corpus, building it first when absent.

        Raises:
            InparsxError: no Java 21 runtime for Pyserini, or a corpus with no indexable document.
        """
        key = self.index_key(dataset)
        folder = index_dir(key)
        self.index_info = load_metadata(folder) or {}
        if not self.index_info:
            with building(key) as tmp:
                self._build(dataset, tmp)
            self.index_info = load_metadata(folder) or {}
        self.index_path = folder
        self._searcher = self._open_searcher(folder)

    def _build(self, dataset: Dataset, folder: Path) -> None:
        jvm = lucene()
        args = ["-index", str(folder), *(["-fields", "title"] if self.options.fields == "multifield" else [])]
        began = time.perf_counter()
        indexer = jvm.LuceneIndexer(args=args, threads=self.threads)
        total, indexed = dataset.docs_count(), 0
        with progress_task(f"bm25 index ({self.options.fields})", total, "docs") as (bar, task):
            for batch in _batches(dataset.docs_iter(), 1000):
                indexed += indexer.object.addRawDocuments([self._json(doc) for doc in batch])
                bar.advance(task, len(batch))
        indexer.close()
        if indexed == 0:
            raise InparsxError(f"{dataset.name}: no document could be indexed (every title and text is empty)")
        seconds = round(time.perf_counter() - began, 3)
        write_json(
            folder / METADATA,
            {
                "retriever": self.name,
                "fields": self.options.fields,
                "docs": total,
                "indexed": indexed,
                "skipped_empty": total - indexed,
                "corpus_fingerprint": dataset.fingerprint(),
                "build_seconds": seconds,
            },
        )
        console.print(
            f"bm25: indexed {indexed:,} documents in {seconds:.1f} s"
            + (f" ({total - indexed} empty ones skipped)" if indexed < total else "")
        )

    def _json(self, doc: Document) -> str:
        """One document as Anserini's ``JsonCollection`` expects it (``id``, ``contents``, extra fields)."""
        if self.options.fields == "flat":
            return json.dumps({"id": doc.doc_id, "contents": doc.full_text})
        # A document with a title but no text stays retrievable: its title is also its contents.
        return json.dumps({"id": doc.doc_id, "contents": doc.text or doc.title, "title": doc.title})

    def _open_searcher(self, folder: Path):
        """Pyserini's ``LuceneSearcher`` on ``folder`` with BM25(k1, b) set (starts the JVM if needed)."""
        searcher = lucene().LuceneSearcher(str(folder))
        searcher.set_bm25(float(self.options.k1), float(self.options.b))
        return searcher

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        """Top ``k`` documents per query with Lucene BM25, ``batch_size`` queries per multi-threaded batch.

        Returns ``{qid: {docid: score}}``; a query matching no document (e.g. only stop words) gets ``{}``.

        Raises:
            InparsxError: ``index()`` was not called first.
        """
        if self._searcher is None:
            raise InparsxError("bm25: call index(dataset) before search()")
        fields = {"contents": 1.0, "title": 1.0} if self.options.fields == "multifield" else {}
        run: Run = {}
        items = list(queries.items())
        with progress_task("bm25 search", len(items), "queries") as (bar, task):
            for batch in _batches(iter(items), self.options.batch_size):
                qids, texts = [qid for qid, _ in batch], [text for _, text in batch]
                hits = self._searcher.batch_search(texts, qids, k=int(k), threads=self.threads, fields=fields)
                run.update({qid: {hit.docid: float(hit.score) for hit in hits.get(qid, [])} for qid in qids})
                bar.advance(task, len(batch))
        return run


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
