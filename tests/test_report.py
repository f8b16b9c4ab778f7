"""``inparsx report``: a run directory built here (the files each stage writes, the evaluate stage run for real),
every section present with its content, images embedded as PNG data, nothing fetched from anywhere, and the
sections of stages that did not run left out."""

from __future__ import annotations

import base64
import json
import random
import re
import sys
from pathlib import Path

import pytest

from inparsx.cli.main import main
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.io import write_json, write_jsonl, write_trec_run
from inparsx.pipeline import DONE_MARKER, RUN_NOTES, run_recipe
from inparsx.recipe import load_recipe
from inparsx.report import render
from inparsx.report.sections import SAMPLE_QUERIES, escape

PNG = b"\x89PNG\r\n\x1a\n"


def done(folder: Path) -> None:
    write_json(folder / DONE_MARKER, {"fingerprint": "test", "seconds": 1.0})


def build_run_dir(run_dir: Path, data: Path) -> BeirFolderDataset:
    """What the stages before evaluate leave behind, in their formats; then the real evaluate stage runs."""
    dataset = BeirFolderDataset(data)
    qrels = dataset.qrels("test")
    docs = list(dataset.docs())
    rng = random.Random(0)
    first = {q: {d: rng.random() for d in rng.sample(docs, 20) + list(rel)} for q, rel in qrels.items()}
    trained = {
        q: {d: s + (2.0 if d in qrels[q] and i % 3 else 0.0) for d, s in ranked.items()}
        for i, (q, ranked) in enumerate(first.items())
    }
    zeroshot = {
        q: {d: s + (2.0 if d in qrels[q] and i % 2 else -0.5 * (d in qrels[q])) for d, s in ranked.items()}
        for i, (q, ranked) in enumerate(first.items())
    }
    write_trec_run(run_dir / "retrieve" / "run.trec", first)
    write_json(run_dir / "retrieve" / "check.json", dataset.check().to_json())
    done(run_dir / "retrieve")
    generated = [
        {
            "query_id": f"{d}-0",
            "doc_id": d,
            "query": " ".join(["word"] * (3 + i % 9)),
            "score": -0.1 * (i % 13),
            "generator": "hf",
        }
        for i, d in enumerate(docs[:120])
    ]
    write_jsonl(run_dir / "generate" / "queries.jsonl", generated)
    done(run_dir / "generate")
    kept = [r for r in generated if len(r["query"].split()) >= 5]
    write_jsonl(run_dir / "filter" / "queries.jsonl", kept)
    write_jsonl(
        run_dir / "filter" / "decisions.jsonl",
        [
            {
                "query_id": r["query_id"],
                "doc_id": r["doc_id"],
                "kept": r in kept,
                "scores": {"length": len(r["query"].split()), "reranker": i / 10},
            }
            for i, r in enumerate(generated)
        ],
    )
    write_json(
        run_dir / "filter" / "summary.json",
        {
            "input": 120,
            "kept": len(kept),
            "filters": [
                {"filter": "length", "in": 120, "kept": len(kept), "dropped": {"fewer than 5 words": 120 - len(kept)}}
            ],
        },
    )
    done(run_dir / "filter")
    write_json(
        run_dir / "train" / "model" / "inparsx_training.json",
        {
            "trainer": "bi-encoder",
            "base_model": "tiny",
            "num_triples": len(kept),
            "metrics": {"train_runtime": 12.7},
            "loss_history": [{"step": s, "loss": 2.0 / s} for s in (10, 20, 30, 40)],
        },
    )
    done(run_dir / "train")
    write_json(
        run_dir / "tune" / "path.json",
        {
            "metric": "ndcg@10",
            "best": "Write a question.",
            "candidates": [
                {"instruction": "Write a query.", "score": 0.61, "failed": None},
                {"instruction": "Write a question.", "score": 0.67, "failed": None, "params": {"k": 3}},
            ],
        },
    )
    write_json(
        run_dir / "tune" / "query_eval.json", {"documents": 40, "judge": "reranker", "before": 0.41, "after": 0.52}
    )
    done(run_dir / "tune")
    write_trec_run(run_dir / "rerank" / "run.trec", trained)
    write_trec_run(run_dir / "rerank" / "runs" / "zeroshot.trec", zeroshot)
    write_json(
        run_dir / "rerank" / RUN_NOTES,
        {
            "runs": {"rerank": "trained model", "zeroshot": "zero-shot model"},
            "pairs": [
                {"run": "rerank", "against": "zeroshot", "question": "did the trained model beat the zero-shot one?"}
            ],
        },
    )
    done(run_dir / "rerank")
    return dataset


