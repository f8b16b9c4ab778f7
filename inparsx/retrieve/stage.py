"""The retrieve stage: first-stage retrieval of the evaluation queries, and ready retrievers for other stages."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from inparsx.artifacts import CHECK, RUN_FILE
from inparsx.datasets import Dataset
from inparsx.errors import DataError
from inparsx.io import write_json, write_trec_run
from inparsx.plugins import get_registry
from inparsx.progress import console
from inparsx.retrieve.base import Retriever

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


def open_retriever(name: str, options: Mapping[str, Any] | None, dataset: Dataset) -> Retriever:
    """The old import path of :func:`inparsx.retrieval.open_retriever` (kept for plugins and tests): a retriever
    built from the process-wide registry and indexed over ``dataset``; errors as there. Components open the
    retriever of a :class:`~inparsx.specs.RetrieverSpec` with :func:`inparsx.retrieval.open_spec`."""
    retriever = get_registry().build("retrievers", name, dict(options or {}))
    retriever.index(dataset)
    return retriever


def run_stage(ctx: StageContext) -> None:
    """Check the collection, then retrieve the top ``k`` documents for every query of ``ctx.eval_split`` (a
    collection without labels: build the index only, see :func:`index_only`).

    Writes ``retrieve/check.json`` (the collection's check, as ``inparsx check`` prints it),
    ``retrieve/run.trec`` (TREC run, tag ``inparsx-<retriever>``) and ``retrieve/summary.json`` (queries,
    queries with no hit, index and search seconds, the index's metadata).

    Raises:
        DataError: the check found errors (what cannot be read); they are listed in ``check.json``.
    """
    check_collection(ctx)
    retriever: Retriever = ctx.component
    if not ctx.dataset.has_labels():
        index_only(ctx, retriever)
        return
    queries = {qid: query.text for qid, query in ctx.dataset.queries(ctx.eval_split).items()}
    began = time.perf_counter()
    retriever.index(ctx.dataset)
    indexed = time.perf_counter()
    run = retriever.search(queries, retriever.options.k)
    searched = time.perf_counter()
    write_trec_run(ctx.dir / RUN_FILE, run, tag=f"inparsx-{retriever.name}", depth=retriever.options.k)
    empty = sorted(qid for qid in queries if not run.get(qid))
    write_json(
        ctx.dir / "summary.json",
        {
            "retriever": retriever.name,
            "split": ctx.eval_split,
            "queries": len(queries),
            "k": retriever.options.k,
            "queries_without_hits": empty,
            "index_seconds": round(indexed - began, 3),
            "search_seconds": round(searched - indexed, 3),
            "index": retriever.index_info,
        },
    )
    console.print(
        f"retrieve: {len(queries)} {ctx.eval_split} queries, top {retriever.options.k}, "
        f"search {searched - indexed:.1f} s" + (f"; {len(empty)} with no hit" if empty else "")
    )


def index_only(ctx: StageContext, retriever: Retriever) -> None:
    """A collection without labels has no queries to retrieve: build (or reuse) the index, which the triples
    stage's negatives and the estimate's first stage search, write ``summary.json`` and say so in one line."""
    began = time.perf_counter()
    retriever.index(ctx.dataset)
    seconds = time.perf_counter() - began
    write_json(
        ctx.dir / "summary.json",
        {
            "retriever": retriever.name,
            "split": ctx.eval_split,
            "queries": 0,
            "k": retriever.options.k,
            "no_labels": True,
            "index_seconds": round(seconds, 3),
            "index": retriever.index_info,
        },
    )
    console.print(
        f"retrieve: {ctx.dataset.name} has no labels, so no {ctx.eval_split} queries to retrieve; index "
        f"ready in {seconds:.1f} s, no run written",
        markup=False,
    )


CHECK_FILE = CHECK.file


def check_collection(ctx: StageContext) -> None:
    """Write ``ctx.dataset.check()`` to ``<stage>/check.json`` and print its warnings and summary.

    Raises:
        DataError: the collection has errors (the first is named; all are in ``check.json``).
    """
    report = ctx.dataset.check()
    write_json(ctx.dir / CHECK_FILE, report.to_json())
    for line in report.lines():
        if not line.startswith("note:"):
            console.print(line, markup=False, style="yellow" if line.startswith("warning") else None)
    if not report.ok:
        first = report.lines()[0]
        raise DataError(ctx.dir / CHECK_FILE, f"the collection {report.dataset} cannot be read: {first}")
