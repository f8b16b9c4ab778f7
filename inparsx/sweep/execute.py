"""Running a sweep: every run in its own folder through the runner of ``inparsx run``, with one shared stage
store, so that a stage whose cache key two runs share is computed once (:mod:`inparsx.store`).

A sweep resumes: a run whose every stage is done with the fingerprint the runner would compute is skipped,
and an unfinished one is run again, which resumes it from the runner's markers (its finished stages skipped,
a long stage from its ``.partial`` files). ``--dry-run`` prints, instead, the one ``inparsx run`` command of
each run, with the same folders and store, for a cluster scheduler (one SLURM array task per line).
"""

from __future__ import annotations

import os
import shlex
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inparsx.cachekey import DONE_MARKER, planned_keys, read_marker, stage_fingerprints
from inparsx.errors import Interrupted
from inparsx.pipeline import run_recipe
from inparsx.progress import console
from inparsx.recipe import STAGES, Recipe
from inparsx.sweep.spec import Sweep, SweepRun


@dataclass
class PlannedRun:
    """A run with its validated recipe and the fingerprint of each of its stages (as the runner computes
    them); ``finished``: every stage folder of ``run.run_dir`` is done with that fingerprint. ``keys``: the
    stages' planned keys (:func:`inparsx.cachekey.planned_keys`), which tell what the store shares."""

    run: SweepRun
    recipe: Recipe
    fingerprints: dict[str, str]
    keys: dict[str, str] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return all(
            read_marker(self.run.run_dir / stage / DONE_MARKER).get("fingerprint") == fingerprint
            for stage, fingerprint in self.fingerprints.items()
        )


def plan(sweep: Sweep) -> list[PlannedRun]:
    """Every run of ``sweep`` with its recipe and stage fingerprints (each collection's fingerprint computed
    once).

    Raises:
        RecipeErrors: a run's recipe does not validate. InparsxError: a collection cannot be resolved.
    """
    from inparsx.datasets import resolve_dataset

    corpora: dict[str, str] = {}
    planned = []
    for run in sweep.runs():
        recipe = sweep.recipe(run)
        name = recipe.dataset.name
        if name not in corpora:
            corpora[name] = resolve_dataset(name).fingerprint()
        planned.append(
            PlannedRun(
                run, recipe, stage_fingerprints(recipe, corpora[name]), planned_keys(recipe, corpora[name], STAGES)
            )
        )
    return planned


def sharing(planned: list[PlannedRun]) -> dict[str, tuple[int, int]]:
    """``{stage: (distinct computations, runs)}`` over the planned runs, in pipeline order."""
    counts: dict[str, Counter] = {}
    for item in planned:
        for stage, key in (item.keys or item.fingerprints).items():
            counts.setdefault(stage, Counter())[key] += 1
    order = [stage for stage in STAGES if stage in counts]
    return {stage: (len(counts[stage]), sum(counts[stage].values())) for stage in order}


def sharing_line(planned: list[PlannedRun]) -> str:
    """``retrieve computed once for 12 runs, generate 4 times, ...``: what the store will share."""
    parts: list[str] = []
    for stage, (distinct, total) in sharing(planned).items():
        times = "once" if distinct == 1 else f"{distinct} times"
        parts.append(f"{stage} {times}" + (f" for {total} runs" if not parts else ""))
    return ", ".join(parts)


def run_sweep(sweep: Sweep) -> list[dict[str, Any]]:
    """Run every run of ``sweep`` that is not finished, in order, sharing ``sweep.store``; returns one entry per
    run: ``{"run", "run_dir", "skipped", "seconds"}`` (this call's wall time).

    Raises:
        RecipeErrors: a run's recipe does not validate (nothing has run). Interrupted: Ctrl-C (finished runs
        and stages are kept; the same command resumes). Any error of a run, after one line that names it.
    """
    planned = plan(sweep)
    done = sum(item.finished for item in planned)
    console.print(
        f"sweep {sweep.name}: {len(sweep.variants)} variant(s) x {len(sweep.seeds)} seed(s) = "
        f"{len(planned)} runs in {sweep.sweep_dir}"
        + (f", {done} finished" if done else "")
        + f"; stage store {sweep.store}",
        markup=False,
    )
    console.print(f"shared stages: {sharing_line(planned)}", markup=False)
    results = []
    for number, item in enumerate(planned, 1):
        run = item.run
        if item.finished:
            console.print(f"[green]✓[/green] [{number}/{len(planned)}] {run.name}: finished ({run.run_dir}), skipped")
            results.append({"run": run.name, "run_dir": str(run.run_dir), "skipped": True, "seconds": 0.0})
            continue
        console.rule(f"[bold]sweep run {number}/{len(planned)}[/bold]: {run.name}")
        began = time.perf_counter()
        try:
            run_recipe(item.recipe, run.run_dir, store=sweep.store)
        except Interrupted:
            raise
        except Exception:
            console.print(
                f"[red]sweep run {number}/{len(planned)} ({run.name}, {run.run_dir}) failed[/red]; "
                f"run it alone with: {command(sweep, run)}",
                soft_wrap=True,
            )
            raise
        seconds = time.perf_counter() - began
        console.print(f"[green]✓[/green] [{number}/{len(planned)}] {run.name}: done in {seconds:.1f} s")
        results.append({"run": run.name, "run_dir": str(run.run_dir), "skipped": False, "seconds": round(seconds, 3)})
    return results


def command(sweep: Sweep, run: SweepRun, program: str = "inparsx") -> str:
    """The ``inparsx run`` command line of ``run``: the base recipe, its ``--set`` items, its run folder and
    the sweep's store (paths relative to the current folder when below it)."""
    args = [program, "run", _shown(sweep.recipe_path)]
    for item in run.sets:
        args += ["--set", item]
    args += ["--run-dir", _shown(run.run_dir), "--store", _shown(sweep.store)]
    return shlex.join(args)


def dry_run(sweep: Sweep) -> list[str]:
    """The command of every run, in order (see :func:`command`)."""
    return [command(sweep, run) for run in sweep.runs()]


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it lies below it, else as given."""
    path = Path(path)
    if not path.is_absolute():
        return str(path)
    try:
        return str(path.relative_to(Path(os.getcwd())))
    except ValueError:
        return str(path)
