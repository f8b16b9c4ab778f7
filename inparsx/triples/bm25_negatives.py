"""``bm25-negatives``: negatives drawn uniformly from a query's BM25 top ``depth``, as in InPars.

InPars (Bonifacio et al., SIGIR 2022, section 3) and the InPars toolkit (Abonizio et al., 2023) pick each
synthetic query's negative at random among the top 1000 documents BM25 retrieves for it. The toolkit does
not exclude the query's own source document from that pool, so the positive can come back as its own
negative; here it never can: the positive, and any other document whose text is identical to it (a duplicate
in the corpus), are removed from the pool before drawing. A record's ``positive_text`` (the ``ict`` document
without its query sentence) is the triple's positive text; otherwise the whole source document is.

Draws are reproducible: each query has its own ``random.Random`` seeded with ``"<seed>:<query_id>"``, so a
query's negatives depend neither on the order of the records nor on which other queries were kept.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationError, model_validator

from inparsx.errors import InparsxError, PluginError
from inparsx.plugins import Options, get_registry
from inparsx.progress import progress_task
from inparsx.records import Document, SyntheticQuery
from inparsx.triples.base import Miner, Triple

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


class Bm25NegativesOptions(Options):
    """Options of ``bm25-negatives``.

    ``depth``: BM25 candidates per query to draw from (InPars: 1000). ``n_negatives``: negatives per triple.
    ``retriever``: the registered retriever that ranks the candidates (default ``bm25``, Lucene).
    ``retriever_options``: that retriever's options, e.g. ``{fields = "multifield", k1 = 1.2}``.
    ``chunk_size``: queries searched at a time (bounds memory: ``chunk_size * depth`` scores).
    """

    depth: int = Field(1000, ge=1)
    n_negatives: int = Field(1, ge=1)
    retriever: str = "bm25"
    retriever_options: dict[str, Any] = Field(default_factory=dict)
    chunk_size: int = Field(1000, ge=1)

    @model_validator(mode="after")
    def _check_retriever(self) -> "Bm25NegativesOptions":
        """Reject an unknown retriever or options it does not take when the recipe is validated."""
        try:
            cls = get_registry().get("retrievers", self.retriever)
            cls.Options(**self.retriever_options)
        except PluginError as exc:
            raise ValueError(str(exc)) from None
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise ValueError(f"retriever_options for {self.retriever!r}: {problems}") from None
        return self


def draw_negatives(ranked: Sequence[str], positive: Document, docs: dict[str, Document], n: int,
                   rng: random.Random) -> list[str]:
    """Up to ``n`` docids drawn uniformly without replacement from ``ranked``, never the positive.

    Args:
        ranked: candidate docids (BM25 order; the order only matters for reproducibility).
        positive: the query's source document; it and any document with the same text are never drawn.
        docs: candidate documents by docid (for the duplicate check).
        n: how many to draw.
        rng: the query's random generator.

    Returns:
        The drawn docids, in draw order (fewer than ``n`` when the pool is smaller).
    """
    pool = [docid for docid in ranked if docid != positive.doc_id]
    drawn: list[str] = []
    for docid in rng.sample(pool, len(pool)):
        doc = docs.get(docid)
        if doc is not None and doc.full_text != positive.full_text:
            drawn.append(docid)
            if len(drawn) == n:
                break
    return drawn


class Bm25Negatives(Miner):
    """Negatives drawn uniformly from each synthetic query's BM25 top ``depth``, never its positive."""

    name: ClassVar[str] = "bm25-negatives"
    Options: ClassVar[type[Bm25NegativesOptions]] = Bm25NegativesOptions
    options: Bm25NegativesOptions

    def mine(self, queries: Sequence[SyntheticQuery], ctx: "StageContext") -> Iterator[Triple]:
        """One triple per query whose BM25 list holds at least one document besides its positive.

        Queries are searched ``chunk_size`` at a time with the configured retriever (its cached index reused).
        A query whose list is empty after removing its positive yields no triple; one whose pool is smaller
        than ``n_negatives`` yields a triple with fewer negatives.

        Raises:
            InparsxError: a record names a document that is not in the corpus.
        """
        from inparsx.retrieve.stage import open_retriever

        docs = ctx.dataset.docs()
        _check_positives(queries, docs, ctx.dataset.name)
        retriever = open_retriever(self.options.retriever, self.options.retriever_options, ctx.dataset)
        size = self.options.chunk_size
        with progress_task("BM25 negatives", len(queries), "queries") as (bar, task):
            for start in range(0, len(queries), size):
                chunk = queries[start:start + size]
                run = retriever.search({q.query_id: q.query for q in chunk}, self.options.depth)
                for record in chunk:
                    triple = self._triple(record, run.get(record.query_id, {}), docs, ctx.seed)
                    if triple is not None:
                        yield triple
                bar.advance(task, len(chunk))

    def _triple(self, record: SyntheticQuery, hits: dict[str, float], docs: dict[str, Document],
                seed: int) -> Triple | None:
        ranked = sorted(hits, key=lambda docid: (-hits[docid], docid))
        positive = docs[record.doc_id]
        rng = random.Random(f"{seed}:{record.query_id}")
        negatives = draw_negatives(ranked, positive, docs, self.options.n_negatives, rng)
        if not negatives:
            return None
        pos_text = positive.full_text if record.positive_text is None else record.positive_text
        return Triple(query_id=record.query_id, query=record.query, pos_id=positive.doc_id, pos_text=pos_text, neg_ids=tuple(negatives),
                      neg_texts=tuple(docs[d].full_text for d in negatives))


def _check_positives(queries: Sequence[SyntheticQuery], docs: dict[str, Document], dataset: str) -> None:
    missing = [q.doc_id for q in queries if q.doc_id not in docs]
    if missing:
        raise InparsxError(f"{len(missing)} synthetic queries name documents that are not in {dataset} "
                           f"(e.g. {', '.join(sorted(set(missing))[:5])}): were they generated from another corpus?")
    seen: set[str] = set()
    for q in queries:
        if q.query_id in seen:
            raise InparsxError(f"synthetic query id {q.query_id!r} appears twice; query ids must be unique")
        seen.add(q.query_id)
