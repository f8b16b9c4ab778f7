"""The evaluate stage on a run directory built by hand: metrics.json, comparison.json, excluded query ids."""

from __future__ import annotations

import json
from math import log2
from pathlib import Path

import pytest

from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import DataError, InparsxError
from inparsx.evaluate.ranx_evaluator import RanxEvaluator
from inparsx.evaluate.stage import run_stage
from inparsx.io import write_trec_qrels, write_trec_run
from inparsx.pipeline import StageContext
from inparsx.recipe import DatasetConfig, Recipe, RecipeInfo

QRELS = {"q1": {"d1": 2, "d2": 0, "d3": 1, "d4": 1}, "q2": {"d5": 1}, "q3": {"d6": 1}, "q4": {"d7": 0}}
RETRIEVE = {"q1": {"d2": 0.9, "d1": 0.8, "d9": 0.7, "d3": 0.6}, "q2": {"d5": 0.5, "d8": 0.4}, "q5": {"d1": 1.0}}
RERANK = {"q1": {"d1": 3.0, "d3": 2.0, "d4": 1.0, "d2": 0.5}, "q2": {"d8": 0.9, "d5": 0.1}}
WORSE = {"q1": {"d9": 3.0, "d2": 2.0}, "q2": {"d8": 0.9}}


@pytest.fixture()
def dataset(tmp_path: Path) -> BeirFolderDataset:
    """A BEIR folder with 9 documents, 4 judged test queries (graded, with grade-0 rows)."""
    root = tmp_path / "tiny"
    (root / "qrels").mkdir(parents=True)
    (root / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": f"d{i}", "title": "", "text": f"doc {i}"}) + "\n" for i in range(1, 10))
    )
    (root / "queries.jsonl").write_text("".join(json.dumps({"_id": q, "text": f"query {q}"}) + "\n" for q in QRELS))
    rows = "".join(f"{q}\t{d}\t{r}\n" for q, docs in QRELS.items() for d, r in docs.items())
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\r\n" + rows.replace("\n", "\r\n"))
    return BeirFolderDataset(root)


def make_ctx(run_dir: Path, dataset: BeirFolderDataset, **options) -> StageContext:
    recipe = Recipe(RecipeInfo(name="tiny"), DatasetConfig(name=str(dataset.root), eval_split="test"), {})
    evaluator = RanxEvaluator(RanxEvaluator.Options(metrics=["ndcg@10", "mrr@10", "map"], **options))
    return StageContext(recipe, "evaluate", run_dir, [evaluator], "fp", dataset)


def build_run_dir(run_dir: Path) -> None:
    write_trec_run(run_dir / "retrieve" / "run.trec", RETRIEVE)
    write_trec_run(run_dir / "rerank" / "run.trec", RERANK)
    write_trec_run(run_dir / "rerank" / "runs" / "worse.trec", WORSE)
    (run_dir / "generate").mkdir(parents=True)
    (run_dir / "generate" / "excluded_qids.txt").write_text("q2\nq99\n")  # q99 is not a test query


def test_stage_writes_metrics_and_drops_excluded_qids(tmp_path, dataset, capsys):
    build_run_dir(tmp_path)
    run_stage(make_ctx(tmp_path, dataset))
    metrics = json.loads((tmp_path / "evaluate" / "metrics.json").read_text())
    assert list(metrics) == ["retrieve", "rerank", "worse"]  # pipeline order; the first is the baseline
    # judged queries left: q1, q3 (missing from every run: 0), q4 (only grade 0: 0)
    ndcg_q1 = (2 / log2(3) + 1 / log2(5)) / (2 + 1 / log2(3) + 1 / 2)
    assert metrics["retrieve"] == pytest.approx({"ndcg@10": ndcg_q1 / 3, "mrr@10": 0.5 / 3, "map": (1 / 3) / 3})
    assert metrics["rerank"] == pytest.approx({"ndcg@10": 1 / 3, "mrr@10": 1 / 3, "map": 1 / 3})
    assert metrics["worse"] == {"ndcg@10": 0.0, "mrr@10": 0.0, "map": 0.0}
    per_query = json.loads((tmp_path / "evaluate" / "per_query.json").read_text())
    assert list(per_query["retrieve"]["ndcg@10"]) == ["q1", "q3", "q4"]
    captured = capsys.readouterr()
    assert "excluded 1 of 4 judged queries" in captured.err
    assert "retrieve (baseline)" in captured.out and "nDCG@10" in captured.out and "MAP" in captured.out


def test_stage_comparison_json(tmp_path, dataset):
    build_run_dir(tmp_path)
    run_stage(make_ctx(tmp_path, dataset, stat_test="student", max_p=0.05))
    comparison = json.loads((tmp_path / "evaluate" / "comparison.json").read_text())
    assert comparison["baseline"] == "retrieve" and comparison["queries"] == 3
    assert set(comparison["runs"]) == {"rerank", "worse"}
    entry = comparison["runs"]["rerank"]["ndcg@10"]
    assert entry["value"] == pytest.approx(1 / 3) and entry["delta"] == pytest.approx(
        entry["value"] - entry["baseline"]
    )
    assert (entry["wins"], entry["ties"], entry["losses"]) == (1, 2, 0)
    assert 0.0 <= entry["p_value"] <= 1.0 and entry["significant"] == (entry["p_value"] <= 0.05)


