"""The tuner contract: produce a better query generator (fine-tuned weights or an optimised prompt program).

A tuner never sees the evaluated split: it gets a :class:`~inparsx.context.ComponentContext` whose dataset is a
:class:`~inparsx.datasets.base.WithoutSplit` view (asking it for the evaluated split's queries or qrels raises
:class:`~inparsx.datasets.base.SplitHiddenError`), no earlier stage's output (the retrieve run holds the evaluated
queries' ids and rankings), and no recipe to re-resolve the dataset from.
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

# the file names a tuner writes (tune/model, tune/program.json, tune/instruction.txt), declared with the artifacts
from inparsx.artifacts import INSTRUCTION, MODEL, PROGRAM  # noqa: F401 - importable from here too
from inparsx.context import ComponentContext
from inparsx.plugins import Component, Options


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
