"""The sweep's table, from its runs' folders: each cell's metrics as mean ± sd over seeds, and paired tests.

A cell is a row (a variant, or a ``[[rows]]`` entry) in a column (a run of ``evaluate/metrics.json``, e.g.
``rerank-alone``). Its value over seeds is the mean and the sample standard deviation (``ddof = 1``) of the
runs' means. A test of a cell against a baseline cell is the evaluator's paired test (the base recipe's
``[evaluate]``: ranx's two-sided paired t-test by default) on per-query scores averaged over each cell's
seeds (``evaluate/per_query.json``), on the queries both have. A run folder is read only when every stage
in it is done with the fingerprint its recipe gives now; others are reported as missing or stale.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inparsx.artifacts import METRICS, PER_QUERY
from inparsx.cachekey import DONE_MARKER, read_marker
from inparsx.errors import DataError
from inparsx.evaluate.metrics import parse_metric
from inparsx.sweep.execute import PlannedRun, plan
from inparsx.sweep.layout import baseline_row
from inparsx.sweep.spec import Compare, Row, Sweep


@dataclass
class RunResult:
    """What one run's folder holds: ``means`` (``{run: {metric: value}}``), ``per_query`` (``{run: {metric:
    {qid: score}}}``), and the stage times from the completion markers: ``computed`` (``{stage: seconds}``
    run in this folder) and ``shared`` (``{stage: seconds}`` taken from the store, as computed elsewhere)."""

    planned: PlannedRun
    means: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, dict[str, float]]]
    computed: dict[str, float]
    shared: dict[str, float]


@dataclass
class SweepResult:
    """The aggregate of a sweep (see the module docstring)."""

    sweep: Sweep
    metrics: list[str]
    metric: str
    columns: list[str]
    rows: list[Row]
    cells: dict[str, dict[str, dict[str, dict[str, Any]]]]
    """``{row: {column: {metric: {"mean", "sd", "n", "values", "seeds", "run"}}}}``."""
    tests: list[dict[str, Any]]
    """One per compare: ``{"name", "against", "cells": {row: {column: {"against": [row, column], metric: {"delta",
    "p_value", "significant"}}}}}``."""
    runs: list[dict[str, Any]]
    missing: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    test_description: str = ""


def read_run(planned: PlannedRun) -> RunResult | str:
    """The results of a finished run; or why there are none: ``"missing"`` (no finished evaluate stage) or
    ``"stale"`` (its folder holds a run of other settings: a stage's fingerprint differs).

    Raises:
        DataError: ``metrics.json`` or ``per_query.json`` is not valid JSON (path named).
    """
    folder = planned.run.run_dir
    markers = {stage: read_marker(folder / stage / DONE_MARKER) for stage in planned.fingerprints}
    metrics, per_query = METRICS.in_folder(folder), PER_QUERY.in_folder(folder)
    if not metrics.is_file() or not markers.get("evaluate"):
        return "missing"
    if any(markers[stage].get("fingerprint") != fingerprint for stage, fingerprint in planned.fingerprints.items()):
        return "stale"
    computed = {s: float(m.get("seconds") or 0) for s, m in markers.items() if not m.get("from_store")}
    shared = {s: float(m.get("seconds") or 0) for s, m in markers.items() if m.get("from_store")}
    return RunResult(planned, _json(metrics), _json(per_query) if per_query.is_file() else {}, computed, shared)


def _json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None


def collect(sweep: Sweep, planned: list[PlannedRun] | None = None) -> SweepResult:
    """The aggregate table of ``sweep`` from its run folders (missing and stale runs left out and listed).

    Raises:
        DataError: a results file that cannot be read. InparsxError: a run's collection cannot be resolved.
    """
    planned = planned if planned is not None else plan(sweep)
    found: dict[tuple[str, int], RunResult] = {}
    missing, stale, runs = [], [], []
    for item in planned:
        result = read_run(item)
        entry = {"variant": item.run.variant.id, "seed": item.run.seed, "run_dir": str(item.run.run_dir)}
        if isinstance(result, str):
            (missing if result == "missing" else stale).append(item.run.name)
            runs.append({**entry, "status": result})
            continue
        found[(item.run.variant.id, item.run.seed)] = result
        runs.append(
            {
                **entry,
                "status": "done",
                "computed_seconds": result.computed,
                "shared_seconds": result.shared,
                "seconds": round(sum(result.computed.values()), 3),
            }
        )
    evaluate = planned[0].recipe.stages["evaluate"].components[0][1] if planned else None
    metrics = list(evaluate.metrics) if evaluate is not None else []
    metric = parse_metric(sweep.metric).name if sweep.metric else (metrics[0] if metrics else "ndcg@10")
    if metric not in metrics:
        metrics.append(metric)
    columns = list(sweep.columns) or _default_columns(found)
    column_runs = dict(sweep.columns) or {name: name for name in columns}
    rows = sweep.rows()
    cells = {
        row.name: {c: cell for c in columns if (cell := _cell(row, c, column_runs, sweep, found, metrics))}
        for row in rows
    }
    evaluator = _evaluator(planned[0].recipe) if planned else None
    tests = [
        _tests(sweep, compare, rows, columns, column_runs, found, metrics, evaluator) for compare in sweep.compares
    ]
    return SweepResult(
        sweep,
        metrics,
        metric,
        columns,
        rows,
        cells,
        tests,
        runs,
        missing,
        stale,
        evaluator.test_description() if evaluator is not None else "",
    )


def _default_columns(found: dict[tuple[str, int], RunResult]) -> list[str]:
    """Without ``[columns]``: every run of the first finished run's ``metrics.json``, in its order."""
    for result in found.values():
        return list(result.means)
    return []


def _seeds(row: Row, sweep: Sweep, found: dict[tuple[str, int], RunResult]) -> list[tuple[int, RunResult]]:
    return [(seed, found[(row.variant.id, seed)]) for seed in sweep.seeds if (row.variant.id, seed) in found]


def _cell(
    row: Row,
    column: str,
    column_runs: dict[str, str],
    sweep: Sweep,
    found: dict[tuple[str, int], RunResult],
    metrics: list[str],
) -> dict[str, Any] | None:
    """``{metric: {"mean", "sd", "n", "values", "seeds"}, "run": name}`` of one cell, or ``None`` (no such run)."""
    name = row.run_name(column, column_runs)
    if name is None:
        return None
    present = [(seed, result) for seed, result in _seeds(row, sweep, found) if name in result.means]
    if not present:
        return None
    cell: dict[str, Any] = {"run": name}
    for metric in metrics:
        values = [result.means[name][metric] for _, result in present if metric in result.means[name]]
        if values:
            cell[metric] = {
                "mean": statistics.fmean(values),
                "sd": statistics.stdev(values) if len(values) > 1 else None,
                "n": len(values),
                "values": values,
                "seeds": [seed for seed, _ in present],
            }
    return cell


def per_query_mean(
    row: Row,
    column: str,
    column_runs: dict[str, str],
    sweep: Sweep,
    found: dict[tuple[str, int], RunResult],
    metric: str,
) -> dict[str, float]:
    """``{qid: score}`` of a cell, averaged over its seeds (queries every seed scored)."""
    name = row.run_name(column, column_runs)
    tables = [result.per_query.get(name, {}).get(metric) for _, result in _seeds(row, sweep, found)] if name else []
    tables = [table for table in tables if table]
    if not tables:
        return {}
    common = set(tables[0]).intersection(*tables[1:])
    return {qid: statistics.fmean(table[qid] for table in tables) for qid in sorted(common)}


def _evaluator(recipe) -> Any:
    """The base recipe's evaluator (its paired test), built from the registry."""
    from inparsx.plugins import get_registry

    name, options = recipe.stages["evaluate"].components[0]
    return get_registry().get("evaluators", name)(options)


def _tests(
    sweep: Sweep,
    compare: Compare,
    rows: list[Row],
    columns: list[str],
    column_runs: dict[str, str],
    found: dict[tuple[str, int], RunResult],
    metrics: list[str],
    evaluator: Any,
) -> dict[str, Any]:
    """Every cell against its baseline cell under ``compare`` (cells that are their own baseline, or lack
    per-query scores on common queries, left out)."""
    import numpy as np

    cells: dict[str, dict[str, Any]] = {}
    for row in rows:
        against_row = baseline_row(sweep, compare, row)
        for column in columns:
            against_column = compare.column or column
            if against_row is None or (against_row.name, against_column) == (row.name, column):
                continue
            entry: dict[str, Any] = {"against": [against_row.name, against_column]}
            for metric in metrics:
                ours = per_query_mean(row, column, column_runs, sweep, found, metric)
                theirs = per_query_mean(against_row, against_column, column_runs, sweep, found, metric)
                qids = sorted(set(ours) & set(theirs))
                if not qids or evaluator is None:
                    continue
                scores = {
                    "against": {metric: np.array([theirs[q] for q in qids])},
                    "cell": {metric: np.array([ours[q] for q in qids])},
                }
                tested = evaluator.significance(scores, "against")
                if tested is None:
                    continue
                delta = float(scores["cell"][metric].mean() - scores["against"][metric].mean())
                entry[metric] = {
                    "delta": delta,
                    "p_value": float(tested["cell"][metric]["p_value"]),
                    "significant": bool(tested["cell"][metric]["significant"]),
                    "queries": len(qids),
                }
            if len(entry) > 1:
                cells.setdefault(row.name, {})[column] = entry
    return {"name": compare.name, "against": {"row": compare.row, "column": compare.column}, "cells": cells}
