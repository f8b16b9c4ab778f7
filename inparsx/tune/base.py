"""The tuner contract: produce a better query generator (fine-tuned weights or an optimised prompt program).

A tuner never sees the evaluated split: it gets a :class:`~inparsx.context.ComponentContext` whose dataset is a
:class:`~inparsx.datasets.base.WithoutSplit` view (asking it for the evaluated split's queries or qrels raises
:class:`~inparsx.datasets.base.SplitHiddenError`), no earlier stage's output (the retrieve run holds the evaluated
queries' ids and rankings), and no recipe to re-resolve the dataset from.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from inparsx.context import ComponentContext
from inparsx.plugins import Component, Options

MODEL = "model"
"""``tune/model``: a fine-tuned generator (``save_pretrained``), what ``model = "@tune"`` resolves to."""
PROGRAM = "program.json"
"""``tune/program.json``: a compiled DSPy program, what ``program = "@tune"`` resolves to."""
INSTRUCTION = "instruction.txt"
"""``tune/instruction.txt``: an optimised instruction, what ``instruction = "@tune"`` resolves to."""


class Tuner(Component):
    """Writes its result under ``ctx.dir`` (:data:`MODEL`, :data:`PROGRAM` or :data:`INSTRUCTION`) and
    returns its path; the generate stage refers to it as ``@tune``.

    ``output`` names what :meth:`tune` writes (one of the three file names above).
    """

    Options: ClassVar[type[Options]] = Options
    output: ClassVar[str] = MODEL

    def tune(self, ctx: ComponentContext) -> Path:
        """Tune and write ``ctx.dir / self.output``; return that path. ``ctx.dataset`` hides the evaluated
        split; ``ctx.resolve_model`` takes hub ids and local folders only (no ``@stage``).

        Raises:
            InparsxError: bad input (missing model, too few usable pairs or examples...).
        """
        raise NotImplementedError
