"""One run at a time per run directory: an OS file lock (``filelock``) plus a note saying who holds it.

The lock is ``<run_dir>/.inparsx.lock``, taken with ``flock`` through the filelock library, so the operating
system releases it when its process ends in any way (Ctrl-C, a crash, ``kill -9``): a lock left by a killed
run never blocks the next one. Beside it, ``.inparsx.lock.json`` records the holder (pid, host, start time,
command line) so that a refused run can say who holds the folder and since when.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inparsx.errors import InparsxError, StorageError
from inparsx.io import storage_errors, write_json

LOCK_FILE = ".inparsx.lock"
HOLDER_FILE = ".inparsx.lock.json"


class RunDirLocked(InparsxError):
    """Another process holds the run directory's lock.

    Args:
        run_dir: the folder.
        holder: what ``.inparsx.lock.json`` says about the holder (``pid``, ``host``, ``since``, ``command``);
            empty when it has not written it yet.
    """

    def __init__(self, run_dir: Path, holder: dict[str, Any]):
        self.run_dir, self.holder = run_dir, holder
        who = f"pid {holder['pid']}" if "pid" in holder else "another process"
        if holder.get("host") and holder["host"] != socket.gethostname():
            who += f" on {holder['host']}"
        since = f" since {holder['since']}" if holder.get("since") else ""
        command = f" ({holder['command']})" if holder.get("command") else ""
        super().__init__(
            f"run directory {run_dir} is in use by another inparsx run: {who}{since}{command}; "
            "wait for it to finish, or pass --run-dir to write elsewhere"
        )


def read_holder(run_dir: Path) -> dict[str, Any]:
    """The holder note of ``run_dir`` (``{}`` when absent or unreadable)."""
    return read_holder_file(run_dir / HOLDER_FILE)


def read_holder_file(path: Path) -> dict[str, Any]:
    """A holder note (:func:`holder_note`) read from ``path``; ``{}`` when absent or unreadable."""
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}


def holder_note() -> dict[str, Any]:
    """Who this process is, for a lock's note: ``pid``, ``host``, ``since`` (UTC) and ``command``."""
    since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": since, "command": _command_line()}


@contextlib.contextmanager
def run_dir_lock(run_dir: Path) -> Iterator[None]:
    """Hold ``run_dir``'s lock for the block; refuse at once if another process holds it.

    Raises:
        RunDirLocked: another live process holds the lock (its pid, start time and command are named).
        StorageError: the lock file cannot be created (permission denied, a path that is a file...).
    """
    from filelock import FileLock, Timeout

    run_dir = Path(run_dir)
    with storage_errors(run_dir):
        run_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(run_dir / LOCK_FILE, timeout=0, thread_local=False)
    try:
        lock.acquire()
    except Timeout:  # an OSError too (TimeoutError): caught first
        raise RunDirLocked(run_dir, _wait_for_holder(run_dir)) from None
    except OSError as exc:
        raise StorageError.from_os_error(exc, run_dir / LOCK_FILE) from exc
    try:
        write_json(run_dir / HOLDER_FILE, holder_note())
        yield
    finally:
        (run_dir / HOLDER_FILE).unlink(missing_ok=True)
        lock.release()


def _wait_for_holder(run_dir: Path, seconds: float = 1.0) -> dict[str, Any]:
    """The holder note, waiting up to ``seconds`` for a holder that has just taken the lock to write it."""
    deadline = time.monotonic() + seconds
    holder = read_holder(run_dir)
    while not holder and time.monotonic() < deadline:
        time.sleep(0.05)
        holder = read_holder(run_dir)
    return holder


def _command_line() -> str:
    """``inparsx run r.toml ...`` as typed (the program's base name and its arguments)."""
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else "inparsx"
    if program in ("__main__.py", "main.py"):
        program = "inparsx"
    return " ".join([program, *sys.argv[1:]])
