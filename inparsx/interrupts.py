"""Ctrl-C (SIGINT): stop within seconds, say where the run stopped, exit with code 130, no traceback.

The CLI installs :func:`install_handler`. The first Ctrl-C raises ``KeyboardInterrupt`` as Python does by
default, so ``finally`` blocks run (progress bars stop, temporary files are removed), and arms a watchdog:
if the process has not ended :data:`GRACE_SECONDS` later (a library swallowed the exception, or native code
does not return), it prints the same one line and ends the process with ``os._exit(130)``. A second Ctrl-C
ends it at once. Every stage is crash-safe (atomic renames, fsynced ``.partial`` files, a lock the OS
releases), so ending the process this way loses nothing that was finished.

Code that knows what it is doing wraps it in :func:`interrupted_as`, which turns ``KeyboardInterrupt`` into
:class:`~inparsx.errors.Interrupted` naming the stage, and records it for the watchdog's message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from typing import NoReturn

from inparsx.errors import Interrupted

GRACE_SECONDS = 3.0
"""How long after the first Ctrl-C the process may take to end by itself before the watchdog ends it."""

_state: dict[str, object] = {"at": None, "where": [], "where_at_signal": None, "reported": False}


def install_handler() -> object:
    """Handle SIGINT as described in the module docstring (main thread only; elsewhere a no-op). Returns the
    previous handler, for :func:`restore_handler`."""
    if threading.current_thread() is threading.main_thread():
        return signal.signal(signal.SIGINT, _on_sigint)
    return None


def restore_handler(previous: object) -> None:
    """Put back the handler :func:`install_handler` replaced (for callers that run the CLI in-process)."""
    if previous is not None and threading.current_thread() is threading.main_thread() and not happened():
        signal.signal(signal.SIGINT, previous)  # type: ignore[arg-type]


def happened() -> bool:
    """Whether Ctrl-C was pressed in this process (since :func:`install_handler`)."""
    return _state["at"] is not None


def current() -> str | None:
    """The innermost activity recorded by :func:`interrupted_as`, e.g. ``stage 'retrieve' (runs/x/retrieve)``."""
    where = _state["where"]
    return where[-1] if where else None  # type: ignore[index]


@contextlib.contextmanager
def interrupted_as(where: str) -> Iterator[None]:
    """Record ``where`` for the block, and turn Ctrl-C in it into :class:`~inparsx.errors.Interrupted` saying
    ``where`` the run stopped (the CLI prints it as one line and exits with code 130)."""
    stack: list[str] = _state["where"]  # type: ignore[assignment]
    stack.append(where)
    try:
        yield
    except KeyboardInterrupt:
        raise Interrupted(where) from None
    finally:
        stack.pop()


def message(where: str | None = None) -> str:
    """The one line printed on Ctrl-C: ``where`` defaults to what was running when the signal came."""
    where = where or current() or _state["where_at_signal"] or "start-up"  # type: ignore[assignment]
    return (
        f"interrupted during {where}: finished stages and partial results are kept; "
        "run the same command again to resume"
    )


def report(where: str | None = None) -> NoReturn:
    """Print :func:`message` on stderr (once) and end the process with code 130.

    Called once the interrupt has unwound the stack (every ``finally`` block has run), it ends the process with
    ``os._exit`` rather than ``sys.exit``: interpreter shutdown can take seconds more (measured: 6 s after a
    Lucene search, while Pyserini's JVM is torn down), and nothing is left to clean up.
    """
    _end_now(where)


def _print_once(where: str | None) -> None:
    if not _state["reported"]:
        _state["reported"] = True
        print(message(where), file=sys.stderr, flush=True)


def _on_sigint(signum: int, frame: object) -> None:
    if _state["at"] is not None:
        _end_now()
    _state["at"] = time.monotonic()
    _state["where_at_signal"] = current()
    threading.Thread(target=_watchdog, name="inparsx-interrupt-watchdog", daemon=True).start()
    raise KeyboardInterrupt


def _watchdog() -> None:
    time.sleep(GRACE_SECONDS)
    _end_now()


def _end_now(where: str | None = None) -> NoReturn:
    """End the process now: exit code 130, the one line printed if it was not yet."""
    try:
        if sys.stderr.isatty():
            sys.stderr.write("\x1b[?25h")  # show the cursor a live progress bar had hidden
        _print_once(where)
        sys.stdout.flush()
    finally:
        os._exit(130)
