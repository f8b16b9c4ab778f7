"""The rerank stage's own options: which model reranks which run, how deep, and how the result is fused.

These keys sit in a recipe's ``[rerank]`` table beside the reranker's options; the recipe loader routes each
key to this model or to the reranker's ``Options`` (:func:`inparsx.recipe.validate_recipe`). A reranker
component never reads them: it only scores pairs, so the ``reranker`` filter, the consistency filter, the
tuners' judge and the triples teacher build rerankers without them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, ValidationInfo, model_validator

from inparsx.plugins import Component, StageOptions, registry_from

FUSE_KEYS = ("first_stage", "model", "zero_shot_model")
"""The keys of ``fuse`` that name the stage's own runs (besides the names of ``compare_models``)."""

FORMS = ("fused", "interpolated", "rrf", "alone")
"""The forms of a reranked run, in the order that picks the final one (see :func:`inparsx.rerank.stage.run_forms`)."""

if TYPE_CHECKING:
    from inparsx.models import ModelRef


class RerankStageOptions(StageOptions):
    """Options of the rerank stage (every reranker takes them).

    ``model``: hub id, local folder or ``@train`` (the train stage's output), loaded into the reranker.
    ``depth``: first-stage documents per query that are rescored; the rest stay below them in their
    first-stage order. ``interpolate``: ``alpha`` of ``alpha * minmax(rerank) + (1 - alpha) * minmax(first
    stage)`` per query. ``fusion = "rrf"``: reciprocal rank fusion of the two rankings (Cormack et al., SIGIR
    2009; constant ``rrf_k``, default 60, also that of ``fuse_method = "rrf"``). The stage's final run
    ``rerank`` (``rerank/run.trec``) is the ``fuse`` fusion when it is set, else the interpolated run when
    ``interpolate`` is set, else the RRF run when ``fusion`` is set, else the model alone; the other forms
    are written as ``rerank/runs/rerank-interpolated.trec``, ``rerank-rrf.trec`` and ``rerank-alone.trec``.
    ``zero_shot_model``: a second model (e.g. the untrained base checkpoint) reranked the same way into
    ``rerank/runs/zeroshot.trec`` (and ``zeroshot-alone``/``zeroshot-rrf``), so that one table compares BM25,
    the zero-shot model and the trained one, with a paired test of trained against zero-shot in each form.
    ``compare_models``: more models reranked the same way, by run name, e.g. ``{ict = "runs/ict/train/model"}``
    gives ``rerank/runs/ict.trec`` (and ``ict-alone``...), for a table against other trained models.
    ``first_stage``: the stage whose ``run.trec`` is reranked.

    ``zero_shot_reranker``: the registered reranker that scores with ``zero_shot_model`` (default: the stage's
    own, ``use``), so that the zero-shot baseline may be another kind of model than the one trained, e.g. the
    zero-shot MiniLM bi-encoder against a trained cross-encoder; ``zero_shot_options``: that reranker's
    options (its defaults when left out; the keys beside ``use`` configure the stage's reranker only).

    ``fuse``: a fusion of several runs, ``{run: weight}``, e.g. ``{first_stage = 1, zero_shot_model = 1,
    model = 1}`` (BM25 + zero-shot + trained). The keys name the runs fused: ``first_stage`` (the first-stage
    run), ``model`` (the trained model's scores), ``zero_shot_model``, or a name of ``compare_models``; it must
    hold ``model``. ``fuse_method``: ``minmax`` (the default: per query, the weighted sum of each run's
    min-max normalised scores over the reranked documents, weights divided by their sum) or ``rrf`` (weighted
    reciprocal rank fusion, ``sum w / (rrf_k + rank)``; with equal weights Cormack et al.'s RRF). The fusion is
    the stage's final run ``rerank``; the forms asked for besides are written as ``rerank-interpolated``,
    ``rerank-rrf``, ``rerank-alone``. The zero-shot model gets the same fusion with ``model`` replaced by
    ``zero_shot_model`` (or dropped, when the fusion already holds it: BM25 + zero-shot + trained is compared
    with BM25 + zero-shot), written beside it as ``zeroshot``, with a paired test "trained fusion vs zero-shot
    fusion"; each compared model likewise.
    """

    model: str
    depth: int = Field(1000, ge=1)
    interpolate: float | None = Field(None, ge=0.0, le=1.0)
    fusion: Literal["rrf"] | None = None
    rrf_k: int = Field(60, ge=0)
    zero_shot_model: str | None = None
    compare_models: dict[str, str] = Field(default_factory=dict)
    first_stage: str = "retrieve"
    zero_shot_reranker: str | None = None
    zero_shot_options: dict[str, Any] = Field(default_factory=dict)
    fuse: dict[str, float] = Field(default_factory=dict)
    fuse_method: Literal["minmax", "rrf"] | None = None

    @model_validator(mode="after")
    def _check_compare_models(self) -> RerankStageOptions:
        """Run names of ``compare_models``: lower-case words joined by ``-`` or ``_``, not a name the stage
        already writes (``rerank``, ``zeroshot`` and their forms) or a key of ``fuse``, not ending in a form
        suffix."""
        for name in self.compare_models:
            if not re.fullmatch(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", name):
                raise ValueError(f"compare_models: run name {name!r} must be lower-case letters, digits, - or _")
            if (
                name.split("-")[0] in ("rerank", "zeroshot")
                or name in FUSE_KEYS
                or name.endswith(tuple(f"-{form}" for form in FORMS))
            ):
                raise ValueError(f"compare_models: run name {name!r} clashes with the stage's own runs")
        return self

    @model_validator(mode="after")
    def _check_zero_shot(self, info: ValidationInfo) -> RerankStageOptions:
        """``zero_shot_reranker`` needs ``zero_shot_model``; ``zero_shot_options`` needs ``zero_shot_reranker``
        and are validated against it when the recipe loads."""
        from inparsx.rerank.base import check_scorer_options

        if self.zero_shot_reranker is not None and self.zero_shot_model is None:
            raise ValueError(
                "zero_shot_reranker scores with zero_shot_model, which is not set: set it, or remove zero_shot_reranker"
            )
        if self.zero_shot_options and self.zero_shot_reranker is None:
            raise ValueError(
                "zero_shot_options are the options of zero_shot_reranker, which is not set (the "
                "zero-shot model then runs in the stage's reranker, with its options): set "
                "zero_shot_reranker, or remove zero_shot_options"
            )
        if self.zero_shot_reranker is not None:
            check_scorer_options(
                self.zero_shot_reranker,
                self.zero_shot_options,
                {"model": "zero_shot_model"},
                "zero_shot_options",
                "zero-shot run",
                registry_from(info),
            )
        return self

    @model_validator(mode="after")
    def _check_fuse(self) -> RerankStageOptions:
        """``fuse``: at least two runs that the stage writes, ``model`` among them, positive weights;
        ``fuse_method`` only with ``fuse``."""
        if self.fuse_method is not None and not self.fuse:
            raise ValueError(
                "fuse_method is the method of fuse, which is not set: set fuse = {first_stage = 1, "
                "model = 1, ...}, or remove fuse_method"
            )
        if not self.fuse:
            return self
        known = [key for key in FUSE_KEYS if key != "zero_shot_model" or self.zero_shot_model]
        known += list(self.compare_models)
        unknown = [key for key in self.fuse if key not in known]
        if unknown:
            hint = " (zero_shot_model is not set)" if "zero_shot_model" in unknown else ""
            raise ValueError(
                f"fuse: {', '.join(map(repr, unknown))} names no run of this stage{hint}; the runs "
                f"are: {', '.join(known)}"
            )
        if "model" not in self.fuse:
            raise ValueError(
                "fuse must hold model (the trained model's run); the zero-shot fusion is written beside it"
            )
        if len(self.fuse) < 2:
            raise ValueError("fuse: a fusion needs at least two runs, e.g. {first_stage = 1, model = 1}")
        bad = [key for key, weight in self.fuse.items() if not weight > 0]
        if bad:
            raise ValueError(
                f"fuse: the weight of {', '.join(map(repr, bad))} must be above 0 (leave a run out instead)"
            )
        return self

    def models(self, components: list[Component]) -> list[ModelRef]:
        """``model``, ``zero_shot_model`` and each of ``compare_models``, as the stage's reranker loads them
        (:meth:`inparsx.rerank.base.Reranker.model_ref`).

        Raises:
            TypeError: the stage's component is not a :class:`~inparsx.rerank.base.Reranker` (the registry
                refuses one when it registers, so only a component built by hand).
        """
        from inparsx.rerank.base import Reranker

        reranker = components[0]
        if not isinstance(reranker, Reranker):
            raise TypeError(f"the rerank stage runs a Reranker, not {type(reranker).__name__}")
        zero_shot = reranker
        if self.zero_shot_reranker is not None:
            from inparsx.plugins import get_registry

            zero_shot = get_registry().build("rerankers", self.zero_shot_reranker, self.zero_shot_options)
        named = [
            (reranker, "model", self.model),
            (zero_shot, "zero_shot_model", self.zero_shot_model),
            *((reranker, f"compare_models.{name}", model) for name, model in self.compare_models.items()),
        ]
        refs = [scorer.model_ref(model, option) for scorer, option, model in named if model]
        return [ref for ref in refs if ref is not None]
