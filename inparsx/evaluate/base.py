"""The evaluator contract: metrics of runs against qrels, and optionally per-query scores and paired tests."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field, field_validator

from inparsx.evaluate.metrics import DEFAULT_METRICS, canonical_metrics_option
from inparsx.plugins import Component, Options
from inparsx.records import Qrels, Run

if TYPE_CHECKING:
    import numpy as np

PerQuery = tuple[list[str], dict[str, dict[str, "np.ndarray"]]]
"""``(qids, {run: {metric: array}})``: per-query scores, each array of shape ``(len(qids),)``."""

Significance = dict[str, dict[str, dict[str, Any]]]
"""``{run: {metric: {"p_value": float, "significant": bool}}}`` against a baseline run."""


class EvaluatorOptions(Options):
    """Options every evaluator has.

    ``metrics``: names in the field's spelling (``ndcg@10``, ``mrr@10``, ``recall@100``, ``map``; see
    :mod:`inparsx.evaluate.metrics`), checked when the recipe loads. ``baseline``: the run the others are
    compared with (default: the first, in pipeline order usually ``retrieve``). ``max_p``: the p-value at or
    below which a difference is significant.
    """

    metrics: list[str] = Field(default_factory=lambda: list(DEFAULT_METRICS), min_length=1)
    baseline: str | None = None
    max_p: float = Field(0.05, gt=0.0, lt=1.0)

    @field_validator("metrics", mode="before")
    @classmethod
    def _canonical(cls, value: object) -> object:
        return canonical_metrics_option(value)


class Evaluator(Component):
    """Scores runs. Must provide :meth:`evaluate`. May provide :meth:`per_query` and :meth:`significance`
    (the defaults say "not available"): with them, the evaluate stage writes ``per_query.json`` and
    ``comparison.json`` and tests each run against the baseline and trained against zero-shot."""

    Options: ClassVar[type[EvaluatorOptions]] = EvaluatorOptions

    def evaluate(self, qrels: Qrels, runs: Mapping[str, Run], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        """``{run_name: {metric: value}}`` averaged over the qrels' queries."""
        raise NotImplementedError

    def per_query(self, qrels: Qrels, runs: Mapping[str, Run], metrics: Sequence[str]) -> PerQuery | None:
        """Per-query scores (see :data:`PerQuery`), qids aligned across runs; ``None`` (the default) when this
        evaluator computes means only."""
        return None

    def significance(self, scores: Mapping[str, Mapping[str, np.ndarray]], baseline: str) -> Significance | None:
        """A paired test of every run but ``baseline`` against it on per-query ``scores``; ``None`` (the
        default) when this evaluator has no test."""
        return None

    def test_name(self) -> str:
        """A short id of the significance test (``student``); ``""`` when there is none."""
        return ""

    def test_description(self) -> str:
        """The test as a results table names it (``two-sided paired t-test, p <= 0.05``); ``""`` when none."""
        return ""
