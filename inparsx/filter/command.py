"""``inparsx filter``: filter a synthetic-queries file outside a recipe (same keys as the ``[filter]`` table).

Runs the filter stage itself (:func:`inparsx.pipeline.run_one_stage`) with the given file as the generate
stage's output.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def filter_command(
    queries: Annotated[Path, typer.Argument(help="A synthetic-queries JSON-lines file (generate/queries.jsonl).")],
    dataset: Annotated[
        str,
        typer.Option(help="The collection the queries were generated from: beir:<name>, irds:<id> or a BEIR folder."),
    ],
    run_dir: Annotated[Path, typer.Option("--run-dir", help="Output run directory: files go to RUN_DIR/filter/.")],
    use: Annotated[
        str, typer.Option(help="Filters in order, comma-separated: length, copied, scores, reranker, consistency.")
    ] = "length,copied,scores",
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="A filter option: key=value or <filter>.key=value (repeatable)."),
    ] = None,
    seed: Annotated[
        int,
        typer.Option(help="The seed of a recipe's [recipe] table (negatives and training of consistency by = self)."),
    ] = 1,
) -> None:
    """Filter synthetic queries: writes RUN_DIR/filter/{queries,decisions}.jsonl and summary.json.

    The output folder has the layout of a recipe run, so later stages can continue from it. Rerunning into
    the same RUN_DIR keeps saved scores and models only when every option, the seed and the queries match
    (the stage's fingerprint); otherwise RUN_DIR/filter is cleared first, as ``inparsx run`` does.
    """
    from inparsx.artifacts import SYNTHETIC_QUERIES
    from inparsx.pipeline import run_one_stage
    from inparsx.recipe import one_stage_recipe

    names = [name.strip() for name in use.split(",") if name.strip()]
    recipe = one_stage_recipe("filter", names, set_ or [], dataset, seed)
    run_one_stage(recipe, "filter", run_dir, {"/".join(SYNTHETIC_QUERIES.of()): queries})
