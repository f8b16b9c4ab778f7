"""The rerank stage: rescore the first-stage run's top ``depth`` with a neural reranker.

Writes ``rerank/run.trec``, the stage's final run ``rerank``: the fusion of ``fuse`` (e.g. BM25 + zero-shot +
trained) when it is set, else the model's ranking interpolated with the first stage when ``interpolate`` is
set, else fused by RRF when ``fusion = "rrf"``, else the model's ranking alone. The other forms go to
``rerank/runs/``: ``rerank-interpolated.trec``, ``rerank-rrf.trec``, ``rerank-alone.trec`` (each when asked
for and not the final one; the model alone always). A ``zero_shot_model`` (scored by ``zero_shot_reranker``
when set, e.g. a zero-shot bi-encoder beside a trained cross-encoder) gets the same runs under the name
``zeroshot`` (``runs/zeroshot.trec``, ``runs/zeroshot-alone.trec``...; its fusion is the zero-shot one,
:func:`fusion_of`), and each of ``compare_models`` under its own name. Also written: the raw per-query scores
(``scores.jsonl``, ``scores-zeroshot.jsonl``: the resumable files), ``summary.json`` (pairs, seconds, pairs/s,
reranker, and the device and precision each model ran with: ``device``, ``precision`` (also as ``dtype``;
resolved, never ``auto``) and ``precision_reason``) and ``runs.json`` (:data:`inparsx.artifacts.RUN_NOTES`: what
each run is,
and the trained-vs-zero-shot pairs that the evaluate stage tests).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from inparsx.artifacts import RUN, RUN_FILE, RUN_NOTES, RUNS_FOLDER
from inparsx.errors import InparsxError
from inparsx.io import ResumableJsonl, read_trec_run, write_json, write_trec_run
from inparsx.models import loading
from inparsx.plugins import get_registry
from inparsx.precision import precision_name, ran_with
from inparsx.progress import console, rate_text
from inparsx.records import Run
from inparsx.rerank.base import Reranker
from inparsx.rerank.embeddings import model_cache_key
from inparsx.rerank.fusion import fuse, interpolate, merge_reranked, rrf
from inparsx.rerank.options import FORMS, RerankStageOptions
from inparsx.rerank.reranking import candidates, document_texts, rerank_run

if TYPE_CHECKING:
    from inparsx.pipeline import StageContext


JOB_KEYS = {"rerank": "model", "zeroshot": "zero_shot_model"}
"""Job name -> the ``fuse`` key of its run (a compared model's key is its run name)."""


def run_forms(options: RerankStageOptions) -> list[str]:
    """The forms of a reranked run that ``options`` ask for, the final one first: ``fused`` (``options.fuse``
    set), ``interpolated`` (``options.interpolate`` set), ``rrf`` (``options.fusion == "rrf"``), ``alone``
    (always)."""
    asked = {
        "fused": bool(options.fuse),
        "interpolated": options.interpolate is not None,
        "rrf": options.fusion == "rrf",
        "alone": True,
    }
    return [form for form in FORMS if asked[form]]


def form_name(name: str, form: str, options: RerankStageOptions) -> str:
    """The run name of ``form``: ``name`` itself for the final form, else ``<name>-<form>``."""
    return name if form == run_forms(options)[0] else f"{name}-{form}"


def fusion_of(name: str, options: RerankStageOptions) -> dict[str, float]:
    """The fusion of job ``name`` (``rerank``, ``zeroshot`` or a compared model), ``{fuse key: weight}``:
    ``options.fuse`` itself for ``rerank``; for another job, ``options.fuse`` with ``model`` replaced by the
    job's own run, or left out when the fusion already holds that run (so BM25 + zero-shot + trained is
    compared with BM25 + zero-shot)."""
    own = JOB_KEYS.get(name, name)
    if own == "model":
        return dict(options.fuse)
    fusion: dict[str, float] = {}
    for key, weight in options.fuse.items():
        if key != "model":
            fusion[key] = weight
        elif own not in options.fuse:
            fusion[own] = weight
    return fusion


def _member_label(key: str, first_stage: str) -> str:
    return {"first_stage": first_stage, "model": "trained", "zero_shot_model": "zero-shot"}.get(key, key)


def fusion_label(fusion: dict[str, float], first_stage: str) -> str:
    """``retrieve + zero-shot + trained``: the runs of a fusion, in words."""
    return " + ".join(_member_label(key, first_stage) for key in fusion)


def interpolation_weight(options: RerankStageOptions) -> float:
    """The model's weight ``alpha`` of the interpolated run (``interpolate``).

    Raises:
        InparsxError: ``interpolate`` is not set (the interpolated form exists only when it is).
    """
    if options.interpolate is None:
        raise InparsxError("rerank: the interpolated run needs interpolate (the model's weight, 0-1)")
    return options.interpolate


def form_description(form: str, options: RerankStageOptions, first_stage: str, name: str = "rerank") -> str:
    """What a run of ``form`` is, in words (the evaluate stage prints it under the table); ``name``: the job
    whose run it is (its fusion differs from the trained model's)."""
    if form == "interpolated":
        alpha = interpolation_weight(options)
        return (
            f"interpolated with {first_stage}: {alpha:g} x model + {1 - alpha:g} x {first_stage}, "
            "min-max normalised per query"
        )
    if form == "rrf":
        return f"reciprocal rank fusion with {first_stage} (k={options.rrf_k})"
    if form == "fused":
        fusion = fusion_of(name, options)
        total = sum(fusion.values())
        if options.fuse_method == "rrf":
            weights = (
                ""
                if len(set(fusion.values())) == 1
                else ", weights " + ", ".join(f"{_member_label(key, first_stage)} {w:g}" for key, w in fusion.items())
            )
            return f"fusion {fusion_label(fusion, first_stage)}: reciprocal rank fusion (k={options.rrf_k}){weights}"
        weights = ", ".join(f"{w / total:.3g} x {_member_label(key, first_stage)}" for key, w in fusion.items())
        return f"fusion {fusion_label(fusion, first_stage)}: {weights}, min-max normalised per query"
    return "the model's scores alone"


def fused_runs(name: str, first_stage: Run, scores: dict[str, Run], options: RerankStageOptions) -> dict[str, Run]:
    """The runs job ``name`` produces, by run name (see :func:`run_forms` and :func:`form_name`): the final one
    is called ``name``; e.g. with ``interpolate = 0.5``, ``rerank`` (interpolated) and ``rerank-alone``.

    ``scores``: every job's scores of the reranked documents, by job name (``rerank``, ``zeroshot``, compared
    models); the ``fused`` form reads the runs of :func:`fusion_of`. Every run holds the whole first-stage
    ranking: the top ``depth`` reordered, the rest below in first-stage order (:mod:`inparsx.rerank.fusion`).
    """
    reranked = scores[name]
    runs_by_key = {"first_stage": first_stage, **{JOB_KEYS.get(job, job): run for job, run in scores.items()}}
    build = {
        "fused": lambda: fuse(
            first_stage,
            reranked,
            [(runs_by_key[key], weight) for key, weight in fusion_of(name, options).items()],
            options.fuse_method or "minmax",
            options.rrf_k,
        ),
        "interpolated": lambda: interpolate(first_stage, reranked, interpolation_weight(options)),
        "rrf": lambda: rrf(first_stage, reranked, options.rrf_k),
        "alone": lambda: merge_reranked(first_stage, reranked),
    }
    return {form_name(name, form, options): build[form]() for form in run_forms(options)}


def run_notes(
    models: dict[str, str],
    options: RerankStageOptions,
    first_stage: str,
    reranked: int | None = None,
    rerankers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The content of ``runs.json``: a description of every run and, with a zero-shot model, the pairs
    ``{"run": trained, "against": zero-shot, "question": ...}`` that the evaluate stage tests (one per form;
    for the fused form, "trained fusion vs zero-shot fusion").

    ``models``: ``{"rerank": model, "zeroshot": model, <compared name>: model...}`` (all but the first optional).
    ``reranked``: the most documents any query has reranked (fewer than ``options.depth`` when the first-stage
    run is shallower); the descriptions state it. ``rerankers``: the reranker of a job whose reranker is not
    the stage's (``{"zeroshot": "bi-encoder"}``), named in its descriptions.
    """
    who = {"rerank": "trained model", "zeroshot": "zero-shot model"}  # compared models go by their run name
    top = options.depth if reranked is None or reranked >= options.depth else reranked
    depth = f"top {top}" + ("" if top == options.depth else f" (all it holds; depth = {options.depth})")
    runs, pairs = {}, []
    for name, model in models.items():
        kind = f" ({rerankers[name]})" if rerankers and name in rerankers else ""
        for form in run_forms(options):
            runs[form_name(name, form, options)] = (
                f"{who.get(name, name)}{kind} {model} on the {first_stage} "
                f"{depth}, {form_description(form, options, first_stage, name)}"
            )
    if "zeroshot" in models:
        for form in run_forms(options):
            if form == "fused":
                trained, zero = (
                    fusion_label(options.fuse, first_stage),
                    fusion_label(fusion_of("zeroshot", options), first_stage),
                )
                question = f"did the trained fusion beat the zero-shot fusion ({trained} vs {zero})?"
            else:
                question = (
                    "did the trained model beat the zero-shot one"
                    + ("" if form == "alone" else f" ({form} with {first_stage})")
                    + "?"
                )
            pairs.append(
                {
                    "run": form_name("rerank", form, options),
                    "against": form_name("zeroshot", form, options),
                    "question": question,
                }
            )
    return {"runs": runs, "pairs": pairs}


def rerank_with_model(
    reranker: Reranker,
    model: str,
    depth: int,
    first_stage: Run,
    queries: dict[str, str],
    docs: dict[str, str],
    store: ResumableJsonl,
    label: str,
    key: str = "",
) -> tuple[Run, dict[str, Any]]:
    """Load ``model`` into ``reranker``, rerank each query's top ``depth`` (resumably, into ``store``), unload;
    returns scores and a summary.

    ``label`` names the job on the progress bar (which counts pairs/s) and in the closing message. ``key``:
    the stage's cache key (:attr:`inparsx.context.ComponentContext.cache_key`); scores in ``store`` are reused
    only under the same key, the same settings and the same weights (a local folder's files, names, sizes and
    modification times: :func:`~inparsx.rerank.embeddings.model_cache_key`), so a model retrained at the same
    path is scored again.
    """
    opts = reranker.options
    meta = {
        "model": model,
        "reranker": reranker.name,
        "depth": depth,
        "max_length": opts.max_length,
        "dtype": opts.dtype,
        "key": key,
        "weights": model_cache_key(model, {}),
    }
    with loading("reranker model", model):
        reranker.load(model)
    try:
        scores, stats = rerank_run(reranker, first_stage, queries, docs, depth, store, meta, description=label)
    finally:
        ran = (
            ran_with(reranker.device or "", opts.dtype, precision_name(reranker.dtype or ""))
            if reranker.device is not None
            else {}
        )
        reranker.unload()
    where = f" on {ran['device']}, {ran['precision']} ({ran['precision_reason']})" if ran else ""
    console.print(
        f"{label}: {stats.queries} queries, {stats.pairs} pairs in {stats.seconds:.1f} s "
        f"({rate_text(stats.pairs_per_second, 'pairs')}){where}"
        + (f", {stats.resumed} queries resumed" if stats.resumed else ""),
        markup=False,
        soft_wrap=True,
    )
    summary = {
        "model": model,
        "reranker": reranker.name,
        "queries": stats.queries,
        "pairs": stats.pairs,
        "resumed_queries": stats.resumed,
        "seconds": round(stats.seconds, 3),
        "pairs_per_second": round(stats.pairs_per_second, 2),
        **ran,
        "dtype": ran.get("precision", ""),
        "queries_not_in_split": len(stats.skipped),
    }
    return scores, summary


def write_runs(folder: Path, runs: dict[str, Run], main: str | None, tag: str) -> list[Path]:
    """Write ``runs``: the one named ``main`` as ``folder/run.trec``, the others as ``folder/runs/<name>.trec``."""
    paths = []
    for name, run in runs.items():
        path = folder / RUN_FILE if name == main else folder / RUNS_FOLDER / f"{name}.trec"
        write_trec_run(path, run, tag=f"{tag}-{name}")
        paths.append(path)
    return paths


def rerank_jobs(
    ctx: StageContext, opts: RerankStageOptions, reranker: Reranker
) -> list[tuple[str, Reranker, str, str]]:
    """``(run name, scorer, model, scores file)`` of every model ``opts`` rerank with: ``rerank``
    (``opts.model``), ``zeroshot`` (``opts.zero_shot_model``, when set, scored by ``opts.zero_shot_reranker``
    when that is set, else by ``reranker``) and each of ``opts.compare_models`` (by ``reranker``); ``@stage``
    models resolved through ``ctx``.

    Raises:
        InparsxError: an ``@stage`` model whose stage has not run.
    """
    jobs = [("rerank", reranker, ctx.resolve_model(opts.model), "scores.jsonl")]
    if opts.zero_shot_model:
        zero_shot = reranker
        if opts.zero_shot_reranker is not None:
            zero_shot = get_registry().build("rerankers", opts.zero_shot_reranker, opts.zero_shot_options)
        jobs.append(("zeroshot", zero_shot, ctx.resolve_model(opts.zero_shot_model), "scores-zeroshot.jsonl"))
    return jobs + [
        (name, reranker, ctx.resolve_model(model), f"scores-{name}.jsonl")
        for name, model in opts.compare_models.items()
    ]


def job_label(name: str, prefix: str = "rerank") -> str:
    """The progress label of a rerank job: ``rerank``, ``rerank zero-shot``, ``rerank <name>``."""
    return {"rerank": prefix, "zeroshot": f"{prefix} zero-shot"}.get(name, f"{prefix} {name}")


def run_stage(ctx: StageContext) -> None:
    """Rerank ``<first_stage>/run.trec`` for the queries of ``ctx.eval_split`` (see the module docstring). On a
    collection without labels there are no such queries: one line says so and nothing is written (the
    estimate stage reranks the held-out synthetic queries with these settings).

    Every model's scores are computed first (the trained model, the zero-shot one with its own reranker when
    ``zero_shot_reranker`` is set, the compared ones), then each one's runs are written, since a fusion reads
    several models' scores.

    Raises:
        InparsxError: the first-stage run or ``@train`` model is missing.
        DataError: the run names documents that the dataset does not have.
    """
    reranker: Reranker = ctx.component
    opts: RerankStageOptions = ctx.settings
    if not ctx.dataset.has_labels():
        console.print(
            f"rerank: skipped: {ctx.dataset.name} has no labels, so no {ctx.eval_split} queries to rerank"
            + (
                "; [estimate] reranks the held-out synthetic queries with these settings"
                if "estimate" in ctx.recipe.stages
                else "; add [estimate] for a label-free estimate"
            ),
            markup=False,
        )
        return
    run_path = ctx.path_of(RUN, opts.first_stage)
    first_stage = read_trec_run(run_path)
    queries = {qid: query.text for qid, query in ctx.dataset.queries(ctx.eval_split).items()}
    todo = candidates(first_stage, opts.depth, queries)
    needed = {docid for ids in todo.values() for docid in ids}
    docs = document_texts(ctx.dataset, sorted(needed), run_path)
    jobs = rerank_jobs(ctx, opts, reranker)
    for scorer in {id(job[1]): job[1] for job in jobs}.values():
        scorer.use_corpus(ctx.dataset.fingerprint())
    summary: dict[str, Any] = {"reranker": reranker.name, "depth": opts.depth, "first_stage": str(run_path)}
    reranked = max((len(ids) for ids in todo.values()), default=0)
    others = {name: scorer.name for name, scorer, _, _ in jobs if scorer is not reranker}
    scores: dict[str, Run] = {}
    for name, scorer, model, filename in jobs:
        scores[name], summary[name] = rerank_with_model(
            scorer,
            model,
            opts.depth,
            first_stage,
            queries,
            docs,
            ResumableJsonl(ctx.dir / filename),
            job_label(name),
            ctx.cache_key,
        )
    for name in scores:
        write_runs(ctx.dir, fused_runs(name, first_stage, scores, opts), "rerank", f"inparsx-{reranker.name}")
    write_json(
        ctx.dir / RUN_NOTES,
        run_notes({name: model for name, _, model, _ in jobs}, opts, opts.first_stage, reranked, others),
    )
    write_json(ctx.dir / "summary.json", summary)
