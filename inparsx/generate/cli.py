"""``inparsx generate``: one-off query generation with the same options as a recipe's ``[generate]`` table.

Runs the generate stage itself (:func:`inparsx.oneoff.run_to`): the same sampling, resumption, shards and
statistics as ``inparsx run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def generate(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="beir:<name>, irds:<id> or a BEIR folder.")],
    use: Annotated[str, typer.Option("--use", help="The generator plugin (hf, ict, ...).")] = "hf",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="A generator option, key=value (repeatable), e.g. model=gpt2."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Output JSON-lines file.")] = Path("queries.jsonl"),
    seed: Annotated[int, typer.Option("--seed", help="Seed of the document sample and of few-shot examples.")] = 1,
    eval_split: Annotated[
        str,
        typer.Option(
            "--eval-split", help="The split evaluated later (few-shot ids from it are listed in excluded_qids.txt)."
        ),
    ] = "test",
    run_dir: Annotated[
        Path, typer.Option("--run-dir", help="Run directory that @stage model references point into.")
    ] = Path("."),
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUT.")] = False,
) -> None:
    """Generate synthetic queries for a sample of a collection's documents (resumes if interrupted).

    Writes OUT, OUT's stats (``<stem>.stats.json``) and, when few-shot examples come from the evaluated
    split, ``excluded_qids.txt`` beside it. An interrupted run resumes from ``.<OUT name>.inparsx/`` when run
    again with the same options; with other options it starts over.
    """
    import json

    from inparsx.artifacts import EXCLUDED, GENERATION_STATS, SYNTHETIC_QUERIES
    from inparsx.devices import is_main_process
    from inparsx.oneoff import refuse_existing, run_to
    from inparsx.progress import out as stdout
    from inparsx.recipe import one_stage_recipe

    recipe = one_stage_recipe("generate", use, set_ or [], dataset, seed, eval_split)
    if is_main_process():
        refuse_existing(out, force)
    stats = out.with_name(f"{out.stem}.stats.json")
    run_to(
        recipe,
        "generate",
        out,
        lambda folder: {
            folder / SYNTHETIC_QUERIES.file: out,
            folder / GENERATION_STATS.file: stats,
            folder / EXCLUDED.file: out.with_name(EXCLUDED.file),
        },
        inputs={stage: run_dir / stage for stage in referenced_stages(recipe.filled()["generate"])},
    )
    if is_main_process():
        summary = json.loads(stats.read_text())
        stdout.print(f"{out}: {summary['queries']} queries for {summary['docs']} documents", markup=False)


def referenced_stages(table: dict) -> list[str]:
    """The stages that ``@stage`` values of a filled stage table name (e.g. ``model = "@tune"``): their
    folders under ``--run-dir`` are the command's inputs."""
    return sorted({value[1:] for value in table.values() if isinstance(value, str) and value.startswith("@")})
