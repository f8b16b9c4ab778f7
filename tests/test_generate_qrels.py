"""The ``qrels`` generator: gold training pairs as generator records, drawn with the seed, never from the
evaluated split; and hard negatives that are never judged relevant to the gold query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from inparsx.context import ComponentContext
from inparsx.datasets.base import SplitHiddenError
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import InparsxError, RecipeError
from inparsx.generate.qrels import QrelsGenerator
from inparsx.generate.stage import generate_queries
from inparsx.pipeline import run_recipe
from inparsx.plugins import get_registry
from inparsx.recipe import RecipeErrors, validate_recipe
from inparsx.testing import tiny_beir


def records(dataset, tmp_path: Path, seed: int = 1, eval_split: str = "test", **options) -> list:
    generator = QrelsGenerator(QrelsGenerator.Options(**options))
    ctx = ComponentContext(dataset, tmp_path, seed=seed, eval_split=eval_split)
    return [r for batch in generator.generate(generator.select_documents(ctx), ctx) for r in batch]


@pytest.fixture(scope="module")
def small(scifact_small: Path) -> BeirFolderDataset:
    return BeirFolderDataset(scifact_small, name="scifact-small")


def test_one_record_per_query_and_relevant_document_of_the_split(small, tmp_path):
    found = records(small, tmp_path)
    qrels, queries = small.qrels("train"), small.queries("train")
    assert len(found) == sum(len(docs) for docs in qrels.values())
    for record in found:
        qid = record.extra["qid"]
        assert record.query == queries[qid].text and record.doc_id in qrels[qid]
        assert record.generator == "qrels" and record.query_id == f"{qid}-{record.doc_id}"
        assert record.extra["split"] == "train" and record.extra["relevance"] == qrels[qid][record.doc_id]
        assert record.extra["judged_relevant"] == sorted(qrels[qid])
    assert {r.extra["qid"] for r in found} == set(qrels)
    assert not {r.extra["qid"] for r in found} & set(small.qrels("test"))


def test_num_queries_are_drawn_with_the_seed_and_nested(small, tmp_path):
    def qids(n, seed):
        return list(dict.fromkeys(r.extra["qid"] for r in records(small, tmp_path, seed, num_queries=n)))

    ten = qids(10, 1)
    assert len(ten) == 10 and qids(10, 1) == ten
    assert qids(10, 2) != ten
    assert set(ten) < set(qids(20, 1))  # a larger draw with the same seed holds the smaller one


def test_the_evaluated_split_is_refused_when_the_recipe_loads():
    data = {
        "recipe": {"name": "t"},
        "dataset": {"name": "beir:scifact", "eval_split": "train"},
        "generate": {"use": "qrels", "num_queries": 10},
    }
    with pytest.raises(RecipeErrors, match=r"generate\.split: .*'train' is the evaluated split"):
        validate_recipe(data, "t.toml", "", get_registry())
    data["dataset"]["eval_split"] = "test"
    assert validate_recipe(data, "t.toml", "", get_registry()).stages["generate"].use == ["qrels"]


def test_the_evaluated_split_is_refused_at_run_time_through_the_tuner_view(small, tmp_path):
    with pytest.raises(SplitHiddenError, match="'test' is the evaluated split"):
        records(small, tmp_path, eval_split="test", split="test")


def test_num_docs_is_refused_and_the_filled_recipe_reloads(tmp_path):
    with pytest.raises(ValidationError, match="num_queries"):
        QrelsGenerator.Options(num_docs=100)
    data = {"recipe": {"name": "t"}, "dataset": {"name": "beir:scifact"}, "generate": {"use": "qrels"}}
    recipe = validate_recipe(data, "t.toml", "", get_registry())
    assert "num_docs" not in recipe.filled()["generate"]
    import tomli

    assert validate_recipe(tomli.loads(recipe.to_toml()), "again", "", get_registry()).filled() == recipe.filled()


def test_min_relevance_keeps_graded_positives_and_lists_every_judged_document(tmp_path):
    folder = tiny_beir(tmp_path / "tiny")
    rows = "query-id\tcorpus-id\tscore\nq1\td01\t2\nq1\td02\t1\nq1\td03\t0\nq2\td02\t1\nq2\tnot-in-corpus\t2\n"
    (folder / "qrels" / "train.tsv").write_text(rows)
    dataset = BeirFolderDataset(folder)
    assert sorted((r.extra["qid"], r.doc_id) for r in records(dataset, tmp_path)) == [
        ("q1", "d01"),
        ("q1", "d02"),
        ("q2", "d02"),
    ]
    graded = records(dataset, tmp_path, min_relevance=2)
    assert [(r.extra["qid"], r.doc_id) for r in graded] == [("q1", "d01")]
    assert graded[0].extra["judged_relevant"] == ["d01", "d02"]  # grade 1: no positive, never a negative
    with pytest.raises(InparsxError, match="no query with a document judged relevant"):
        records(dataset, tmp_path, min_relevance=3)


def test_the_stage_writes_them_and_no_negative_is_judged_relevant(scifact_small, tmp_path):
    data = {
        "recipe": {"name": "gold", "seed": 3},
        "dataset": {"name": str(scifact_small)},
        "generate": {"use": "qrels", "num_queries": 12},
        "triples": {"use": "bm25-negatives", "retriever": "bm25s", "depth": 40, "n_negatives": 3},
    }
    run_dir = run_recipe(validate_recipe(data, "t.toml", "", get_registry()), tmp_path / "run")
    written = [json.loads(line) for line in (run_dir / "generate" / "queries.jsonl").read_text().splitlines()]
    assert len({r["extra"]["qid"] for r in written}) == 12 and {r["generator"] for r in written} == {"qrels"}
    qrels = BeirFolderDataset(scifact_small).qrels("train")
    triples = [json.loads(line) for line in (run_dir / "triples" / "triples.jsonl").read_text().splitlines()]
    assert len(triples) == len(written)
    for triple in triples:
        qid = triple["query_id"].rsplit("-", 1)[0]
        assert triple["pos_id"] in qrels[qid] and not set(triple["neg_ids"]) & set(qrels[qid])


def test_a_one_off_generate_can_use_it(scifact_small, tmp_path):
    from inparsx.recipe import one_stage_recipe

    recipe = one_stage_recipe("generate", "qrels", ["num_queries=3"], str(scifact_small))
    ctx = ComponentContext(BeirFolderDataset(scifact_small), tmp_path, eval_split="test")
    generator = get_registry().build("generators", "qrels", {"num_queries": 3})
    summary = generate_queries(ctx, generator, tmp_path / "queries.jsonl")
    assert summary.queries == len((tmp_path / "queries.jsonl").read_text().splitlines()) >= 3
    assert recipe.stages["generate"].components[0][1].num_queries == 3
    with pytest.raises(RecipeError, match="generate.split"):
        one_stage_recipe("generate", "qrels", ["split=test"], str(scifact_small))
