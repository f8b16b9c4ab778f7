"""``inparsx eval`` on the real SciFact test qrels: --json, run naming, qrels specs, significance, errors."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

import inparsx.datasets.beir
import inparsx.datasets.irds
from inparsx.errors import DataError, InparsxError
from inparsx.evaluate import plugins
from inparsx.evaluate.cli import default_run_name, parse_run_args
from inparsx.evaluate.metrics import MetricNameError
from inparsx.io import read_qrels, write_trec_run
from inparsx.plugins import Registry, get_plugin_manager, set_registry


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    """A Typer app with only the evaluate plugin's command, over a registry of the dataset and evaluate
    plugins (registered through their hooks, as the entry points do)."""
    pm = get_plugin_manager(load_entrypoints=False)
    for module in (inparsx.datasets.beir, inparsx.datasets.irds, plugins):
        pm.register(module)
    set_registry(Registry(pm))
    cli = typer.Typer(pretty_exceptions_enable=False)

    @cli.callback()
    def main() -> None:
        """inparsx (test app)."""

    pm.hook.register_commands(app=cli)
    yield cli
    set_registry(None)


@pytest.fixture(scope="module")
def runs(scifact_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Runs on the 300 SciFact test queries: ``perfect`` ranks each query's judged documents first (made from the
    test qrels); ``shuffled`` puts them at random ranks among 100 random real documents; ``partial`` is
    ``perfect`` with the first 30 queries left out."""
    root = tmp_path_factory.mktemp("eval-runs")
    qrels = read_qrels(scifact_dir / "qrels" / "test.tsv")
    with open(scifact_dir / "corpus.jsonl") as handle:
        doc_ids = [json.loads(line)["_id"] for line in handle]
    rng = random.Random(13)
    perfect = {q: {d: 100.0 - i for i, d in enumerate(docs)} for q, docs in qrels.items()}
    shuffled = {}
    for qid, docs in qrels.items():
        ranking = list(dict.fromkeys(rng.sample(doc_ids, 100) + list(docs)))
        rng.shuffle(ranking)
        shuffled[qid] = {d: float(len(ranking) - i) for i, d in enumerate(ranking)}
    paths = {
        "perfect": root / "perfect.trec",
        "shuffled": root / "x" / "retrieve" / "run.trec",
        "partial": root / "partial.trec",
    }
    write_trec_run(paths["perfect"], perfect)
    write_trec_run(paths["shuffled"], shuffled)
    write_trec_run(paths["partial"], {q: perfect[q] for q in sorted(perfect)[30:]})
    return paths


def invoke(app: typer.Typer, *args: str):
    result = CliRunner().invoke(app, ["eval", *args], catch_exceptions=True)
    return result


def test_json_perfect_and_shuffled(app, runs):
    result = invoke(
        app, "--run", str(runs["perfect"]), "--run", str(runs["shuffled"]), "--qrels", "beir:scifact/test", "--json"
    )
    assert result.exit_code == 0, result.output
    scores = json.loads(result.stdout)
    assert list(scores) == ["perfect", "retrieve"]  # retrieve: the parent folder of .../retrieve/run.trec
    assert scores["perfect"] == {"ndcg@10": 1.0, "mrr@10": 1.0, "recall@100": 1.0, "recall@1000": 1.0, "map": 1.0}
    shuffled = scores["retrieve"]
    assert shuffled["recall@1000"] == 1.0  # every judged document is in the shuffled list...
    assert 0.0 < shuffled["ndcg@10"] < 0.3 and 0.0 < shuffled["map"] < 0.3  # ...at random ranks among 100+


def test_qrels_specs_agree(app, runs, scifact_dir):
    specs = ["beir:scifact/test", str(scifact_dir / "test"), str(scifact_dir / "qrels" / "test.tsv")]
    outputs = [invoke(app, "-r", f"s={runs['shuffled']}", "-q", spec, "-m", "ndcg@10,map", "--json") for spec in specs]
    assert all(o.exit_code == 0 for o in outputs), [o.output for o in outputs]
    values = [json.loads(o.stdout) for o in outputs]
    assert values[0] == values[1] == values[2] and list(values[0]["s"]) == ["ndcg@10", "map"]


def test_missing_queries_score_zero_and_exclude_qids(app, runs, tmp_path):
    result = invoke(app, "-r", str(runs["partial"]), "-q", "beir:scifact/test", "-m", "ndcg@10", "--json")
    assert json.loads(result.stdout)["partial"]["ndcg@10"] == pytest.approx(270 / 300)
    assert "no ranking for 30 of 300 judged queries" in result.stderr
    excluded = tmp_path / "excluded_qids.txt"
    left_out = _qids(runs["perfect"])[:30]  # the queries "partial" lacks
    excluded.write_text("\n".join(left_out) + "\n# a comment\n")
    result = invoke(
        app,
        "-r",
        str(runs["partial"]),
        "-q",
        "beir:scifact/test",
        "-m",
        "ndcg@10",
        "--json",
        "--exclude-qids",
        str(excluded),
    )
    assert json.loads(result.stdout)["partial"]["ndcg@10"] == 1.0
    assert "excluded 30 of 300 judged queries" in result.stderr


