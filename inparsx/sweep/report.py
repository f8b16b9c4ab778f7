"""What a sweep writes into its folder: ``sweep.json`` (every cell, test and run), ``table.txt`` (the printed
tables) and ``report.html`` (the tables, a plot of every cell with its spread over seeds, the curve of the
variants that give an ``x``, and each run's times), built with :mod:`inparsx.report`'s style and figures."""

from __future__ import annotations

import datetime
import io
from html import escape
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from inparsx.evaluate.metrics import parse_metric
from inparsx.io import atomic_write, write_json
from inparsx.sweep.collect import SweepResult

JSON_FILE, TABLE_FILE, REPORT_FILE = "sweep.json", "table.txt", "report.html"


def label(metric: str) -> str:
    """``ndcg@10`` -> ``nDCG@10`` (the metric's display name)."""
    return parse_metric(metric).label


def value_text(entry: dict[str, Any] | None) -> str:
    """``0.7209 ± 0.0012`` (mean ± sd over seeds; the mean alone for one seed; ``-`` for no value)."""
    if not entry:
        return "-"
    return f"{entry['mean']:.4f}" + (f" ± {entry['sd']:.4f}" if entry.get("sd") is not None else "")


def test_text(entry: dict[str, Any] | None) -> str:
    """``+0.0014 p=0.790`` (``*`` when significant); ``""`` for no test."""
    if not entry:
        return ""
    p_value = entry["p_value"]
    p_text = "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"
    return f"{entry['delta']:+.4f} {p_text}" + (" *" if entry["significant"] else "")


def to_json(result: SweepResult) -> dict[str, Any]:
    """The content of ``sweep.json``."""
    sweep = result.sweep
    return {
        "name": sweep.name,
        "source": sweep.source,
        "recipe": str(sweep.recipe_path),
        "seeds": sweep.seeds,
        "set": sweep.sets,
        "metric": result.metric,
        "metrics": result.metrics,
        "columns": result.columns,
        "column_runs": dict(sweep.columns) or {c: c for c in result.columns},
        "rows": [
            {
                "name": row.name,
                "variant": row.variant.id,
                "sets": row.variant.sets,
                "x": row.variant.x,
                "fixed": row.fixed,
                "runs": row.runs,
            }
            for row in result.rows
        ],
        "cells": result.cells,
        "tests": result.tests,
        "test": result.test_description,
        "runs": result.runs,
        "missing": result.missing,
        "stale": result.stale,
        "store": str(sweep.store),
    }


def tables(result: SweepResult) -> list[Table]:
    """The rich tables: the values (mean ± sd over seeds), then one per test."""
    metric = result.metric
    seeds = ", ".join(map(str, result.sweep.seeds))
    main = Table(title=f"{result.sweep.name}: {label(metric)}, mean ± sd over seeds {seeds}")
    main.add_column("row", style="bold", no_wrap=True)
    for column in result.columns:
        main.add_column(column, justify="right", no_wrap=True)
    main.add_column("seeds", justify="right")
    for row in result.rows:
        cells = result.cells.get(row.name, {})
        counts = {cell[metric]["n"] for cell in cells.values() if metric in cell}
        main.add_row(
            row.name,
            *(value_text(cells.get(c, {}).get(metric)) for c in result.columns),
            "/".join(map(str, sorted(counts))) or "0",
        )
    found = [main]
    for test in result.tests:
        table = Table(title=f"{test['name']}: Δ {label(metric)} against {_against(test)}, and p (* significant)")
        table.add_column("row", style="bold", no_wrap=True)
        for column in result.columns:
            table.add_column(column, justify="right", no_wrap=True)
        for row in result.rows:
            cells = test["cells"].get(row.name, {})
            if cells:
                table.add_row(row.name, *(test_text(cells.get(c, {}).get(metric)) for c in result.columns))
        found.append(table)
    return found


def _against(test: dict[str, Any]) -> str:
    """``zero-shot in column 'fused'`` or ``gold-10 in the same column``: a test's baseline cell in words."""
    against = test["against"]
    return against["row"] + (f" in column {against['column']!r}" if against["column"] else " in the same column")


def footer(result: SweepResult) -> list[str]:
    """The lines under the tables: what the columns are, the test, and the runs without results."""
    runs = dict(result.sweep.columns) or {}
    lines = [f"{column}: run {run!r}" for column, run in runs.items()]
    if result.test_description:
        lines.append(f"tests: {result.test_description}, on per-query scores averaged over each cell's seeds")
    if result.missing:
        lines.append(f"not run yet ({len(result.missing)}): {', '.join(result.missing)}")
    if result.stale:
        lines.append(
            f"stale, left out ({len(result.stale)}; their folders hold runs of other settings): "
            f"{', '.join(result.stale)}"
        )
    return lines


def print_tables(result: SweepResult, console: Console) -> None:
    """Print the tables and footer on ``console`` (full width when it is not a terminal)."""
    if not console.is_terminal:
        console = Console(file=console.file, width=10_000, highlight=False, color_system=None, soft_wrap=True)
    for table in tables(result):
        console.print(table)
    for line in footer(result):
        console.print(line, markup=False)


