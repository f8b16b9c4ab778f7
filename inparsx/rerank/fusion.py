"""Combining a reranker's scores with the first-stage run: below-depth merging, interpolation, RRF.

Every function takes the first-stage run and the reranker's scores of each query's top ``depth`` documents
(``{qid: {docid: score}}``) and returns a full run in which the documents below ``depth`` keep their
first-stage order under every reranked document (the usual reranking contract: a reranker reorders the
candidates it saw and nothing else). Rankings are read as :func:`inparsx.io.write_trec_run` writes them:
by score descending, ties by docid.
"""

from __future__ import annotations

from collections.abc import Mapping

from inparsx.records import Run


def ranked(scores: Mapping[str, float]) -> list[str]:
    """Docids by score descending, ties broken by docid (the order of a written TREC run)."""
    return [docid for docid, _ in sorted(scores.items(), key=lambda item: (-item[1], item[0]))]


def top_depth(scores: Mapping[str, float], depth: int) -> list[str]:
    """The first ``depth`` docids of a query's first-stage ranking."""
    return ranked(scores)[:depth]


def minmax(scores: Mapping[str, float]) -> dict[str, float]:
    """Min-max normalisation to [0, 1]: ``(s - min) / (max - min)``; all zeros when every score is equal."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {docid: (s - low) / span if span > 0 else 0.0 for docid, s in scores.items()}


def with_tail(top: Mapping[str, float], first_stage: Mapping[str, float]) -> dict[str, float]:
    """``top`` plus every first-stage document it lacks, scored below ``min(top)`` in first-stage order.

    The tail's scores are ``min(top) - 1, min(top) - 2, ...`` so that they stay distinct once written with
    six decimals.
    """
    merged = dict(top)
    floor = min(top.values()) if top else 0.0
    tail = [docid for docid in ranked(first_stage) if docid not in merged]
    merged.update({docid: floor - rank for rank, docid in enumerate(tail, 1)})
    return merged


def merge_reranked(first_stage: Run, reranked: Run) -> Run:
    """The reranked run: each query's rescored documents by their new scores, the others below (see module).

    Queries of ``first_stage`` that ``reranked`` lacks are left out (they were not reranked).
    """
    return {qid: with_tail(scores, first_stage[qid]) for qid, scores in reranked.items() if qid in first_stage}


def interpolate(first_stage: Run, reranked: Run, alpha: float) -> Run:
    """Per query, ``alpha * minmax(rerank) + (1 - alpha) * minmax(first stage)`` over the reranked documents
    (both normalised over that same set), the others below in first-stage order.

    The standard score interpolation of neural reranking with BM25 (e.g. Nogueira et al. 2019, "Multi-stage
    document ranking with BERT"; the InPars-light and BEIR-reranking evaluations).
    """
    fused: Run = {}
    for qid, scores in reranked.items():
        if qid not in first_stage:
            continue
        neural = minmax(scores)
        lexical = minmax({docid: first_stage[qid][docid] for docid in scores if docid in first_stage[qid]})
        top = {d: alpha * neural[d] + (1 - alpha) * lexical.get(d, 0.0) for d in scores}
        fused[qid] = with_tail(top, first_stage[qid])
    return fused


def rrf(first_stage: Run, reranked: Run, k: int = 60) -> Run:
    """Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009): per query, each reranked document
    scores ``1 / (k + rank_rerank) + 1 / (k + rank_first_stage)`` (1-based ranks within the reranked set,
    ``k = 60`` as in the paper); the others below in first-stage order."""
    fused: Run = {}
    for qid, scores in reranked.items():
        if qid not in first_stage:
            continue
        lexical = ranked({docid: first_stage[qid][docid] for docid in scores if docid in first_stage[qid]})
        first_rank = {docid: rank for rank, docid in enumerate(lexical, 1)}
        top = {docid: 1.0 / (k + rank) + (1.0 / (k + first_rank[docid]) if docid in first_rank else 0.0)
               for rank, docid in enumerate(ranked(scores), 1)}
        fused[qid] = with_tail(top, first_stage[qid])
    return fused
