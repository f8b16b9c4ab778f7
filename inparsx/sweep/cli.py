"""``inparsx sweep``: the command's body (the Typer command in :mod:`inparsx.cli.main` only parses options)."""

from __future__ import annotations

from pathlib import Path

from inparsx.errors import InparsxError


def sweep_command(
    spec: Path,
    grid: list[str],
    seeds: str | None,
    sets: list[str],
    baseline: str | None,
    sweep_dir: Path | None,
    store: Path | None,
    dry_run: bool,
    collect_only: bool,
) -> None:
    """Run, print (``dry_run``) or collect (``collect_only``) the sweep ``spec`` (a sweep file or a recipe).

    Raises:
        InparsxError: ``--dry-run`` with ``--collect``; or as :func:`inparsx.sweep.spec.load_sweep`,
            :func:`inparsx.sweep.execute.run_sweep` and :func:`inparsx.sweep.collect.collect` raise.
    """
    from inparsx.progress import console, out
    from inparsx.sweep.collect import collect
    from inparsx.sweep.execute import dry_run as commands
    from inparsx.sweep.execute import plan, run_sweep, sharing_line
    from inparsx.sweep.report import print_tables, write_outputs
    from inparsx.sweep.spec import load_sweep

    if dry_run and collect_only:
        raise InparsxError("--dry-run prints the runs' commands and --collect reads their results: give one of them")
    sweep = load_sweep(spec, grid, seeds, sets, baseline, sweep_dir, store)
    if dry_run:
        planned = plan(sweep)
        for line in commands(sweep):
            out.print(line, markup=False, highlight=False, soft_wrap=True)
        console.print(
            f"{len(planned)} runs ({len(sweep.variants)} variant(s) x {len(sweep.seeds)} seed(s)); shared "
            f"stages: {sharing_line(planned)}. Run the commands anywhere that sees {sweep.store}, "
            f"then: inparsx sweep {spec} --collect",
            markup=False,
            soft_wrap=True,
        )
        return
    if not collect_only:
        run_sweep(sweep)
    result = collect(sweep)
    print_tables(result, out)
    paths = write_outputs(result)
    console.print(f"sweep results: {paths['table']}, {paths['json']}, {paths['report']}", markup=False, soft_wrap=True)
