"""The reranker contract: score (query, document) pairs with a neural model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from pydantic import Field

from inparsx.plugins import Component, Options


class RerankerOptions(Options):
    """Options every reranker has.

    ``model``: hub id, local folder or ``@train`` (the train stage's output). ``depth``: how many first-stage
    documents per query are rescored. ``batch_size``: pairs per forward pass.
    """

    model: str
    depth: int = Field(1000, ge=1)
    batch_size: int = Field(32, ge=1)


class Reranker(Component):
    """Scores pairs; ``load`` must be called (with a resolved model path or id) before ``score``."""

    Options: ClassVar[type[RerankerOptions]] = RerankerOptions

    def load(self, model: str) -> None:
        """Load the model (``model`` already resolved: a hub id or a local folder)."""
        raise NotImplementedError

    def score(self, queries: Sequence[str], documents: Sequence[str]) -> list[float]:
        """Relevance score of each pair ``(queries[i], documents[i])``; higher = more relevant."""
        raise NotImplementedError
