"""Rich progress bars with items/s and ETA, shared by every stage, and the shared console; and silencing the
tqdm bars of libraries that tell our users nothing (:func:`quiet_library_bars`)."""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

from rich.console import Console
from rich.progress import (BarColumn, MofNCompleteColumn, Progress, ProgressColumn, SpinnerColumn, Task, TextColumn,
                           TimeElapsedColumn, TimeRemainingColumn)
from rich.text import Text

T = TypeVar("T")

console = Console(stderr=True, highlight=False)
"""Where progress and stage messages go (stderr, so stdout stays clean for ``--json`` output)."""

out = Console(highlight=False, soft_wrap=True)
"""Where results go (stdout)."""


class RateColumn(ProgressColumn):
    """``12.3 docs/s``: completed items per second, with the unit given as the task's ``unit`` field."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "it")
        return Text("?" if speed is None else f"{speed:,.1f} {unit}/s", style="progress.data.speed")


class ExtraColumn(ProgressColumn):
    """Free text a stage updates as it goes (e.g. queries/s and tokens/s of a generator)."""

    def render(self, task: Task) -> Text:
        return Text(task.fields.get("extra", ""), style="dim")


def make_progress() -> Progress:
    """A rich ``Progress`` with description, bar, count, rate, elapsed time and ETA columns.

    Disabled (no output) when ``INPARSX_NO_PROGRESS`` is set or stderr is not a terminal and ``CI`` is set.
    """
    disable = bool(os.environ.get("INPARSX_NO_PROGRESS")) or (bool(os.environ.get("CI")) and not sys.stderr.isatty())
    return Progress(SpinnerColumn(), TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    RateColumn(), TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), ExtraColumn(),
                    console=console, disable=disable, transient=False)


@contextlib.contextmanager
def progress_task(description: str, total: int | None, unit: str = "it") -> Iterator[tuple[Progress, object]]:
    """Context manager yielding ``(progress, task_id)``; advance with ``progress.advance(task_id, n)``."""
    with make_progress() as progress:
        yield progress, progress.add_task(description, total=total, unit=unit)


def track(items: Iterable[T], description: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate ``items`` with a progress bar (``total`` defaults to ``len(items)`` when available)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_task(description, total, unit) as (progress, task):
        for item in items:
            yield item
            progress.advance(task)


SILENCED_BARS = frozenset({"Loading weights", "Writing model shards", "Computing widget examples",
                           "Converting and de-quantizing GGUF tensors...", "Map"})
"""Descriptions of library tqdm bars that carry no information for inparsx users: transformers' per-tensor
"Loading weights", "Writing model shards" and GGUF "Converting and de-quantizing" bars (a flash on small models,
printed between our rich bars), ``datasets``' "Map" bars (the CPO trainer's tokenisation of its pairs) and
sentence-transformers' "Computing widget examples" (its model card). Other bars, such as hub downloads
(``huggingface_hub``), are kept."""


def quiet_library_bars() -> None:
    """Disable the tqdm bars named in :data:`SILENCED_BARS`, whichever library creates them.

    transformers and sentence-transformers create these bars with ``tqdm(..., desc=...)`` on tqdm's base class
    (directly or through ``tqdm.auto``), so the switch is made there: a bar whose ``desc`` is listed is created
    with ``disable=True``. Idempotent; importing tqdm costs about 60 ms.
    """
    import tqdm.std

    original = tqdm.std.tqdm.__init__
    if getattr(original, "inparsx_quiet", False):
        return

    @functools.wraps(original)
    def __init__(self, *args, **kwargs):
        desc = kwargs.get("desc", args[1] if len(args) > 1 else None)
        if desc in SILENCED_BARS:
            kwargs["disable"] = True
        original(self, *args, **kwargs)

    __init__.inparsx_quiet = True  # type: ignore[attr-defined]
    tqdm.std.tqdm.__init__ = __init__  # type: ignore[method-assign]
