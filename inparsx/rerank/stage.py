"""The rerank stage: rescore the first-stage run's top ``depth`` with a neural reranker.

Writes ``rerank/run.trec``, the stage's final run ``rerank``: the model's ranking interpolated with the first
stage when ``interpolate`` is set, else fused by RRF when ``fusion = "rrf"``, else the model's ranking alone.
The other forms go to ``rerank/runs/``: ``rerank-alone.trec`` (the model alone, when the final run is fused)
and ``rerank-rrf.trec`` (when both fusions are asked for). A ``zero_shot_model`` gets the same runs under the
name ``zeroshot`` (``runs/zeroshot.trec``, ``runs/zeroshot-alone.trec``...), and each of ``compare_models``
under its own name. Also written: the raw per-query
scores (``scores.jsonl``, ``scores-zeroshot.jsonl``: the resumable files), ``summary.json`` (pairs, seconds,
pairs/s, and the device and precision each model ran with: ``device``, ``precision`` (also as
``dtype``; resolved, never ``auto``) and ``precision_reason``) and ``runs.json`` (:data:`inparsx.pipeline.RUN_NOTES`: what each run is,
and the trained-vs-zero-shot pairs that the evaluate stage tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from inparsx.io import ResumableJsonl, read_trec_run, write_json, write_trec_run
from inparsx.pipeline import RUN_NOTES
from inparsx.models import loading
from inparsx.precision import precision_name, ran_with
from inparsx.progress import console, rate_text
from inparsx.records import Run
from inparsx.rerank.base import Reranker
from inparsx.rerank.fusion import interpolate, merge_reranked, rrf
from inparsx.rerank.options import RerankStageOptions
from inparsx.rerank.reranking import candidates, document_texts, rerank_run

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


def run_forms(options: RerankStageOptions) -> list[str]:
    """The forms of a reranked run that ``options`` ask for, the final one first: ``interpolated``
    (``options.interpolate`` set), ``rrf`` (``options.fusion == "rrf"``), ``alone`` (always)."""
    forms = ["interpolated"] if options.interpolate is not None else []
    return forms + (["rrf"] if options.fusion == "rrf" else []) + ["alone"]


def form_name(name: str, form: str, options: RerankStageOptions) -> str:
    """The run name of ``form``: ``name`` itself for the final form, else ``<name>-<form>``."""
    return name if form == run_forms(options)[0] else f"{name}-{form}"


def form_description(form: str, options: RerankStageOptions, first_stage: str) -> str:
    """What a run of ``form`` is, in words (the evaluate stage prints it under the table)."""
    if form == "interpolated":
        alpha = options.interpolate
        return (f"interpolated with {first_stage}: {alpha:g} x model + {1 - alpha:g} x {first_stage}, "
                "min-max normalised per query")
    if form == "rrf":
        return f"reciprocal rank fusion with {first_stage} (k={options.rrf_k})"
    return "the model's scores alone"


def fused_runs(name: str, first_stage: Run, reranked: Run, options: RerankStageOptions) -> dict[str, Run]:
    """The runs a rerank produces, by name (see :func:`run_forms` and :func:`form_name`): the final one is
    called ``name``; e.g. with ``interpolate = 0.5``, ``rerank`` (interpolated) and ``rerank-alone``.

    Every run holds the whole first-stage ranking: the top ``depth`` reordered, the rest below in first-stage
    order (:mod:`inparsx.rerank.fusion`).
    """
    build = {"interpolated": lambda: interpolate(first_stage, reranked, options.interpolate),
             "rrf": lambda: rrf(first_stage, reranked, options.rrf_k),
             "alone": lambda: merge_reranked(first_stage, reranked)}
    return {form_name(name, form, options): build[form]() for form in run_forms(options)}


def run_notes(models: dict[str, str], options: RerankStageOptions, first_stage: str, reranked: int | None = None) -> dict[str, Any]:
    """The content of ``runs.json``: a description of every run and, with a zero-shot model, the pairs
    ``{"run": trained, "against": zero-shot, "question": ...}`` that the evaluate stage tests (one per form).

    ``models``: ``{"rerank": model, "zeroshot": model, <compared name>: model...}`` (all but the first optional).
    ``reranked``: the most documents any query has reranked (fewer than ``options.depth`` when the first-stage
    run is shallower); the descriptions state it.
    """
    who = {"rerank": "trained model", "zeroshot": "zero-shot model"}  # compared models go by their run name
    top = options.depth if reranked is None or reranked >= options.depth else reranked
    depth = f"top {top}" + ("" if top == options.depth else f" (all it holds; depth = {options.depth})")
    runs, pairs = {}, []
    for name, model in models.items():
        for form in run_forms(options):
            runs[form_name(name, form, options)] = (f"{who.get(name, name)} {model} on the {first_stage} {depth}, "
                                                    f"{form_description(form, options, first_stage)}")
    if "zeroshot" in models:
        for form in run_forms(options):
            pairs.append({"run": form_name("rerank", form, options), "against": form_name("zeroshot", form, options),
                          "question": "did the trained model beat the zero-shot one"
                                      + ("" if form == "alone" else f" ({form} with {first_stage})") + "?"})
    return {"runs": runs, "pairs": pairs}


def rerank_with_model(reranker: Reranker, model: str, depth: int, first_stage: Run, queries: dict[str, str],
                      docs: dict[str, str], store: ResumableJsonl, label: str) -> tuple[Run, dict[str, Any]]:
    """Load ``model`` into ``reranker``, rerank each query's top ``depth`` (resumably, into ``store``), unload;
    returns scores and a summary.

    ``label`` names the job on the progress bar (which counts pairs/s) and in the closing message.
    """
    opts = reranker.options
    with loading("reranker model", model):
        reranker.load(model)
    meta = {"model": model, "reranker": reranker.name, "depth": depth, "max_length": opts.max_length,
            "dtype": opts.dtype}
    try:
        scores, stats = rerank_run(reranker, first_stage, queries, docs, depth, store, meta, description=label)
    finally:
        ran = ran_with(reranker.device or "", opts.dtype, precision_name(reranker.dtype or "")) \
            if reranker.device is not None else {}
        reranker.unload()
    where = f" on {ran['device']}, {ran['precision']} ({ran['precision_reason']})" if ran else ""
    console.print(f"{label}: {stats.queries} queries, {stats.pairs} pairs in {stats.seconds:.1f} s "
                  f"({rate_text(stats.pairs_per_second, 'pairs')}){where}"
                  + (f", {stats.resumed} queries resumed" if stats.resumed else ""), markup=False, soft_wrap=True)
    summary = {"model": model, "queries": stats.queries, "pairs": stats.pairs, "resumed_queries": stats.resumed,
               "seconds": round(stats.seconds, 3), "pairs_per_second": round(stats.pairs_per_second, 2),
               **ran, "dtype": ran.get("precision", ""), "queries_not_in_split": len(stats.skipped)}
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
    opts: RerankStageOptions = ctx.settings
    run_path = ctx.output(opts.first_stage, "run.trec")
    first_stage = read_trec_run(run_path)
    queries = {qid: query.text for qid, query in ctx.dataset.queries(ctx.eval_split).items()}
    todo = candidates(first_stage, opts.depth, queries)
    needed = {docid for ids in todo.values() for docid in ids}
    docs = document_texts(ctx.dataset, sorted(needed), run_path)
    reranker.use_corpus(ctx.dataset.fingerprint())
    jobs = [("rerank", ctx.resolve_model(opts.model), "scores.jsonl")]
    if opts.zero_shot_model:
        jobs.append(("zeroshot", ctx.resolve_model(opts.zero_shot_model), "scores-zeroshot.jsonl"))
    jobs += [(name, ctx.resolve_model(model), f"scores-{name}.jsonl") for name, model in opts.compare_models.items()]
    summary: dict[str, Any] = {"reranker": reranker.name, "depth": opts.depth, "first_stage": str(run_path)}
    reranked = max((len(ids) for ids in todo.values()), default=0)
    for name, model, filename in jobs:
        label = {"rerank": "rerank", "zeroshot": "rerank zero-shot"}.get(name, f"rerank {name}")
        scores, summary[name] = rerank_with_model(reranker, model, opts.depth, first_stage, queries, docs,
                                                  ResumableJsonl(ctx.dir / filename), label)
        write_runs(ctx.dir, fused_runs(name, first_stage, scores, opts), "rerank", f"inparsx-{reranker.name}")
    write_json(ctx.dir / RUN_NOTES, run_notes({name: model for name, model, _ in jobs}, opts, opts.first_stage, reranked))
    write_json(ctx.dir / "summary.json", summary)
