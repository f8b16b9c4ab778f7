"""The miner contract: training triples (query, positive, negatives) from kept synthetic queries."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inparsx.plugins import Component
from inparsx.records import SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext


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
    """Builds triples; must never return a query's positive among its negatives.

    Optional part of the contract: :attr:`n_negatives`, the negatives a triple should have (the stage counts
    the triples that got fewer).
    """

    @property
    def n_negatives(self) -> int:
        """Negatives asked per triple: the ``n_negatives`` option when the miner's ``Options`` declare one,
        else 1. A miner that decides it otherwise overrides this property."""
        if "n_negatives" in type(self.options).model_fields:
            return int(self.options.model_dump()["n_negatives"])
        return 1

    def mine(self, queries: Sequence[SyntheticQuery], ctx: ComponentContext) -> Iterator[Triple]:
        """Triples for ``queries`` (the filter stage's kept records). ``ctx``
        (:class:`~inparsx.context.ComponentContext`) gives the dataset (documents, corpus fingerprint), the seed
        and ``resolve_model`` (a teacher given as ``"@stage"``)."""
        raise NotImplementedError
