"""``reranker``: keep the synthetic queries that a pretrained reranker finds most relevant to their source
document (InPars-v2, Jeronymo et al. 2023: the top 10,000 of 100,000 by ``castorini/monot5-3b-msmarco-10k``'s
P(true)). Scores are appended to ``<stage dir>/reranker-scores.jsonl`` batch by batch, so an interrupted
filter resumes without rescoring.

The scoring itself is :mod:`inparsx.scoring` (``build_reranker``, ``score_records`` and ``records_digest`` are
still importable from here)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, model_validator

from inparsx.filter.base import Decision, Filter
from inparsx.filter.rules import MISSING_SOURCE, top_k_decisions
from inparsx.io import ResumableJsonl
from inparsx.plugins import Options
from inparsx.records import SyntheticQuery
from inparsx.rerank.spec import RerankerSpec
from inparsx.scoring import build_reranker, load_scorer, records_digest, score_records, scorer_models
from inparsx.specs import fold_legacy

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef

__all__ = ["RerankerFilter", "RerankerFilterOptions", "build_reranker", "records_digest", "score_records"]

FILTER_OWN = {"model": "model", "batch_size": "batch_size"}
"""Old spelling: the ``reranker_options`` keys that the filter set from its own options (read by
:func:`inparsx.rerank.base.check_scorer_options`)."""

DEFAULT_RERANKER: dict[str, Any] = {"use": "monot5", "model": "castorini/monot5-3b-msmarco-10k", "batch_size": 16}
"""InPars-v2's reranker: monoT5-3B (MS MARCO 10k steps), 16 pairs per forward pass."""


class RerankerFilterOptions(Options):
    """``reranker`` filter options. ``keep_top_k``: queries kept (InPars-v2: 10,000). ``reranker``
    (``[filter.reranker.reranker]``): a registered reranker (``monot5``, ``cross-encoder``...), its ``model``
    and its options, e.g. ``{use = "monot5", model = "castorini/monot5-3b-msmarco-10k", batch_size = 16,
    dtype = "bf16", max_length = 512}`` (the default: InPars-v2's, :data:`DEFAULT_RERANKER`). The rerank stage's
    keys (``depth``, ``interpolate``...) are refused: a filter only scores pairs.

    The old spelling (``reranker = "<name>"``, ``model``, ``batch_size``, ``reranker_options`` at the filter's
    top level) is still read, with a deprecation warning; its defaults are InPars-v2's."""

    legacy_keys: ClassVar[tuple[str, ...]] = ("model", "batch_size", "reranker_options")
    keep_top_k: int = Field(10_000, ge=1)
    reranker: RerankerSpec = Field(
        default_factory=lambda: RerankerSpec.model_construct(
            use=DEFAULT_RERANKER["use"], model=DEFAULT_RERANKER["model"], options={"batch_size": 16}
        )
    )

    @model_validator(mode="before")
    @classmethod
    def _old_spelling(cls, data: Any) -> Any:
        """``reranker``/``model``/``batch_size``/``reranker_options`` -> the ``reranker`` table."""
        return fold_legacy(
            data,
            "reranker",
            {"reranker": "use", "model": "model", "batch_size": "batch_size", "reranker_options": "*"},
            "[filter.reranker.reranker]",
            defaults=DEFAULT_RERANKER,
            lone_is_old=True,
        )

    @model_validator(mode="after")
    def _model(self) -> RerankerFilterOptions:
        if self.reranker.model is None:
            raise ValueError("reranker: needs model (the reranker's checkpoint)")
        return self


class RerankerFilter(Filter):
    """Keeps the ``keep_top_k`` queries with the highest reranker score against their source document."""

    name: ClassVar[str] = "reranker"
    Options: ClassVar[type[RerankerFilterOptions]] = RerankerFilterOptions

    def models(self) -> list[ModelRef]:
        """``reranker.model``, as the ``reranker`` loads it."""
        return scorer_models(self.options.reranker, "reranker.model", "filter reranker")

    def apply(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> list[Decision]:
        opts = self.options
        docs = {d.doc_id: d.full_text for d in ctx.dataset.get_docs({r.doc_id for r in records}).values()}
        present = [r for r in records if r.doc_id in docs]
        reranker = load_scorer(opts.reranker, ctx)
        meta = {
            "filter": self.name,
            "reranker": opts.reranker.model_dump(),
            "records": records_digest(present),
            "key": ctx.cache_key,
        }
        try:
            scores = score_records(
                reranker,
                present,
                docs,
                ResumableJsonl(ctx.dir / "reranker-scores.jsonl"),
                meta,
                f"filter: {opts.reranker.use}",
            )
        finally:
            reranker.unload()
        ranked = top_k_decisions(
            [scores[r.query_id] for r in present],
            [r.query_id for r in present],
            opts.keep_top_k,
            f"{opts.reranker.use} score",
        )
        by_id = {r.query_id: d for r, d in zip(present, ranked)}
        return [by_id.get(r.query_id, Decision(False, MISSING_SOURCE)) for r in records]
