"""The tune stage: run the recipe's tuner on the dataset *without* the evaluated split.

The runner wraps the dataset in :class:`~inparsx.datasets.base.WithoutSplit` and hands the tuner a
:class:`~inparsx.context.ComponentContext` (no recipe, no run directory, no earlier stage's output), so a tuner
cannot read the evaluated
split's queries or qrels. Output: ``tune/model`` (``cpo``), ``tune/program.json`` (``dspy``) or
``tune/instruction.txt`` (``path``), which ``[generate]`` names as ``"@tune"``, and ``tune/summary.json``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inparsx.datasets.base import WithoutSplit
from inparsx.errors import PluginError
from inparsx.io import write_json
from inparsx.progress import console

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.pipeline import StageContext


def tune_context(ctx: StageContext) -> ComponentContext:
    """The narrow context a tuner gets: the dataset without ``ctx.eval_split``, the seed, ``ctx.dir``, and no
    earlier stage's output (the retrieve stage's run ranks the evaluated queries)."""
    return ctx.component_context(WithoutSplit(ctx.dataset, ctx.eval_split), outputs={})


def run_stage(ctx: StageContext) -> None:
    """Run ``ctx.component.tune`` and check that it wrote what it declares.

    Raises:
        PluginError: the tuner returned without writing ``ctx.dir / tuner.output``.
    """
    tuner = ctx.component
    result = tuner.tune(tune_context(ctx))
    expected = ctx.dir / tuner.output
    if not expected.exists():
        raise PluginError(f"tuner {tuner.name!r} did not write {expected}")
    write_json(ctx.dir / "summary.json", {"tuner": tuner.name, "output": tuner.output, "hidden_split": ctx.eval_split})
    console.print(f'tune: {tuner.name} -> {result} (use it in [generate] as "@tune")', markup=False)
