"""``docs/recipes.md``, generated from the registry: every stage, its built-in plugins and their options.

Run ``python -m inparsx.docgen > docs/recipes.md`` after changing an ``Options`` model; a test fails while
the file is out of date. Only components of the ``inparsx`` package are listed, so the page does not depend
on which third-party plugins are installed.
"""

from __future__ import annotations

import inspect
import re
import sys
import types
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from inparsx.plugins import Component, Registry, get_registry
from inparsx.recipe import MULTI_USE_STAGES, STAGES, DatasetConfig, RecipeInfo, StageKeys, stage_options_model
from inparsx.specs import ComponentSpec
from inparsx.tune.judge import JudgeOptions

NESTED: dict[str, list[tuple[str, type]]] = {"tune": [("[tune.judge]", JudgeOptions)]}
"""Sub-tables of a stage table that several of its plugins share, documented once after them."""

HEADER = """# Recipe reference

Generated from the options models by `python -m inparsx.docgen`; do not edit by hand.

A recipe is a TOML file with a `[recipe]` table, a `[dataset]` table and one table per stage, in the pipeline
order below. A stage table names its plugin with `use`; every other key is one of the stage's own options
(listed once under the stage, e.g. `[rerank]`'s `depth`) or one of that plugin's options.
`[filter]` takes a list (`use = ["length", "scores"]`): a key at its top level goes to every listed filter that
has it, and `[filter.<name>]` to one filter only. `--set stage.key=value` overrides any value. A model option
takes a hub id, a local folder, or `@stage` (an earlier stage's output, e.g. `@train`).
"""


def recipes_markdown(registry: Registry | None = None) -> str:
    """The whole page as Markdown text (ends with one newline)."""
    registry = registry or get_registry()
    parts = [
        HEADER,
        table_section("[recipe]", RecipeInfo),
        table_section("[dataset]", DatasetConfig),
        table_section("Every stage table", StageKeys),
        f"## Component specs\n\n{_doc(ComponentSpec)}\n",
    ]
    for stage, kind in STAGES.items():
        entries = [e for e in sorted(registry.entries[kind].values(), key=lambda e: e.name) if e.package == "inparsx"]
        many = " (a list: the filters run in order)" if stage in MULTI_USE_STAGES else ""
        parts.append(
            f"## [{stage}]\n\nPlugins{many}: " + (", ".join(f"`{e.name}`" for e in entries) or "none built in") + ".\n"
        )
        if (model := stage_options_model(stage)) is not None:
            parts.append(stage_options_section(stage, model))
        for entry in entries:
            parts.append(component_section(stage, entry.name, entry.cls))
        for title, model in NESTED.get(stage, []):
            parts.append(f"### {stage}: `{title}`\n\n{_doc(model)}\n\n{options_table(model)}\n")
    return "\n".join(parts).rstrip("\n") + "\n"


def table_section(title: str, model: type) -> str:
    return f"## {title}\n\n{_doc(model)}\n\n{options_table(model)}\n"


def stage_options_section(stage: str, model: type) -> str:
    """The options of ``stage`` itself (every plugin of the stage takes them), documented once."""
    return f"### {stage}: stage options\n\n{_doc(model)}\n\n{options_table(model)}\n"


def component_section(stage: str, name: str, cls: type[Component]) -> str:
    """One component: its description, the class docstring of its options, and the options table."""
    lines = [f"### {stage}: `{name}`", "", _doc(cls)]
    options_doc = _doc(cls.Options)
    if options_doc and options_doc != _doc(cls):
        lines += ["", options_doc]
    lines += ["", options_table(cls.Options), ""]
    return "\n".join(lines)


def options_table(model: type[BaseModel]) -> str:
    """A Markdown table: key, type, default, constraints and description of every field of ``model``."""
    rows = ["| key | type | default | constraints | description |", "|---|---|---|---|---|"]
    for key, info in model.model_fields.items():
        rows.append(
            f"| `{key}` | {_stage_table(info) or _type(info.annotation)} | {_default(info)} | {_constraints(info)} | "
            f"{_cell(info.description or '')} |"
        )
    if len(rows) == 2:
        return "No options."
    return "\n".join(rows)


def _doc(obj: Any) -> str:
    """A docstring as Markdown: Sphinx roles such as ``:class:`~a.b.C``` become ``C`` in code font."""
    text = inspect.cleandoc(obj.__doc__ or "").strip()
    return re.sub(r":\w+:`~?([\w.]+)`", lambda match: f"`{match.group(1).rsplit('.', 1)[-1]}`", text)


def _type(annotation: Any) -> str:
    if typing.get_origin(annotation) is typing.Literal:
        return " \\| ".join(f"`{value!r}`".replace("'", '"') for value in typing.get_args(annotation))
    text = getattr(annotation, "__name__", None) if not typing.get_args(annotation) else None
    return _cell(text or re.sub(r"\b[a-z_.]+\.(?=[A-Z])", "", str(annotation).replace("typing.", "")))


def _stage_table(info: FieldInfo) -> str:
    """``[train] table`` for a tuner's inner stage option (:class:`~inparsx.subrun.StageOf`), with ``or none``
    when it may be left out; ``""`` for any other option."""
    from inparsx.subrun import StageOf

    markers = [(item, "") for item in info.metadata if isinstance(item, StageOf)]
    if typing.get_origin(info.annotation) in (typing.Union, types.UnionType):
        markers += [
            (item, " or none")
            for arg in typing.get_args(info.annotation)
            for item in getattr(arg, "__metadata__", ())
            if isinstance(item, StageOf)
        ]
    return f"[{markers[0][0].stage}] table{markers[0][1]}" if markers else ""


def _default(info: FieldInfo) -> str:
    if info.is_required():
        return "required"
    value = info.get_default(call_default_factory=True)  # the factory's value, or the default itself
    if isinstance(value, ComponentSpec):  # as a recipe writes it
        return (
            "`{" + ", ".join(f"{key} = {item!r}" for key, item in value.model_dump().items()).replace("'", '"') + "}`"
        )
    return "" if value is None else f"`{value!r}`".replace("'", '"')


def _constraints(info: FieldInfo) -> str:
    found = []
    for item in info.metadata:
        for attr, sign in (("ge", ">="), ("gt", ">"), ("le", "<="), ("lt", "<")):
            if getattr(item, attr, None) is not None:
                found.append(f"{sign} {getattr(item, attr)}")
    return ", ".join(found)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


if __name__ == "__main__":
    sys.stdout.write(recipes_markdown())
