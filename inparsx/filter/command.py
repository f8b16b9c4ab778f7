"""``inparsx filter``: filter a synthetic-queries file outside a recipe (same keys as the ``[filter]`` table)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer


def filter_table(use: str, settings: list[str]) -> dict[str, Any]:
    """The ``[filter]`` table from ``--use a,b`` and ``--set key=value`` (``--set reranker.model=X`` reaches one
    filter only, like a ``[filter.reranker]`` sub-table)."""
    from inparsx.recipe import apply_override

    data: dict[str, Any] = {"filter": {}}
    for setting in settings:
        apply_override(data, f"filter.{setting}")
    table = data["filter"]
    table["use"] = [name.strip() for name in use.split(",") if name.strip()]
    return table


def filter_command(queries: Annotated[Path, typer.Argument(help="A synthetic-queries JSON-lines file (generate/queries.jsonl).")],
                   dataset: Annotated[str, typer.Option(help="The collection the queries were generated from: beir:<name>, irds:<id> or a BEIR folder.")],
                   run_dir: Annotated[Path, typer.Option("--run-dir", help="Output run directory: files go to RUN_DIR/filter/.")],
                   use: Annotated[str, typer.Option(help="Filters in order, comma-separated: length, copied, scores, reranker, consistency.")] = "length,copied,scores",
                   set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="A filter option: key=value or <filter>.key=value (repeatable).")] = None,
                   seed: Annotated[int, typer.Option(help="The seed of a recipe's [recipe] table (negatives and training of consistency by = self).")] = 1) -> None:
    """Filter synthetic queries: writes RUN_DIR/filter/{queries,decisions}.jsonl and summary.json.

    The output folder has the layout of a recipe run, so later stages can continue from it. Rerunning into
    the same RUN_DIR reuses saved scores and models only when every option, the seed and the queries match.
    """
    from inparsx.filter.stage import apply_filters, print_summary, write_report
    from inparsx.pipeline import StageContext
    from inparsx.plugins import get_registry
    from inparsx.recipe import validate_recipe
    from inparsx.triples.stage import read_synthetic_queries

    data = {"recipe": {"name": "filter", "seed": seed}, "dataset": {"name": dataset}, "filter": filter_table(use, set_ or [])}
    registry = get_registry()
    recipe = validate_recipe(data, "--set", "", registry)
    components = [registry.get("filters", name)(options) for name, options in recipe.stages["filter"].components]
    ctx = StageContext(recipe, "filter", run_dir, components).component_context()
    ctx.dir.mkdir(parents=True, exist_ok=True)
    report = apply_filters(read_synthetic_queries(queries), components, ctx)
    write_report(report, ctx.dir)
    print_summary(report.summary)
