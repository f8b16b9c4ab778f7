"""``inparsx``: run, validate, plugins, and the one-off stage commands that plugins add.

Kept thin: commands parse arguments and call library functions. Heavy libraries are imported inside the
commands, so ``inparsx --help`` and ``inparsx plugins`` answer in about a second.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from inparsx import interrupts
from inparsx.cli.help import PlainHelpGroup, first_sentence
from inparsx.errors import InparsxError, Interrupted, StorageError
from inparsx.progress import quiet_library_bars

app = typer.Typer(
    name="inparsx",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=PlainHelpGroup,
    rich_markup_mode="rich",
    help="Synthetic queries -> filtered triples -> trained reranker, from declarative TOML recipes.",
)

SetOption = Annotated[
    list[str] | None, typer.Option("--set", "-s", help="Override a recipe value: dotted.key=value (repeatable).")
]


@app.command()
def run(
    recipe: Annotated[Path, typer.Argument(help="The recipe TOML file.")],
    set_: SetOption = None,
    run_dir: Annotated[
        Path | None, typer.Option("--run-dir", help="Output folder (default runs/<recipe name>).")
    ] = None,
    from_stage: Annotated[
        str | None, typer.Option("--from", help="Re-run from this stage on, even if finished.")
    ] = None,
    to_stage: Annotated[str | None, typer.Option("--to", help="Stop after this stage.")] = None,
    store: Annotated[
        Path | None,
        typer.Option(
            "--store",
            help=(
                "A shared stage store: stages another run computed with the same cache key are copied from it, "
                "stages run here are added to it."
            ),
        ),
    ] = None,
) -> None:
    """Run a recipe: every stage in pipeline order, skipping those already done."""
    from inparsx.pipeline import run_recipe
    from inparsx.recipe import load_recipe

    result = run_recipe(load_recipe(recipe, set_), run_dir, from_stage, to_stage, store=store)
    from inparsx.progress import console

    console.print(f"run directory: {result}")


@app.command()
def sweep(
    spec: Annotated[Path, typer.Argument(help="A sweep file (with a \\[sweep] table) or a recipe.")],
    grid: Annotated[
        list[str] | None,
        typer.Option(
            "--grid", "-g", help="KEY=V1,V2,...: one run per value, crossed with the other grids (repeatable)."
        ),
    ] = None,
    seeds: Annotated[
        str | None, typer.Option("--seeds", help="Seeds of every variant, e.g. 1,2,3 (each run's \\[recipe] seed).")
    ] = None,
    set_: SetOption = None,
    baseline: Annotated[
        str | None,
        typer.Option("--baseline", help="Test every cell against this row or variant (default: the first variant)."),
    ] = None,
    sweep_dir: Annotated[
        Path | None, typer.Option("--sweep-dir", help="The sweep's folder (default runs/<name>).")
    ] = None,
    store: Annotated[
        Path | None, typer.Option("--store", help="The shared stage store (default <sweep folder>/store).")
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Print one `inparsx run` command per run (for a cluster scheduler) and run nothing."
        ),
    ] = False,
    collect: Annotated[
        bool, typer.Option("--collect", help="Build the table from the runs' folders; run nothing.")
    ] = False,
) -> None:
    """Run a recipe over grids, named variants and seeds, sharing equal stages; then mean ± sd and paired tests."""
    from inparsx.sweep.cli import sweep_command

    sweep_command(spec, grid or [], seeds, set_ or [], baseline, sweep_dir, store, dry_run, collect)


@app.command()
def validate(
    recipe: Annotated[Path, typer.Argument(help="The recipe TOML file (or a sweep file).")],
    set_: SetOption = None,
    check: Annotated[
        bool,
        typer.Option(
            "--check",
            help="Also run the pre-flight check: every model found, missing or gated; its memory "
            "against this machine's GPUs or RAM; generation time on a CPU. Loads no weights.",
        ),
    ] = False,
    run_dir: Annotated[
        Path | None,
        typer.Option(
            "--run-dir",
            help="With --check: the run directory whose finished stages' models count as found "
            "(default runs/<recipe name>).",
        ),
    ] = None,
) -> None:
    """Check a recipe (keys, types, plugin names) without loading any model or data; with --check, also
    whether its models can be loaded here and fit in memory (exit code 2 when not). A sweep file: every run's
    recipe is checked."""
    from inparsx.progress import out
    from inparsx.recipe import load_recipe
    from inparsx.sweep.spec import is_sweep_file, load_sweep

    if is_sweep_file(recipe):
        found = load_sweep(recipe, sets=set_)
        out.print(
            f"{recipe}: valid (sweep {found.name}: {len(found.variants)} variant(s) x {len(found.seeds)} "
            f"seed(s) of {found.recipe_path})",
            markup=False,
        )
        return
    loaded = load_recipe(recipe, set_)
    stages = ", ".join(f"{s}={'+'.join(c.use)}" for s, c in loaded.stages.items())
    out.print(f"{recipe}: valid ({loaded.name}: {stages})", markup=False, highlight=False)
    if check:
        _preflight(loaded, run_dir or Path("runs") / loaded.name)


def _preflight(recipe, run_dir: Path) -> None:
    """``validate --check``: the pre-flight report on stdout; its problems as the error (exit code 2)."""
    from inparsx.datasets import resolve_dataset
    from inparsx.preflight import check_recipe
    from inparsx.progress import out

    try:
        dataset = resolve_dataset(recipe.dataset.name)
    except InparsxError as exc:
        dataset = None
        out.print(f"dataset: {exc}", markup=False, highlight=False, soft_wrap=True)
    report = check_recipe(
        recipe, run_dir, dataset=dataset, say=lambda line: out.print(line, markup=False, soft_wrap=True)
    )
    for line in report.lines or ["models: none (no component of this recipe loads a model)"]:
        out.print(line, markup=False, highlight=False, soft_wrap=True)
    report.raise_for_problems()


@app.command()
def plugins(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """List every component by kind, with the package and version providing it."""
    from rich.table import Table

    from inparsx.plugins import get_registry
    from inparsx.progress import out

    registry = get_registry()
    rows = [
        (e.kind, e.name, e.package, e.version, summary_line(e.cls.__doc__))
        for kind in registry.entries
        for e in sorted(registry.entries[kind].values(), key=lambda e: e.name)
    ]
    if as_json:
        import json

        out.print_json(json.dumps([dict(zip(("kind", "name", "package", "version", "description"), r)) for r in rows]))
        return
    table = Table(title="inparsx components")
    for column in ("kind", "name", "package", "version"):
        table.add_column(column, no_wrap=True)
    table.add_column("description", overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)
    for name, reason in registry.failures.items():
        out.print(f"[red]plugin {name!r} failed to load[/red]: {reason}")


@app.command()
def check(
    dataset: Annotated[
        str,
        typer.Argument(
            help="A BEIR folder, a .jsonl/.csv/.tsv file of documents, beir:<name>, irds:<id> or hf:<name>."
        ),
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    strict: Annotated[bool, typer.Option("--strict", help="Exit with code 1 when there are warnings.")] = False,
) -> None:
    """Check a collection (encoding marks, line endings, repeated ids, missing fields, empty texts, qrels naming
    unknown documents or queries, duplicate qrels rows) without running anything, and say what it is fit for
    (training and evaluation, or training and the label-free estimate without labels). Exit code 2 on errors."""
    from inparsx.datasets.check import check_dataset
    from inparsx.progress import out

    report = check_dataset(dataset)
    if as_json:
        import json

        out.print_json(json.dumps(report.to_json()))
    else:
        for line in report.lines():
            style = {"error": "red", "warning": "yellow"}.get(line.partition(":")[0])
            out.print(line, style=style, markup=False)
    if not report.ok:
        raise typer.Exit(2)
    if strict and report.total("warning"):
        raise typer.Exit(1)


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run directory (written by inparsx run).")],
    out_file: Annotated[Path | None, typer.Option("--out", help="The HTML file (default RUN_DIR/report.html).")] = None,
) -> None:
    """Write one self-contained HTML report of a run: recipe, metrics, per-query gains, filters, synthetic queries,
    training loss (images embedded; opens offline)."""
    from inparsx.progress import out
    from inparsx.report import write_report

    out.print(f"report: {write_report(run_dir, out_file)}", markup=False)


def summary_line(doc: str | None) -> str:
    """A component's description for ``inparsx plugins``: the first sentence of its docstring, as plain text
    (:func:`inparsx.cli.help.first_sentence`)."""
    return first_sentence(doc)


def _add_plugin_commands() -> None:
    from inparsx.plugins import get_plugin_manager

    get_plugin_manager().hook.register_commands(app=app)


def main() -> None:
    """Console-script entry point: runs the app and turns inparsx errors into one clear line and exit code 2,
    OS errors (permission denied, disk full, a missing folder, a path that is a file) into one line naming the
    path and exit code 2, and Ctrl-C into one line saying where the run stopped and exit code 130."""
    previous = interrupts.install_handler()
    try:
        _main()
    except KeyboardInterrupt:  # raised outside the command (setting up, or while reporting another error)
        interrupts.report()
    finally:
        interrupts.restore_handler(previous)


def _main() -> None:
    import warnings

    from pydantic import ValidationError

    warnings.showwarning = lambda message, *args, **kwargs: typer.secho(f"warning: {message}", fg="yellow", err=True)
    quiet_library_bars()
    try:
        with interrupts.interrupted_as(f"`inparsx {' '.join(sys.argv[1:2])}`".replace(" `", "`")):
            _add_plugin_commands()
            app()
    except Interrupted as exc:
        interrupts.report(exc.where)
    except InparsxError as exc:
        _fail(str(exc), exc.exit_code)
    except ValidationError as exc:
        details = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        _fail(f"invalid options for {exc.title}: {details}", 2)
    except OSError as exc:
        if interrupts.happened():
            interrupts.report()
        _fail(str(StorageError.from_os_error(exc)), 2)
    except (KeyboardInterrupt, SystemExit, Exception):
        if interrupts.happened():  # typer turns KeyboardInterrupt into exit 130; some libraries wrap it
            interrupts.report()
        raise


def _fail(message: str, code: int) -> None:
    typer.secho(f"error: {message}", fg="red", err=True)
    sys.exit(code)


if __name__ == "__main__":
    main()
