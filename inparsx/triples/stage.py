"""The triples stage: training triples (query, positive, negatives) from the kept synthetic queries."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inparsx.errors import DataError
from inparsx.io import read_jsonl, write_json, write_jsonl
from inparsx.progress import console
from inparsx.records import SyntheticQuery
from inparsx.triples.base import Triple

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


def queries_source(ctx: "StageContext") -> Path:
    """``filter/queries.jsonl`` when the recipe has a filter stage, else ``generate/queries.jsonl``.

    Raises:
        InparsxError: that file does not exist (the stage is missing from the recipe or has not run).
    """
    stage = "filter" if "filter" in ctx.recipe.stages else "generate"
    return ctx.output(stage, "queries.jsonl")


def read_synthetic_queries(path: str | Path) -> list[SyntheticQuery]:
    """Every record of a synthetic-queries JSON-lines file, in file order.

    Raises:
        DataError: an invalid line, a record without ``doc_id`` or ``query``, or a repeated ``query_id``
            (file and line named).
    """
    records: list[SyntheticQuery] = []
    first_line: dict[str, int] = {}
    for number, obj in read_jsonl(path):
        try:
            record = SyntheticQuery.from_dict(obj)
        except (KeyError, TypeError) as exc:
            raise DataError(path, f"not a synthetic query record ({exc} missing or invalid)", number) from None
        if record.query_id in first_line:
            raise DataError(path, f"query_id {record.query_id!r} repeats line {first_line[record.query_id]}", number)
        first_line[record.query_id] = number
        records.append(record)
    return records


def triple_to_dict(triple: Triple) -> dict[str, Any]:
    """A JSON-ready dict of a triple (tuples become lists); the teacher scores only when it has them."""
    record = dataclasses.asdict(triple)
    if triple.pos_score is None:  # no teacher: the file keeps the plain (query, positive, negatives) layout
        del record["pos_score"], record["neg_scores"]
    return record


def run_stage(ctx: "StageContext") -> None:
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

    written = write_jsonl(ctx.dir / "triples.jsonl", records())
    without = [q.query_id for q in queries if q.query_id not in with_triple]
    write_json(ctx.dir / "summary.json", {
        "miner": miner.name, "source": str(source.relative_to(ctx.run_dir)), "queries": len(queries),
        "triples": written, "negatives": negatives, "triples_with_fewer_negatives": short,
        "queries_without_triple": len(without),
        "query_ids_without_triple": without})
    console.print(f"triples: {written} triples from {len(queries)} queries ({source.parent.name})"
                  + (f"; {len(without)} without a negative (see summary.json)" if without else ""))
