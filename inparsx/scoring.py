"""Scoring (query, document) pairs with a pretrained reranker: the service the ``reranker`` and
``consistency`` filters, the tuners' judge and the triples teacher share.

A component names its scorer with a :class:`~inparsx.rerank.spec.RerankerSpec` (``use``, ``model`` and the
reranker's options); :func:`load_scorer` builds it from the registry that validated the recipe
(:meth:`~inparsx.context.ComponentContext.build`), loads its model and tells it the corpus;
:func:`score_records` scores records against their source document, resumably. Neither depends on any stage
or plugin, so every stage may import this module.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from inparsx.errors import InparsxError
from inparsx.io import ResumableJsonl
from inparsx.models import loading
from inparsx.precision import describe, precision_name
from inparsx.progress import progress_task
from inparsx.records import SyntheticQuery
from inparsx.rerank.reranking import resume_records
from inparsx.rerank.spec import RerankerSpec

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef
    from inparsx.plugins import Registry
    from inparsx.rerank.base import Reranker


def records_digest(records: Sequence[SyntheticQuery]) -> str:
    """sha256 (16 hex digits) of the records' ids, documents and query texts: part of a scorer's resume key, so
    that scores saved for other queries (a rerun of ``inparsx filter`` on another file) are never reused."""
    digest = hashlib.sha256()
    for r in records:
        digest.update(f"{r.query_id}\t{r.doc_id}\t{r.query}\n".encode())
    return digest.hexdigest()[:16]


def load_scorer(spec: RerankerSpec, ctx: ComponentContext, model: str | None = None) -> Reranker:
    """The reranker ``spec`` names, built from ``ctx``'s registry, with its model loaded and the corpus told
    (so it can cache per document); the device and precision it runs with are printed.

    Args:
        spec: the reranker and its options.
        ctx: the component's context (``@stage`` models resolve through it).
        model: the checkpoint to load instead of ``spec.model`` (e.g. a model the component trained itself).

    Raises:
        InparsxError: no model given (``spec.model`` and ``model`` are both ``None``), or it cannot be loaded.
        PluginError, pydantic.ValidationError: see :meth:`~inparsx.context.ComponentContext.build`.
    """
    checkpoint = model if model is not None else spec.model
    if checkpoint is None:
        raise InparsxError(f"{ctx.stage or 'scoring'}: reranker {spec.use!r} has no model to load: set its model")
    reranker = ctx.build(spec)
    with loading(f"{spec.use} model", checkpoint):
        reranker.load(ctx.resolve_model(checkpoint))
    if reranker.device is not None:
        ctx.log(
            f"{ctx.stage or 'scoring'}: {spec.use} {checkpoint} on "
            f"{describe(reranker.device, reranker.options.dtype, precision_name(reranker.dtype))}"
        )
    reranker.use_corpus(ctx.dataset.fingerprint())
    return reranker


def build_reranker(name: str, model: str, batch_size: int, options: dict[str, Any], ctx: ComponentContext) -> Reranker:
    """:func:`load_scorer` of reranker ``name`` with ``options`` and ``batch_size`` (the old spelling, kept for
    plugins that call it)."""
    return load_scorer(RerankerSpec(use=name, model=model, options={**options, "batch_size": batch_size}), ctx)


def score_records(
    reranker: Reranker,
    records: Sequence[SyntheticQuery],
    docs: dict[str, str],
    store: ResumableJsonl,
    meta: dict[str, Any],
    description: str,
) -> dict[str, float]:
    """The reranker score of each record's (query, source document), by query_id; resumable through ``store``
    (``{"qid", "score"}`` lines after a ``meta`` line; a file with another ``meta`` starts over).

    Args:
        reranker: a loaded reranker (:func:`load_scorer`).
        records: the records to score; every ``doc_id`` must be in ``docs``.
        docs: document texts by docid.
        store: the resumable scores file.
        meta: what the scores depend on (model, options, records digest, cache key).
        description: the progress bar's label.
    """
    scores = {r["qid"]: r["score"] for r in resume_records(store, meta)}
    pending = [r for r in records if r.query_id not in scores]
    size = max(256, reranker.options.batch_size * 8)
    with progress_task(description, len(pending), "pairs") as (progress, task):
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            values = reranker.score([r.query for r in chunk], [docs[r.doc_id] for r in chunk])
            store.append({"qid": r.query_id, "score": float(v)} for r, v in zip(chunk, values))
            scores.update((r.query_id, float(v)) for r, v in zip(chunk, values))
            progress.advance(task, len(chunk))
    store.finish()
    return scores


def scorer_models(
    spec: RerankerSpec, option: str, role: str, registry: Registry | None = None, model: str | None = None
) -> list[ModelRef]:
    """The model ``spec``'s reranker loads (``model`` instead of ``spec.model`` when given), as
    :meth:`~inparsx.rerank.base.Reranker.model_ref` declares it for the pre-flight check, named by ``option``
    (e.g. ``teacher.model``) and ``role``; empty without a model or for a reranker that loads nothing."""
    from inparsx.plugins import get_registry

    checkpoint = model if model is not None else spec.model
    if checkpoint is None:
        return []
    ref = spec.build(registry if registry is not None else get_registry()).model_ref(checkpoint, option, role)
    return [ref] if ref is not None else []
