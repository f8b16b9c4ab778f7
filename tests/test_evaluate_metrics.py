"""The ranx evaluator: metric names, values against hand-computed ones, conventions, significance."""

from __future__ import annotations

import subprocess
import sys
from math import log2

import numpy as np
import pytest
from pydantic import ValidationError

from inparsx.evaluate.metrics import DEFAULT_METRICS, MetricNameError, canonical_metrics, parse_metric
from inparsx.evaluate.ranx_evaluator import RanxEvaluator

# q1: graded qrels with a grade-0 judgement; q2: a score tie; q3: judged but missing from the run;
# q4: judged non-relevant only; q5: in the run but not judged (ignored).
QRELS = {
    "q1": {"d1": 2, "d2": 0, "d3": 1, "d4": 1},
    "q2": {"d5": 1},
    "q3": {"d6": 1},
    "q4": {"d7": 0},
}
RUN = {
    "q1": {"d2": 0.9, "d1": 0.8, "d9": 0.7, "d3": 0.6},  # d4 (relevant) not retrieved
    "q2": {"d5": 0.5, "d8": 0.5},  # tie: trec_eval ranks docid descending, so d8 first, d5 second
    "q5": {"d1": 1.0},
}

# Per-query values by hand. q1 ranking: d2 (grade 0), d1 (2), d9 (unjudged), d3 (1); relevant: d1, d3, d4.
NDCG10_Q1 = (2 / log2(3) + 1 / log2(5)) / (2 / log2(2) + 1 / log2(3) + 1 / log2(4))  # linear gain, ideal 2,1,1
NDCG10_Q2 = (1 / log2(3)) / 1.0  # the relevant d5 at rank 2
EXPECTED = {
    "ndcg@10": (NDCG10_Q1 + NDCG10_Q2) / 4,
    "mrr@10": (1 / 2 + 1 / 2) / 4,
    "mrr@1": 0.0,  # rank 1 is d2 (grade 0) for q1 and d8 for q2
    "recall@100": (2 / 3 + 1) / 4,
    "recall@2": (1 / 3 + 1) / 4,
    "map": ((1 / 2 + 2 / 4) / 3 + (1 / 2) / 1) / 4,  # AP divides by all relevant documents, retrieved or not
    "precision@2": (1 / 2 + 1 / 2) / 4,
}


@pytest.fixture(scope="module")
def evaluator() -> RanxEvaluator:
    return RanxEvaluator()


def test_values_match_hand_computed(evaluator):
    result = evaluator.evaluate(QRELS, {"run": RUN}, list(EXPECTED))
    assert result["run"] == pytest.approx(EXPECTED, abs=1e-12)


def test_per_query_scores_follow_conventions(evaluator):
    qids, scores = evaluator.per_query(QRELS, {"run": RUN}, ["ndcg@10", "mrr@10"])
    assert qids == ["q1", "q2", "q3", "q4"]  # the qrels' queries: q5 (no qrels) is ignored
    np.testing.assert_allclose(scores["run"]["ndcg@10"], [NDCG10_Q1, NDCG10_Q2, 0.0, 0.0])
    np.testing.assert_allclose(scores["run"]["mrr@10"], [0.5, 0.5, 0.0, 0.0])  # q2 tie: d8 ranks first


def test_single_metric_with_cutoff(evaluator):
    assert evaluator.evaluate(QRELS, {"run": RUN}, ["nDCG@10"]) == {
        "run": {"ndcg@10": pytest.approx(EXPECTED["ndcg@10"])}
    }


def test_relevance_level_suffix(evaluator):
    # with -l2 only d1 (grade 2) is relevant for q1; q2..q4 have no relevant document
    result = evaluator.evaluate(QRELS, {"run": RUN}, ["recall@100-l2", "mrr@10-l2"])["run"]
    assert result == pytest.approx({"recall@100-l2": 1 / 4, "mrr@10-l2": (1 / 2) / 4})


