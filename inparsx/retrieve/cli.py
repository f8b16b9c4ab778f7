"""``inparsx retrieve``: one-off first-stage retrieval of a dataset's queries into a TREC run file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer


def retrieve(dataset: Annotated[str, typer.Option("--dataset", "-d", help="beir:<name>, irds:<id> or a BEIR folder.")],
             out: Annotated[Path, typer.Option("--out", "-o", help="The TREC run file to write.")],
             use: Annotated[str, typer.Option("--use", help="The retriever (see `inparsx plugins`).")] = "bm25",
             split: Annotated[str, typer.Option("--split", help="The split whose queries are retrieved.")] = "test",
             set_: Annotated[Optional[list[str]], typer.Option("--set", "-s", help="A retriever option: key=value (repeatable), e.g. k1=1.2.")] = None) -> None:
    """Retrieve the top k documents for each query of a split (same options as a recipe's retrieve table)."""
    from inparsx.datasets import resolve_dataset
    from inparsx.io import write_trec_run
    from inparsx.progress import out as stdout
    from inparsx.recipe import apply_override
    from inparsx.retrieve.stage import open_retriever

    options: dict = {}
    for override in set_ or []:
        apply_override(options, override)
    data = resolve_dataset(dataset)
    retriever = open_retriever(use, options, data)
    queries = {qid: query.text for qid, query in data.queries(split).items()}
    run = retriever.search(queries, retriever.options.k)
    write_trec_run(out, run, tag=f"inparsx-{retriever.name}", depth=retriever.options.k)
    stdout.print(f"{out}: {len(run)} queries, top {retriever.options.k} ({use} on {dataset}, split {split})")
