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
from inparsx.plugins import Component, Options, get_registry
from inparsx.recipe import validate_recipe
from inparsx.retrieve.base import Retriever
from inparsx.testing.fakes import ChecksumReranker
from inparsx.testing.plugins import plugin_module, registered
from inparsx.tune.base import Tuner


def write_triples(dataset: BeirFolderDataset, path: Path, n: int, seed: int) -> None:
    """``n`` triples of real text: a train query, a judged document, one other document (drawn with ``seed``)."""
    docs = {docid: doc.full_text for docid, doc in dataset.docs().items()}
    queries, qrels = dataset.queries("train"), dataset.qrels("train")
    rng, ids, rows = random.Random(seed), sorted(docs), []
    for qid in sorted(qrels)[:n]:
        pos = next(d for d in qrels[qid] if d in docs)
        neg = rng.choice([d for d in ids if d != pos])
        rows.append(
            {
                "query_id": qid,
                "query": queries[qid].text,
                "pos_id": pos,
                "pos_text": docs[pos],
                "neg_ids": [neg],
                "neg_texts": [docs[neg]],
            }
        )
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
    write_trec_run(
        run_dir / "retrieve" / "run.trec",
        {
            qid: {docids[(i * 7 + j) % len(docids)]: 10.0 - j for j in range(4)}
            for i, qid in enumerate(dataset.queries("test"))
        },
    )
    write_triples(dataset, run_dir / "triples" / "triples.jsonl", 8, seed=0)
    data = {
        "recipe": {"name": "t"},
        "dataset": {"name": str(scifact_small)},
        "train": {
            "use": "cross-encoder",
            "base_model": str(tiny_bert(tmp_path / "bert")),
            "max_steps": 2,
            "batch_size": 4,
            "max_length": 48,
            "learning_rate": 5e-3,
            "save_steps": 0,
            "precision": "fp32",
        },
        "rerank": {"use": "cross-encoder", "model": "@train", "depth": 3, "dtype": "fp32", "max_length": 48},
    }
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
    write_trec_run(
        tmp_path / "retrieve" / "run.trec",
        {
            qid: {docids[(i * 5 + j) % len(docids)]: 5.0 - j for j in range(3)}
            for i, qid in enumerate(dataset.queries("test"))
        },
    )
    with registered(plugin_module("checksum-plugin", rerankers=[ChecksumReranker])) as registry:
        data = {
            "recipe": {"name": "t"},
            "dataset": {"name": str(scifact_small)},
            "rerank": {"use": "checksum", "model": "m", "depth": 3},
        }
        recipe = validate_recipe(data, "t.toml", "", registry)
        _, options = recipe.stages["rerank"].components[0]

        def rerank(key: str) -> int:
            ChecksumReranker.reset()
            run_stage(
                StageContext(recipe, "rerank", tmp_path, [ChecksumReranker(options)], "fp", dataset, cache_key=key)
            )
            return ChecksumReranker.scored

        pairs = rerank("a")
        assert pairs == 3 * len(dataset.queries("test"))
        assert rerank("a") == 0  # resumed: the same key, settings and weights
        assert rerank("b") == pairs  # another key: scored again
    ChecksumReranker.reset()


def done_markers(run_dir: Path) -> dict[str, dict]:
    """Every stage's done marker by stage name."""
    return {
        path.parent.name: json.loads(path.read_text()) for path in sorted(run_dir.glob(f"*/{pipeline.DONE_MARKER}"))
    }


def test_a_hand_edited_input_reruns_what_reads_it_and_only_what_its_content_changes(scifact_small, tmp_path):
    """``generate/queries.jsonl`` edited after a run: the filter stage, which reads it, runs again; the triples
    stage runs again only when the kept queries changed; retrieve and generate, whose inputs are the same, are
    skipped."""
    data = {
        "recipe": {"name": "t"},
        "dataset": {"name": str(scifact_small)},
        "retrieve": {"use": "bm25", "k": 10},
        "generate": {"use": "ict", "num_docs": 12},
        "filter": {"use": ["length"], "min_tokens": 3},
        "triples": {"use": "bm25-negatives", "depth": 10, "n_negatives": 1},
    }
    recipe = validate_recipe(data, "t.toml", "", get_registry())
    run_dir = run_recipe(recipe, tmp_path / "run")
    first = done_markers(run_dir)
    queries = run_dir / "generate" / "queries.jsonl"
    records = [obj for _, obj in read_jsonl(queries)]

    dropped = {**records[0], "query_id": "hand-short", "query": "too short"}  # fewer than 3 words: dropped
    queries.write_text(queries.read_text() + json.dumps(dropped) + "\n")
    run_recipe(recipe, run_dir)
    second = done_markers(run_dir)
    assert second["retrieve"] == first["retrieve"] and second["generate"] == first["generate"]
    assert second["filter"]["key"] != first["filter"]["key"]  # re-run: its input changed
    assert second["triples"] == first["triples"]  # the kept queries are the same bytes: not re-run

    kept = {**records[0], "query_id": "hand-kept", "query": "a query written by hand about cells"}
    queries.write_text(queries.read_text() + json.dumps(kept) + "\n")
    run_recipe(recipe, run_dir)
    third = done_markers(run_dir)
    assert third["filter"]["key"] != second["filter"]["key"] and third["triples"]["key"] != second["triples"]["key"]
    assert "hand-kept" in (run_dir / "triples" / "triples.jsonl").read_text()
    assert third["retrieve"] == first["retrieve"] and third["generate"] == first["generate"]

    run_recipe(recipe, run_dir)  # nothing changed since: every stage skipped
    assert done_markers(run_dir) == third


