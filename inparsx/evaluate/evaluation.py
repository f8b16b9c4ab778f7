"""Evaluating several runs against one set of qrels: what the evaluate stage and ``inparsx eval`` share.

``evaluate_runs`` returns an :class:`Evaluation` (means, per-query scores, significance against a baseline,
coverage of each run); the stage writes it to ``evaluate/metrics.json`` and ``comparison.json``, the command
prints it. Heavy work happens in the evaluator (ranx); this module only reads files and arranges results.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inparsx.errors import DataError, InparsxError
from inparsx.evaluate.metrics import DEFAULT_METRICS, Metric, parse_metrics
from inparsx.io import read_trec_run
from inparsx.progress import console, track
from inparsx.records import Qrels, Run

if TYPE_CHECKING:
    from inparsx.evaluate.base import Evaluator


@dataclass
class Coverage:
    """How a run's queries meet the qrels: ``missing`` judged queries it does not rank (they score 0),
    ``unjudged`` queries it ranks that have no qrels (ignored)."""

    missing: int = 0
    unjudged: int = 0


@dataclass
class PairTest:
    """A paired test of run ``run`` against run ``against`` (e.g. the trained reranker against the zero-shot one).

    ``question``: what the test answers, in words. ``results``: ``{metric: {"value", "against", "delta",
    "p_value", "significant"}}``, every metric of the evaluation; the first metric (``ndcg@10`` by default)
    gives the :attr:`verdict`.
    """

    run: str
    against: str
    question: str
    results: dict[str, dict[str, Any]]

    @property
    def verdict(self) -> str:
        """``yes`` (higher on the first metric and significant), ``not significantly`` (higher, not
        significant) or ``no`` (not higher)."""
        first = next(iter(self.results.values()))
        if first["delta"] > 0:
            return "yes" if first["significant"] else "not significantly"
        return "no"

    def line(self, labels: Mapping[str, str]) -> str:
        """One sentence for the table's legend, e.g. ``did the trained model beat the zero-shot one? no:
        rerank-alone 0.6669 vs zeroshot-alone 0.6724 nDCG@10 (-0.0055, p=0.071)``."""
        metric, first = next(iter(self.results.items()))
        p_value = first["p_value"]
        p_text = "p<0.001" if p_value < 0.001 else f"p={p_value:.3f}"
        return (
            f"{self.question} {self.verdict}: {self.run} {first['value']:.4f} vs {self.against} "
            f"{first['against']:.4f} {labels.get(metric, metric)} ({first['delta']:+.4f}, {p_text})"
        )

    def to_json(self) -> dict[str, Any]:
        """The entry of ``comparison.json``'s ``pairs`` list."""
        return {
            "run": self.run,
            "against": self.against,
            "question": self.question,
            "verdict": self.verdict,
            "metrics": self.results,
        }


@dataclass
class Evaluation:
    """Results of several runs on the same judged queries.

    ``means``: ``{run: {metric: value}}`` (what ``metrics.json`` holds). ``per_query``: ``{run: {metric:
    array}}`` aligned with ``qids`` (empty when the evaluator gives means only). ``significance``: ``{run:
    {metric: {"p_value", "significant"}}}`` against ``baseline`` (runs other than the baseline; empty with a
    single run). ``stat_test``/``test_description``/``max_p``: how significance was tested (the evaluator's
    :meth:`~inparsx.evaluate.base.Evaluator.test_name` and :meth:`~inparsx.evaluate.base.Evaluator.test_description`).
    ``shallow``: ``{run: {metric: depth}}`` for each metric whose cutoff is deeper than the run (``recall@1000``
    of a run holding at most 100 documents per query, which is then the run's ``recall@100``): flagged in the
    table and warned about (:func:`shallow_metrics`).
    """

    metrics: list[Metric]
    qids: list[str]
    means: dict[str, dict[str, float]]
    per_query: dict[str, dict[str, Any]] = field(default_factory=dict)
    coverage: dict[str, Coverage] = field(default_factory=dict)
    baseline: str | None = None
    significance: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    stat_test: str = ""
    test_description: str = ""
    max_p: float = 0.05
    descriptions: dict[str, str] = field(default_factory=dict)
    pairs: list[PairTest] = field(default_factory=list)
    shallow: dict[str, dict[str, int]] = field(default_factory=dict)

    def comparison(self) -> dict[str, Any]:
        """The JSON of ``comparison.json``: for each run but the baseline and each metric, its value, the
        baseline's, the difference, the p-value, whether it is significant, and per-query wins/ties/losses."""
        runs: dict[str, Any] = {}
        for name, by_metric in self.significance.items():
            runs[name] = {m: self._compare_one(name, m, test) for m, test in by_metric.items()}
        result: dict[str, Any] = {
            "baseline": self.baseline,
            "stat_test": self.stat_test,
            "test": self.test_description,
            "max_p": self.max_p,
            "queries": len(self.qids),
            "runs": runs,
        }
        if self.pairs:
            result["pairs"] = [pair.to_json() for pair in self.pairs]
        return result

    def _compare_one(self, name: str, metric: str, test: Mapping[str, Any]) -> dict[str, Any]:
        baseline = self._tested_baseline()
        value, base = self.means[name][metric], self.means[baseline][metric]
        entry: dict[str, Any] = {
            "value": value,
            "baseline": base,
            "delta": value - base,
            "p_value": test["p_value"],
            "significant": bool(test["significant"]),
        }
        if self.per_query:
            ours, theirs = self.per_query[name][metric], self.per_query[baseline][metric]
            entry.update(
                wins=int((ours > theirs).sum()), ties=int((ours == theirs).sum()), losses=int((ours < theirs).sum())
            )
        return entry

    def _tested_baseline(self) -> str:
        """``baseline``, the run ``significance`` was tested against.

        Raises:
            ValueError: ``significance`` without a ``baseline`` (an ``Evaluation`` built by hand).
        """
        if self.baseline is None:
            raise ValueError("Evaluation: significance results without the baseline run they were tested against")
        return self.baseline

    def per_query_json(self) -> dict[str, dict[str, dict[str, float]]]:
        """``{run: {metric: {qid: score}}}`` (``per_query.json``), for tests of one's own."""
        return {
            run: {m: dict(zip(self.qids, map(float, values))) for m, values in by_metric.items()}
            for run, by_metric in self.per_query.items()
        }


