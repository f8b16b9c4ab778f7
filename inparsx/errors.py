"""Errors that the CLI reports as one clear line (exit code 2), never as a traceback."""

from __future__ import annotations

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
