"""The label-free estimate: documents held out of training (never a positive, a negative or a sampled document),
their synthetic queries filtered with the training ones and written apart, and the estimate stage's runs,
metrics and paired tests, on a collection without labels and beside the real metrics of one with them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inparsx.datasets.beir import BeirFolderDataset
from inparsx.datasets.holdout import Holdout
from inparsx.errors import InparsxError
from inparsx.recipe import RecipeErrors, load_recipe
from inparsx.testing.cli import run_cli
from inparsx.testing.collections import corpus_only

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


def jsonl_records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_held_out_documents_are_drawn_with_the_seed_and_hidden_from_training(scifact_small):
    dataset = BeirFolderDataset(scifact_small)
    holdout = Holdout(dataset, 25, seed=1)
    assert holdout.doc_ids == Holdout(dataset, 25, seed=1).doc_ids != Holdout(dataset, 25, seed=2).doc_ids
    training = holdout.training
    assert len(holdout.doc_ids) == 25 and training.docs_count() == dataset.docs_count() - 25
    assert not set(holdout.doc_ids) & {d.doc_id for d in training.docs_iter()}
    assert not set(holdout.doc_ids) & set(training.docs()) and training.fingerprint() != dataset.fingerprint()
    judged = {d for docs in training.qrels("train").values() for d in docs}
    assert (
        judged and not judged & set(holdout.doc_ids) and set(training.queries("train")) == set(training.qrels("train"))
    )
    with pytest.raises(InparsxError, match=r"\[estimate\] docs = 500: .* has 2\d\d documents; hold out fewer"):
        _ = Holdout(dataset, 500, seed=1).doc_ids


def test_an_estimate_needs_generate_and_rerank_and_a_deep_enough_first_stage(tmp_path):
    base = load_recipe(RECIPES / "own-collection.toml").raw
    lines = (RECIPES / "own-collection.toml").read_text()
    without = tmp_path / "r.toml"
    without.write_text(lines.split("\n[rerank]\n")[0] + "\n[estimate]\ndocs = 10\n")
    with pytest.raises(RecipeErrors, match=r"estimate: needs \[rerank\], which says how to rerank them"):
        load_recipe(without)
    with pytest.raises(RecipeErrors, match=r"estimate.k: 10 but rerank.depth = 20"):
        load_recipe(RECIPES / "own-collection.toml", ["estimate.k=10"])
    assert base["estimate"]["docs"] == 200


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> str:
    from inparsx.testing import tiny_bert

    return str(tiny_bert(tmp_path_factory.mktemp("tiny-bert") / "bert"))


def tiny_sets(bert: str) -> list[str]:
    return [
        f"train.base_model={bert}",
        f"rerank.zero_shot_model={bert}",
        "train.max_steps=2",
        "train.batch_size=4",
        "train.save_steps=0",
        "train.max_length=64",
        "rerank.max_length=64",
        "rerank.depth=5",
        "triples.depth=20",
        "estimate.k=20",
        "retrieve.k=20",
    ]


def test_a_corpus_only_folder_runs_to_a_trained_model_and_the_estimate(
    scifact_small, tmp_path, tiny, monkeypatch, capsys
):
    monkeypatch.setenv("INPARSX_CACHE", str(tmp_path / "cache"))
    folder = corpus_only(scifact_small, tmp_path / "mine", 120)
    code, out, err = run_cli(
        monkeypatch,
        capsys,
        "run",
        str(RECIPES / "own-collection.toml"),
        "--run-dir",
        str(tmp_path / "run"),
        "--set",
        f"dataset.name={folder}",
        "--set",
        "estimate.docs=20",
        *[item for s in tiny_sets(tiny) for item in ("--set", s)],
    )
    run = tmp_path / "run"
    assert code == 0, err
    assert (run / "train" / "model" / "README.md").is_file() and not (run / "retrieve" / "run.trec").exists()
    text = " ".join(err.split())
    assert "retrieve: mine has no labels, so no test queries to retrieve; index ready" in text
    assert "rerank: skipped: mine has no labels" in text and "evaluate: skipped: mine has no qrels" in text
    assert not (run / "evaluate" / "metrics.json").exists() and (run / "report.html").is_file()
    assert "label-free estimate (own-collection)" in out
    metrics = json.loads((run / "estimate" / "metrics.json").read_text())
    assert set(metrics) == {"retrieve", "rerank", "rerank-alone", "zeroshot", "zeroshot-alone"}
    assert all(0.0 <= values["mrr@10"] <= 1.0 for values in metrics.values())
    summary = json.loads((run / "estimate" / "summary.json").read_text())
    assert summary["held_out"] == 20 and 0 < summary["queries"] <= 20
    assert [p["against"] for p in summary["pairs"]] == ["zeroshot", "zeroshot-alone"]
    held = {r["doc_id"] for r in jsonl_records(run / "generate" / "heldout.jsonl")}
    trained = {r["doc_id"] for r in jsonl_records(run / "generate" / "queries.jsonl")}
    triples = jsonl_records(run / "triples" / "triples.jsonl")
    seen = {t["pos_id"] for t in triples} | {d for t in triples for d in t["neg_ids"]}
    assert len(held) == summary["documents"] and trained and not held & trained and not held & seen
    kept = {r["doc_id"] for r in jsonl_records(run / "filter" / "queries.jsonl")}
    assert not kept & held and {r["doc_id"] for r in jsonl_records(run / "filter" / "heldout.jsonl")} <= held
    positives = {r["query_id"]: r["positive_text"] for r in jsonl_records(run / "filter" / "heldout.jsonl")}
    assert all(text for text in positives.values())  # ranked without the query sentence (ict)
    assert "Label-free estimate" in (run / "report.html").read_text()


def test_a_recipe_with_labels_reports_the_estimate_beside_the_real_metrics(scifact_small, tmp_path, tiny, monkeypatch):
    from inparsx.pipeline import run_recipe

    monkeypatch.setenv("INPARSX_CACHE", str(tmp_path / "cache"))
    recipe = load_recipe(
        RECIPES / "own-collection.toml",
        [f"dataset.name={scifact_small}", "estimate.docs=15", "generate.num_docs=60", *tiny_sets(tiny)],
    )
    run = run_recipe(recipe, tmp_path / "run")
    real = json.loads((run / "evaluate" / "metrics.json").read_text())
    assert set(real) == {"retrieve", "rerank", "rerank-alone", "zeroshot", "zeroshot-alone"}
    table = (run / "evaluate" / "table.txt").read_text()
    assert (
        "nDCG@10" in table and "label-free estimate (" in table and "did the trained model beat the zero-shot" in table
    )
    estimated = json.loads((run / "estimate" / "metrics.json").read_text())
    assert set(estimated) == set(real) and list(estimated["rerank"]) == ["mrr@10"]
    qids = {line.split()[0] for line in (run / "rerank" / "run.trec").read_text().splitlines()}
    assert qids <= set(BeirFolderDataset(scifact_small).queries("test"))  # test queries only, no synthetic one
    held = {r["doc_id"] for r in jsonl_records(run / "generate" / "heldout.jsonl")}
    assert held and not held & {r["doc_id"] for r in jsonl_records(run / "generate" / "queries.jsonl")}


def test_changing_the_held_out_count_reruns_generation_and_not_retrieval(scifact_small, tmp_path, monkeypatch, capsys):
    from inparsx.pipeline import run_recipe

    monkeypatch.setenv("INPARSX_CACHE", str(tmp_path / "cache"))
    folder = corpus_only(scifact_small, tmp_path / "mine", 60)
    for docs, held in ((5, 5), (8, 8)):
        recipe = load_recipe(
            RECIPES / "own-collection.toml", [f"dataset.name={folder}", "retrieve.use=bm25s", f"estimate.docs={docs}"]
        )
        run_recipe(recipe, tmp_path / "run", stop="generate")
        records = jsonl_records(tmp_path / "run" / "generate" / "heldout.jsonl")
        assert len({r["doc_id"] for r in records}) <= held and len(records) >= held - 2
    assert "retrieve: already done" in capsys.readouterr().err
