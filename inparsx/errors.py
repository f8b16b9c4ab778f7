"""Errors that the CLI reports as one clear line (exit code 2), never as a traceback."""

from __future__ import annotations

import errno
from pathlib import Path


class InparsxError(Exception):
    """Base class of every error inparsx reports to the user.

    The message already says what went wrong and where (file, line, key); the CLI prints it as is.
    """

    exit_code = 2


class RecipeError(InparsxError):
    """A recipe (or a ``--set`` override) is invalid.

    Args:
        file: the recipe path (or ``--set``).
        key: the dotted key, e.g. ``retrieve.k1``.
        reason: why it is rejected.
        line: the 1-based line of the key in the file, when known.
    """

    def __init__(self, file: str | Path, key: str, reason: str, line: int | None = None):
        self.file, self.key, self.reason, self.line = str(file), key, reason, line
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


class DataError(InparsxError):
    """Malformed input data: a bad JSON line, a qrels row with the wrong number of columns...

    Args:
        file: the offending file.
        line: its 1-based line number, when the problem is on one line.
        reason: what is wrong.
    """

    def __init__(self, file: str | Path, reason: str, line: int | None = None):
        self.file, self.line, self.reason = str(file), line, reason
        where = f"{self.file}:{line}" if line else self.file
        super().__init__(f"{where}: {reason}")


class PluginError(InparsxError):
    """An unknown component name, or a plugin that breaks the component contract."""


class StorageError(InparsxError):
    """The operating system refused a file operation: permission denied, disk full, a missing folder, a path
    that is a file where a folder is needed (or the reverse).

    Args:
        path: the file or folder concerned.
        reason: what went wrong, in words (e.g. ``no space left on device``).
    """

    REASONS = {
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.ENOSPC: "no space left on device; free some space and run again (finished work is kept)",
        errno.EDQUOT: "disk quota exceeded; free some space and run again (finished work is kept)",
        errno.ENOENT: "no such file or folder",
        errno.ENOTDIR: "a part of this path is a file, not a folder",
        errno.EISDIR: "is a folder, not a file",
        errno.EEXIST: "already exists (a file where a folder is needed?)",
        errno.EROFS: "read-only file system",
    }

    def __init__(self, path: str | Path, reason: str):
        self.path, self.reason = str(path), reason
        super().__init__(f"{self.path}: {reason}")

    @classmethod
    def from_os_error(cls, exc: OSError, path: str | Path | None = None) -> StorageError:
        """Build from an ``OSError``: ``path`` when given, else the path the OS names (``exc.filename``); the
        reason from :attr:`REASONS` by ``errno``, else the OS's own message."""
        where = path if path is not None else exc.filename
        reason = cls.REASONS.get(exc.errno or 0) or exc.strerror or str(exc)
        if exc.errno == errno.EEXIST and where is not None and Path(where).is_file():
            reason = "is a file, not a folder"
        return cls(where if where is not None else "(unknown path)", reason)


class Interrupted(InparsxError):
    """The user pressed Ctrl-C (SIGINT). ``where`` says what was running; the CLI exits with code 130."""

    exit_code = 130

    def __init__(self, where: str):
        self.where = where
        super().__init__(f"interrupted during {where}")