def test_the_keys_cover_what_each_stage_reads(scifact_small):
    """The declared reads, resolved against a recipe: generate reads nothing of retrieve, triples the filter's kept
    queries when there is a filter, rerank the runs before it and the model its ``@train`` names, and the
    estimate the rerank stage's options."""
    from inparsx.cachekey import stage_inputs
    from inparsx.recipe import STAGES

    data = {
        "recipe": {"name": "t"},
        "dataset": {"name": str(scifact_small)},
        "retrieve": {"use": "bm25"},
        "generate": {"use": "ict"},
        "filter": {"use": ["length"]},
        "triples": {"use": "bm25-negatives"},
        "train": {"use": "cross-encoder"},
        "rerank": {"use": "cross-encoder", "model": "@train"},
        "estimate": {"docs": 5},
    }
    recipe = validate_recipe(data, "t.toml", "", get_registry())
    assert stage_inputs(recipe, "retrieve", STAGES) == stage_inputs(recipe, "generate", STAGES) == []
    assert stage_inputs(recipe, "triples", STAGES) == [("filter", "queries.jsonl")]
    assert stage_inputs(recipe, "train", STAGES) == [("triples", "triples.jsonl")]
    assert set(stage_inputs(recipe, "rerank", STAGES)) == {
        (s, "run.trec") for s in ("retrieve", "generate", "filter", "triples", "train")
    } | {("train", "model")}
    assert ("train", "model") in stage_inputs(recipe, "estimate", STAGES)  # through [rerank] model = "@train"


class Echo(Component):
    name = "echo"

    class Options(Options):
        value: int = 1


def test_a_retrieve_option_does_not_rerun_tune(tmp_path, scifact_small, monkeypatch):
    """Stages chain no fingerprints: a ``[retrieve]`` change re-runs retrieve (and what reads its run), not
    ``tune``, which reads nothing of it."""
    import sys
    import types

    calls: list[str] = []

    def runner(stage):
        def run_stage(ctx):
            calls.append(stage)
            (ctx.dir / "out.txt").write_text(str(ctx.component.options.value))

        return run_stage

    module = types.ModuleType("key_fake_runners")
    for stage in ("retrieve", "tune"):
        setattr(module, stage, runner(stage))
        monkeypatch.setitem(pipeline.STAGE_RUNNERS, stage, f"key_fake_runners:{stage}")
    monkeypatch.setitem(sys.modules, "key_fake_runners", module)
    kinds = {base: type(f"Echo{base.__name__}", (Echo, base), {"Options": Echo.Options}) for base in (Retriever, Tuner)}
    with registered(plugin_module("echo", retrievers=[kinds[Retriever]], tuners=[kinds[Tuner]])) as registry:

        def run(value: int) -> None:
            data = {
                "recipe": {"name": "t"},
                "dataset": {"name": str(scifact_small)},
                "retrieve": {"use": "echo", "value": value},
                "tune": {"use": "echo"},
            }
            run_recipe(validate_recipe(data, "t.toml", "", registry), tmp_path / "run")

        run(1)
        run(2)
        assert calls == ["retrieve", "tune", "retrieve"]


def test_an_unchanged_file_is_not_hashed_again(tmp_path):
    """The hash of a file is cached by (path, size, mtime_ns): an entry that matches is trusted (a 400 MB model
    is not read on every run); one whose size or mtime differs is hashed again."""
    import hashlib
    import os

    from inparsx.cachekey import content_fingerprint

    model = tmp_path / "train" / "model"
    model.mkdir(parents=True)
    (model / "weights.bin").write_bytes(b"\0" * 1000)
    hashes: dict = {}
    real = content_fingerprint(model, tmp_path, {}, hashes)
    assert hashes["train/model/weights.bin"][2] == hashlib.sha256(b"\0" * 1000).hexdigest()
    trusted = {name: [*entry[:2], "0" * 64] for name, entry in hashes.items()}
    assert content_fingerprint(model, tmp_path, trusted, {}) != real  # the cached hash was used, not the bytes
    stat = (model / "weights.bin").stat()
    os.utime(model / "weights.bin", ns=(stat.st_atime_ns, stat.st_mtime_ns + 1))
    assert content_fingerprint(model, tmp_path, trusted, {}) == real  # touched: hashed again
    assert content_fingerprint(tmp_path / "nothing", tmp_path, {}, {}) == "absent"
