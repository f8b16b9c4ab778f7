"""The rerank stage: rescore the first-stage run's top ``depth`` with a neural reranker.

Writes ``rerank/run.trec`` (run ``rerank``), optionally ``rerank/runs/rerank-interpolated.trec`` and
``rerank/runs/rerank-rrf.trec`` (fused with the first stage), the same for a ``zero_shot_model``
(``runs/zeroshot*.trec``), the raw per-query scores (``scores.jsonl``, ``scores-zeroshot.jsonl``: the
resumable files) and ``summary.json`` (pairs, seconds, pairs/s, device and dtype per model).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from inparsx.io import ResumableJsonl, read_trec_run, write_json, write_trec_run
from inparsx.progress import console
from inparsx.records import Run
from inparsx.rerank.base import Reranker
from inparsx.rerank.fusion import interpolate, merge_reranked, rrf
from inparsx.rerank.reranking import candidates, document_texts, rerank_run

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


def fused_runs(name: str, first_stage: Run, reranked: Run, options: Any) -> dict[str, Run]:
    """The runs a rerank produces, by name: ``name`` itself (reranked, the rest below), plus
    ``<name>-interpolated`` when ``options.interpolate`` is set and ``<name>-rrf`` when ``options.fusion``
    is ``rrf``."""
    runs = {name: merge_reranked(first_stage, reranked)}
    if options.interpolate is not None:
        runs[f"{name}-interpolated"] = interpolate(first_stage, reranked, options.interpolate)
    if options.fusion == "rrf":
        runs[f"{name}-rrf"] = rrf(first_stage, reranked, options.rrf_k)
    return runs


def rerank_with_model(reranker: Reranker, model: str, first_stage: Run, queries: dict[str, str],
                      docs: dict[str, str], store: ResumableJsonl, label: str) -> tuple[Run, dict[str, Any]]:
    """Load ``model`` into ``reranker``, rerank (resumably, into ``store``), unload; returns scores and a summary.

    ``label`` names the job on the progress bar (which counts pairs/s) and in the closing message.
    """
    opts = reranker.options
    reranker.load(model)
    meta = {"model": model, "reranker": reranker.name, "depth": opts.depth, "max_length": opts.max_length,
            "dtype": opts.dtype}
    try:
        scores, stats = rerank_run(reranker, first_stage, queries, docs, opts.depth, store, meta,
                                   description=label)
    finally:
        device, dtype = str(getattr(reranker, "device", "")), str(getattr(reranker, "dtype", ""))
        reranker.unload()
    console.print(f"{label}: {stats.queries} queries, {stats.pairs} pairs in {stats.seconds:.1f} s "
                  f"({stats.pairs_per_second:.1f} pairs/s)" + (f", {stats.resumed} queries resumed" if stats.resumed else ""))
    summary = {"model": model, "queries": stats.queries, "pairs": stats.pairs, "resumed_queries": stats.resumed,
               "seconds": round(stats.seconds, 3), "pairs_per_second": round(stats.pairs_per_second, 2),
               "device": device, "dtype": dtype, "queries_not_in_split": len(stats.skipped)}
    return scores, summary


def write_runs(folder: Path, runs: dict[str, Run], main: str | None, tag: str) -> list[Path]:
    """Write ``runs``: the one named ``main`` as ``folder/run.trec``, the others as ``folder/runs/<name>.trec``."""
    paths = []
    for name, run in runs.items():
        path = folder / "run.trec" if name == main else folder / "runs" / f"{name}.trec"
        write_trec_run(path, run, tag=f"{tag}-{name}")
        paths.append(path)
    return paths


def run_stage(ctx: "StageContext") -> None:
    """Rerank ``<first_stage>/run.trec`` for the queries of ``ctx.eval_split`` (see the module docstring).

    Raises:
        InparsxError: the first-stage run or ``@train`` model is missing.
        DataError: the run names documents that the dataset does not have.
    """
    reranker: Reranker = ctx.component
    opts = reranker.options
    run_path = ctx.output(opts.first_stage, "run.trec")
    first_stage = read_trec_run(run_path)
    queries = {qid: query.text for qid, query in ctx.dataset.queries(ctx.eval_split).items()}
    needed = {docid for ids in candidates(first_stage, opts.depth, queries).values() for docid in ids}
    docs = document_texts(ctx.dataset, sorted(needed), run_path)
    reranker.use_corpus(ctx.dataset.fingerprint())
    jobs = [("rerank", ctx.resolve_model(opts.model), "scores.jsonl")]
    if opts.zero_shot_model:
        jobs.append(("zeroshot", ctx.resolve_model(opts.zero_shot_model), "scores-zeroshot.jsonl"))
    summary: dict[str, Any] = {"reranker": reranker.name, "depth": opts.depth, "first_stage": str(run_path)}
    for name, model, filename in jobs:
        label = "rerank" if name == "rerank" else "rerank zero-shot"
        scores, summary[name] = rerank_with_model(reranker, model, first_stage, queries, docs,
                                                  ResumableJsonl(ctx.dir / filename), label)
        write_runs(ctx.dir, fused_runs(name, first_stage, scores, opts), "rerank", f"inparsx-{reranker.name}")
    write_json(ctx.dir / "summary.json", summary)