def test_stage_tests_the_pairs_that_stages_declare(tmp_path, dataset, capsys):
    """``rerank/runs.json`` describes runs and asks for pairs (trained vs zero-shot): verdicts in the legend,
    table.txt and comparison.json; a pair naming a run that does not exist is skipped."""
    build_run_dir(tmp_path)
    notes = {
        "runs": {"rerank": "the trained model", "worse": "the zero-shot model"},
        "pairs": [
            {"run": "rerank", "against": "worse", "question": "did the trained model beat it?"},
            {"run": "worse", "against": "rerank", "question": "and the other way round?"},
            {"run": "rerank", "against": "absent", "question": "skipped?"},
        ],
    }
    (tmp_path / "rerank" / "runs.json").write_text(json.dumps(notes))
    run_stage(make_ctx(tmp_path, dataset))
    comparison = json.loads((tmp_path / "evaluate" / "comparison.json").read_text())
    first, second = comparison["pairs"]
    assert (first["run"], first["against"], second["run"]) == ("rerank", "worse", "worse")
    entry = first["metrics"]["ndcg@10"]
    assert entry["value"] == pytest.approx(1 / 3) and entry["against"] == 0.0 and entry["delta"] == pytest.approx(1 / 3)
    assert first["verdict"] == ("yes" if entry["significant"] else "not significantly") and second["verdict"] == "no"
    # 3 queries, one win: a paired t-test cannot call that significant
    assert entry["p_value"] > 0.05 and first["verdict"] == "not significantly"
    table = (tmp_path / "evaluate" / "table.txt").read_text()
    assert "rerank: the trained model" in table and "worse: the zero-shot model" in table
    assert (
        "did the trained model beat it? not significantly: rerank 0.3333 vs worse 0.0000 nDCG@10 (+0.3333, p=" in table
    )
    assert "and the other way round? no: worse 0.0000 vs rerank 0.3333" in table and "skipped?" not in table
    assert "did the trained model beat it?" in capsys.readouterr().out


def test_stage_single_run_writes_no_comparison(tmp_path, dataset):
    write_trec_run(tmp_path / "retrieve" / "run.trec", RETRIEVE)
    run_stage(make_ctx(tmp_path, dataset))
    assert json.loads((tmp_path / "evaluate" / "metrics.json").read_text())["retrieve"]["mrr@10"] == pytest.approx(
        (0.5 + 1.0) / 4
    )  # nothing excluded: q2's d5 is at rank 1
    assert not (tmp_path / "evaluate" / "comparison.json").exists()


def test_stage_baseline_option(tmp_path, dataset):
    build_run_dir(tmp_path)
    run_stage(make_ctx(tmp_path, dataset, baseline="rerank"))
    comparison = json.loads((tmp_path / "evaluate" / "comparison.json").read_text())
    assert comparison["baseline"] == "rerank" and set(comparison["runs"]) == {"retrieve", "worse"}
    with pytest.raises(InparsxError, match="baseline run 'bm25' is not among the runs: retrieve, rerank, worse"):
        run_stage(make_ctx(tmp_path, dataset, baseline="bm25"))


def test_stage_errors(tmp_path, dataset):
    with pytest.raises(InparsxError, match="no run in"):
        run_stage(make_ctx(tmp_path, dataset))
    (tmp_path / "retrieve").mkdir()
    (tmp_path / "retrieve" / "run.trec").write_text("q1 Q0 d1 1 2.0 x\nq1 Q0 d2 2 1.0 x\nq1 Q0 d3 3 oops x\n")
    with pytest.raises(DataError, match=r"retrieve/run.trec:3: score 'oops' is not a number"):
        run_stage(make_ctx(tmp_path, dataset))


def test_trec_qrels_file_roundtrip(tmp_path, dataset):
    """The same qrels written as a TREC file give the same numbers (what inparsx eval reads)."""
    write_trec_qrels(tmp_path / "qrels.txt", QRELS)
    from inparsx.io import read_qrels

    evaluator = RanxEvaluator()
    assert evaluator.evaluate(read_qrels(tmp_path / "qrels.txt"), {"r": RETRIEVE}, ["map"]) == evaluator.evaluate(
        dataset.qrels("test"), {"r": RETRIEVE}, ["map"]
    )


def test_recipe_validates_metric_names(tmp_path):
    """A misspelt metric in a recipe is reported with file, line and key when the recipe loads."""
    import inparsx.datasets.beir
    from inparsx.evaluate import plugins
    from inparsx.plugins import Registry, get_plugin_manager
    from inparsx.recipe import RecipeErrors, load_recipe

    pm = get_plugin_manager(load_entrypoints=False)
    pm.register(inparsx.datasets.beir)
    pm.register(plugins)
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[recipe]\nname = "t"\n[dataset]\nname = "beir:scifact"\n[evaluate]\nmetrics = ["nDCG@10", "ndgc@20"]\n'
    )
    with pytest.raises(RecipeErrors, match=r"r.toml:6: evaluate.metrics: .*did you mean 'ndcg@20'"):
        load_recipe(recipe, registry=Registry(pm))
    loaded = load_recipe(recipe, ["evaluate.metrics=R@100,MAP"], registry=Registry(pm))
    assert loaded.filled()["evaluate"]["metrics"] == ["recall@100", "map"]
