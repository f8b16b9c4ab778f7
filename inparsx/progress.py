"""Rich progress bars with items/s and ETA, shared by every stage, and the shared console."""

from __future__ import annotations

import contextlib
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