@pytest.fixture()
def run_dir(tmp_path: Path, scifact_small: Path) -> Path:
    run_dir = tmp_path / "run"
    build_run_dir(run_dir, scifact_small)
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        f'[recipe]\nname = "report-test"\nseed = 3\n[dataset]\nname = "{scifact_small}"\n'
        '[evaluate]\nuse = "ranx"\nmetrics = ["ndcg@10", "recall@100"]\n'
    )
    run_recipe(load_recipe(recipe), run_dir)  # the evaluate stage writes report.html
    return run_dir


def sections(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([\w-]+)">(.*?)</section>', html, flags=re.S))


def test_the_evaluate_stage_writes_a_report_with_every_section(run_dir: Path, scifact_small: Path):
    html = (run_dir / "report.html").read_text()
    found = sections(html)
    assert list(found) == [
        "metrics",
        "per-query",
        "filter",
        "queries",
        "samples",
        "training",
        "tune",
        "check",
        "recipe",
    ]
    assert 'name = "report-test"' in found["recipe"] and "k1" not in found["recipe"]
    assert "0 errors, 0 warnings" in found["check"]
    metrics = json.loads((run_dir / "evaluate" / "metrics.json").read_text())
    assert f"{metrics['rerank']['ndcg@10']:.4f}" in found["metrics"] and "p=" in found["metrics"]
    assert "did the trained model beat the zero-shot one?" in found["metrics"]
    assert "rerank against retrieve" in found["per-query"] and "rerank against zeroshot" in found["per-query"]
    per_query = json.loads((run_dir / "evaluate" / "per_query.json").read_text())
    gains = {q: per_query["rerank"]["ndcg@10"][q] - v for q, v in per_query["retrieve"]["ndcg@10"].items()}
    best = max(gains, key=gains.get)
    query_text = BeirFolderDataset(scifact_small).all_queries()[best].text
    assert escape(query_text) in found["per-query"]
    assert "fewer than 5 words" in found["filter"] and "Kept 92 of 120" in found["filter"]
    assert "generator score" in found["queries"] and "filter reranker" in found["queries"]
    titles = {d.title for d in BeirFolderDataset(scifact_small).docs().values()}
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", found["samples"])
    assert len(rows) == SAMPLE_QUERIES and all(title in {escape(t) for t in titles} for _, _, title in rows)
    assert "bi-encoder from tiny" in found["training"] and "13 s" in found["training"]
    assert "2 candidates (path.json), scored by ndcg@10; best: Write a question." in found["tune"]
    assert "Write a query." in found["tune"] and '{"k": 3}' in found["tune"]
    assert "40 held-out documents: before tuning 0.4100, after 0.5200" in found["tune"]


def test_images_are_embedded_and_nothing_is_fetched(run_dir: Path):
    html = (run_dir / "report.html").read_text()
    images = re.findall(r'<img alt="[^"]*" src="([^"]*)">', html)
    per_section = {name: body.count("<img") for name, body in sections(html).items()}
    assert per_section == {
        "metrics": 0,
        "per-query": 2,
        "filter": 1,
        "queries": 3,
        "samples": 0,
        "training": 1,
        "tune": 1,
        "check": 0,
        "recipe": 0,
    }
    assert len(images) == 8
    for src in images:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1]).startswith(PNG)
    assert not re.search(r"(?:src|href)=\"(?!data:|#)", html) and "http://" not in html and "https://" not in html


def test_stages_that_did_not_run_are_left_out(tmp_path: Path, scifact_small: Path, monkeypatch, capsys):
    run_dir = tmp_path / "bm25-only"
    write_trec_run(run_dir / "retrieve" / "run.trec", {"q": {"d": 1.0}})
    done(run_dir / "retrieve")
    (run_dir / "recipe.toml").write_text('[recipe]\nname = "bm25-only"\n')
    (run_dir / "filter").mkdir()  # a folder without a completion marker: the stage did not finish
    write_json(run_dir / "filter" / "summary.json", {"input": 1, "kept": 1, "filters": []})
    assert list(sections(render(run_dir))) == ["recipe"]
    out = tmp_path / "elsewhere" / "r.html"
    monkeypatch.setattr(sys, "argv", ["inparsx", "report", str(run_dir), "--out", str(out)])
    with pytest.raises(SystemExit) as info:
        main()
    assert info.value.code == 0 and capsys.readouterr().out == f"report: {out}\n" and out.is_file()
