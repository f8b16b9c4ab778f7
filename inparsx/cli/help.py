"""Help text and listings that read as text: docstrings without reStructuredText, help that rich does not
swallow, and flags and arguments shown as a hand-written CLI shows them.

Typer renders help with rich markup, so ``[evaluate]`` in a docstring vanished ("the same validated ``
table"); docstrings also carry reStructuredText (````<stem>.stats.json````, ``:func:`...```) meant for the API
documentation. :class:`PlainHelpGroup`, the ``inparsx`` app's group class, rewrites every command's help
(the built-in ones and those plugins add) once, when the CLI is built: plain text, markup escaped, each
paragraph on one line for rich to wrap; a flag shows no ``<bool>`` type and a positional argument reads
``QUERIES`` (``[QUERIES]`` when optional), as click and most hand-written CLIs show them.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

from typer.core import TyperGroup

_ROLE = re.compile(r":(?:py:)?(?:func|class|meth|mod|data|attr|exc|obj|const|ref|doc):`(~?)([^`<]+?)(?:\s*<[^>]*>)?`")
_LITERAL = re.compile(r"``(.+?)``")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'`])")
_ABBREVIATIONS = ("e.g.", "i.e.", "etc.", "vs.", "cf.", "et al.", "approx.", "Fig.", "No.")


def plain_text(doc: str | None) -> str:
    """A docstring as plain text: indentation removed, reStructuredText roles (``:func:`a.b.c``` -> ``a.b.c``,
    ``:class:`~a.B``` -> ``B``) and literals (````x```` -> ``x``) unwrapped, and each paragraph joined into one
    line (bulleted lines keep their own line). Paragraphs are separated by a blank line."""
    text = inspect.cleandoc(doc or "")
    text = _ROLE.sub(lambda m: m.group(2).rsplit(".", 1)[-1] if m.group(1) else m.group(2), text)
    text = _LITERAL.sub(r"\1", text)
    paragraphs = []
    for block in re.split(r"\n\s*\n", text.strip()):
        lines = [line.strip() for line in block.splitlines() if line.strip()]
        joined: list[str] = []
        for line in lines:
            if joined and not line.startswith(("- ", "* ")):
                joined[-1] += " " + line
            else:
                joined.append(line)
        paragraphs.append("\n".join(joined))
    return "\n\n".join(p for p in paragraphs if p)


def first_sentence(doc: str | None) -> str:
    """The first sentence of a docstring's first paragraph, as plain text (:func:`plain_text`): what
    ``inparsx plugins`` and the command list show. Abbreviations such as ``e.g.`` do not end a sentence; a
    paragraph without a sentence end is returned whole."""
    paragraph = plain_text(doc).split("\n\n", 1)[0].replace("\n", " ")
    for match in _SENTENCE_END.finditer(paragraph):
        head = paragraph[: match.start()]
        if not (head.endswith(_ABBREVIATIONS) or re.search(r"\b[A-Za-z]\.$", head)):
            return head
    return paragraph


def help_text(doc: str | None) -> str:
    """Help for Typer's rich formatter: :func:`plain_text` with rich markup escaped (``[recipe]`` stays)."""
    from rich.markup import escape

    return escape(plain_text(doc))


def plain_command(command: Any) -> None:
    """Rewrite one click command's help, short help and parameters in place (see the module docstring);
    a group's sub-commands too. Idempotent."""
    if getattr(command, "_inparsx_plain", False):
        return
    command._inparsx_plain = True
    if command.help:
        command.short_help = help_text(first_sentence(command.help))
        command.help = help_text(command.help)
    for param in command.params:
        if getattr(param, "help", None):
            param.help = help_text(param.help)
        if param.param_type_name == "option" and getattr(param, "is_flag", False) and param.metavar is None:
            param.metavar = ""  # a flag takes no value: no <bool> beside it
        if param.param_type_name == "argument":
            _plain_argument(param)
    original = command.get_help_option

    def get_help_option(ctx: Any) -> Any:
        option = original(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""  # --help is a flag too
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        plain_command(sub)


def _plain_argument(param: Any) -> None:
    """``QUERIES`` (required), ``[QUERIES]`` (optional), ``QUERIES...`` (several) in the usage line and the
    arguments panel, instead of ``{queries}``."""
    if param.metavar is None:
        param.metavar = (param.name or "").upper()
    name = param.metavar

    def usage_pieces(ctx: Any) -> list[str]:
        shown = name if param.required else f"[{name}]"
        return [shown + ("..." if param.nargs != 1 else "")]

    param.get_usage_pieces = usage_pieces


class PlainHelpGroup(TyperGroup):
    """The ``inparsx`` command group: every command it holds gets plain help (:func:`plain_command`)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        plain_command(self)