def _qids(path: Path) -> list[str]:
    return sorted({line.split()[0] for line in path.read_text().splitlines()})


def test_table_with_significance(app, runs):
    result = invoke(
        app,
        "-r",
        str(runs["shuffled"]),
        "-r",
        f"oracle={runs['perfect']}",
        "-r",
        f"same={runs['shuffled']}",
        "-q",
        "beir:scifact/test",
        "-m",
        "ndcg@10",
        "-m",
        "R@100",
    )
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "nDCG@10" in line)
    assert "R@100" in header
    assert "retrieve (baseline)" in result.stdout
    oracle = next(line for line in lines if "oracle" in line)
    assert "1.0000 ▲ p<0.001" in oracle
    same = next(line for line in lines if line.strip("│ ").startswith("same"))
    assert "▲" not in same and "▼" not in same and "p=1.000" in same
    assert "significantly above/below retrieve (two-sided paired t-test, p <= 0.05)" in result.stdout


def test_loss_marker_with_baseline_option(app, runs):
    result = invoke(
        app,
        "-r",
        str(runs["shuffled"]),
        "-r",
        f"oracle={runs['perfect']}",
        "--baseline",
        "oracle",
        "-q",
        "beir:scifact/test",
        "-m",
        "mrr@10",
        "--stat-test",
        "tukey",
    )
    assert result.exit_code == 0, result.output
    row = next(line for line in result.stdout.splitlines() if "retrieve" in line)
    assert "▼" in row and "oracle (baseline)" in result.stdout and "Tukey" in result.stdout


def test_run_names():
    assert default_run_name(Path("runs/x/retrieve/run.trec")) == "retrieve"
    assert default_run_name(Path("bm25-flat.trec")) == "bm25-flat"
    assert parse_run_args(["a=x.trec", "runs/y/rerank/run.trec", "z.txt"]) == {
        "a": Path("x.trec"),
        "rerank": Path("runs/y/rerank/run.trec"),
        "z": Path("z.txt"),
    }
    with pytest.raises(InparsxError, match="two runs are named 'retrieve'.*--run NAME=PATH"):
        parse_run_args(["a/retrieve/run.trec", "b/retrieve/run.trec"])


def test_errors(app, runs, tmp_path):
    bad = tmp_path / "bad.trec"
    bad.write_text("1 Q0 31715818 1 9.5 x\n1 Q0 14717500 2 x\n")
    result = invoke(app, "-r", str(bad), "-q", "beir:scifact/test")
    assert isinstance(result.exception, DataError) and f"{bad}:2: a TREC run line needs 6 columns" in str(
        result.exception
    )
    result = invoke(app, "-r", str(runs["perfect"]), "-q", "beir:scifact/test", "-m", "ndgc@10")
    assert isinstance(result.exception, MetricNameError) and "did you mean 'ndcg@10'" in str(result.exception)
    result = invoke(app, "-r", str(runs["perfect"]), "-q", "beir:scifact")
    assert isinstance(result.exception, InparsxError) and "name a split" in str(result.exception)
    assert "available: test, train" in str(result.exception)


def test_real_command_line(runs, scifact_dir, tmp_path):
    """The installed command (all entry points loaded): --json on stdout only, with qrels from an ir_datasets id
    (an offline ir_datasets cache holding the real SciFact test qrels), and a malformed run as one error line."""
    import zipfile

    (tmp_path / "irds" / "beir" / "scifact").mkdir(parents=True)
    with zipfile.ZipFile(tmp_path / "irds" / "beir" / "scifact" / "source.zip", "w") as archive:
        for name in ("queries.jsonl", "qrels/test.tsv"):
            archive.write(scifact_dir / name, f"scifact/{name}")
    env = {**os.environ, "INPARSX_NO_PROGRESS": "1", "IR_DATASETS_HOME": str(tmp_path / "irds")}
    command = [sys.executable, "-m", "inparsx.cli.main", "eval"]
    done = subprocess.run(
        [
            *command,
            "--run",
            str(runs["perfect"]),
            "--run",
            str(runs["shuffled"]),
            "--qrels",
            "irds:beir/scifact/test",
            "--metrics",
            "ndcg@10",
            "--json",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    scores = json.loads(done.stdout)
    assert scores["perfect"] == {"ndcg@10": 1.0} and scores["retrieve"]["ndcg@10"] < 0.3
    bad = tmp_path / "bad.trec"
    bad.write_text("1 Q0 31715818 1 nine x\n")
    done = subprocess.run(
        [*command, "--run", str(bad), "--qrels", "beir:scifact/test"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 2 and f"error: {bad}:1: score 'nine' is not a number" in done.stderr
