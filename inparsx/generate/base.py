"""The generator contract: synthetic queries for documents."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, ClassVar

from pydantic import Field

from inparsx.plugins import Component, Options
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


class GeneratorOptions(Options):
    """Options every generator has. ``num_docs``: documents sampled without replacement with the recipe seed
    (the whole corpus when smaller)."""

    num_docs: int = Field(100_000, ge=1)


class Generator(Component):
    """Yields synthetic queries batch by batch, so the stage can append them as they come (resumable)."""

    Options: ClassVar[type[GeneratorOptions]] = GeneratorOptions

    def generate(self, docs: Sequence[Document], ctx: "StageContext") -> Iterator[list[SyntheticQuery]]:
        """Queries for ``docs``, one list per finished batch; every record's ``doc_id`` is one of ``docs``."""
        raise NotImplementedError
