"""The miner contract: training triples (query, positive, negatives) from kept synthetic queries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inparsx.plugins import Component
from inparsx.records import SyntheticQuery

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


@dataclass(frozen=True, slots=True)
class Triple:
    """One training example: a synthetic query, its source document (positive) and hard negatives.

    Written as one JSON line of ``triples/triples.jsonl`` with every field (ids and texts). ``pos_score`` and
    ``neg_scores`` are a teacher's scores of the positive and of each negative (same order), when the miner
    has a teacher; MarginMSE training (Hofstätter et al. 2020; GPL, Wang et al. 2022) learns their margins.
    """

    query_id: str
    query: str
    pos_id: str
    pos_text: str
    neg_ids: tuple[str, ...]
    neg_texts: tuple[str, ...]
    pos_score: float | None = None
    neg_scores: tuple[float, ...] = ()


class Miner(Component):
    """Builds triples; must never return a query's positive among its negatives."""

    def mine(self, queries: Sequence[SyntheticQuery], ctx: "StageContext") -> Iterator[Triple]:
        """Triples for ``queries`` (the filter stage's kept records)."""
        raise NotImplementedError
