"""``bm25-negatives``: negatives drawn uniformly from a query's BM25 top ``depth``, as in InPars.

InPars (Bonifacio et al., SIGIR 2022, section 3) and the InPars toolkit (Abonizio et al., 2023) pick each
synthetic query's negative at random among the top 1000 documents BM25 retrieves for it. The toolkit does
not exclude the query's own source document from that pool, so the positive can come back as its own
negative; here it never can. Nor can any other document relevant to the same query: a query may have several
positives (a gold query judged relevant to two documents; one synthetic query text written for two
documents), so every document of a record with the same query text (compared case-folded, spaces
collapsed) and every document of its ``extra["judged_relevant"]`` (:meth:`SyntheticQuery.judged_relevant`)
is removed from the pool, with any document whose text is identical to one of them (a duplicate in the
corpus). A record's ``positive_text`` (the ``ict`` document without its query sentence) is the triple's
positive text; otherwise the whole source document is.

With a ``teacher`` (``[triples.teacher]``: a registered reranker, e.g. the zero-shot bi-encoder), every triple also
carries teacher
scores for its positive and negatives, for MarginMSE training (GPL, Wang et al. 2022, labels its triples with a
cross-encoder). The teacher is the fusion the rerank stage uses, the model interpolated with BM25 at
``teacher_alpha``, expressed in the model's own units (see :func:`teacher_scores`), over the positive and the
BM25 candidates that are not relevant to the query (the other positives are neither scored nor normalised
over).

Draws are reproducible: each query has its own ``random.Random`` seeded with ``"<seed>:<query_id>"``, so a
query's negatives depend neither on the order of the records nor on which other queries were kept.
"""

from __future__ import annotations

import random
from collections.abc import Collection, Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from inparsx.errors import InparsxError
from inparsx.plugins import Options
from inparsx.progress import progress_task
from inparsx.records import Document, SyntheticQuery
from inparsx.rerank.spec import RerankerSpec
from inparsx.retrieval import open_spec
from inparsx.scoring import load_scorer, scorer_models
from inparsx.specs import RetrieverSpec, default_retriever, fold_legacy

__all__ = ["Bm25Negatives", "Bm25NegativesOptions", "default_retriever", "draw_negatives", "teacher_scores"]
from inparsx.triples.base import Miner, Triple

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef


