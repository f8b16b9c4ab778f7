"""Run the ``inparsx`` CLI in-process from a test, as a user would from a shell."""

from __future__ import annotations

import sys

import pytest


def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``inparsx ARGS...`` in this process (pytest's ``monkeypatch`` sets ``sys.argv``, ``capsys`` captures
    the output); returns ``(exit code, stdout, stderr)``. The CLI always exits through ``SystemExit``."""
    from inparsx.cli.main import main

    monkeypatch.setattr(sys, "argv", ["inparsx", *args])
    with pytest.raises(SystemExit) as info:
        main()
    captured = capsys.readouterr()
    code = info.value.code
    return code if isinstance(code, int) else (0 if code is None else 1), captured.out, captured.err