def write_outputs(result: SweepResult) -> dict[str, Path]:
    """Write ``sweep.json``, ``table.txt`` and ``report.html`` into the sweep folder; returns their paths.

    Raises:
        StorageError: the folder cannot be written.
    """
    folder = result.sweep.sweep_dir
    paths = {"json": folder / JSON_FILE, "table": folder / TABLE_FILE, "report": folder / REPORT_FILE}
    write_json(paths["json"], to_json(result))
    text = io.StringIO()
    print_tables(result, Console(file=text, width=10_000, color_system=None, highlight=False))
    with atomic_write(paths["table"]) as handle:
        handle.write(text.getvalue())
    with atomic_write(paths["report"]) as handle:
        handle.write(render(result))
    return paths


# ---------------------------------------------------------------------------------------------------------
# HTML


def render(result: SweepResult) -> str:
    """The sweep's self-contained HTML page (inline style, figures embedded as PNG)."""
    from inparsx.report import STYLE

    sweep = result.sweep
    made = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        ("Results", _results_html(result)),
        ("Plot", _plots_html(result)),
        ("Runs", _runs_html(result)),
        ("Variants", _variants_html(result)),
    ]
    nav = "".join(f'<a href="#{title.lower()}">{title}</a>' for title, _ in sections)
    body = "".join(f'<section id="{title.lower()}"><h2>{title}</h2>{html}</section>' for title, html in sections)
    description = f"<p>{escape(sweep.description)}</p>" if sweep.description else ""
    return (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>inparsx sweep: {escape(sweep.name)}'
        f"</title><style>{STYLE}</style></head><body><h1>{escape(sweep.name)}</h1>{description}"
        f'<p class="meta">base recipe {escape(str(sweep.recipe_path))}; {len(sweep.variants)} variant(s) x '
        f"{len(sweep.seeds)} seed(s); sweep folder {escape(str(sweep.sweep_dir.resolve()))}; stage store "
        f"{escape(str(sweep.store))}; report made {made}.</p><nav>{nav}</nav>{body}</body></html>\n"
    )


def _html_table(header: list[str], rows: list[list[str]], numeric_from: int = 1) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join(
        "<tr>"
        + "".join(
            f'<td class="num">{escape(c)}</td>' if i >= numeric_from else f"<td>{escape(c)}</td>"
            for i, c in enumerate(row)
        )
        + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def _results_html(result: SweepResult) -> str:
    metric = result.metric
    parts = [f"<p>{escape(label(metric))}, mean ± sd over seeds {', '.join(map(str, result.sweep.seeds))}.</p>"]
    rows = [
        [row.name, *(value_text(result.cells.get(row.name, {}).get(c, {}).get(metric)) for c in result.columns)]
        for row in result.rows
    ]
    parts.append(_html_table(["row", *result.columns], rows))
    for test in result.tests:
        parts.append(
            f"<h3>{escape(test['name'])}</h3><p>Δ {escape(label(metric))} against "
            f"{escape(_against(test))}, and p (* significant).</p>"
        )
        rows = [
            [row.name, *(test_text(test["cells"].get(row.name, {}).get(c, {}).get(metric)) for c in result.columns)]
            for row in result.rows
            if test["cells"].get(row.name)
        ]
        parts.append(_html_table(["row", *result.columns], rows))
    parts.extend(f'<p class="meta">{escape(line)}</p>' for line in footer(result))
    return "".join(parts)


def _plots_html(result: SweepResult) -> str:
    from inparsx.sweep.plots import cells_plot, curve_plot

    html = cells_plot(result)
    if any(row.variant.x is not None and not row.fixed for row in result.rows):
        html += curve_plot(result)
    return html


def _runs_html(result: SweepResult) -> str:
    rows = []
    for run in result.runs:
        computed = run.get("computed_seconds") or {}
        shared = run.get("shared_seconds") or {}
        rows.append(
            [
                run["variant"],
                str(run["seed"]),
                run["status"],
                f"{sum(computed.values()):.0f}" if run["status"] == "done" else "",
                ", ".join(f"{s} {v:.0f}" for s, v in computed.items()),
                ", ".join(shared),
                run["run_dir"],
            ]
        )
    return (
        "<p>Seconds are the stages' own times from their completion markers; a stage taken from the stage store "
        "was computed once, by another run.</p>"
        + _html_table(
            ["variant", "seed", "status", "seconds", "stages computed here (s)", "from the store", "folder"],
            rows,
            numeric_from=9,
        )
    )


def _variants_html(result: SweepResult) -> str:
    rows = [
        [row.name, row.variant.id, " ".join(f"--set {s}" for s in row.variant.sets) or "(the base recipe)"]
        for row in result.rows
        if not row.fixed
    ]
    common = " ".join(f"--set {s}" for s in result.sweep.sets)
    return (f"<p>Every run: <code>{escape(common)}</code></p>" if common else "") + _html_table(
        ["row", "variant", "--set items"], rows, numeric_from=9
    )
