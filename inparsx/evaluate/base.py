"""The evaluator contract: metrics of runs against qrels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from inparsx.plugins import Component
from inparsx.records import Qrels, Run


class Evaluator(Component):
    """Scores runs; metric names use the field's spelling (``ndcg@10``, ``mrr@10``, ``recall@100``, ``map``)."""

    def evaluate(self, qrels: Qrels, runs: Mapping[str, Run], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        """``{run_name: {metric: value}}`` averaged over the qrels' queries."""
        raise NotImplementedError
