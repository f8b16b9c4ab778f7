"""Judging synthetic queries against their source document, without labels: the signal CPO pairs and DSPy
metrics are built from.

The judge is the tuner's ``[tune.judge]`` table (:class:`JudgeOptions`), one of three (``by``):

- ``reranker``: a pretrained reranker's score of (query, source document), as InPars-v2's filter
  (Jeronymo et al., 2023); unbounded, higher is better. The reranker is ``[tune.judge.reranker]``.
- ``consistency``: the reciprocal rank of the source document among the top ``depth`` of the retriever
  (``[tune.judge.retriever]``, default BM25) for the query (0 when it is not there), the round-trip signal of
  InPars-light (Boytsov et al., TMLR 2024).
- ``mix``: ``weight x sigmoid(reranker score) + (1 - weight) x`` the reciprocal rank (InPars+ mixes a
  semantic and a BM25 signal, 0.5 each), both in [0, 1].

Scoring is :mod:`inparsx.scoring` (resumable scores), retrieval :mod:`inparsx.retrieval`.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SerializerFunctionWrapHandler, model_serializer, model_validator

from inparsx.io import ResumableJsonl
from inparsx.plugins import Options
from inparsx.records import SyntheticQuery
from inparsx.rerank.fusion import ranked
from inparsx.rerank.spec import RerankerSpec
from inparsx.retrieval import open_spec
from inparsx.scoring import load_scorer, records_digest, score_records, scorer_models
from inparsx.specs import RecipeDeprecationWarning, RetrieverSpec, default_retriever

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef


class JudgeOptions(Options):
    """The judge, ``[tune.judge]`` (see the module docstring). ``by``: ``reranker`` | ``consistency`` |
    ``mix``. ``reranker`` (``[tune.judge.reranker]``, required for ``reranker`` and ``mix``): a registered
    reranker, its ``model`` and options, e.g. ``{use = "bi-encoder", model = "...", max_length = 256}``.
    ``weight``: the reranker's share in ``mix``. ``depth``: the retriever's candidates per query (BM25 judging
    depth) and ``retriever`` (``[tune.judge.retriever]``, default ``bm25``), for ``consistency`` and ``mix``."""

    by: Literal["reranker", "consistency", "mix"] = "reranker"
    reranker: RerankerSpec | None = None
    weight: float = Field(0.5, ge=0, le=1)
    depth: int = Field(100, ge=1)
    retriever: RetrieverSpec = Field(default_factory=default_retriever)

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without ``None`` values (no reranker), so that the filled recipe is TOML."""
        return {key: value for key, value in handler(self).items() if value is not None}

    @model_validator(mode="after")
    def _check_judge(self) -> JudgeOptions:
        if self.by != "consistency" and (self.reranker is None or self.reranker.model is None):
            raise ValueError(
                f"reranker: by = {self.by!r} needs a reranker and its model (a [tune.judge.reranker] "
                "table: use = ..., model = ...)"
            )
        return self


OLD_JUDGE = {"judge": "by", "judge_weight": "weight", "depth": "depth"}
OLD_RERANKER = {"judge_reranker": "use", "judge_model": "model", "judge_batch_size": "batch_size", "judge_options": "*"}
OLD_RETRIEVER = {"retriever": "use", "retriever_options": "*"}
"""The old spelling: the judge's keys flattened into ``[tune]`` -> their place in ``[tune.judge]``."""


def fold_judge(data: Any) -> Any:
    """The old flat judge keys of a ``[tune]`` table (``judge = "mix"``, ``judge_reranker``, ``judge_model``,
    ``judge_options``, ``judge_batch_size``, ``judge_weight``, ``depth``, ``retriever``,
    ``retriever_options``) -> a ``judge`` table, with one :class:`~inparsx.specs.RecipeDeprecationWarning`;
    ``judge_reranker`` defaults to ``cross-encoder`` as it did. A ``judge`` table given too is kept, the old
    keys written over it (a ``--set`` of an old key over a recipe in the new spelling)."""
    if not isinstance(data, dict):
        return data
    old = [
        k
        for k in (*OLD_JUDGE, *OLD_RERANKER, *OLD_RETRIEVER)
        if k in data and not (k == "judge" and isinstance(data[k], dict))
    ]
    if not old:
        return data
    data = dict(data)
    values = {key: data.pop(key) for key in old}
    judge: dict[str, Any] = dict(data["judge"]) if isinstance(data.get("judge"), dict) else {}
    judge.update({OLD_JUDGE[k]: v for k, v in values.items() if k in OLD_JUDGE and v is not None})
    for target, spec, default in (
        ("reranker", OLD_RERANKER, {"use": "cross-encoder"}),
        ("retriever", OLD_RETRIEVER, {"use": "bm25"}),
    ):
        given = {k: v for k, v in values.items() if k in spec and v is not None}
        if given:
            table = {**default, **(judge[target] if isinstance(judge.get(target), dict) else {})}
            for key, value in given.items():
                table.update(value if spec[key] == "*" else {spec[key]: value})
            judge[target] = table
    warnings.warn(
        RecipeDeprecationWarning(
            f"{', '.join(old)}: the old spelling of the judge; write a [tune.judge] table instead (by = ..., weight, "
            "depth) with [tune.judge.reranker] (use, model and its options) and [tune.judge.retriever]",
            old[-1],
        ),
        stacklevel=2,
    )
    data["judge"] = judge
    return data


