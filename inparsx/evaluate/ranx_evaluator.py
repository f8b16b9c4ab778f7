"""The ``ranx`` evaluator: nDCG@10, MRR@10, recall@k, MAP... with ranx 0.3.21 (Bassani, ECIR 2022) and numba.

Conventions (those of ``trec_eval -c``, which Pyserini uses to report BEIR numbers, e.g. SciFact nDCG@10):

- Every metric is averaged over the queries of the qrels. A judged query that a run lacks scores 0; a run's
  query that has no qrels is ignored. BEIR's own ``EvaluateRetrieval`` (pytrec_eval without ``-c``) averages
  over the judged queries present in the run instead; the two agree whenever a run ranks every judged query,
  as first-stage runs do, and :func:`inparsx.evaluate.evaluation.evaluate_runs` warns when one does not.
- A qrel counts as relevant when its grade is >= 1 (>= N with a ``-lN`` metric suffix): grade-0 judgements
  are judged non-relevant, as in trec_eval. A judged query with no relevant document scores 0.
- Ties in a run are broken as trec_eval does (``comp_sim_docno`` in ``form_res_rels.c``): score descending,
  then docid descending; the order of the run file is not used.
- nDCG uses linear gain (Järvelin & Kekäläinen 2002), as trec_eval's ``ndcg_cut`` that BEIR reports.

Runs and qrels go to ranx as numba typed lists with exact integer docids (ranx's own ``Run``/``Qrels`` hash
docids to floats and compile another ~40 s of numba code on first use). ranx's metric kernels are compiled
by numba on first use (about 15-25 s on 2 cores for the five default metrics) and cached on disk next to
ranx's sources (``__pycache__``; ``$NUMBA_CACHE_DIR`` when set), so later processes start in well under 1 s.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, ClassVar, Literal

from pydantic import Field

from inparsx.errors import InparsxError
from inparsx.evaluate.base import Evaluator, EvaluatorOptions
from inparsx.evaluate.metrics import parse_metrics
from inparsx.records import Qrels, Run

if TYPE_CHECKING:
    import numpy as np

StatTest = Literal["student", "fisher", "tukey"]

STAT_TEST_NAMES: dict[str, str] = {
    "student": "two-sided paired t-test",
    "fisher": "Fisher's randomisation test",
    "tukey": "Tukey's HSD test",
}
"""ranx's significance tests (the ``stat_test`` of ``ranx.compare``), as a results table names them."""


class RanxOptions(EvaluatorOptions):
    """Options of the ``ranx`` evaluator (the ``[evaluate]`` table of a recipe, or ``inparsx eval`` flags).

    ``metrics``: names in the field's spelling (see :mod:`inparsx.evaluate.metrics`), checked when the recipe
    loads. ``stat_test``: paired significance test of each run against ``baseline`` (``student``: two-sided
    paired t-test; ``fisher``: randomisation test with ``n_permutations``; ``tukey``: Tukey's HSD over all
    runs). ``max_p``: the p-value at or below which a difference is significant. ``baseline``: the run the
    others are compared with (default: the first, in pipeline order usually ``retrieve``).
    """

    stat_test: StatTest = "student"
    n_permutations: int = Field(1000, ge=100, le=1_000_000)


