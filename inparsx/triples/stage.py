"""The triples stage: training triples (query, positive, negatives) from the kept synthetic queries."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from inparsx.artifacts import TRIPLES, read_synthetic_queries, stage_queries, triple_to_dict
from inparsx.io import write_json, write_jsonl
from inparsx.progress import console

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


def queries_source(ctx: StageContext) -> Path:
    """``filter/queries.jsonl`` when the recipe has a filter stage, else ``generate/queries.jsonl``
    (:func:`inparsx.artifacts.stage_queries`).

    Raises:
        InparsxError: that file does not exist (the stage is missing from the recipe or has not run).
    """
    return ctx.path_of(stage_queries(ctx.recipe.stages))


def run_stage(ctx: StageContext) -> None:
    """Mine triples for the kept synthetic queries; write ``triples/triples.jsonl`` and ``triples/summary.json``.

    The summary counts the queries read, the triples and negatives written, the triples with fewer negatives
    than asked, and lists the queries that got no triple (BM25 found no document for them but their positive).
    """
    source = queries_source(ctx)
    queries = read_synthetic_queries(source)
    miner = ctx.component
    wanted = miner.n_negatives
    with_triple: set[str] = set()
    negatives = short = 0

    def records():
        nonlocal negatives, short
        for triple in miner.mine(queries, ctx.component_context()):
            with_triple.add(triple.query_id)
            negatives += len(triple.neg_ids)
            short += len(triple.neg_ids) < wanted
            yield triple_to_dict(triple)

    written = write_jsonl(ctx.dir / TRIPLES.file, records())
    without = [q.query_id for q in queries if q.query_id not in with_triple]
    write_json(
        ctx.dir / "summary.json",
        {
            "miner": miner.name,
            "source": str(source.relative_to(ctx.run_dir)),
            "queries": len(queries),
            "triples": written,
            "negatives": negatives,
            "triples_with_fewer_negatives": short,
            "queries_without_triple": len(without),
            "query_ids_without_triple": without,
        },
    )
    console.print(
        f"triples: {written} triples from {len(queries)} queries ({source.parent.name})"
        + (f"; {len(without)} without a negative (see summary.json)" if without else "")
    )
