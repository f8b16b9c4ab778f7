"""Judging synthetic queries against their source document, without labels: the signal CPO pairs and DSPy
metrics are built from.

Three judges (option ``judge``):

- ``reranker``: a pretrained reranker's score of (query, source document), as InPars-v2's filter
  (Jeronymo et al., 2023); unbounded, higher is better.
- ``consistency``: the reciprocal rank of the source document among the BM25 top ``depth`` for the query
  (0 when it is not there), the round-trip signal of InPars-light (Boytsov et al., TMLR 2024).
- ``mix``: ``judge_weight x`` the reranker score min-max normalised over the records judged together
  ``+ (1 - judge_weight) x`` the reciprocal rank (InPars+ mixes a semantic and a BM25 signal, 0.5 each).

The reranker reuses the ``reranker`` filter's code (resumable scores), BM25 the ``consistency`` filter's.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, model_validator

from inparsx.io import ResumableJsonl
from inparsx.plugins import Options
from inparsx.records import SyntheticQuery

if TYPE_CHECKING:
    from inparsx.tune.base import TuneContext


class JudgeOptions(Options):
    """Options of a judge (see the module docstring). ``judge_model``: the reranker checkpoint (required for
    ``reranker`` and ``mix``); ``judge_reranker``: a registered reranker (``cross-encoder``, ``monot5``...);
    ``judge_options``: more of its options (e.g. ``{max_length = 256}``); ``depth``, ``retriever``,
    ``retriever_options``: BM25 for ``consistency`` and ``mix``."""

    judge: Literal["reranker", "consistency", "mix"] = "reranker"
    judge_reranker: str = "cross-encoder"
    judge_model: str | None = None
    judge_options: dict[str, Any] = Field(default_factory=dict)
    judge_batch_size: int = Field(32, ge=1)
    judge_weight: float = Field(0.5, ge=0, le=1)
    depth: int = Field(100, ge=1)
    retriever: str = "bm25"
    retriever_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check_judge(self) -> "JudgeOptions":
        from inparsx.filter.reranker_filter import check_component, check_reranker

        if self.judge != "consistency":
            if not self.judge_model:
                raise ValueError(f"judge = {self.judge!r} needs judge_model (the reranker's checkpoint)")
            check_reranker(self.judge_reranker, self.judge_options)
        if self.judge != "reranker":
            check_component("retrievers", self.retriever, self.retriever_options, "retriever_options")
        return self


def judge_records(records: Sequence[SyntheticQuery], options: JudgeOptions, ctx: "TuneContext",
                  store: Path) -> dict[str, float]:
    """The judge's score of every record, by ``query_id`` (records whose document is missing are left out).

    ``store``: the resumable file of reranker scores (``<store>``), kept so an interrupted tuner resumes.
    """
    docs = {d.doc_id: d.full_text for d in ctx.dataset.get_docs({r.doc_id for r in records}).values()}
    present = [r for r in records if r.doc_id in docs]
    if not present:
        return {}
    reranked = reranker_scores(present, docs, options, ctx, store) if options.judge != "consistency" else {}
    if options.judge == "reranker":
        return reranked
    ranks = consistency_scores(present, options, ctx)
    if options.judge == "consistency":
        return ranks
    low, high = min(reranked.values()), max(reranked.values())
    span = (high - low) or 1.0
    weight = options.judge_weight
    return {qid: weight * (reranked[qid] - low) / span + (1 - weight) * ranks[qid] for qid in ranks}


def reranker_scores(records: Sequence[SyntheticQuery], docs: dict[str, str], options: JudgeOptions,
                    ctx: "TuneContext", store: Path) -> dict[str, float]:
    """The judge reranker's score of each (query, source document), resumable through ``store``."""
    from inparsx.filter.reranker_filter import build_reranker, score_records

    reranker = build_reranker(options.judge_reranker, str(options.judge_model), options.judge_batch_size,
                              options.judge_options, ctx)
    meta = {"judge": options.judge_reranker, "model": options.judge_model, **options.judge_options}
    try:
        return score_records(reranker, records, docs, ResumableJsonl(store), meta, f"judge: {options.judge_reranker}")
    finally:
        reranker.unload()


def consistency_scores(records: Sequence[SyntheticQuery], options: JudgeOptions, ctx: "TuneContext") -> dict[str, float]:
    """1 / rank of each record's source document in the BM25 top ``depth`` for its query (0 when absent)."""
    from inparsx.filter.consistency import ConsistencyFilter

    bm25 = ConsistencyFilter(ConsistencyFilter.Options(by="bm25", depth=options.depth, retriever=options.retriever,
                                                       retriever_options=options.retriever_options))
    decisions = bm25.apply(records, ctx)
    return {r.query_id: 1.0 / d.score if d.score else 0.0 for r, d in zip(records, decisions)}
