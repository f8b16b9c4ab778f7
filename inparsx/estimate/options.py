"""The estimate stage's own options (the ``[estimate]`` table beside its retriever's options)."""

from __future__ import annotations

from pydantic import Field, field_validator

from inparsx.evaluate.metrics import canonical_metrics_option
from inparsx.plugins import Options


class EstimateStageOptions(Options):
    """Options of the estimate stage (a label-free estimate of what training gained).

    ``docs``: documents held out of training, drawn with the stage's seed (the recipe's unless ``[estimate]``
    pins its own) before any stage runs; the training stages (tune, generate's sample, triples, train) never
    see them, and the recipe's generator and filters write and clean their synthetic queries. ``metrics``: what is
    measured on those queries, each
    query's only relevant document being the one it was written from (default MRR@10). ``positive_text``:
    rank a held-out document as its queries' ``positive_text`` when they carry one (the ``ict`` generator's
    document without the query sentence, what training used as the positive), so that no query is found by
    copying its own words; ``false``: the whole document.
    """

    docs: int = Field(200, ge=1, description="documents held out of training for the estimate")
    metrics: list[str] = Field(
        default_factory=lambda: ["mrr@10"],
        min_length=1,
        description="metrics of the source document's rank (ranx names)",
    )
    positive_text: bool = Field(True, description="rank held-out documents as their queries' positive_text")

    @field_validator("metrics", mode="before")
    @classmethod
    def _canonical(cls, value: object) -> object:
        return canonical_metrics_option(value)
