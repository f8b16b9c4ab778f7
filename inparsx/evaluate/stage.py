"""The evaluate stage: every run of the run directory against the eval split's qrels.

Writes ``evaluate/metrics.json`` (``{run_name: {metric: value}}``, runs named after their stage, in pipeline
order), ``evaluate/table.txt`` (the printed table), ``evaluate/per_query.json`` (``{run: {metric: {qid:
score}}}``) and, with several runs, ``evaluate/comparison.json`` (each run against the baseline: values,
difference, p-value, wins/ties/losses; and the pairs that stages declared in ``runs.json``, e.g. trained vs
zero-shot reranker, each with a verdict), and the run's HTML report, ``<run>/report.html``
(:mod:`inparsx.report`). Prints the results table on stdout, with each run's description and each pair's
verdict under it; with ``[dataset] eval_queries`` the title says the queries are a sample. Query ids listed
by earlier stages in ``excluded_qids.txt`` (few-shot examples drawn from the evaluated split) are removed from
the qrels and the runs first.
"""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from inparsx.artifacts import COMPARISON, METRICS, PER_QUERY, TABLE
from inparsx.errors import InparsxError
from inparsx.evaluate.evaluation import Evaluation, evaluate_runs, exclude_queries, paired_tests, read_runs
from inparsx.evaluate.table import estimate_lines, print_results
from inparsx.io import atomic_write, write_json
from inparsx.progress import console, out
from inparsx.records import Qrels, Run

TABLE_FILE = TABLE.file
"""The printed results table, kept so that a rerun whose stages are all done can show it again."""


def evaluate(
    evaluator,
    qrels: Qrels,
    runs: dict[str, Run],
    excluded: set[str],
    source: str = "",
    notes: dict[str, Any] | None = None,
) -> Evaluation:
    """What the evaluate stage and ``inparsx eval`` compute: drop the ``excluded`` query ids from qrels and
    runs, score every run with ``evaluator``, attach the runs' descriptions and test the declared pairs.

    Args:
        evaluator: an evaluator component.
        qrels, runs: ``{qid: {docid: relevance}}`` and ``{name: {qid: {docid: score}}}`` (the first run is the
            default baseline).
        excluded: query ids to drop (few-shot examples from the evaluated split).
        source: where ``excluded`` comes from, for the message that reports them.
        notes: :data:`inparsx.pipeline.RUN_NOTES` merged (``{"runs": {name: description}, "pairs": [...]}``).

    Raises:
        InparsxError: a baseline that names no run. MetricNameError: an invalid metric name.
    """
    notes = notes or {"runs": {}, "pairs": []}
    qrels, runs = exclude_queries(qrels, runs, excluded, source=source)
    evaluation = evaluate_runs(evaluator, qrels, runs)
    evaluation.descriptions = {name: text for name, text in notes["runs"].items() if name in runs}
    if evaluation.per_query:
        evaluation.pairs = paired_tests(evaluator, evaluation, notes["pairs"])
    return evaluation


def run_stage(ctx) -> None:
    """Evaluate ``ctx.runs()`` on ``ctx.dataset.qrels(ctx.eval_split)`` with the stage's evaluator, and print
    the label-free estimate's verdicts under the table when ``[estimate]`` ran. A collection without labels
    has nothing to score: one line says why, and the report is written.

    Raises:
        InparsxError: no run in the run directory, or a baseline that names no run.
        DataError: a malformed run file (file:line).
        MetricNameError: an invalid metric name.
    """
    if not ctx.dataset.has_labels():
        estimated = "estimate" in ctx.recipe.stages
        console.print(
            f"evaluate: skipped: {ctx.dataset.name} has no qrels (a collection without labels), so no run "
            "can be scored"
            + (
                "; the label-free estimate is above and in estimate/summary.json"
                if estimated
                else "; add [estimate] for a label-free estimate"
            ),
            markup=False,
        )
        _write_report(ctx)
        return
    paths = ctx.runs()
    if not paths:
        raise InparsxError(
            f"evaluate: no run in {ctx.run_dir} (a stage's run.trec or runs/<name>.trec); "
            "add [retrieve] or [rerank] to the recipe"
        )
    source = f" of split {ctx.eval_split!r} (few-shot examples listed in excluded_qids.txt)"
    qrels = ctx.dataset.qrels(ctx.eval_split)
    evaluation = evaluate(ctx.component, qrels, read_runs(paths), ctx.excluded_qids(), source, ctx.run_notes())
    write_json(ctx.dir / METRICS.file, evaluation.means)
    if evaluation.per_query:
        write_json(ctx.dir / PER_QUERY.file, evaluation.per_query_json())
    if evaluation.significance:
        write_json(ctx.dir / COMPARISON.file, evaluation.comparison())
    title = f"{ctx.recipe.name}: {ctx.dataset.name} {ctx.eval_split}".strip()
    sample = ctx.recipe.dataset
    if sample.eval_queries is not None:  # a seeded sample of the split (dataset.eval_queries)
        title += f", a sample of {len(qrels)} queries (eval_queries seed {sample.sample_seed})"
    print_results(evaluation, out, title)
    text = io.StringIO()
    print_results(evaluation, Console(file=text, color_system=None, highlight=False), title)
    beside = estimate_lines(ctx.run_dir) if "estimate" in ctx.recipe.stages else []  # next to the real figures
    for line in beside:
        out.print(line, markup=False, highlight=False)
    with atomic_write(ctx.dir / TABLE_FILE) as handle:
        handle.write(text.getvalue() + "".join(f"{line}\n" for line in beside))
    _write_report(ctx)


def _write_report(ctx) -> None:
    """Write the run's ``report.html`` unless the runner says not to (``StageContext.report``: a tuner's inner
    run)."""
    if not ctx.report:
        return
    from inparsx.report import write_report

    console.print(f"report: {write_report(ctx.run_dir)}", soft_wrap=True, markup=False)
