"""The trainer contract: fine-tune a reranker on triples and save it with ``save_pretrained``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inparsx.plugins import Component

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


class Trainer(Component):
    """Trains on ``triples.jsonl`` (see :class:`inparsx.triples.base.Triple`) and writes a model folder."""

    def train(self, triples: Path, output_dir: Path, ctx: "StageContext | None" = None) -> Path:
        """Train, save the model (``save_pretrained`` + a model card) into ``output_dir``, and return it."""
        raise NotImplementedError