def read_runs(paths: Mapping[str, Path]) -> dict[str, Run]:
    """Read TREC run files by name, with a progress bar when there are several.

    Raises:
        DataError: a missing file or a malformed line (file:line named).
    """
    runs: dict[str, Run] = {}
    items: Iterable[tuple[str, Path]] = paths.items()
    if len(paths) > 1:
        items = track(list(paths.items()), "reading runs", unit="runs")
    for name, path in items:
        if not Path(path).is_file():
            raise DataError(path, f"run {name!r}: file not found")
        runs[name] = read_trec_run(path)
        if not runs[name]:
            console.print(f"[yellow]warning:[/yellow] run {name!r} ({path}) is empty: every metric will be 0")
    return runs


def read_qid_list(path: str | Path) -> set[str]:
    """Query ids, one per line (blank lines and ``#`` comments skipped): ``excluded_qids.txt``'s format.

    Raises:
        DataError: the file does not exist.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found (expected one query id per line)")
    lines = (line.split("#", 1)[0].strip() for line in path.read_text(encoding="utf-8").splitlines())
    return {line for line in lines if line}


def drop_queries(table: Mapping[str, Any], qids: set[str]) -> tuple[dict[str, Any], int]:
    """``table`` (qrels or a run) without the queries ``qids``, and how many were dropped."""
    kept = {qid: value for qid, value in table.items() if qid not in qids}
    return kept, len(table) - len(kept)


def exclude_queries(
    qrels: Qrels, runs: Mapping[str, Run], qids: set[str], source: str = ""
) -> tuple[Qrels, dict[str, Run]]:
    """Drop ``qids`` (e.g. few-shot examples) from the qrels and every run, and say how many went."""
    if not qids:
        return dict(qrels), dict(runs)
    kept, dropped = drop_queries(qrels, qids)
    console.print(
        f"excluded {dropped} of {len(qrels)} judged queries{source} "
        f"({len(qids) - dropped} of the {len(qids)} listed ids are not judged here)"
    )
    return kept, {name: drop_queries(run, qids)[0] for name, run in runs.items()}


def coverage(qrels: Qrels, run: Run) -> Coverage:
    """Judged queries the run does not rank, and ranked queries without qrels."""
    missing = sum(1 for qid in qrels if not run.get(qid))
    return Coverage(missing=missing, unjudged=sum(1 for qid in run if qid not in qrels))


def evaluate_runs(
    evaluator: Evaluator,
    qrels: Qrels,
    runs: Mapping[str, Run],
    metrics: list[str] | None = None,
    baseline: str | None = None,
) -> Evaluation:
    """Evaluate ``runs`` on ``qrels`` with ``evaluator``; significance against ``baseline`` when there are
    several runs and the evaluator has ``per_query``/``significance`` (ranx does).

    Args:
        evaluator: an :class:`~inparsx.evaluate.base.Evaluator` (its options give metrics, test and baseline
            unless ``metrics``/``baseline`` are given).
        qrels: ``{qid: {docid: grade}}``; every metric averages over its queries.
        runs: ``{name: {qid: {docid: score}}}`` in display order; the first is the default baseline.

    Raises:
        MetricNameError: an invalid metric name. InparsxError: empty qrels, no run, or an unknown baseline.
    """
    options = evaluator.options
    parsed = parse_metrics(list(metrics or options.metrics or DEFAULT_METRICS))
    names = [metric.name for metric in parsed]
    if not runs:
        raise InparsxError("no run to evaluate")
    baseline = baseline or options.baseline or next(iter(runs))
    if baseline not in runs:
        raise InparsxError(f"baseline run {baseline!r} is not among the runs: {', '.join(runs)}")
    result = Evaluation(
        parsed,
        [],
        {},
        coverage={name: coverage(qrels, run) for name, run in runs.items()},
        baseline=baseline,
        stat_test=evaluator.test_name(),
        test_description=evaluator.test_description(),
        max_p=options.max_p,
    )
    _warn_coverage(result.coverage, len(qrels))
    result.shallow = shallow_metrics(runs, parsed)
    _warn_shallow(result.shallow)
    per_query = evaluator.per_query(qrels, runs, names)
    if per_query is None:
        result.qids, result.means = sorted(qrels), evaluator.evaluate(qrels, runs, names)
        return result
    result.qids, result.per_query = per_query
    result.means = {run: {m: float(v.mean()) for m, v in by.items()} for run, by in result.per_query.items()}
    if len(runs) > 1:
        result.significance = evaluator.significance(result.per_query, baseline) or {}
    return result


def paired_tests(evaluator: Evaluator, evaluation: Evaluation, pairs: Iterable[Mapping[str, str]]) -> list[PairTest]:
    """Paired tests of run against run, beyond the tests against the baseline (none when the evaluation has
    no per-query scores or the evaluator no :meth:`~inparsx.evaluate.base.Evaluator.significance`).

    ``pairs``: ``{"run", "against", "question"}`` mappings, as stages declare them in ``runs.json``
    (:data:`inparsx.pipeline.RUN_NOTES`); a pair naming a run that was not evaluated is skipped.
    """
    tests = []
    for pair in pairs:
        run, against = pair["run"], pair["against"]
        if run not in evaluation.per_query or against not in evaluation.per_query or run == against:
            continue
        scores = {against: evaluation.per_query[against], run: evaluation.per_query[run]}
        tested = evaluator.significance(scores, against)
        if tested is None:
            continue
        found = tested[run]
        results = {}
        for metric in evaluation.metrics:
            value, other = evaluation.means[run][metric.name], evaluation.means[against][metric.name]
            test = found[metric.name]
            results[metric.name] = {
                "value": value,
                "against": other,
                "delta": value - other,
                "p_value": float(test["p_value"]),
                "significant": bool(test["significant"]),
            }
        tests.append(PairTest(run, against, pair.get("question", f"did {run} beat {against}?"), results))
    return tests


def run_depth(run: Run) -> int:
    """The most documents the run ranks for one query (0 for an empty run)."""
    return max((len(docs) for docs in run.values()), default=0)


def shallow_metrics(runs: Mapping[str, Run], metrics: Iterable[Metric]) -> dict[str, dict[str, int]]:
    """``{run: {metric: depth}}``: the metrics with a cutoff ``k`` deeper than a run cut at a fixed depth (at
    least half its queries rank exactly :func:`run_depth` documents, as a first stage retrieved with ``k`` does);
    such a metric equals the same metric at the run's depth (``recall@1000`` of a depth-100 run is its
    ``recall@100``), and reads as if the run had been retrieved deeper. A run whose queries rank different
    numbers of documents (e.g. only the judged ones) is not cut, and runs with nothing to flag are left out."""
    found: dict[str, dict[str, int]] = {}
    for name, run in runs.items():
        depth = run_depth(run)
        cut = 2 * sum(1 for docs in run.values() if len(docs) == depth) >= len(run)
        deep = {metric.name: depth for metric in metrics if depth and cut and metric.k > depth}
        if deep:
            found[name] = deep
    return found


def _warn_shallow(shallow: Mapping[str, Mapping[str, int]]) -> None:
    for name, deep in shallow.items():
        depth = next(iter(deep.values()))
        console.print(
            f"[yellow]warning:[/yellow] run {name!r} holds at most {depth} documents per query, so "
            f"{', '.join(deep)} count(s) only those {depth} (marked † in the table): retrieve deeper "
            "(retrieve.k) or report the metric at that depth",
            soft_wrap=True,
        )


def _warn_coverage(found: Mapping[str, Coverage], judged: int) -> None:
    for name, cov in found.items():
        if cov.missing == judged:
            console.print(
                f"[yellow]warning:[/yellow] run {name!r} ranks none of the {judged} judged queries: "
                "are these the qrels of the right split?"
            )
        elif cov.missing:
            console.print(
                f"[yellow]warning:[/yellow] run {name!r} has no ranking for {cov.missing} of {judged} "
                "judged queries: they score 0 (trec_eval -c, Pyserini's convention)"
            )
        if cov.unjudged:
            console.print(f"[dim]run {name!r}: {cov.unjudged} queries without qrels ignored[/dim]")