def test_grade_zero_is_not_relevant(evaluator):
    only_nonrelevant = {"q1": {"d2": 0}}
    assert evaluator.evaluate(only_nonrelevant, {"r": {"q1": {"d2": 1.0}}}, ["ndcg@10", "map"])["r"] == {
        "ndcg@10": 0.0,
        "map": 0.0,
    }


def test_empty_run_scores_zero(evaluator):
    assert evaluator.evaluate(QRELS, {"empty": {}}, ["ndcg@10", "recall@100"]) == {
        "empty": {"ndcg@10": 0.0, "recall@100": 0.0}
    }


@pytest.mark.parametrize(
    "name, canonical",
    [
        ("nDCG@10", "ndcg@10"),
        ("MRR@10", "mrr@10"),
        ("R@100", "recall@100"),
        ("MAP", "map"),
        ("map@100", "map@100"),
        ("P@10", "precision@10"),
        ("ndcg_cut_10", "ndcg@10"),
        ("ndcg_cut.10", "ndcg@10"),
        ("recip_rank", "mrr"),
        ("recall.1000", "recall@1000"),
        ("P_5", "precision@5"),
        ("Rprec", "r-precision"),
        ("success_10", "hit_rate@10"),
        ("ndcg@10-l2", "ndcg@10-l2"),
        ("rbp.95", "rbp.95"),
        ("f1@10", "f1@10"),
    ],
)
def test_metric_spellings(name, canonical):
    assert parse_metric(name).name == canonical


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("ndgc@10", "did you mean 'ndcg@10'?"),
        ("recal@100", "did you mean 'recall@100'?"),
        ("r-precision@10", "takes no cutoff"),
        ("ndcg@0", "positive integer"),
        ("rbp", "persistence"),
        ("bpref", "NaN on qrels without any"),
        ("accuracy", "valid forms: ndcg@K, mrr@K, recall@K"),
    ],
)
def test_invalid_metric_names(name, fragment):
    with pytest.raises(MetricNameError) as info:
        parse_metric(name)
    assert fragment in str(info.value)


def test_options_validate_and_canonicalise():
    assert RanxEvaluator.Options().metrics == list(DEFAULT_METRICS)
    assert RanxEvaluator.Options(metrics=["nDCG@10", "MAP", "ndcg@10"]).metrics == ["ndcg@10", "map"]
    assert RanxEvaluator.Options(metrics="ndcg@10,R@100").metrics == ["ndcg@10", "recall@100"]
    with pytest.raises(ValidationError, match="did you mean 'ndcg@10'"):
        RanxEvaluator.Options(metrics=["ndgc@10"])
    with pytest.raises(ValidationError):
        RanxEvaluator.Options(stat_test="wilcoxon")
    assert canonical_metrics(["ndcg@10", "mrr@10"]) == ["ndcg@10", "mrr@10"]


@pytest.mark.parametrize("value", [5, None, {"ndcg": 10}])
def test_metrics_that_are_not_names_are_a_validation_error_of_the_key(value):
    """A number or a table where names belong: pydantic's one-line error on ``metrics``, not a ``TypeError``."""
    from inparsx.estimate.options import EstimateStageOptions

    for options in (RanxEvaluator.Options, EstimateStageOptions):
        with pytest.raises(ValidationError, match=r"metrics\n  Input should be a valid list"):
            options(metrics=value)


def test_bad_metric_fails_before_computing(evaluator):
    with pytest.raises(MetricNameError):
        evaluator.evaluate({}, {"run": RUN}, ["ndcg@10", "nope@3"])  # empty qrels would fail later


