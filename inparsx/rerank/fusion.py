"""Combining a reranker's scores with the first-stage run: below-depth merging, interpolation, RRF.

Every function takes the first-stage run and the reranker's scores of each query's top ``depth`` documents
(``{qid: {docid: score}}``) and returns a full run in which the documents below ``depth`` keep their
first-stage order under every reranked document (the usual reranking contract: a reranker reorders the
candidates it saw and nothing else). Rankings are read as :func:`inparsx.io.write_trec_run` writes them:
by score descending, ties by docid.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def fuse(
    first_stage: Run, reranked: Run, members: Sequence[tuple[Run, float]], method: str = "minmax", k: int = 60
) -> Run:
    """Fusion of several runs over each query's reranked documents, the others below in first-stage order.

    Args:
        first_stage: the run that was reranked (it gives the order of the documents below the reranked ones).
        reranked: a model's scores of each query's reranked documents: its queries and documents are the
            candidates fused (every model of a rerank stage scores the same ones).
        members: ``(run, weight)`` pairs, e.g. ``[(first_stage, 1), (zero_shot, 1), (trained, 1)]``; a run
            lacking a candidate gives it the lowest value (0 after min-max, no RRF term).
        method: ``minmax``: ``sum_i w_i * minmax_i(s)``, each run min-max normalised over the query's
            candidates and the weights divided by their sum (CombSUM of normalised scores, Fox & Shaw 1994,
            with weights: the interpolation of neural rerankers with BM25, Nogueira et al. 2019, for two runs).
            ``rrf``: ``sum_i w_i / (k + rank_i)``, 1-based ranks within the candidates (reciprocal rank fusion,
            Cormack, Clarke & Büttcher, SIGIR 2009, with weights; equal weights of 1 are the paper's RRF).
        k: the RRF constant (60 in the paper).

    Returns:
        ``{qid: {docid: score}}`` for the queries of ``reranked`` that ``first_stage`` has, each with its whole
        first-stage ranking (:func:`with_tail`).

    Raises:
        ValueError: an unknown ``method``, or weights that are not all positive.
    """
    if method not in ("minmax", "rrf"):
        raise ValueError(f"fusion method {method!r}: expected minmax or rrf")
    if not members or any(not weight > 0 for _, weight in members):
        raise ValueError("fusion weights must be positive")
    total = sum(weight for _, weight in members)
    fused: Run = {}
    for qid, candidates in reranked.items():
        if qid not in first_stage:
            continue
        top = dict.fromkeys(candidates, 0.0)
        for run, weight in members:
            scores = {docid: run[qid][docid] for docid in candidates if docid in run.get(qid, {})}
            if method == "minmax":
                for docid, value in minmax(scores).items():
                    top[docid] += weight / total * value
            else:
                for rank, docid in enumerate(ranked(scores), 1):
                    top[docid] += weight / (k + rank)
        fused[qid] = with_tail(top, first_stage[qid])
    return fused


def interpolate(first_stage: Run, reranked: Run, alpha: float) -> Run:
    """Per query, ``alpha * minmax(rerank) + (1 - alpha) * minmax(first stage)`` over the reranked documents
    (both normalised over that same set), the others below in first-stage order.

    The standard score interpolation of neural reranking with BM25 (e.g. Nogueira et al. 2019, "Multi-stage
    document ranking with BERT"; the InPars-light and BEIR-reranking evaluations): :func:`fuse` of the two runs
    with weights ``alpha`` and ``1 - alpha``.
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
    """Reciprocal rank fusion (Cormack, Clarke & Büttcher, SIGIR 2009) of the reranked run and the first
    stage: :func:`fuse` with ``method = "rrf"`` and weights 1, i.e. per reranked document ``1 / (k +
    rank_rerank) + 1 / (k + rank_first_stage)`` (1-based ranks within the reranked set, ``k = 60`` as in the
    paper); the others below in first-stage order."""
    return fuse(first_stage, reranked, [(reranked, 1.0), (first_stage, 1.0)], "rrf", k)
