"""The tuner contract: produce a better query generator (fine-tuned weights or an optimised prompt program).

A tuner never sees the evaluated split: it gets a :class:`TuneContext` whose dataset is a
:class:`~inparsx.datasets.base.WithoutSplit` view (asking it for the evaluated split's queries or qrels raises
:class:`~inparsx.datasets.base.SplitHiddenError`), and no recipe to re-resolve the dataset from.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from inparsx.datasets.base import Dataset
from inparsx.errors import InparsxError
from inparsx.plugins import Component, Options

MODEL = "model"
"""``tune/model``: a fine-tuned generator (``save_pretrained``), what ``model = "@tune"`` resolves to."""
PROGRAM = "program.json"
"""``tune/program.json``: a compiled DSPy program, what ``program = "@tune"`` resolves to."""
INSTRUCTION = "instruction.txt"
"""``tune/instruction.txt``: an optimised instruction, what ``instruction = "@tune"`` resolves to."""


@dataclass
class TuneContext:
    """What a tuner gets: the dataset without the evaluated split, the seed, the evaluated split's name (only
    to know what is hidden), its own folder, and ``resolve_model``.

    It has the attributes the generators, filters and rerankers read from a stage context (``dataset``,
    ``seed``, ``eval_split``, ``dir``, ``resolve_model``), so a tuner reuses them as they are.
    """

    dataset: Dataset
    seed: int
    eval_split: str
    dir: Path
    stage: str = "tune"

    def resolve_model(self, value: str, filename: str = MODEL) -> str:
        """A hub id or local path as is.

        Raises:
            InparsxError: ``@stage``: no stage before ``tune`` writes a model.
        """
        if value.startswith("@"):
            raise InparsxError(f"{value}: the tune stage runs before every stage that writes a model; "
                               "give a hub id or a local folder")
        return value


class Tuner(Component):
    """Writes its result under ``ctx.dir`` (:data:`MODEL`, :data:`PROGRAM` or :data:`INSTRUCTION`) and
    returns its path; the generate stage refers to it as ``@tune``.

    ``output`` names what :meth:`tune` writes (one of the three file names above).
    """

    Options: ClassVar[type[Options]] = Options
    output: ClassVar[str] = MODEL

    def tune(self, ctx: TuneContext) -> Path:
        """Tune and write ``ctx.dir / self.output``; return that path.

        Raises:
            InparsxError: bad input (missing model, too few usable pairs or examples...).
        """
        raise NotImplementedError
