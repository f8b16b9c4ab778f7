"""``reranker``: keep the synthetic queries that a pretrained reranker finds most relevant to their source
document (InPars-v2, Jeronymo et al. 2023: the top 10,000 of 100,000 by ``castorini/monot5-3b-msmarco-10k``'s
P(true)). Scores are appended to ``<stage dir>/reranker-scores.jsonl`` batch by batch, so an interrupted
filter resumes without rescoring."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, ValidationInfo, model_validator

from inparsx.filter.base import Decision, Filter
from inparsx.filter.rules import MISSING_SOURCE, top_k_decisions
from inparsx.io import ResumableJsonl
from inparsx.plugins import Options, get_registry, registry_from
from inparsx.progress import progress_task
from inparsx.records import SyntheticQuery
from inparsx.rerank.base import check_scorer_options

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef
    from inparsx.rerank.base import Reranker


FILTER_OWN = {"model": "model", "batch_size": "batch_size"}
"""``reranker_options`` keys that a model-based filter sets from its own options (see
:func:`inparsx.rerank.base.check_scorer_options`)."""


def records_digest(records: Sequence[SyntheticQuery]) -> str:
    """sha256 (16 hex digits) of the records' ids, documents and query texts: part of a filter's resume key, so
    that scores saved for other queries (a rerun of ``inparsx filter`` on another file) are never reused."""
    import hashlib

    digest = hashlib.sha256()
    for r in records:
        digest.update(f"{r.query_id}\t{r.doc_id}\t{r.query}\n".encode())
    return digest.hexdigest()[:16]


def build_reranker(name: str, model: str, batch_size: int, options: dict[str, Any], ctx: "ComponentContext") -> "Reranker":
    """A loaded reranker (``model`` may be ``@stage``), told the corpus so it can cache per document; the device
    and precision it runs with are printed.

    Raises:
        InparsxError: the model cannot be loaded (named).

    ``options``: the reranker's own options (``reranker_options``), without ``batch_size``, which is given apart.
    """
    from inparsx.models import loading
    from inparsx.precision import describe, precision_name

    reranker = get_registry().build("rerankers", name, {**options, "batch_size": batch_size})
    with loading(f"{name} model", model):
        reranker.load(ctx.resolve_model(model))
    if reranker.device is not None:
        ctx.log(f"{ctx.stage or 'scoring'}: {name} {model} on "
                f"{describe(reranker.device, reranker.options.dtype, precision_name(reranker.dtype))}")
    reranker.use_corpus(ctx.dataset.fingerprint())
    return reranker


class RerankerFilterOptions(Options):
    """``reranker`` filter options. ``keep_top_k``: queries kept (InPars-v2: 10,000). ``reranker``: a
    registered reranker (``monot5``, ``cross-encoder``...). ``model``: its checkpoint (default InPars-v2's).
    ``batch_size``: pairs per forward pass. ``reranker_options``: more of that reranker's options, e.g.
    ``{dtype = "bf16", max_length = 512}``; ``model`` and ``batch_size`` are the filter's own keys, and the
    rerank stage's keys (``depth``, ``interpolate``...) are refused: a filter only scores pairs."""

    keep_top_k: int = Field(10_000, ge=1)
    reranker: str = "monot5"
    model: str = "castorini/monot5-3b-msmarco-10k"
    batch_size: int = Field(16, ge=1)
    reranker_options: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "RerankerFilterOptions":
        check_scorer_options(self.reranker, self.reranker_options, FILTER_OWN, registry=registry_from(info))
        return self


def score_records(reranker: "Reranker", records: Sequence[SyntheticQuery], docs: dict[str, str],
                  store: ResumableJsonl, meta: dict[str, Any], description: str) -> dict[str, float]:
    """The reranker score of each record's (query, source document), by query_id; resumable through ``store``
    (``{"qid", "score"}`` lines after a ``meta`` line)."""
    from inparsx.rerank.reranking import resume_records

    scores = {r["qid"]: r["score"] for r in resume_records(store, meta)}
    pending = [r for r in records if r.query_id not in scores]
    size = max(256, reranker.options.batch_size * 8)
    with progress_task(description, len(pending), "pairs") as (progress, task):
        for start in range(0, len(pending), size):
            chunk = pending[start:start + size]
            values = reranker.score([r.query for r in chunk], [docs[r.doc_id] for r in chunk])
            store.append({"qid": r.query_id, "score": float(v)} for r, v in zip(chunk, values))
            scores.update((r.query_id, float(v)) for r, v in zip(chunk, values))
            progress.advance(task, len(chunk))
    store.finish()
    return scores


class RerankerFilter(Filter):
    """Keeps the ``keep_top_k`` queries with the highest reranker score against their source document."""

    name: ClassVar[str] = "reranker"
    Options: ClassVar[type[RerankerFilterOptions]] = RerankerFilterOptions

    def models(self) -> list["ModelRef"]:
        """``model``, as the ``reranker`` loads it."""
        from inparsx.rerank.base import scorer_model_ref

        opts = self.options
        return scorer_model_ref(opts.reranker, opts.reranker_options, opts.model, "model", "filter reranker")

    def apply(self, records: Sequence[SyntheticQuery], ctx: "ComponentContext") -> list[Decision]:
        opts = self.options
        docs = {d.doc_id: d.full_text for d in ctx.dataset.get_docs({r.doc_id for r in records}).values()}
        present = [r for r in records if r.doc_id in docs]
        reranker = build_reranker(opts.reranker, opts.model, opts.batch_size, opts.reranker_options, ctx)
        meta = {"filter": self.name, "reranker": opts.reranker, "model": opts.model, **opts.reranker_options,
                "records": records_digest(present), "key": ctx.cache_key}
        try:
            scores = score_records(reranker, present, docs, ResumableJsonl(ctx.dir / "reranker-scores.jsonl"), meta,
                                   f"filter: {opts.reranker}")
        finally:
            reranker.unload()
        ranked = top_k_decisions([scores[r.query_id] for r in present], [r.query_id for r in present],
                                 opts.keep_top_k, f"{opts.reranker} score")
        by_id = {r.query_id: d for r, d in zip(present, ranked)}
        return [by_id.get(r.query_id, Decision(False, MISSING_SOURCE)) for r in records]