class RanxEvaluator(Evaluator):
    """Metrics of runs against qrels with ranx; per-query scores and paired significance tests."""

    name: ClassVar[str] = "ranx"
    Options: ClassVar[type[RanxOptions]] = RanxOptions

    def evaluate(self, qrels: Qrels, runs: Mapping[str, Run], metrics: Sequence[str]) -> dict[str, dict[str, float]]:
        """``{run_name: {metric: value}}``, each the mean over the qrels' queries (missing queries score 0).

        Raises:
            MetricNameError: an invalid metric name (before anything is computed).
            InparsxError: qrels without any query.
        """
        _, scores = self.per_query(qrels, runs, metrics)
        return {
            name: {m: float(values.mean()) for m, values in by_metric.items()} for name, by_metric in scores.items()
        }

    def per_query(
        self, qrels: Qrels, runs: Mapping[str, Run], metrics: Sequence[str]
    ) -> tuple[list[str], dict[str, dict[str, np.ndarray]]]:
        """Per-query scores: ``(qids, {run: {metric: array}})``, arrays of shape ``(len(qids),)`` aligned with
        ``qids`` (the qrels' query ids in natural order), metric keys canonical (``ndcg@10``).

        Raises:
            MetricNameError: an invalid metric name (before anything is computed).
            InparsxError: qrels without any query.
        """
        names = [metric.name for metric in parse_metrics(list(metrics))]
        if not qrels:
            raise InparsxError("no judged query to evaluate: the qrels are empty (or every query was excluded)")
        qids = sorted(qrels, key=_natural_key)
        ids: dict[str, int] = {}  # docid -> a number, exact (no hashing), shared by qrels and runs
        qrels_list = _typed_list([_qrels_rows(qrels[qid], ids) for qid in qids])
        scores = {}
        for run_name, run in runs.items():
            run_list = _typed_list([_run_rows(run.get(qid, {}), ids) for qid in qids])
            scores[run_name] = _ranx_scores(qrels_list, run_list, names)
        return qids, scores

    def significance(
        self, scores: Mapping[str, Mapping[str, np.ndarray]], baseline: str
    ) -> dict[str, dict[str, dict[str, float | bool]]]:
        """Paired test of every run against ``baseline`` on per-query scores (from :meth:`per_query`).

        Uses ranx's ``compute_statistical_significance`` (what ``ranx.compare`` runs) with the options'
        ``stat_test``, ``max_p`` and ``n_permutations`` (Fisher: seed 42). A p-value that is undefined because
        the two runs score every query identically is reported as 1.0.

        Returns:
            ``{run: {metric: {"p_value": float, "significant": bool}}}`` for every run but the baseline.

        Raises:
            InparsxError: ``baseline`` is not one of the runs.
        """
        from ranx.statistical_tests import compute_statistical_significance

        if baseline not in scores:
            raise InparsxError(f"baseline run {baseline!r} is not among the runs: {', '.join(scores)}")
        options = self.options
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            comparisons = compute_statistical_significance(
                model_names=list(scores),
                metric_scores={k: dict(v) for k, v in scores.items()},
                stat_test=options.stat_test,
                n_permutations=options.n_permutations,
                max_p=options.max_p,
                random_seed=42,
            )
        return {
            name: {metric: _p_entry(result, options.max_p) for metric, result in comparisons[(baseline, name)].items()}
            for name in scores
            if name != baseline
        }

    def test_name(self) -> str:
        """ranx's name of the test (``student``, ``fisher``, ``tukey``)."""
        return self.options.stat_test

    def test_description(self) -> str:
        """``two-sided paired t-test, p <= 0.05`` (Fisher: with the number of permutations)."""
        name = STAT_TEST_NAMES[self.options.stat_test]
        if self.options.stat_test == "fisher":
            name += f", {self.options.n_permutations} permutations"
        return f"{name}, p <= {self.options.max_p:g}"


def _natural_key(text: str) -> tuple[int, int | str]:
    return (0, int(text)) if text.isdigit() else (1, text)


def _p_entry(result: dict, max_p: float) -> dict[str, float | bool]:
    p_value = float(result["p_value"])
    if math.isnan(p_value):
        p_value = 1.0
    return {"p_value": p_value, "significant": p_value <= max_p}


def _qrels_rows(judged: Mapping[str, int], ids: dict[str, int]) -> list[tuple[int, int]]:
    """``[(docid number, grade)]`` by grade descending: ranx reads the ideal ranking of nDCG from this order."""
    return sorted(
        ((ids.setdefault(docid, len(ids)), int(grade)) for docid, grade in judged.items()), key=lambda row: -row[1]
    )


def _run_rows(ranking: Mapping[str, float], ids: dict[str, int]) -> list[tuple[int, int]]:
    """``[(docid number, n - rank)]`` in trec_eval's order: score descending, then docid descending."""
    ordered = sorted(ranking.items(), key=lambda item: (item[1], item[0]), reverse=True)
    total = len(ordered)
    return [(ids.setdefault(docid, len(ids)), total - rank) for rank, (docid, _) in enumerate(ordered)]


def _typed_list(rows: list[list[tuple[int, int]]]):
    import numpy as np
    from numba.typed import List as TypedList

    return TypedList([np.array(r, dtype=np.float64) if r else np.empty((0, 2), dtype=np.float64) for r in rows])


def _ranx_scores(qrels_list, run_list, names: list[str]) -> dict[str, np.ndarray]:
    """Per-query scores of one run from ranx. With typed lists, ``ranx.evaluate(return_mean=False)`` fails on a
    single metric with a cutoff (0.3.21 keys its answer by ``ndcg`` instead of ``ndcg@10``): ask for it twice."""
    from numba.core import config as numba_config
    from ranx import evaluate

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="unsafe cast")
        # threads: ranx drops numba to 1 thread for < 10 queries and never restores it; ask for all again.
        result = evaluate(
            qrels_list,
            run_list,
            names if len(names) > 1 else names * 2,
            return_mean=False,
            save_results_in_run=False,
            threads=numba_config.NUMBA_NUM_THREADS,
        )
    return {name: result[name] for name in names}
