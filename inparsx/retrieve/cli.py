"""``inparsx retrieve``: one-off first-stage retrieval of a dataset's queries into a TREC run file.

Runs the retrieve stage itself (:func:`inparsx.oneoff.run_to`): the collection check, indexing (cached) and
search of ``inparsx run``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def retrieve(
    dataset: Annotated[str, typer.Option("--dataset", "-d", help="beir:<name>, irds:<id> or a BEIR folder.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The TREC run file to write.")],
    use: Annotated[str, typer.Option("--use", help="The retriever (see `inparsx plugins`).")] = "bm25",
    split: Annotated[str, typer.Option("--split", help="The split whose queries are retrieved.")] = "test",
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="A retriever option: key=value (repeatable), e.g. k1=1.2.")
    ] = None,
) -> None:
    """Retrieve the top k documents for each query of a split (same options as a recipe's retrieve table)."""
    import json

    from inparsx.oneoff import refuse_without_labels, run_to
    from inparsx.progress import out as stdout
    from inparsx.recipe import one_stage_recipe

    recipe = one_stage_recipe("retrieve", use, set_ or [], dataset, eval_split=split)
    summary: dict = {}

    def outputs(folder: Path) -> dict[Path, Path]:
        summary.update(json.loads((folder / "summary.json").read_text()))
        return {folder / "run.trec": out}

    refuse_without_labels(dataset, split, "retrieved")
    run_to(recipe, "retrieve", out, outputs)
    found = summary["queries"] - len(summary["queries_without_hits"])
    stdout.print(f"{out}: {found} queries, top {summary['k']} ({use} on {dataset}, split {split})", markup=False)
