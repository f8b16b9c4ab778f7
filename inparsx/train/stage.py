"""The train stage: fine-tune the recipe's trainer on ``triples/triples.jsonl`` into ``train/model``.

``train/model`` is what ``@train`` resolves to in later stages (e.g. ``[rerank] model = "@train"``). A run
that crashed resumes from the last checkpoint in ``train/model/checkpoints`` (the runner keeps the folder
while the stage's fingerprint is unchanged).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inparsx.artifacts import TRAINED_MODEL, TRIPLES
from inparsx.progress import console

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


def run_stage(ctx: StageContext) -> None:
    """Train ``ctx.component`` on the triples stage's output and save the model in ``<run>/train/model``.

    Raises:
        InparsxError: the recipe has no triples stage output; DataError on malformed triples.
    """
    triples = ctx.path_of(TRIPLES)
    model_dir = ctx.component.train(triples, ctx.dir / TRAINED_MODEL.file, ctx.component_context())
    console.print(f"model saved to {model_dir} (model card: {model_dir / 'README.md'})")
