"""The tuner contract: produce a better query generator (fine-tuned weights or an optimised prompt program)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inparsx.plugins import Component

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


class Tuner(Component):
    """Writes its result under ``ctx.dir`` and returns it; the generate stage refers to it as ``@tune``."""

    def tune(self, ctx: "StageContext") -> Path:
        raise NotImplementedError
