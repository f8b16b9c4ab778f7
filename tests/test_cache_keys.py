"""The cache key the runner hands each stage: a stage re-run by ``--from`` changes the keys of the stages after
it, so their component-level caches (the rerank stage's resumable scores) are never served from the previous
model; an untouched run keeps its keys, so an interrupted stage still resumes."""

from __future__ import annotations

import json
import random
from pathlib import Path

from inparsx import pipeline
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.io import read_jsonl, write_trec_run
from inparsx.pipeline import StageContext, run_recipe
from inparsx.plugins import get_registry
from inparsx.recipe import validate_recipe
from inparsx.testing.fakes import ChecksumReranker
from inparsx.testing.plugins import plugin_module, registered


def write_triples(dataset: BeirFolderDataset, path: Path, n: int, seed: int) -> None:
    """``n`` triples of real text: a train query, a judged document, one other document (drawn with ``seed``)."""
    docs = {docid: doc.full_text for docid, doc in dataset.docs().items()}
    queries, qrels = dataset.queries("train"), dataset.qrels("train")
    rng, ids, rows = random.Random(seed), sorted(docs), []
    for qid in sorted(qrels)[:n]:
        pos = next(d for d in qrels[qid] if d in docs)
        neg = rng.choice([d for d in ids if d != pos])
        rows.append({"query_id": qid, "query": queries[qid].text, "pos_id": pos, "pos_text": docs[pos],
                     "neg_ids": [neg], "neg_texts": [docs[neg]]})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))


def scores(run_dir: Path) -> tuple[dict, dict[str, dict[str, float]]]:
    """The meta line and the per-query scores of ``rerank/scores.jsonl``."""
    lines = [obj for _, obj in read_jsonl(run_dir / "rerank" / "scores.jsonl")]
    return lines[0]["meta"], {obj["qid"]: obj["scores"] for obj in lines[1:]}


def test_from_train_rescores_with_the_retrained_model(scifact_small, tmp_path):
    """The case of the review: ``--from train`` retrains ``train/model`` with the same options (the triples
    were replaced by hand), so every fingerprint is the same; the rerank stage must score with the new model,
    not reuse the scores of the old one."""
    from inparsx.testing import tiny_bert

    dataset = BeirFolderDataset(scifact_small)
    run_dir = tmp_path / "run"
    docids = sorted(dataset.docs())
    write_trec_run(run_dir / "retrieve" / "run.trec",
                   {qid: {docids[(i * 7 + j) % len(docids)]: 10.0 - j for j in range(4)}
                    for i, qid in enumerate(dataset.queries("test"))})
    write_triples(dataset, run_dir / "triples" / "triples.jsonl", 8, seed=0)
    data = {"recipe": {"name": "t"}, "dataset": {"name": str(scifact_small)},
            "train": {"use": "cross-encoder", "base_model": str(tiny_bert(tmp_path / "bert")), "max_steps": 2,
                      "batch_size": 4, "max_length": 48, "learning_rate": 5e-3, "save_steps": 0,
                      "precision": "fp32"},
            "rerank": {"use": "cross-encoder", "model": "@train", "depth": 3, "dtype": "fp32", "max_length": 48}}
    recipe = validate_recipe(data, "t.toml", "", get_registry())
    run_recipe(recipe, run_dir)
    before_meta, before = scores(run_dir)
    before_key = json.loads((run_dir / "rerank" / pipeline.DONE_MARKER).read_text())["key"]

    write_triples(dataset, run_dir / "triples" / "triples.jsonl", 8, seed=1)  # other negatives
    run_recipe(recipe, run_dir, start="train")
    after_meta, after = scores(run_dir)
    summary = json.loads((run_dir / "rerank" / "summary.json").read_text())
    marker = json.loads((run_dir / "rerank" / pipeline.DONE_MARKER).read_text())
    assert summary["rerank"]["resumed_queries"] == 0 and summary["rerank"]["pairs"] == 3 * len(before)
    assert marker["key"] != before_key and after_meta["key"] == marker["key"] != before_meta["key"]
    assert set(after) == set(before) and after != before  # the retrained model's scores

    run_recipe(recipe, run_dir)  # nothing re-run: the keys are those of the finished stages
    assert json.loads((run_dir / "rerank" / pipeline.DONE_MARKER).read_text()) == marker


def test_the_rerank_scores_are_kept_under_their_key_only(scifact_small, tmp_path):
    """Component level: the rerank stage run twice in one folder reuses its scores under the same cache key
    and rescores under another (what a stage that the runner does not clear, e.g. a one-off run, relies on)."""
    from inparsx.rerank.stage import run_stage

    dataset = BeirFolderDataset(scifact_small)
    docids = sorted(dataset.docs())
    write_trec_run(tmp_path / "retrieve" / "run.trec",
                   {qid: {docids[(i * 5 + j) % len(docids)]: 5.0 - j for j in range(3)}
                    for i, qid in enumerate(dataset.queries("test"))})
    with registered(plugin_module("checksum-plugin", rerankers=[ChecksumReranker])) as registry:
        data = {"recipe": {"name": "t"}, "dataset": {"name": str(scifact_small)},
                "rerank": {"use": "checksum", "model": "m", "depth": 3}}
        recipe = validate_recipe(data, "t.toml", "", registry)
        _, options = recipe.stages["rerank"].components[0]

        def rerank(key: str) -> int:
            ChecksumReranker.reset()
            run_stage(StageContext(recipe, "rerank", tmp_path, [ChecksumReranker(options)], "fp", dataset,
                                   cache_key=key))
            return ChecksumReranker.scored

        pairs = rerank("a")
        assert pairs == 3 * len(dataset.queries("test"))
        assert rerank("a") == 0  # resumed: the same key, settings and weights
        assert rerank("b") == pairs  # another key: scored again
    ChecksumReranker.reset()
