"""The rerank stage's own options: which model reranks which run, how deep, and how the result is fused.

These keys sit in a recipe's ``[rerank]`` table beside the reranker's options; the recipe loader routes each
key to this model or to the reranker's ``Options`` (:func:`inparsx.recipe.validate_recipe`). A reranker
component never reads them: it only scores pairs, so the ``reranker`` filter, the consistency filter, the
tuners' judge and the triples teacher build rerankers without them.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from inparsx.plugins import Component, StageOptions

if TYPE_CHECKING:
    from inparsx.models import ModelRef


class RerankStageOptions(StageOptions):
    """Options of the rerank stage (every reranker takes them).

    ``model``: hub id, local folder or ``@train`` (the train stage's output), loaded into the reranker.
    ``depth``: first-stage documents per query that are rescored; the rest stay below them in their
    first-stage order. ``interpolate``: ``alpha`` of ``alpha * minmax(rerank) + (1 - alpha) * minmax(first
    stage)`` per query. ``fusion = "rrf"``: reciprocal rank fusion of the two rankings (Cormack et al., SIGIR
    2009; constant ``rrf_k``, default 60). The stage's final run ``rerank`` (``rerank/run.trec``) is the
    interpolated run when ``interpolate`` is set, else the RRF run when ``fusion`` is set, else the model
    alone; the other forms are written as ``rerank/runs/rerank-alone.trec`` and ``rerank-rrf.trec``.
    ``zero_shot_model``: a second model (e.g. the untrained base checkpoint) reranked the same way into
    ``rerank/runs/zeroshot.trec`` (and ``zeroshot-alone``/``zeroshot-rrf``), so that one table compares BM25,
    the zero-shot model and the trained one, with a paired test of trained against zero-shot in each form.
    ``compare_models``: more models reranked the same way, by run name, e.g. ``{ict = "runs/ict/train/model"}``
    gives ``rerank/runs/ict.trec`` (and ``ict-alone``...), for a table against other trained models.
    ``first_stage``: the stage whose ``run.trec`` is reranked.
    """

    model: str
    depth: int = Field(1000, ge=1)
    interpolate: float | None = Field(None, ge=0.0, le=1.0)
    fusion: Literal["rrf"] | None = None
    rrf_k: int = Field(60, ge=0)
    zero_shot_model: str | None = None
    compare_models: dict[str, str] = Field(default_factory=dict)
    first_stage: str = "retrieve"

    @model_validator(mode="after")
    def _check_compare_models(self) -> "RerankStageOptions":
        """Run names of ``compare_models``: lower-case words joined by ``-`` or ``_``, not a name the stage
        already writes (``rerank``, ``zeroshot`` and their forms), not ending in a form suffix."""
        for name in self.compare_models:
            if not re.fullmatch(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", name):
                raise ValueError(f"compare_models: run name {name!r} must be lower-case letters, digits, - or _")
            if name.split("-")[0] in ("rerank", "zeroshot") or name.endswith(("-alone", "-rrf")):
                raise ValueError(f"compare_models: run name {name!r} clashes with the stage's own runs")
        return self

    def models(self, components: list[Component]) -> list["ModelRef"]:
        """``model``, ``zero_shot_model`` and each of ``compare_models``, as the stage's reranker loads them
        (:meth:`inparsx.rerank.base.Reranker.model_ref`)."""
        reranker = components[0]
        named = [("model", self.model), ("zero_shot_model", self.zero_shot_model),
                 *((f"compare_models.{name}", model) for name, model in self.compare_models.items())]
        refs = [reranker.model_ref(model, option) for option, model in named if model]
        return [ref for ref in refs if ref is not None]
