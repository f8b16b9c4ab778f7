"""The estimate stage: a label-free estimate of what training gained, on synthetic queries of held-out documents.

Before any stage runs, ``[estimate] docs`` documents are drawn with the seed and held out of training
(:mod:`inparsx.datasets.holdout`): the tune, generate (its sample), triples and train stages see the collection
without them. The generate stage writes the recipe's synthetic queries for them too (``generate/heldout.jsonl``)
and the filter stage cleans them with the same filters, in the same pass (``filter/heldout.jsonl``). This stage
then does for those queries what the pipeline does for test queries, each query's only relevant document being
the one it was written from:

1. first-stage retrieval with its retriever (``use``, default ``bm25``) over the whole collection, held-out
   documents included (ranked as their queries' ``positive_text`` when they carry one, see
   :class:`~inparsx.estimate.options.EstimateStageOptions`);
2. reranking exactly as ``[rerank]`` says (its reranker, ``model``, ``zero_shot_model``, ``compare_models``,
   ``depth``, ``interpolate``/``fusion``), giving the runs ``rerank``, ``rerank-alone``, ``zeroshot``...;
3. the metrics (default MRR@10) of every run with the ``[evaluate]`` evaluator (ranx when absent), with a
   paired test of each run against the first stage and of the trained model against the zero-shot one.

The filters see the held-out queries with the training ones (a model filter scores them too); only the
training of the final model (triples, train) never does. It needs no labels, so a collection of documents alone gets
it, and a recipe with labels reports it beside the
real metrics (which is how to learn how far it can be trusted on a collection). It is an estimate: the queries
are the generator's, not users', so it measures how well the model finds a document from the kind of query it
was trained on.

Writes, in ``estimate/``: ``queries.jsonl`` and ``qrels.tsv`` (the synthetic queries and their source
documents), ``runs/<name>.trec``, the resumable scores (``scores*.jsonl``), ``notes.json`` (what each run is),
``metrics.json`` (``{run: {metric: value}}``), ``per_query.json``, ``comparison.json`` (tests and verdicts),
``table.txt`` and ``summary.json``. Its runs are never evaluated against the collection's qrels.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from inparsx.artifacts import (
    ESTIMATE_COMPARISON,
    ESTIMATE_METRICS,
    ESTIMATE_NOTES,
    ESTIMATE_PER_QUERY,
    ESTIMATE_QUERIES,
    ESTIMATE_TABLE,
    HELDOUT_QUERIES,
    SUMMARY,
    stage_queries,
)
from inparsx.datasets.base import Dataset
from inparsx.datasets.views import ReplacedTexts
from inparsx.io import ResumableJsonl, atomic_write, write_json, write_jsonl, write_trec_run
from inparsx.plugins import get_registry
from inparsx.progress import console, out
from inparsx.records import Qrels, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.evaluate.base import Evaluator
    from inparsx.evaluate.evaluation import Evaluation
    from inparsx.pipeline import StageContext

HELDOUT = HELDOUT_QUERIES.file
"""The held-out documents' synthetic queries, in ``generate/`` (as written) and ``filter/`` (kept)."""

NOTES = ESTIMATE_NOTES.file
FIRST_STAGE = "retrieve"
"""The name of the estimate's first-stage run, as the pipeline names the retrieve stage's run."""


def heldout_source(ctx: StageContext) -> Path:
    """``filter/heldout.jsonl`` when the recipe has a filter stage, else ``generate/heldout.jsonl``.

    Raises:
        InparsxError: the file does not exist (the stage has not run).
    """
    return ctx.path_of(stage_queries(ctx.recipe.stages, heldout=True))


def estimate_corpus(dataset: Dataset, records: list[SyntheticQuery], positive_text: bool) -> tuple[Dataset, int]:
    """The collection the estimate ranks, and how many documents it changed: ``dataset`` with each held-out
    document whose queries all carry one same ``positive_text`` replaced by that text (with ``positive_text``;
    a document whose queries differ keeps its whole text)."""
    if not positive_text:
        return dataset, 0
    texts: dict[str, set[str | None]] = defaultdict(set)
    for record in records:
        texts[record.doc_id].add(record.positive_text)
    replaced = {doc_id: next(iter(found)) for doc_id, found in texts.items() if len(found) == 1 and None not in found}
    return (ReplacedTexts(dataset, replaced), len(replaced)) if replaced else (dataset, 0)  # type: ignore[arg-type]


def estimate_evaluator(ctx: StageContext, metrics: list[str]) -> Evaluator:
    """The recipe's ``[evaluate]`` evaluator (``ranx`` when the recipe has none) with ``metrics`` and the first
    run as the baseline."""
    config = ctx.recipe.stages.get("evaluate")
    name, options = config.components[0] if config is not None else ("ranx", None)
    cls = get_registry().get("evaluators", name)
    values = options.model_dump() if options is not None else {}
    return cls(cls.Options.model_validate({**values, "metrics": metrics, "baseline": None}))


