"""``inparsx generate``: one-off query generation with the same options as a recipe's ``[generate]`` table."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from inparsx.errors import InparsxError


def generate(dataset: Annotated[str, typer.Option("--dataset", "-d", help="beir:<name>, irds:<id> or a BEIR folder.")],
             use: Annotated[str, typer.Option("--use", help="The generator plugin (hf, ict, ...).")] = "hf",
             set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="A generator option, key=value (repeatable), e.g. model=gpt2.")] = None,
             out: Annotated[Path, typer.Option("--out", "-o", help="Output JSON-lines file.")] = Path("queries.jsonl"),
             seed: Annotated[int, typer.Option("--seed", help="Seed of the document sample and of few-shot examples.")] = 1,
             eval_split: Annotated[str, typer.Option("--eval-split", help="The split evaluated later (few-shot ids from it are listed in excluded_qids.txt).")] = "test",
             run_dir: Annotated[Path, typer.Option("--run-dir", help="Run directory that @stage model references point into.")] = Path("."),
             force: Annotated[bool, typer.Option("--force", help="Overwrite OUT, or drop an interrupted run with other options.")] = False) -> None:
    """Generate synthetic queries for a sample of a collection's documents (resumes if interrupted)."""
    from inparsx.generate.stage import generate_queries
    from inparsx.pipeline import StageContext, stage_fingerprint
    from inparsx.io import write_json
    from inparsx.plugins import get_registry
    from inparsx.progress import out as stdout
    from inparsx.recipe import STAGES, apply_override, validate_recipe

    data = {"recipe": {"name": "generate", "seed": seed}, "dataset": {"name": dataset, "eval_split": eval_split},
            "generate": {"use": use}}
    for item in set_ or []:
        apply_override(data, item if item.startswith("generate.") else f"generate.{item}")
    registry = get_registry()
    recipe = validate_recipe(data, "inparsx generate", "", registry)
    name, options = recipe.stages["generate"].components[0]
    ctx = StageContext(recipe, "generate", run_dir, [registry.get(STAGES["generate"], name)(options)])
    ctx.fingerprint = stage_fingerprint(recipe, "generate", "", ctx.dataset.fingerprint())
    meta = out.with_name(out.name + ".inparsx.json")
    main_process = int(os.environ.get("RANK", "0")) == 0  # under accelerate launch / torchrun
    if main_process:
        _check_output(out, meta, ctx.fingerprint, force)
        write_json(meta, {"fingerprint": ctx.fingerprint, "options": recipe.filled()})
    summary = generate_queries(ctx.component_context(), ctx.component, out)
    if main_process:
        meta.unlink(missing_ok=True)
        stdout.print(f"{out}: {summary.queries} queries for {summary.docs} documents")


def _check_output(out: Path, meta: Path, fingerprint: str, force: bool) -> None:
    """Refuse to overwrite a finished file, or to resume a partial one written with other options (unless
    ``force``, which deletes the partial file)."""
    from inparsx.pipeline import read_marker

    partial = out.with_name(out.name + ".partial")
    if partial.exists() and read_marker(meta).get("fingerprint") != fingerprint:
        if not force:
            raise InparsxError(f"{partial} holds an interrupted run with other options or data; "
                               "pass --force to start over")
        partial.unlink()
    if out.exists() and not partial.exists() and not force:
        raise InparsxError(f"{out} exists; pass --force to overwrite it")