class JudgedOptions(Options):
    """Options of a tuner that judges synthetic queries (``cpo``, ``dspy``): ``judge``, the ``[tune.judge]``
    table (:class:`JudgeOptions`). The old flat keys are still read (:func:`fold_judge`)."""

    judge: JudgeOptions

    @model_validator(mode="before")
    @classmethod
    def _old_spelling(cls, data: Any) -> Any:
        return fold_judge(data)


def judge_models(options: JudgeOptions) -> list[ModelRef]:
    """The judge's reranker model (none for ``by = "consistency"``), as its reranker loads it, for the
    pre-flight check."""
    if options.by == "consistency" or options.reranker is None:
        return []
    return scorer_models(options.reranker, "judge.reranker.model", "judge")


class Judge:
    """A judge ready to score (query, source document) pairs many times: the reranker is loaded once, on
    first use, and unloaded by :meth:`close`.

    Args:
        options: the judge options.
        ctx: a tune context (the dataset view, the seed, ``resolve_model``).
    """

    def __init__(self, options: JudgeOptions, ctx: ComponentContext):
        self.options, self.ctx = options, ctx
        self._reranker: Any = None

    def score(self, records: Sequence[SyntheticQuery], store: Path | None = None) -> dict[str, float]:
        """The judge's score of every record, by ``query_id`` (records whose document is missing are left
        out). ``store``: a resumable file for the reranker's scores (``None``: not kept)."""
        docs = {d.doc_id: d.full_text for d in self.ctx.dataset.get_docs({r.doc_id for r in records}).values()}
        present = [r for r in records if r.doc_id in docs]
        if not present:
            return {}
        judge = self.options.by
        reranked = self.reranker_scores(present, docs, store) if judge != "consistency" else {}
        if judge == "reranker":
            return reranked
        ranks = self.consistency_scores(present)
        if judge == "consistency":
            return ranks
        weight = self.options.weight
        return {qid: weight * _sigmoid(reranked[qid]) + (1 - weight) * ranks[qid] for qid in ranks}

    def reranker_scores(
        self, records: Sequence[SyntheticQuery], docs: dict[str, str], store: Path | None
    ) -> dict[str, float]:
        """The judge reranker's score of each (query, source document); resumable through ``store``."""
        spec = self.options.reranker
        assert spec is not None  # JudgeOptions: by = reranker or mix has one
        if self._reranker is None:
            self._reranker = load_scorer(spec, self.ctx)
        if store is None:
            values = self._reranker.score([r.query for r in records], [docs[r.doc_id] for r in records])
            return {r.query_id: float(v) for r, v in zip(records, values)}
        meta = {"judge": spec.model_dump(), "records": records_digest(records), "key": self.ctx.cache_key}
        return score_records(self._reranker, records, docs, ResumableJsonl(store), meta, f"judge: {spec.use}")

    def consistency_scores(self, records: Sequence[SyntheticQuery]) -> dict[str, float]:
        """1 / rank of each record's source document in the retriever's top ``depth`` for its query (0 when
        absent)."""
        depth = self.options.depth
        run = open_spec(self.options.retriever, self.ctx).search({r.query_id: r.query for r in records}, depth)
        scores = {}
        for record in records:
            order = ranked(run.get(record.query_id, {}))[:depth]
            scores[record.query_id] = 1.0 / (order.index(record.doc_id) + 1) if record.doc_id in order else 0.0
        return scores

    def close(self) -> None:
        """Unload the reranker."""
        if self._reranker is not None:
            self._reranker.unload()
            self._reranker = None


def judge_records(
    records: Sequence[SyntheticQuery], options: JudgeOptions, ctx: ComponentContext, store: Path | None = None
) -> dict[str, float]:
    """:meth:`Judge.score` with a judge built and closed for this one call."""
    judge = Judge(options, ctx)
    try:
        return judge.score(records, store)
    finally:
        judge.close()


def _sigmoid(value: float) -> float:
    return 0.5 * (1.0 + math.tanh(value / 2.0))
