"""``bi-encoder``: a sentence-transformers model embeds queries and documents separately; the score is the
cosine similarity of the two embeddings (dense retrieval as a reranker: Sentence-BERT, Reimers & Gurevych
2019; GenQ/GPL domain adaptation, Thakur et al. 2021, Wang et al. 2022).

Document embeddings are cached on disk per model and per corpus (:mod:`inparsx.rerank.embeddings`), and only
the documents actually reranked are encoded, so a second rerank with the same model costs only the queries.
The model's own query/document prompts (e.g. E5's ``query: ``/``passage: ``) are applied through
``encode_query``/``encode_document``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from inparsx.devices import resolve_device
from inparsx.models import resolve_model_name
from inparsx.precision import resolve_dtype
from inparsx.rerank.base import Reranker, RerankerOptions
from inparsx.rerank.embeddings import EmbeddingCache, model_cache_key, text_key


class BiEncoderOptions(RerankerOptions):
    """``bi-encoder`` options. ``max_length``: tokens per text (``None``: the model's own ``max_seq_length``,
    256 for all-MiniLM-L6-v2). ``cache``: keep document embeddings on disk (``false``: recompute each time)."""

    cache: bool = True


class BiEncoderReranker(Reranker):
    """Scores pairs by the cosine similarity of sentence-transformers embeddings, caching document vectors."""

    name: ClassVar[str] = "bi-encoder"
    Options: ClassVar[type[BiEncoderOptions]] = BiEncoderOptions

    corpus_key: str = "any"

    def load(self, model: str) -> None:
        """Load a ``SentenceTransformer`` (hub id or folder) on the device in the chosen dtype."""
        from sentence_transformers import SentenceTransformer

        opts = self.options
        path = resolve_model_name(model)
        self.device = resolve_device(opts.device)
        self.dtype = resolve_dtype(opts.dtype, self.device)
        self.model = SentenceTransformer(path, device=str(self.device), model_kwargs={"dtype": self.dtype})
        if opts.max_length is not None:
            self.model.max_seq_length = opts.max_length
        settings = {"max_length": self.model.max_seq_length, "dtype": str(self.dtype)}
        self.model_key = model_cache_key(path, settings)
        self._caches: dict[str, EmbeddingCache] = {}

    def use_corpus(self, key: str) -> None:
        """Cache document embeddings under corpus ``key`` (a dataset fingerprint)."""
        self.corpus_key = key

    @property
    def cache(self) -> EmbeddingCache:
        """The embedding cache of this model and the current corpus (in memory only when ``cache`` is off)."""
        if self.corpus_key not in self._caches:
            self._caches[self.corpus_key] = (
                EmbeddingCache.for_model(self.model_key, self.corpus_key)
                if self.options.cache
                else EmbeddingCache(None)
            )
        return self._caches[self.corpus_key]

    def score(self, queries: Sequence[str], documents: Sequence[str]) -> list[float]:
        """Cosine similarity of each (query, document) pair, in input order (in [-1, 1])."""
        import numpy as np

        if not queries:
            return []
        unique_queries = list(dict.fromkeys(queries))
        query_vectors = dict(zip(unique_queries, self._encode(unique_queries, document=False)))
        keys = [text_key(d) for d in documents]
        self._fill_cache(keys, documents)
        doc_vectors = self.cache.get(keys)
        stacked = np.stack([query_vectors[q] for q in queries])
        return np.einsum("ij,ij->i", stacked, doc_vectors).astype(float).tolist()

    def _fill_cache(self, keys: list[str], documents: Sequence[str]) -> None:
        missing = set(self.cache.missing(keys))
        self.cache.misses += len(missing)
        self.cache.hits += len(set(keys)) - len(missing)
        if not missing:
            return
        texts = {k: d for k, d in zip(keys, documents) if k in missing}
        self.cache.add(list(texts), self._encode(list(texts.values()), document=True))

    def _encode(self, texts: list[str], document: bool):
        """L2-normalised float32 embeddings (n, dim) of ``texts`` as documents or as queries."""
        import numpy as np

        encode = self.model.encode_document if document else self.model.encode_query
        vectors = encode(
            texts,
            batch_size=self.options.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)
