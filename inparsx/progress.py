"""Progress shared by every stage: a rich bar with items/s and ETA on a terminal, plain steady log lines where
stderr is not one (a file, ``nohup``, a cluster job, CI), the shared consoles; and silencing the tqdm bars and
log lines of libraries that tell our users nothing (:func:`quiet_library_bars`)."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

T = TypeVar("T")

console = Console(stderr=True, highlight=False)
"""Where progress and stage messages go (stderr, so stdout stays clean for ``--json`` output)."""

out = Console(highlight=False, soft_wrap=True)
"""Where results go (stdout)."""


LOG_INTERVAL = 30.0
"""Seconds between two progress lines where stderr is not a terminal (``INPARSX_PROGRESS_INTERVAL``
overrides it; 0 prints a line at every update)."""


def progress_mode() -> str:
    """How progress is shown: ``bar`` (a live rich bar, on a terminal), ``log`` (plain lines every
    :data:`LOG_INTERVAL` seconds and one when a task ends, where stderr is a file, a pipe, a cluster job's log or
    CI) or ``off``. ``INPARSX_PROGRESS`` (``bar``, ``log``, ``off``) chooses; ``INPARSX_NO_PROGRESS`` set means
    ``off``; otherwise ``bar`` on a terminal (or in a notebook) and ``log`` elsewhere."""
    chosen = os.environ.get("INPARSX_PROGRESS", "").strip().lower()
    if chosen in ("bar", "log", "off"):
        return chosen
    if os.environ.get("INPARSX_NO_PROGRESS"):
        return "off"
    return "bar" if console.is_terminal or console.is_jupyter else "log"


def measured(task: Task) -> tuple[float, float]:
    """``(items, seconds)`` of a task since it began: the items done in this run (``completed`` minus the
    task's ``initial`` field, e.g. the steps a resumed training had already done) and the seconds from
    ``add_task`` to completion (or to now, when unfinished). The bar's final rate, the log's last line and the
    stages' summaries all divide these two numbers, so they print the same rate."""
    seconds = task.finished_time if task.finished_time is not None else (task.elapsed or 0.0)
    return task.completed - task.fields.get("initial", 0), seconds


def rate(task: Task) -> float | None:
    """Items per second: the average over the whole task once it is finished (:func:`measured`), rich's
    estimate over the last 30 seconds while it runs, or the average so far when that window holds too few
    updates (a training step slower than 30 s); ``None`` before anything is done."""
    if task.finished or task.speed is None:
        items, seconds = measured(task)
        return items / seconds if items > 0 and seconds > 0 else None
    return task.speed


def rate_text(speed: float | None, unit: str) -> str:
    """``18.2 pairs/s``; below 1 item/s two significant digits (``0.017 steps/s``, not ``0.0``); ``?`` without a
    rate. The bars, the log lines and the stages' summaries all print rates with it."""
    if speed is None:
        return f"? {unit}/s"
    return f"{speed:,.1f} {unit}/s" if speed >= 0.95 else f"{speed:.2g} {unit}/s"


def time_remaining(task: Task) -> float | None:
    """Seconds left at :func:`rate` (``None`` without a total or a rate)."""
    speed = rate(task)
    if task.total is None or not speed:
        return None
    return max(0.0, task.total - task.completed) / speed


class RateColumn(ProgressColumn):
    """``12.3 docs/s``: :func:`rate`, with the unit given as the task's ``unit`` field."""

    def render(self, task: Task) -> Text:
        speed = rate(task)
        return Text(
            "?" if speed is None else rate_text(speed, task.fields.get("unit", "it")), style="progress.data.speed"
        )


class ExtraColumn(ProgressColumn):
    """Free text a stage updates as it goes (e.g. queries/s and tokens/s of a generator)."""

    def render(self, task: Task) -> Text:
        return Text(task.fields.get("extra", ""), style="dim")


def log_line(task: Task) -> str:
    """One plain progress line: ``rerank: 2,304/6,000 pairs (38%) · 18.2 pairs/s · elapsed 0:02:07 · eta
    0:03:23 · <extra>``; a finished task's line ends with its total time instead of an ETA."""
    unit = task.fields.get("unit", "it")
    total = f"/{task.total:,.0f}" if task.total is not None else ""
    share = f" ({task.percentage:.0f}%)" if task.total else ""
    parts = [f"{task.description}: {task.completed:,.0f}{total} {unit}{share}"]
    parts.append(rate_text(rate(task), unit))
    _, seconds = measured(task)
    if task.finished:
        parts.append(f"done in {_clock(seconds)}")
    else:
        remaining = time_remaining(task)
        parts.append(f"elapsed {_clock(seconds)}" + ("" if remaining is None else f" · eta {_clock(remaining)}"))
    if task.fields.get("extra"):
        parts.append(str(task.fields["extra"]))
    return " · ".join(parts)


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class LogProgress(Progress):
    """A rich ``Progress`` that draws nothing live and prints :func:`log_line` instead: at most one line per task
    every ``interval`` seconds, and one when the task completes. For output that is not a terminal (a log file,
    ``nohup``, a cluster job, CI), where a live bar shows nothing until it ends. Counting, timing and rates are
    rich's, so they equal the bar's."""

    def __init__(self, *args: Any, interval: float = LOG_INTERVAL, **kwargs: Any):
        super().__init__(*args, **{**kwargs, "disable": True})
        self.interval = interval
        self._printed: dict[TaskID, float] = {}

    def add_task(self, description: str, *args: Any, **kwargs: Any) -> TaskID:
        task = super().add_task(description, *args, **kwargs)
        self._printed[task] = time.monotonic()
        return task

    def update(self, task_id: TaskID, **kwargs: Any) -> None:  # type: ignore[override]
        super().update(task_id, **kwargs)
        self._maybe_print(task_id)

    def advance(self, task_id: TaskID, advance: float = 1) -> None:
        super().advance(task_id, advance)
        self._maybe_print(task_id)

    def _maybe_print(self, task_id: TaskID) -> None:
        task = self._tasks[task_id]
        last = self._printed.get(task_id)
        if last is None:  # its final line is out
            return
        now = time.monotonic()
        if task.finished or now - last >= self.interval:
            self._printed[task_id] = now
            if task.finished:
                del self._printed[task_id]
            self.console.print(log_line(task), markup=False, highlight=False, soft_wrap=True)


def _interval() -> float:
    try:
        return max(0.0, float(os.environ.get("INPARSX_PROGRESS_INTERVAL", LOG_INTERVAL)))
    except ValueError:
        return LOG_INTERVAL


def make_progress() -> Progress:
    """A progress display as :func:`progress_mode` says: a live rich bar (description, bar, count, rate, elapsed
    time, ETA, extra text), plain log lines (:class:`LogProgress`), or nothing (``disable``)."""
    mode = progress_mode()
    if mode == "log":
        return LogProgress(console=console, interval=_interval())
    return Progress(
        SpinnerColumn(),
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        ExtraColumn(),
        console=console,
        disable=mode == "off",
        transient=False,
    )


def close_progress(progress: Progress, failed: bool) -> None:
    """Stop ``progress``. After a failure (an exception, Ctrl-C) a live bar is erased rather than left on
    screen as a stale spinner, and each unfinished task that had done something gets one line saying where it
    stopped (``generate (hf): stopped at 120/4,000 docs``)."""
    if failed and not progress.disable:
        progress.live.transient = True
    progress.stop()
    if failed and progress_mode() != "off":
        for task in progress.tasks:
            if not task.finished and task.completed:
                total = f"/{task.total:,.0f}" if task.total is not None else ""
                console.print(
                    f"{task.description}: stopped at {task.completed:,.0f}{total} {task.fields.get('unit', 'it')}",
                    markup=False,
                    highlight=False,
                    soft_wrap=True,
                )


@contextlib.contextmanager
def progress_task(description: str, total: int | None, unit: str = "it") -> Iterator[tuple[Progress, TaskID]]:
    """Context manager yielding ``(progress, task_id)``; advance with ``progress.advance(task_id, n)``. The
    task's numbers stay readable after the block (``progress.tasks``, :func:`measured`). When the block raises,
    the display is closed by :func:`close_progress` (no stale bar)."""
    progress = make_progress()
    progress.start()
    task = progress.add_task(description, total=total, unit=unit)
    try:
        yield progress, task
    except BaseException:
        close_progress(progress, failed=True)
        raise
    close_progress(progress, failed=False)


def task_of(progress: Progress, task_id: TaskID) -> Task:
    """The :class:`rich.progress.Task` of ``task_id`` (for :func:`measured`)."""
    return next(task for task in progress.tasks if task.id == task_id)


def track(items: Iterable[T], description: str, total: int | None = None, unit: str = "it") -> Iterator[T]:
    """Iterate ``items`` with a progress bar (``total`` defaults to ``len(items)`` when available)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with progress_task(description, total, unit) as (progress, task):
        for item in items:
            yield item
            progress.advance(task)


SILENCED_BARS = frozenset(
    {
        "Loading weights",
        "Writing model shards",
        "Computing widget examples",
        "Converting and de-quantizing GGUF tensors...",
        "Map",
    }
)
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
