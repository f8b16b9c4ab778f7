"""The report's figures, drawn with matplotlib's object-oriented API (no pyplot state, Agg canvas) and returned as
base64 PNG ``<img>`` tags, so the HTML file needs nothing else to open."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Mapping, Sequence

GAIN, LOSS, NEUTRAL = "#2e7d32", "#c62828", "#1565c0"


def _figure(width: float = 8.0, height: float = 3.2):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return figure, figure.add_subplot()


def embed(figure, alt: str) -> str:
    """``<img src="data:image/png;base64,...">`` of ``figure`` (PNG, 100 dpi)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def delta_bars(deltas: Sequence[float], metric: str, run: str, against: str) -> str:
    """Per-query differences ``run - against`` sorted from largest gain to largest loss, one bar per query."""
    figure, axes = _figure()
    ordered = sorted(deltas, reverse=True)
    colors = [GAIN if d > 0 else LOSS if d < 0 else NEUTRAL for d in ordered]
    axes.bar(range(len(ordered)), ordered, width=1.0, color=colors)
    axes.axhline(0, color="black", linewidth=0.6)
    wins, losses = sum(d > 0 for d in ordered), sum(d < 0 for d in ordered)
    axes.set_title(f"{run} - {against}: {wins} queries gained, {losses} lost, {len(ordered) - wins - losses} tied")
    axes.set_xlabel("queries, sorted by difference")
    axes.set_ylabel(f"Δ {metric}")
    axes.set_xlim(-0.5, len(ordered) - 0.5)
    return embed(figure, f"per-query {metric} difference, {run} against {against}")


def histogram(series: Mapping[str, Sequence[float]], xlabel: str, title: str, bins: int = 30) -> str:
    """Overlaid histograms of one quantity for several sets (e.g. generated and kept queries)."""
    figure, axes = _figure(6.0, 3.0)
    values = [v for data in series.values() for v in data]
    low, high = min(values), max(values)
    edges = bins if low == high else [low + (high - low) * i / bins for i in range(bins + 1)]
    for (label, data), color in zip(series.items(), (NEUTRAL, GAIN, LOSS, "#6a1b9a")):
        axes.hist(data, bins=edges, alpha=0.6, color=color, label=f"{label} ({len(data):,})")
    axes.set_xlabel(xlabel)
    axes.set_ylabel("queries")
    axes.set_title(title)
    axes.legend()
    return embed(figure, title)


def horizontal_bars(counts: Mapping[str, int], title: str, xlabel: str) -> str:
    """One horizontal bar per label (e.g. the filters' drop reasons), largest on top."""
    items = sorted(counts.items(), key=lambda item: item[1])
    figure, axes = _figure(7.0, 0.5 + 0.45 * len(items))
    axes.barh([label for label, _ in items], [count for _, count in items], color=LOSS)
    for y, (_, count) in enumerate(items):
        axes.annotate(f"{count:,}", (count, y), xytext=(3, 0), textcoords="offset points", va="center")
    axes.set_xlim(0, max(count for _, count in items) * 1.15)
    axes.set_xlabel(xlabel)
    axes.set_title(title)
    return embed(figure, title)


def line(points: Sequence[tuple[float, float]], xlabel: str, ylabel: str, title: str) -> str:
    """A line with markers through ``(x, y)`` points (e.g. the training loss by step)."""
    figure, axes = _figure(7.0, 3.0)
    axes.plot([x for x, _ in points], [y for _, y in points], marker="o", markersize=3, color=NEUTRAL)
    axes.set_xlabel(xlabel)
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    return embed(figure, title)


def score_bars(labels: Sequence[str], scores: Sequence[float], ylabel: str, title: str) -> str:
    """One vertical bar per candidate (e.g. a tune stage's candidates and their scores), the best highlighted."""
    figure, axes = _figure(7.0, 3.0)
    best = max(range(len(scores)), key=lambda i: scores[i])
    axes.bar(range(len(scores)), scores, color=[GAIN if i == best else NEUTRAL for i in range(len(scores))])
    axes.set_xticks(range(len(scores)), labels, rotation=45 if len(labels) > 6 else 0, ha="right")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    return embed(figure, title)
