"""``[dataset] eval_queries``: evaluate on a seeded sample of the evaluated split's queries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inparsx.datasets.base import SampledSplit
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.io import read_trec_run
from inparsx.pipeline import run_recipe, stage_fingerprint
from inparsx.plugins import get_registry
from inparsx.recipe import RecipeErrors, validate_recipe


@pytest.fixture(scope="module")
def small(scifact_small: Path) -> BeirFolderDataset:
    return BeirFolderDataset(scifact_small, name="scifact-small")


def test_the_sample_is_seeded_nested_and_leaves_other_splits_alone(small):
    ten = SampledSplit(small, "test", 10, seed=1)
    assert len(ten.queries("test")) == len(ten.qrels("test")) == 10 and ten.total == len(small.queries("test"))
    assert set(ten.qrels("test")) == set(ten.qids) and all(
        ten.qrels("test")[q] == small.qrels("test")[q] for q in ten.qids
    )
    assert SampledSplit(small, "test", 10, seed=1).qids == ten.qids
    assert SampledSplit(small, "test", 10, seed=2).qids != ten.qids
    assert SampledSplit(small, "test", 20, seed=1).qids[:10] == ten.qids
    assert ten.queries("train") == small.queries("train") and ten.fingerprint() == small.fingerprint()
    everything = SampledSplit(small, "test", 1000, seed=1)
    assert set(everything.qids) == set(small.queries("test"))


def recipe(folder: Path, **dataset):
    data = {
        "recipe": {"name": "sample"},
        "dataset": {"name": str(folder), **dataset},
        "retrieve": {"use": "bm25s", "k": 10},
        "evaluate": {"use": "ranx", "metrics": ["ndcg@10"]},
    }
    return validate_recipe(data, "t.toml", "", get_registry())


def test_a_run_retrieves_and_evaluates_only_the_sample(scifact_small, tmp_path, capsys):
    run_dir = run_recipe(recipe(scifact_small, eval_queries=7, eval_queries_seed=3), tmp_path / "run")
    expected = SampledSplit(BeirFolderDataset(scifact_small), "test", 7, seed=3).qids
    assert set(read_trec_run(run_dir / "retrieve" / "run.trec")) == set(expected)
    per_query = json.loads((run_dir / "evaluate" / "per_query.json").read_text())
    assert set(per_query["retrieve"]["ndcg@10"]) == set(expected)
    assert "a sample of 7 queries (eval_queries seed 3)" in (run_dir / "evaluate" / "table.txt").read_text()
    assert "evaluating 7 of 30 queries of split 'test'" in capsys.readouterr().err


def test_the_sample_is_part_of_every_fingerprint_and_absent_without_one(scifact_small):
    full, seven, other_seed = (
        recipe(scifact_small),
        recipe(scifact_small, eval_queries=7),
        recipe(scifact_small, eval_queries=7, eval_queries_seed=2),
    )
    prints = {stage_fingerprint(r, "retrieve", "", "fp") for r in (full, seven, other_seed)}
    assert len(prints) == 3
    data = {
        "recipe": {"name": "sample"},
        "dataset": {"name": str(scifact_small)},
        "retrieve": {"use": "bm25s", "k": 10},
        "evaluate": {"use": "ranx", "metrics": ["ndcg@10"]},
    }
    assert "eval_queries" not in full.filled()["dataset"]
    # recipes without a sample keep the fingerprints they had: name, split and corpus only
    import hashlib

    payload = json.dumps(
        {
            "stage": "retrieve",
            "options": full.filled().get("retrieve"),
            "seed": 1,
            "dataset": [str(scifact_small), "test", "fp"],
            "previous": "",
        },
        sort_keys=True,
    )
    assert stage_fingerprint(full, "retrieve", "", "fp") == hashlib.sha256(payload.encode()).hexdigest()[:16]
    assert validate_recipe(data, "t.toml", "", get_registry()).filled() == full.filled()


def test_a_seed_without_a_sample_is_refused(scifact_small):
    with pytest.raises(RecipeErrors, match=r"dataset\.eval_queries_seed: .*eval_queries, which is not set"):
        recipe(scifact_small, eval_queries_seed=2)
    with pytest.raises(RecipeErrors, match=r"dataset\.eval_queries: .*greater than or equal to 1"):
        recipe(scifact_small, eval_queries=0)
