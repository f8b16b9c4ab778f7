"""Rich progress bars with items/s and ETA, shared by every stage, and the shared console; and silencing the
tqdm bars of libraries that tell our users nothing (:func:`quiet_library_bars`)."""

from __future__ import annotations

import contextlib
import functools
import logging
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
    """Disable the tqdm bars named in :data:`SILENCED_BARS`, whichever library creates them, and drop the log
    messages of :data:`SILENCED_LOGS`.

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
    for name, start in SILENCED_LOGS.items():
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(start))


SILENCED_LOGS = {"bitsandbytes.backends.cpu.ops": "Failed to load CPU gemm_4bit_forward"}
"""Logger name -> the start of a log message that tells inparsx users nothing: bitsandbytes, imported by
transformers and peft on a CPU with AVX512-BF16, warns that an optional 4-bit matmul kernel (the ``kernels``
package) is missing and falls back to its own, even when nothing is quantised."""


class _DropMessages(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def quiet_ir_datasets() -> None:
    """ir_datasets' ``[INFO]`` lines (``[starting] ...``, ``[finished] ...``, download hints) are not printed, and
    its tqdm bars only on a terminal: a failed download then ends in inparsx's own one-line error rather than a
    page of log lines, and a log file holds no carriage-return bars. Warnings and errors still show.
    Idempotent; call it after importing ir_datasets."""
    import ir_datasets.log as irds_log

    logger_of = irds_log.Logger.logger
    if getattr(logger_of, "inparsx_quiet", False):
        return

    @functools.wraps(logger_of)
    def logger(self):
        found = logger_of(self)
        if found.level < logging.WARNING:
            found.setLevel(logging.WARNING)
        return found

    def no_bar_off_terminal(method):
        @functools.wraps(method)
        def wrapped(self, *args, **kwargs):
            kwargs.setdefault("disable", None)  # tqdm: None disables the bar where the output is not a terminal
            return method(self, *args, **kwargs)
        return wrapped

    logger.inparsx_quiet = True  # type: ignore[attr-defined]
    irds_log.Logger.logger = logger  # type: ignore[method-assign]
    irds_log.Logger.pbar = no_bar_off_terminal(irds_log.Logger.pbar)  # type: ignore[method-assign]
    irds_log.Logger.pbar_raw = no_bar_off_terminal(irds_log.Logger.pbar_raw)  # type: ignore[method-assign]
