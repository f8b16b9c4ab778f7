"""The filter contract: decide, per synthetic query, whether it is kept and why not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inparsx.plugins import Component
from inparsx.records import SyntheticQuery

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


@dataclass(frozen=True, slots=True)
class Decision:
    """A filter's verdict on one record: ``keep``, the ``reason`` when dropped, and the ``score`` it used."""

    keep: bool
    reason: str | None = None
    score: float | None = None


class Filter(Component):
    """Filters run in recipe order; each sees only the records the previous ones kept."""

    def apply(self, records: Sequence[SyntheticQuery], ctx: "StageContext") -> list[Decision]:
        """One decision per record, in order. ``ctx`` gives the dataset, the seed and a work folder (``ctx.dir``)."""
        raise NotImplementedError