def run_stage(ctx: StageContext) -> None:
    """Estimate, without labels, what training gained (see the module docstring).

    Raises:
        InparsxError: the held-out queries or the ``@train`` model are missing. DataError: a malformed record.
    """
    from inparsx.artifacts import read_synthetic_queries

    source = heldout_source(ctx)
    records = read_synthetic_queries(source)
    if not records:
        console.print(f"estimate: skipped: no synthetic query of a held-out document is left in {source}", markup=False)
        write_json(ctx.dir / SUMMARY.file, {"source": str(source), "queries": 0})
        return
    corpus, replaced = estimate_corpus(ctx.dataset, records, ctx.settings.positive_text)
    queries = {r.query_id: r.query for r in records}
    qrels: Qrels = {r.query_id: {r.doc_id: 1} for r in records}
    write_jsonl(ctx.dir / ESTIMATE_QUERIES.file, ({"_id": qid, "text": text} for qid, text in queries.items()))
    with atomic_write(ctx.dir / "qrels.tsv") as handle:
        handle.write("query-id\tcorpus-id\tscore\n")
        handle.writelines(f"{r.query_id}\t{r.doc_id}\t1\n" for r in records)
    runs, notes, summary = _runs(ctx, corpus, queries)
    evaluation = _evaluate(ctx, qrels, runs, notes)
    docs = len({r.doc_id for r in records})
    summary.update(
        source=str(source.relative_to(ctx.run_dir)),
        queries=len(records),
        documents=docs,
        held_out=ctx.settings.docs,
        documents_as_positive_text=replaced,
        metrics=evaluation.means,
        pairs=[pair.to_json() for pair in evaluation.pairs],
    )
    write_json(ctx.dir / SUMMARY.file, summary)
    title = (
        f"label-free estimate ({ctx.recipe.name}): {len(records)} synthetic queries of {docs} held-out "
        "documents, each judged relevant to its source document only"
    )
    _print(ctx, evaluation, title)


def _runs(ctx: StageContext, corpus: Dataset, queries: dict[str, str]) -> tuple[dict, dict[str, Any], dict[str, Any]]:
    """The first-stage run over ``corpus`` and the reranked runs, as ``[rerank]`` reranks; written to
    ``runs/``. Returns ``(runs, notes, summary)``."""
    from inparsx.rerank.reranking import document_texts
    from inparsx.rerank.stage import fused_runs, job_label, rerank_jobs, rerank_with_model, run_notes

    retriever = ctx.component
    retriever.index(corpus)
    first_stage = retriever.search(queries, retriever.options.k)
    runs = {FIRST_STAGE: first_stage}
    name, options = ctx.recipe.stages["rerank"].components[0]
    settings = ctx.recipe.stages["rerank"].settings
    reranker = get_registry().get("rerankers", name)(options)
    jobs = rerank_jobs(ctx, settings, reranker)
    needed = sorted({docid for qid in queries for docid in list(first_stage.get(qid, {}))})
    docs = document_texts(corpus, needed, ctx.dir / "runs" / f"{FIRST_STAGE}.trec")
    for scorer in {id(job[1]): job[1] for job in jobs}.values():
        scorer.use_corpus(corpus.fingerprint())
    summary: dict[str, Any] = {
        "retriever": retriever.name,
        "k": retriever.options.k,
        "reranker": reranker.name,
        "depth": settings.depth,
    }
    scores: dict[str, Any] = {}
    for job, scorer, model, filename in jobs:
        scores[job], summary[job] = rerank_with_model(
            scorer,
            model,
            settings.depth,
            first_stage,
            queries,
            docs,
            ResumableJsonl(ctx.dir / filename),
            job_label(job, "estimate"),
            ctx.cache_key,
        )
    for job in scores:
        runs.update(fused_runs(job, first_stage, scores, settings))
    for run_name, run in runs.items():
        write_trec_run(
            ctx.dir / "runs" / f"{run_name}.trec",
            run,
            tag=f"inparsx-estimate-{run_name}",
            depth=retriever.options.k if run_name == FIRST_STAGE else None,
        )
    reranked = max((min(len(hits), settings.depth) for hits in first_stage.values()), default=0)
    others = {job: scorer.name for job, scorer, _, _ in jobs if scorer is not reranker}
    notes = run_notes({job: model for job, _, model, _ in jobs}, settings, FIRST_STAGE, reranked, others)
    notes["runs"] = {
        FIRST_STAGE: f"{retriever.name} over the whole collection, top {retriever.options.k}",
        **notes["runs"],
    }
    write_json(ctx.dir / NOTES, notes)
    return runs, notes, summary


def _evaluate(ctx: StageContext, qrels: Qrels, runs: dict, notes: dict[str, Any]) -> Evaluation:
    """Score ``runs`` on the synthetic ``qrels`` and write ``metrics.json``, ``per_query.json`` and
    ``comparison.json``."""
    from inparsx.evaluate.stage import evaluate

    evaluation = evaluate(estimate_evaluator(ctx, ctx.settings.metrics), qrels, runs, set(), notes=notes)
    write_json(ctx.dir / ESTIMATE_METRICS.file, evaluation.means)
    if evaluation.per_query:
        write_json(ctx.dir / ESTIMATE_PER_QUERY.file, evaluation.per_query_json())
    if evaluation.significance:
        write_json(ctx.dir / ESTIMATE_COMPARISON.file, evaluation.comparison())
    return evaluation


def _print(ctx: StageContext, evaluation: Evaluation, title: str) -> None:
    """Print the estimate's table and keep it as ``table.txt`` (a rerun whose stages are all done shows it)."""
    from inparsx.evaluate.table import print_results

    print_results(evaluation, out, title)
    text = io.StringIO()
    print_results(evaluation, Console(file=text, color_system=None, highlight=False), title)
    with atomic_write(ctx.dir / ESTIMATE_TABLE.file) as handle:
        handle.write(text.getvalue())
