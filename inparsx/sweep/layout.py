"""The layout of a sweep's table from its file: ``[[rows]]`` beside the variants and the ``[[compare]]`` tests,
checked against the variants and columns; and which row a test compares each row with."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inparsx.errors import RecipeError
from inparsx.recipe import parse_set
from inparsx.sweep.spec import Compare, Origin, Row, Sweep, SweepFile, Variant, error_at, raise_all
from inparsx.sweep.values import array_line, split_values


def apply_layout(sweep: Sweep, config: SweepFile, path: Path, text: str) -> None:
    """The table's extra rows and tests from the file, checked against the variants and columns."""
    errors: list[RecipeError] = []
    names = {row.name for row in sweep.rows()}
    for i, row in enumerate(config.rows):
        where = Origin(str(path), f"rows.{i}", array_line(text, "rows", i))
        if row.name in names:
            errors.append(error_at(where, f"name {row.name!r}: another row has it"))
        names.add(row.name)
        unknown = [c for c in row.runs if sweep.columns and c not in sweep.columns]
        if unknown:
            errors.append(error_at(where, f"runs: {unknown[0]!r} is not a column; columns: {', '.join(sweep.columns)}"))
        try:
            variant = _first_match(sweep, row.variant) if row.variant else sweep.variants[0]
        except RecipeError as exc:
            errors.append(RecipeError(where.file, f"{where.key}.variant", exc.reason, where.line))
            continue
        sweep.extra_rows.append(Row(row.name, variant, dict(row.runs), fixed=True))
    for i, compare in enumerate(config.compare):
        where = Origin(str(path), f"compare.{i}", array_line(text, "compare", i))
        if compare.column is not None and sweep.columns and compare.column not in sweep.columns:
            errors.append(
                RecipeError(
                    where.file,
                    f"{where.key}.column",
                    f"{compare.column!r} is not a column; columns: {', '.join(sweep.columns)}",
                    where.line,
                )
            )
        try:
            check_row_ref(sweep, compare.row, Origin(where.file, f"{where.key}.row", where.line))
        except RecipeError as exc:
            errors.append(exc)
            continue
        sweep.compares.append(Compare(compare.name, compare.row, compare.column))
    raise_all(errors)


def row_spec(text: str) -> dict[str, Any]:
    """A baseline named by variant and grid values (``gold-10,train.learning_rate=2e-05``) as ``{"": name,
    key: value}``."""
    spec: dict[str, Any] = {}
    for part in split_values(text):
        if "=" in part:
            key, value = parse_set(part)
            spec[".".join(key)] = value
        elif part:
            spec[""] = part
    return spec


def _first_match(sweep: Sweep, text: str) -> Variant:
    for variant in sweep.variants:
        if variant.id == text or variant.matches(row_spec(text)):
            return variant
    raise RecipeError("", "", f"{text!r} names no variant; variants: {', '.join(v.id for v in sweep.variants)}")


def check_row_ref(sweep: Sweep, text: str, origin: Origin) -> None:
    """A baseline must name a row, a variant or grid values of a variant.

    Raises:
        RecipeError: it names none (the rows and variants are listed).
    """
    if any(row.name == text for row in sweep.rows()) or any(v.id == text for v in sweep.variants):
        return
    try:
        _first_match(sweep, text)
    except RecipeError:
        names = [row.name for row in sweep.extra_rows] + [v.id for v in sweep.variants]
        raise RecipeError(
            origin.file,
            origin.key,
            f"{text!r} names no row or variant; expected one of: {', '.join(names)}",
            origin.line,
        ) from None


def baseline_row(sweep: Sweep, compare: Compare, tested: Row) -> Row | None:
    """The row ``tested`` is compared with under ``compare``: a row or variant of that name, or the variant that
    matches the spec's parts and agrees with ``tested`` on everything else; ``None`` when there is none."""
    rows = sweep.rows()
    for row in rows:
        if row.name == compare.row or (not row.fixed and row.variant.id == compare.row):
            return row
    spec = row_spec(compare.row)
    if tested.fixed:
        return next((row for row in rows if not row.fixed and row.variant.matches(spec)), None)
    wanted = {"": tested.variant.name, **tested.variant.grid, **spec}
    return next((row for row in rows if not row.fixed and row.variant.matches(wanted)), None)
