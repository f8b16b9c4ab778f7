"""``bm25s``: BM25 with the ``bm25s`` library (Lù, 2024, arXiv:2407.03618): eager sparse scoring in numpy.

Documents are title and text joined (the ``flat`` layout of ``bm25``). Tokenisation is bm25s's: lower-case,
the regex ``\\b\\w\\w+\\b`` (tokens of two or more word characters), Lucene's 33 English stop words and the
Snowball English stemmer of PyStemmer. ``method="lucene"`` scores as Lucene's ``BM25Similarity`` does
(idf ``log(1 + (N - df + 0.5) / (df + 0.5))``, no ``k1 + 1`` factor) but with exact document lengths.
Scores are computed at indexing time, so ``k1``, ``b`` and ``method`` are part of the cache key.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import Field, field_validator

from inparsx.datasets import Dataset
from inparsx.errors import InparsxError
from inparsx.io import write_json
from inparsx.progress import console, progress_task
from inparsx.records import Run
from inparsx.retrieve.base import Retriever, RetrieverOptions
from inparsx.retrieve.cache import METADATA, building, index_dir, index_key, load_metadata
from inparsx.retrieve.lucene import cpu_count

LAYOUT_VERSION = 1
DOC_IDS = "doc_ids.json"


class Bm25sOptions(RetrieverOptions):
    """Options of ``bm25s``.

    ``fields``: only ``flat`` (title and text in one field; accepted so that a recipe can switch between
    ``bm25`` and ``bm25s`` with ``--set retrieve.use=bm25s``). ``k1``, ``b``: BM25 parameters (defaults: Pyserini's
    BEIR settings, so runs compare with ``bm25``; bm25s's
    own defaults are 1.5 and 0.75). ``method``: bm25s's scoring variant. ``stemmer``: a PyStemmer (Snowball)
    algorithm name, or ``none``. ``stopwords``: ``en`` (Lucene's English list) or ``none``. ``threads``:
    retrieval threads (default: every core). ``batch_size``: queries per retrieval call (the bar's step).
    """

    fields: Literal["flat"] = "flat"
    k1: float = Field(0.9, ge=0)
    b: float = Field(0.4, ge=0, le=1)
    method: Literal["lucene", "robertson", "atire", "bm25l", "bm25+"] = "lucene"
    stemmer: str = "english"
    stopwords: Literal["en", "none"] = "en"
    threads: int | None = Field(None, ge=1)
    batch_size: int = Field(1024, ge=1)

    @field_validator("stemmer")
    @classmethod
    def _known_stemmer(cls, value: str) -> str:
        """``none`` or one of PyStemmer's algorithms (``english``, ``porter``, ``german``...)."""
        import Stemmer  # PyStemmer: a small C extension, cheap to import

        if value != "none" and value not in Stemmer.algorithms():
            raise ValueError(f"unknown stemmer {value!r}; available: none, {', '.join(Stemmer.algorithms())}")
        return value


class Bm25s(Retriever):
    """BM25 with the bm25s library (numpy sparse scores, PyStemmer), cached per corpus and settings."""

    name: ClassVar[str] = "bm25s"
    Options: ClassVar[type[Bm25sOptions]] = Bm25sOptions
    options: Bm25sOptions

    def __init__(self, options: Bm25sOptions | None = None):
        super().__init__(options)
        self.index_path: Path | None = None
        self._model = None
        self._tokenizer = None
        self._doc_ids: list[str] = []

    def index_key(self, dataset: Dataset) -> str:
        """The cache key: every setting baked into the scores, the tokeniser and the corpus fingerprint."""
        o = self.options
        return index_key(
            "bm25s",
            dataset.fingerprint(),
            k1=o.k1,
            b=o.b,
            method=o.method,
            stem=o.stemmer,
            stop=o.stopwords,
            v=LAYOUT_VERSION,
        )

    def index(self, dataset: Dataset) -> None:
        """Load the cached bm25s index of ``dataset``'s corpus, building it first when absent.

        Raises:
            InparsxError: an empty corpus.
        """
        key = self.index_key(dataset)
        folder = index_dir(key)
        self.index_info = load_metadata(folder) or {}
        if not self.index_info:
            with building(key) as tmp:
                self._build(dataset, tmp)
            self.index_info = load_metadata(folder) or {}
        self._load(folder)

    def _new_tokenizer(self):
        from bm25s.tokenization import Tokenizer

        stemmer = None
        if self.options.stemmer != "none":
            import Stemmer

            stemmer = Stemmer.Stemmer(self.options.stemmer)
        return Tokenizer(lower=True, stopwords=None if self.options.stopwords == "none" else "en", stemmer=stemmer)

    def _build(self, dataset: Dataset, folder: Path) -> None:
        bm25s = _bm25s()
        began = time.perf_counter()
        tokenizer, doc_ids, token_ids = self._new_tokenizer(), [], []
        stream = tokenizer.streaming_tokenize(_texts(dataset.docs_iter(), doc_ids), update_vocab=True)
        with progress_task("bm25s index", dataset.docs_count(), "docs") as (bar, task):
            for ids in stream:
                token_ids.append(ids)
                bar.advance(task)
        if not doc_ids:
            raise InparsxError(f"{dataset.name}: the corpus has no documents")
        model = bm25s.BM25(k1=self.options.k1, b=self.options.b, method=self.options.method)
        model.index((token_ids, tokenizer.get_vocab_dict()), show_progress=False)
        model.save(str(folder), show_progress=False)
        tokenizer.save_vocab(str(folder))
        (folder / DOC_IDS).write_text(json.dumps(doc_ids))
        seconds = round(time.perf_counter() - began, 3)
        write_json(
            folder / METADATA,
            {
                "retriever": self.name,
                "docs": len(doc_ids),
                "vocabulary": len(tokenizer.get_vocab_dict()),
                "corpus_fingerprint": dataset.fingerprint(),
                "build_seconds": seconds,
            },
        )
        console.print(f"bm25s: indexed {len(doc_ids):,} documents in {seconds:.1f} s")

    def _load(self, folder: Path) -> None:
        bm25s = _bm25s()
        self._model = bm25s.BM25.load(str(folder), show_progress=False)
        self._tokenizer = self._new_tokenizer()
        self._tokenizer.load_vocab(str(folder))
        self._doc_ids = json.loads((folder / DOC_IDS).read_text())
        self.index_path = folder

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        """Top ``k`` documents per query (fewer when fewer documents share a term with it).

        Returns ``{qid: {docid: score}}``; a query with no term in the index vocabulary gets ``{}``.

        Raises:
            InparsxError: ``index()`` was not called first.
        """
        if self._model is None:
            raise InparsxError("bm25s: call index(dataset) before search()")
        k = min(int(k), len(self._doc_ids))
        run: Run = {qid: {} for qid in queries}
        items = list(queries.items())
        with progress_task("bm25s search", len(items), "queries") as (bar, task):
            for start in range(0, len(items), self.options.batch_size):
                batch = items[start : start + self.options.batch_size]
                run.update(self._search_batch(batch, k))
                bar.advance(task, len(batch))
        return run

    def _search_batch(self, batch: list[tuple[str, str]], k: int) -> Run:
        tokens = self._tokenizer.tokenize(
            [text for _, text in batch], update_vocab=False, return_as="ids", show_progress=False, allow_empty=False
        )
        known = self._model.unique_token_ids_set
        tokens = [[t for t in ids if t in known] for ids in tokens]
        asked = [(qid, ids) for (qid, _), ids in zip(batch, tokens) if ids]
        if not asked:
            return {}
        result = self._model.retrieve(
            [ids for _, ids in asked], k=k, show_progress=False, n_threads=self.options.threads or cpu_count()
        )
        return {
            qid: {self._doc_ids[i]: float(s) for i, s in zip(result.documents[row], result.scores[row]) if s > 0}
            for row, (qid, _) in enumerate(asked)
        }


def _bm25s():
    """The bm25s module, its logger (set to DEBUG by bm25s itself) turned down to warnings."""
    import bm25s

    logging.getLogger("bm25s").setLevel(logging.WARNING)
    return bm25s


def _texts(docs, doc_ids: list[str]):
    """Yield each document's flat text, recording its id (so ids and token lists stay aligned)."""
    for doc in docs:
        doc_ids.append(doc.doc_id)
        yield doc.full_text
