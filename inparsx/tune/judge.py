"""Judging synthetic queries against their source document, without labels: the signal CPO pairs and DSPy
metrics are built from.

Three judges (option ``judge``):

- ``reranker``: a pretrained reranker's score of (query, source document), as InPars-v2's filter
  (Jeronymo et al., 2023); unbounded, higher is better.
- ``consistency``: the reciprocal rank of the source document among the BM25 top ``depth`` for the query
  (0 when it is not there), the round-trip signal of InPars-light (Boytsov et al., TMLR 2024).
- ``mix``: ``judge_weight x sigmoid(reranker score) + (1 - judge_weight) x`` the reciprocal rank (InPars+
  mixes a semantic and a BM25 signal, 0.5 each), both in [0, 1].

The reranker reuses the ``reranker`` filter's code (resumable scores), BM25 the ``consistency`` filter's.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from inparsx.io import ResumableJsonl
from inparsx.plugins import Options, registry_from
from inparsx.records import SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef


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
    def _check_judge(self, info: ValidationInfo) -> "JudgeOptions":
        from inparsx.rerank.base import check_scorer_options
        from inparsx.retrieve.base import check_retriever

        registry = registry_from(info)
        if self.judge != "consistency":
            if not self.judge_model:
                raise ValueError(f"judge = {self.judge!r} needs judge_model (the reranker's checkpoint)")
            check_scorer_options(self.judge_reranker, self.judge_options,
                                 {"model": "judge_model", "batch_size": "judge_batch_size"}, "judge_options", "judge",
                                 registry)
        if self.judge != "reranker":
            check_retriever(self.retriever, self.retriever_options, registry)
        return self


def judge_models(options: JudgeOptions) -> list["ModelRef"]:
    """The judge's reranker model (none for ``judge = "consistency"``), as its reranker loads it, for the
    pre-flight check."""
    from inparsx.rerank.base import scorer_model_ref

    if options.judge == "consistency" or not options.judge_model:
        return []
    return scorer_model_ref(options.judge_reranker, options.judge_options, options.judge_model, "judge_model",
                            "judge")


class Judge:
    """A judge ready to score (query, source document) pairs many times: the reranker is loaded once, on
    first use, and unloaded by :meth:`close`.

    Args:
        options: the judge options.
        ctx: a tune context (the dataset view, the seed, ``resolve_model``).
    """

    def __init__(self, options: JudgeOptions, ctx: "ComponentContext"):
        self.options, self.ctx = options, ctx
        self._reranker: Any = None

    def score(self, records: Sequence[SyntheticQuery], store: Path | None = None) -> dict[str, float]:
        """The judge's score of every record, by ``query_id`` (records whose document is missing are left
        out). ``store``: a resumable file for the reranker's scores (``None``: not kept)."""
        docs = {d.doc_id: d.full_text for d in self.ctx.dataset.get_docs({r.doc_id for r in records}).values()}
        present = [r for r in records if r.doc_id in docs]
        if not present:
            return {}
        judge = self.options.judge
        reranked = self.reranker_scores(present, docs, store) if judge != "consistency" else {}
        if judge == "reranker":
            return reranked
        ranks = self.consistency_scores(present)
        if judge == "consistency":
            return ranks
        weight = self.options.judge_weight
        return {qid: weight * _sigmoid(reranked[qid]) + (1 - weight) * ranks[qid] for qid in ranks}

    def reranker_scores(self, records: Sequence[SyntheticQuery], docs: dict[str, str],
                        store: Path | None) -> dict[str, float]:
        """The judge reranker's score of each (query, source document); resumable through ``store``."""
        from inparsx.filter.reranker_filter import build_reranker, records_digest, score_records

        opts = self.options
        if self._reranker is None:
            self._reranker = build_reranker(opts.judge_reranker, str(opts.judge_model), opts.judge_batch_size,
                                            opts.judge_options, self.ctx)
        if store is None:
            values = self._reranker.score([r.query for r in records], [docs[r.doc_id] for r in records])
            return {r.query_id: float(v) for r, v in zip(records, values)}
        meta = {"judge": opts.judge_reranker, "model": opts.judge_model, **opts.judge_options,
                "records": records_digest(records), "key": self.ctx.cache_key}
        return score_records(self._reranker, records, docs, ResumableJsonl(store), meta, f"judge: {opts.judge_reranker}")

    def consistency_scores(self, records: Sequence[SyntheticQuery]) -> dict[str, float]:
        """1 / rank of each record's source document in the BM25 top ``depth`` for its query (0 when absent),
        through the ``consistency`` filter's code."""
        from inparsx.filter.consistency import ConsistencyFilter

        opts = self.options
        bm25 = ConsistencyFilter(ConsistencyFilter.Options(by="bm25", depth=opts.depth, retriever=opts.retriever,
                                                           retriever_options=opts.retriever_options))
        decisions = bm25.apply(records, self.ctx)
        return {r.query_id: 1.0 / d.score if d.score else 0.0 for r, d in zip(records, decisions)}

    def close(self) -> None:
        """Unload the reranker."""
        if self._reranker is not None:
            self._reranker.unload()
            self._reranker = None


def judge_records(records: Sequence[SyntheticQuery], options: JudgeOptions, ctx: "ComponentContext",
                  store: Path | None = None) -> dict[str, float]:
    """:meth:`Judge.score` with a judge built and closed for this one call."""
    judge = Judge(options, ctx)
    try:
        return judge.score(records, store)
    finally:
        judge.close()


def _sigmoid(value: float) -> float:
    return 0.5 * (1.0 + math.tanh(value / 2.0))
