"""The trainer contract: fine-tune a reranker on triples and save it with ``save_pretrained``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inparsx.plugins import Component

if TYPE_CHECKING:
    from inparsx.context import ComponentContext


class Trainer(Component):
    """Trains on ``triples.jsonl`` (see :class:`inparsx.triples.base.Triple`) and writes a model folder."""

    def train(self, triples: Path, output_dir: Path, ctx: ComponentContext | None = None) -> Path:
        """Train, save the model (``save_pretrained`` + a model card) into ``output_dir``, and return it.

        ``ctx`` (:class:`~inparsx.context.ComponentContext`) gives the seed, ``resolve_model`` (a base model
        given as ``"@stage"``) and the run's name and dataset for the model card; ``None`` when a model is
        trained outside a run (``inparsx train``): seed 1 unless an option sets it, and no ``@stage``."""
        raise NotImplementedError