class Bm25NegativesOptions(Options):
    """Options of ``bm25-negatives``.

    ``depth``: BM25 candidates per query to draw from (InPars: 1000). ``n_negatives``: negatives per triple.
    ``retriever`` (``[triples.retriever]``): the registered retriever that ranks the candidates and its options,
    e.g. ``{use = "bm25", fields = "multifield", k1 = 1.2}`` (default ``bm25``, Lucene; not ``k``: the search
    depth is ``depth``). ``chunk_size``: queries searched at a time (bounds memory: ``chunk_size * depth``
    scores). ``teacher`` (``[triples.teacher]``): a registered reranker that scores each triple, its
    ``model`` (hub id, folder or ``@stage``) and its other options, e.g. ``{use = "bi-encoder", model = "...",
    max_length = 128}`` (``None``: no scores). ``teacher_alpha``: weight of the teacher model against BM25, as
    the rerank stage's ``interpolate``.

    The old spelling (``retriever_options``; ``teacher``, ``teacher_model``, ``teacher_options``) is still read,
    with a deprecation warning.
    """

    legacy_keys: ClassVar[tuple[str, ...]] = ("retriever_options", "teacher_model", "teacher_options")
    depth: int = Field(1000, ge=1)
    n_negatives: int = Field(1, ge=1)
    retriever: RetrieverSpec = Field(default_factory=default_retriever)
    chunk_size: int = Field(1000, ge=1)
    teacher: RerankerSpec | None = None
    teacher_alpha: float = Field(0.5, gt=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _old_spelling(cls, data: Any) -> Any:
        """``retriever``/``retriever_options`` and ``teacher``/``teacher_model``/``teacher_options`` -> the
        ``retriever`` and ``teacher`` tables."""
        data = fold_legacy(
            data,
            "retriever",
            {"retriever": "use", "retriever_options": "*"},
            "[triples.retriever]",
            defaults={"use": "bm25"},
        )
        return fold_legacy(
            data, "teacher", {"teacher": "use", "teacher_model": "model", "teacher_options": "*"}, "[triples.teacher]"
        )

    @model_validator(mode="after")
    def _teacher_model(self) -> Bm25NegativesOptions:
        """A teacher needs the checkpoint it scores with."""
        if self.teacher is not None and self.teacher.model is None:
            raise ValueError('teacher: needs model (the teacher reranker\'s checkpoint), e.g. model = "@train"')
        return self


def teacher_scores(model_scores: dict[str, float], bm25: dict[str, float], alpha: float) -> dict[str, float]:
    """The fused teacher, in the model's units: ``s + w * span * minmax(bm25)`` with ``w = (1 - alpha) / alpha``
    and ``span = max(s) - min(s)`` over the query's candidates.

    It ranks the candidates exactly as the rerank stage's interpolation ``alpha * minmax(s) + (1 - alpha) *
    minmax(bm25)`` does (it is that score times ``span / alpha``, plus a constant), but its margins are on the
    model's own scale, so a student initialised from the teacher model starts with the model's margins and
    only has to learn BM25's share. A candidate without a BM25 score gets the lowest.

    Args:
        model_scores: the teacher model's score of every candidate (positive included).
        bm25: BM25 scores of the candidates BM25 retrieved.
        alpha: the model's weight, in (0, 1].
    """
    from inparsx.rerank.fusion import minmax

    span = max(model_scores.values()) - min(model_scores.values()) if model_scores else 0.0
    lexical = minmax({d: bm25[d] for d in model_scores if d in bm25})
    weight = (1 - alpha) / alpha
    return {d: s + weight * span * lexical.get(d, 0.0) for d, s in model_scores.items()}


def query_key(text: str) -> str:
    """The form in which two records' queries are compared as the same query: case-folded, runs of white space
    collapsed to one space."""
    return " ".join(text.casefold().split())


def relevant_documents(queries: Sequence[SyntheticQuery]) -> dict[str, set[str]]:
    """``{query_id: docids}``: the documents relevant to each record's query, i.e. those of every record with
    the same query text (:func:`query_key`) and their ``extra["judged_relevant"]``
    (:meth:`~inparsx.records.SyntheticQuery.judged_relevant`); the record's own ``doc_id`` included."""
    by_text: dict[str, set[str]] = {}
    for record in queries:
        by_text.setdefault(query_key(record.query), set()).update(record.judged_relevant())
    return {record.query_id: by_text[query_key(record.query)] for record in queries}


def draw_negatives(
    ranked: Sequence[str],
    positive: Document,
    docs: dict[str, Document],
    n: int,
    rng: random.Random,
    relevant: Collection[str] = (),
) -> list[str]:
    """Up to ``n`` docids drawn uniformly without replacement from ``ranked``, never the positive nor another
    document relevant to the query.

    Args:
        ranked: candidate docids (BM25 order; the order only matters for reproducibility).
        positive: the query's source document; it and any document with the same text are never drawn.
        docs: documents by docid (for the duplicate check).
        n: how many to draw.
        rng: the query's random generator.
        relevant: other docids relevant to the query (see :func:`relevant_documents`); they, and any
            document whose text is identical to one of theirs, are never drawn either.

    Returns:
        The drawn docids, in draw order (fewer than ``n`` when the pool is smaller).
    """
    excluded = {positive.doc_id, *relevant}
    texts = {positive.full_text} | {docs[d].full_text for d in relevant if d in docs}
    pool = [docid for docid in ranked if docid not in excluded]
    drawn: list[str] = []
    for docid in rng.sample(pool, len(pool)):
        doc = docs.get(docid)
        if doc is not None and doc.full_text not in texts:
            drawn.append(docid)
            if len(drawn) == n:
                break
    return drawn


class Bm25Negatives(Miner):
    """Negatives drawn uniformly from each synthetic query's BM25 top ``depth``, never a document relevant to it."""

    name: ClassVar[str] = "bm25-negatives"
    Options: ClassVar[type[Bm25NegativesOptions]] = Bm25NegativesOptions
    options: Bm25NegativesOptions

    def models(self) -> list[ModelRef]:
        """``teacher.model``, as the ``teacher`` reranker loads it (none without a teacher)."""
        if self.options.teacher is None:
            return []
        return scorer_models(self.options.teacher, "teacher.model", "teacher")

    def mine(self, queries: Sequence[SyntheticQuery], ctx: ComponentContext) -> Iterator[Triple]:
        """One triple per query whose BM25 list holds at least one document not relevant to it (see
        :func:`relevant_documents`).

        Queries are searched ``chunk_size`` at a time with the configured retriever (its cached index reused).
        A query whose list is empty after removing its positive yields no triple; one whose pool is smaller
        than ``n_negatives`` yields a triple with fewer negatives.

        Raises:
            InparsxError: a record names a document that is not in the corpus.
        """
        docs = ctx.dataset.docs()
        _check_positives(queries, docs, ctx.dataset.name)
        retriever = open_spec(self.options.retriever, ctx)
        teacher = load_scorer(self.options.teacher, ctx) if self.options.teacher is not None else None
        relevant = relevant_documents(queries)
        size = self.options.chunk_size
        try:
            with progress_task("BM25 negatives", len(queries), "queries") as (bar, task):
                for start in range(0, len(queries), size):
                    chunk = queries[start : start + size]
                    run = retriever.search({q.query_id: q.query for q in chunk}, self.options.depth)
                    triples = [
                        t
                        for t in (
                            self._triple(r, run.get(r.query_id, {}), docs, ctx.seed, relevant[r.query_id])
                            for r in chunk
                        )
                        if t is not None
                    ]
                    yield from triples if teacher is None else self._scored(triples, run, docs, teacher, relevant)
                    bar.advance(task, len(chunk))
        finally:
            if teacher is not None:
                teacher.unload()

    def _scored(
        self,
        triples: list[Triple],
        run: dict[str, dict[str, float]],
        docs: dict[str, Document],
        teacher: Any,
        relevant: dict[str, set[str]],
        group: int = 64,
    ) -> Iterator[Triple]:
        """``triples`` with teacher scores (:func:`teacher_scores` over each positive and its query's BM25
        candidates that are not relevant to it), scored ``group`` queries per call so that queries are encoded
        in batches."""
        import dataclasses

        for start in range(0, len(triples), group):
            pairs: list[tuple[Triple, str, str]] = []
            for triple in triples[start : start + group]:
                hits, skip = run.get(triple.query_id, {}), relevant.get(triple.query_id, set()) | {triple.pos_id}
                pairs += [(triple, d, docs[d].full_text) for d in hits if d in docs and d not in skip]
                pairs.append((triple, triple.pos_id, triple.pos_text))
            scores = teacher.score([t.query for t, _, _ in pairs], [text for _, _, text in pairs])
            raw: dict[str, dict[str, float]] = {}
            for (triple, docid, _), score in zip(pairs, scores):
                raw.setdefault(triple.query_id, {})[docid] = score
            for triple in triples[start : start + group]:
                fused = teacher_scores(raw[triple.query_id], run.get(triple.query_id, {}), self.options.teacher_alpha)
                yield dataclasses.replace(
                    triple, pos_score=fused[triple.pos_id], neg_scores=tuple(fused[d] for d in triple.neg_ids)
                )

    def _triple(
        self,
        record: SyntheticQuery,
        hits: dict[str, float],
        docs: dict[str, Document],
        seed: int,
        relevant: Collection[str] = (),
    ) -> Triple | None:
        ranked = sorted(hits, key=lambda docid: (-hits[docid], docid))
        positive = docs[record.doc_id]
        rng = random.Random(f"{seed}:{record.query_id}")
        negatives = draw_negatives(ranked, positive, docs, self.options.n_negatives, rng, relevant)
        if not negatives:
            return None
        pos_text = positive.full_text if record.positive_text is None else record.positive_text
        return Triple(
            query_id=record.query_id,
            query=record.query,
            pos_id=positive.doc_id,
            pos_text=pos_text,
            neg_ids=tuple(negatives),
            neg_texts=tuple(docs[d].full_text for d in negatives),
        )


def _check_positives(queries: Sequence[SyntheticQuery], docs: dict[str, Document], dataset: str) -> None:
    missing = [q.doc_id for q in queries if q.doc_id not in docs]
    if missing:
        raise InparsxError(
            f"{len(missing)} synthetic queries name documents that are not in {dataset} "
            f"(e.g. {', '.join(sorted(set(missing))[:5])}): were they generated from another corpus?"
        )
    seen: set[str] = set()
    for q in queries:
        if q.query_id in seen:
            raise InparsxError(f"synthetic query id {q.query_id!r} appears twice; query ids must be unique")
        seen.add(q.query_id)
