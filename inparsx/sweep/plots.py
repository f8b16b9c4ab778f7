"""The sweep report's figures (matplotlib's object-oriented API on an Agg canvas, embedded as PNG by
:func:`inparsx.report.plots.embed`)."""

from __future__ import annotations

from inparsx.report.plots import embed
from inparsx.sweep.collect import SweepResult

COLORS = ("#1565c0", "#2e7d32", "#c62828", "#6a1b9a", "#ef6c00", "#00838f")
STYLES = ("--", ":", "-.", (0, (5, 1)), (0, (1, 3)), (0, (3, 1, 1, 1)))


def cells_plot(result: SweepResult) -> str:
    """Every cell's mean with its sd over seeds as an error bar: one line per row, one colour per column."""
    from matplotlib.figure import Figure

    metric, rows = result.metric, list(reversed(result.rows))
    if not any(result.cells.values()):
        return "<p>No finished run yet.</p>"
    figure = Figure(figsize=(8.0, 1.2 + 0.42 * len(rows)), dpi=100, layout="constrained")
    axes = figure.add_subplot()
    width = 0.6 / max(1, len(result.columns))
    for c, column in enumerate(result.columns):
        ys, means, sds = [], [], []
        for r, row in enumerate(rows):
            entry = result.cells.get(row.name, {}).get(column, {}).get(metric)
            if entry:
                ys.append(r + (c - (len(result.columns) - 1) / 2) * width)
                means.append(entry["mean"])
                sds.append(entry["sd"] or 0.0)
        if ys:
            axes.errorbar(means, ys, xerr=sds, fmt="o", color=COLORS[c % len(COLORS)], capsize=3, label=column)
    axes.set_yticks(range(len(rows)), [row.name for row in rows])
    axes.set_xlabel(f"{_label(metric)} (mean ± sd over seeds)")
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="best", fontsize="small")
    return embed(figure, f"{_label(metric)} of every row and column, mean and sd over seeds")


def curve_plot(result: SweepResult) -> str:
    """One panel per column: the variants that give an ``x`` as a curve (mean ± sd; a log axis when the x span
    a factor of 10 or more), every other row as a horizontal reference line."""
    from matplotlib.figure import Figure

    metric = result.metric
    curve = sorted(
        (row for row in result.rows if row.variant.x is not None and not row.fixed), key=lambda row: row.variant.x
    )
    others = [row for row in result.rows if row not in curve]
    figure = Figure(figsize=(4.2 * len(result.columns), 3.6), dpi=100, layout="constrained")
    panels = figure.subplots(1, len(result.columns), squeeze=False)[0]
    xs = [row.variant.x for row in curve]
    for axes, column in zip(panels, result.columns):
        points = [(row.variant.x, result.cells.get(row.name, {}).get(column, {}).get(metric)) for row in curve]
        points = [(x, entry) for x, entry in points if entry]
        if points:
            axes.errorbar(
                [x for x, _ in points],
                [e["mean"] for _, e in points],
                yerr=[e["sd"] or 0.0 for _, e in points],
                fmt="o-",
                color=COLORS[0],
                capsize=3,
                label=result.sweep.curve or "x",
            )
        for i, row in enumerate(others):
            entry = result.cells.get(row.name, {}).get(column, {}).get(metric)
            if entry:
                axes.axhline(
                    entry["mean"],
                    color=COLORS[(i + 1) % len(COLORS)],
                    linestyle=STYLES[i % len(STYLES)],
                    linewidth=1.2,
                    label=row.name,
                )
        if xs and min(xs) > 0 and max(xs) / min(xs) >= 10:
            axes.set_xscale("log")
            axes.minorticks_off()
        if xs:
            axes.set_xticks(xs, [f"{x:g}" for x in xs])
        axes.set_title(column)
        axes.set_xlabel(result.sweep.curve or "x")
        axes.set_ylabel(_label(metric))
        axes.grid(alpha=0.3)
    panels[0].legend(loc="best", fontsize="x-small")
    return embed(figure, f"{_label(metric)} against {result.sweep.curve or 'x'}")


def _label(metric: str) -> str:
    from inparsx.sweep.report import label

    return label(metric)