def test_significance_against_baseline():
    rng = np.random.default_rng(0)
    base = rng.uniform(0, 0.5, 200)
    scores = {
        "base": {"ndcg@10": base},
        "better": {"ndcg@10": base + 0.1 + rng.normal(0, 0.02, 200)},
        "same": {"ndcg@10": base.copy()},
        "mixed": {"ndcg@10": base + np.tile([0.1, -0.1], 100)},
    }
    result = RanxEvaluator(RanxEvaluator.Options(max_p=0.05)).significance(scores, "base")
    assert set(result) == {"better", "same", "mixed"}
    assert result["better"]["ndcg@10"]["significant"] and result["better"]["ndcg@10"]["p_value"] < 1e-10
    assert result["same"]["ndcg@10"] == {"p_value": 1.0, "significant": False}  # identical: undefined t, p = 1
    assert result["mixed"]["ndcg@10"]["p_value"] == pytest.approx(1.0)  # gains and losses cancel out
    tukey = RanxEvaluator(RanxEvaluator.Options(stat_test="tukey")).significance(scores, "base")
    assert tukey["better"]["ndcg@10"]["significant"] and not tukey["same"]["ndcg@10"]["significant"]


def test_plugin_import_is_light():
    code = (
        "import sys, typer\n"
        "from inparsx.evaluate import plugins\n"
        "from inparsx.plugins import Registry, get_plugin_manager\n"
        "pm = get_plugin_manager(load_entrypoints=False); pm.register(plugins)\n"
        "assert Registry(pm).names('evaluators') == ['ranx']\n"
        "app = typer.Typer(); plugins.register_commands(app)\n"
        "heavy = [m for m in ('ranx', 'numba', 'scipy', 'pandas', 'numpy') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def tied_run(scifact_dir) -> tuple[dict, dict]:
    """Real SciFact test qrels and a run with heavy score ties: each query's judged documents plus 200 random
    real documents, scored with one of 11 values (0.0, 0.1, ..., 1.0)."""
    import json
    import random

    from inparsx.io import read_qrels

    qrels = read_qrels(scifact_dir / "qrels" / "test.tsv")
    with open(scifact_dir / "corpus.jsonl") as handle:
        doc_ids = [json.loads(line)["_id"] for line in handle]
    rng = random.Random(2024)
    run = {}
    for qid in sorted(qrels):
        ranking = list(dict.fromkeys(list(qrels[qid]) + rng.sample(doc_ids, 200)))
        run[qid] = {docid: rng.randint(0, 10) / 10 for docid in ranking}
    return qrels, run


def test_agrees_with_trec_eval_on_ties(scifact_dir, evaluator):
    """Reference values: pytrec_eval-terrier 0.5.11 (trec_eval 9) on this run written as a TREC file, averaged
    over the 300 test queries (measured once, outside the test suite: pytrec_eval is not a dependency).
    Breaking ties by ascending docid instead gives nDCG@10 0.0262 and MAP 0.0331."""
    qrels, run = tied_run(scifact_dir)
    result = evaluator.evaluate(qrels, {"ties": run}, ["ndcg@10", "mrr", "recall@100", "map", "precision@10"])
    assert result["ties"] == pytest.approx(
        {
            "ndcg@10": 0.014866538284837572,  # ndcg_cut_10
            "mrr": 0.024697795304558734,  # recip_rank
            "recall@100": 0.4821666666666666,  # recall_100
            "map": 0.02291846605066782,  # map
            "precision@10": 0.004333333333333334,  # P_10
        },
        rel=1e-9,
    )


def test_an_evaluator_with_means_only_needs_no_optional_method():
    from inparsx.evaluate.base import Evaluator
    from inparsx.evaluate.evaluation import evaluate_runs

    class MeansOnly(Evaluator):
        name = "means-only"

        def evaluate(self, qrels, runs, metrics):
            return {run: {metric: 0.5 for metric in metrics} for run in runs}

    result = evaluate_runs(MeansOnly(), {"q1": {"d1": 1}}, {"a": {"q1": {"d1": 1.0}}, "b": {"q1": {"d2": 1.0}}})
    assert result.means["b"]["ndcg@10"] == 0.5
    assert (result.per_query, result.significance, result.test_description) == ({}, {}, "")
