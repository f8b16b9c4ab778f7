"""Values on the command line and in sweep files: ``--seeds 1,2,3``, ``--grid KEY=V1,V2``, TOML literals for
``--set`` items, and where an array-of-tables entry starts in a TOML text."""

from __future__ import annotations

import json
import math
import re
from typing import Any

from inparsx.errors import InparsxError, RecipeError
from inparsx.recipe import parse_set

SEED_KEY = "recipe.seed"
"""The key a sweep sets for each run's seed (``--seeds``); a grid or ``--set`` item may not set it."""


def parse_seeds(text: str) -> list[int]:
    """``--seeds 1,2,3`` -> ``[1, 2, 3]``.

    Raises:
        RecipeError: an item that is not an integer, a repeated seed, or no seed.
    """
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not parts:
        raise RecipeError("--seeds", str(text), "no seed: give a list such as --seeds 1,2,3")
    seeds = []
    for part in parts:
        if not re.fullmatch(r"-?\d+", part):
            raise RecipeError("--seeds", str(text), f"{part!r} is not an integer seed; e.g. --seeds 1,2,3")
        seeds.append(int(part))
    if len(set(seeds)) != len(seeds):
        raise RecipeError("--seeds", str(text), "a seed repeats")
    return seeds


def parse_grid(item: str) -> tuple[str, list[Any]]:
    """``--grid KEY=V1,V2,...`` -> ``(KEY, [V1, V2, ...])``; each value a TOML literal (else a string), split on
    the commas outside brackets, braces and quotes (``--grid 'filter.use=["length"],["length","copied"]'``).

    Raises:
        RecipeError: no ``=``, an empty key or value, or a value given twice; the message names the item.
    """
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key or any(not part.strip() for part in key.split(".")):
        raise RecipeError("--grid", item, "expected KEY=V1,V2,..., e.g. --grid train.learning_rate=1e-5,2e-5")
    if key == SEED_KEY:
        raise RecipeError("--grid", item, "the seeds of a sweep are --seeds 1,2,3, not a grid")
    tokens = split_values(raw)
    if not tokens or any(not token.strip() for token in tokens):
        raise RecipeError("--grid", item, "an empty value: give values separated by commas, e.g. KEY=1,2")
    values = [parse_set(f"{key}={token}")[1] for token in tokens]
    if len({json.dumps(v, sort_keys=True) for v in values}) != len(values):
        raise RecipeError("--grid", item, "a value repeats")
    return key, values


def split_values(text: str) -> list[str]:
    """``text`` split on the commas at depth 0 (outside ``[]``, ``{}`` and quotes)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, char in enumerate(text):
        if quote:
            quote = "" if char == quote and text[i - 1] != "\\" else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [part.strip() for part in parts]


def toml_literal(value: Any) -> str:
    """``value`` as a TOML literal (``2e-05``, ``"qrels"``, ``[1, 2]``, ``{first_stage = 1}``), so that a
    ``--set KEY=<literal>`` item gives back ``value``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return ("inf" if value > 0 else "-inf") if math.isinf(value) else "nan" if math.isnan(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(toml_literal(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = (k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else json.dumps(k) for k in value)
        return "{" + ", ".join(f"{k} = {toml_literal(v)}" for k, v in zip(keys, value.values())) + "}"
    raise InparsxError(f"{value!r}: not a TOML value")


def display(value: Any) -> str:
    """A grid value as the table and folder names show it: strings bare, the rest as TOML literals."""
    return value if isinstance(value, str) else toml_literal(value)


def array_line(text: str, name: str, index: int) -> int | None:
    """The line of the ``index``-th ``[[name]]`` header of a TOML text (1-based), or ``None``."""
    found = [
        number
        for number, line in enumerate(text.splitlines(), 1)
        if re.match(rf"^\s*\[\[\s*{re.escape(name)}\s*\]\]", line)
    ]
    return found[index] if index < len(found) else None
