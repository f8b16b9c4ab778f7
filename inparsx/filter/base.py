"""The filter contract: decide, per synthetic query, whether it is kept and why not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from inparsx.plugins import Component
from inparsx.records import SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext


@dataclass(frozen=True, slots=True)
class Decision:
    """A filter's verdict on one record: ``keep``, the ``reason`` when dropped, and the ``score`` it used."""

    keep: bool
    reason: str | None = None
    score: float | None = None


class Filter(Component):
    """Filters run in recipe order; each sees only the records the previous ones kept.

    A filter that needs an earlier stage's output (e.g. the retrieve stage's run) reads it with
    ``ctx.output("retrieve", "run.trec")``, and a model option that may name one (``"@train"``) goes through
    ``ctx.resolve_model``; a filter never reads the recipe.
    """

    def apply(self, records: Sequence[SyntheticQuery], ctx: ComponentContext) -> list[Decision]:
        """One decision per record, in order. ``ctx`` (:class:`~inparsx.context.ComponentContext`) gives the
        dataset, the seed, ``resolve_model`` and a work folder (``ctx.dir``) for scores and models the filter
        keeps so that a rerun resumes."""
        raise NotImplementedError
