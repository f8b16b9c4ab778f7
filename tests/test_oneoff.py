"""The one-off stage commands run the recipe stages' own code: for the same inputs, ``inparsx retrieve``,
``generate``, ``filter`` and ``rerank`` write byte-identical files to those of ``inparsx run``; an interrupted
one-off command resumes like a stage; a bad ``--set`` item is one line naming it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import Interrupted, RecipeError
from inparsx.io import read_jsonl, write_trec_run
from inparsx.pipeline import run_recipe
from inparsx.recipe import apply_override, one_stage_recipe, validate_recipe
from inparsx.testing.fakes import ChecksumReranker
from inparsx.testing.plugins import plugin_module, registered


def recipe_run(dataset: Path, run_dir: Path, stages: dict, seed: int = 1) -> Path:
    """``inparsx run`` of a recipe made of ``stages`` (tables) into ``run_dir``."""
    data = {"recipe": {"name": "t", "seed": seed}, "dataset": {"name": str(dataset)}, **stages}
    from inparsx.plugins import get_registry

    return run_recipe(validate_recipe(data, "t.toml", "", get_registry()), run_dir)


def first_stage(dataset: Path, path: Path) -> Path:
    """A deterministic first-stage run over real documents: 10 per test query."""
    data = BeirFolderDataset(dataset)
    docids = sorted(data.docs())
    write_trec_run(
        path,
        {qid: {docids[(int(qid) * 7 + i) % len(docids)]: 30.0 - i for i in range(10)} for qid in data.queries("test")},
    )
    return path


@pytest.fixture
def checksum():
    with registered(plugin_module("oneoff-checksum", rerankers=[ChecksumReranker])) as registry:
        yield registry
    ChecksumReranker.reset()


def test_retrieve_command_writes_what_the_stage_writes(scifact_small, tmp_path):
    from inparsx.retrieve.cli import retrieve

    retrieve(
        dataset=str(scifact_small),
        out=tmp_path / "one" / "bm25.trec",
        use="bm25s",
        split="test",
        set_=["k=20", "retrieve.k1=1.1"],
    )
    recipe_run(scifact_small, tmp_path / "run", {"retrieve": {"use": "bm25s", "k": 20, "k1": 1.1}})
    assert (tmp_path / "one" / "bm25.trec").read_bytes() == (tmp_path / "run" / "retrieve" / "run.trec").read_bytes()
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == ["bm25.trec"]  # the work folder is gone


def test_generate_command_writes_what_the_stage_writes(scifact_small, tmp_path):
    from inparsx.generate.cli import generate

    out = tmp_path / "one" / "ict.jsonl"
    generate(
        dataset=str(scifact_small),
        use="ict",
        set_=["num_docs=12", "min_words=5"],
        out=out,
        seed=3,
        eval_split="test",
        run_dir=tmp_path,
        force=False,
    )
    recipe_run(scifact_small, tmp_path / "run", {"generate": {"use": "ict", "num_docs": 12, "min_words": 5}}, seed=3)
    assert out.read_bytes() == (tmp_path / "run" / "generate" / "queries.jsonl").read_bytes()
    stats = json.loads((tmp_path / "one" / "ict.stats.json").read_text())
    assert stats["queries"] == len(out.read_text().splitlines()) > 0


def test_filter_command_writes_what_the_stage_writes(scifact_small, tmp_path):
    from inparsx.filter.command import filter_command

    recipe_run(scifact_small, tmp_path / "gen", {"generate": {"use": "ict", "num_docs": 20}})
    queries = tmp_path / "gen" / "generate" / "queries.jsonl"
    filter_command(
        queries,
        dataset=str(scifact_small),
        run_dir=tmp_path / "one",
        use="length,copied",
        set_=["min_tokens=6", "copied.max_copied=0.9"],
        seed=1,
    )
    run_dir = tmp_path / "run"
    (run_dir / "generate").mkdir(parents=True)
    (run_dir / "generate" / "queries.jsonl").write_bytes(queries.read_bytes())
    recipe_run(
        scifact_small,
        run_dir,
        {"filter": {"use": ["length", "copied"], "min_tokens": 6, "copied": {"max_copied": 0.9}}},
    )
    for name in ("queries.jsonl", "decisions.jsonl", "summary.json"):
        assert (tmp_path / "one" / "filter" / name).read_bytes() == (run_dir / "filter" / name).read_bytes(), name


def test_rerank_command_writes_what_the_stage_writes(scifact_small, tmp_path, checksum):
    from inparsx.rerank.command import rerank

    out = tmp_path / "one" / "reranked.trec"
    rerank(
        run=first_stage(scifact_small, tmp_path / "bm25.trec"),
        dataset=str(scifact_small),
        model="m",
        out=out,
        split="test",
        use="checksum",
        depth=6,
        set_=["interpolate=0.5", "fusion=rrf", "zero_shot_model=z"],
    )
    first_stage(scifact_small, tmp_path / "run" / "retrieve" / "run.trec")
    recipe_run(
        scifact_small,
        tmp_path / "run",
        {
            "rerank": {
                "use": "checksum",
                "model": "m",
                "depth": 6,
                "interpolate": 0.5,
                "fusion": "rrf",
                "zero_shot_model": "z",
            }
        },
    )
    stage = tmp_path / "run" / "rerank"
    pairs = {
        "reranked.trec": stage / "run.trec",
        "reranked-alone.trec": stage / "runs" / "rerank-alone.trec",
        "reranked-rrf.trec": stage / "runs" / "rerank-rrf.trec",
        "reranked-zeroshot.trec": stage / "runs" / "zeroshot.trec",
        "reranked-zeroshot-alone.trec": stage / "runs" / "zeroshot-alone.trec",
        "reranked-zeroshot-rrf.trec": stage / "runs" / "zeroshot-rrf.trec",
    }
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == sorted(pairs)
    for name, path in pairs.items():
        assert (tmp_path / "one" / name).read_bytes() == path.read_bytes(), name


def test_interrupted_rerank_command_resumes_from_its_work_folder(scifact_small, tmp_path, checksum):
    from inparsx.rerank.command import rerank

    run, out = first_stage(scifact_small, tmp_path / "bm25.trec"), tmp_path / "r.trec"
    args = dict(
        run=run,
        dataset=str(scifact_small),
        model="m",
        out=out,
        split="test",
        use="checksum",
        depth=10,
        set_=["batch_size=4"],
    )  # 30 queries x 10 pairs: chunks of 26 queries (>= 256 pairs), then 4
    ChecksumReranker.crash_on_call = 2
    with pytest.raises(Interrupted, match="stage 'rerank'"):
        rerank(**args)
    partial = tmp_path / ".r.trec.inparsx" / "rerank" / "scores.jsonl.partial"
    done = [obj["qid"] for _, obj in read_jsonl(partial) if "qid" in obj]
    assert 0 < len(done) < 30 and not out.exists()
    ChecksumReranker.reset()
    rerank(**args)
    assert ChecksumReranker.scored == 10 * (30 - len(done))
    assert out.is_file() and not (tmp_path / ".r.trec.inparsx").exists()


def test_one_set_parser_for_recipes_and_commands():
    data: dict = {}
    apply_override(data, "rerank.compare_models={ict = 'm'}")
    apply_override(data, "retrieve.k=10")
    assert data == {"rerank": {"compare_models": {"ict": "m"}}, "retrieve": {"k": 10}}
    recipe = one_stage_recipe("retrieve", "bm25s", ["k=10", "retrieve.method=bm25+"], "d")
    options = recipe.stages["retrieve"].components[0][1]
    assert (options.k, options.method) == (10, "bm25+")
    for item, message in (
        ("k", "--set: k: expected dotted.key=value"),
        ("generate.num_docs=3", "--set: generate.num_docs=3: a key of [generate]"),
        ("use=bm25", "--set: use=bm25: use is not a --set option of this command: give it as --use"),
        ("k=many", "inparsx retrieve: retrieve.k: Input should be a valid integer"),
    ):
        with pytest.raises(RecipeError) as info:
            one_stage_recipe("retrieve", "bm25s", [item], "d")
        assert str(info.value).startswith(message), str(info.value)


def cli(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    return subprocess.run(
        [sys.executable, "-m", "inparsx.cli.main", *args], capture_output=True, text=True, timeout=120, env=env, cwd=cwd
    )


@pytest.mark.parametrize(
    "command,item,expected",
    [
        (["retrieve", "--out", "x.trec"], "k1", "error: --set: k1: expected dotted.key=value"),
        (["generate", "--use", "ict"], "num_docs", "error: --set: num_docs: expected dotted.key=value"),
        (
            ["rerank", "--model", "m", "--out", "x.trec", "--run", "r.trec"],
            "first_stage=x",
            "error: --set: first_stage=x: first_stage is not a --set option of this command: "
            "the command reranks the run given with --run",
        ),
        (
            ["train", "--triples", "t.jsonl", "--out", "m"],
            "rerank.depth=3",
            "error: --set: rerank.depth=3: a key of [rerank]; this command runs only [train]",
        ),
        (
            ["retrieve", "--out", "x.trec"],
            "k1=high",
            "error: inparsx retrieve: retrieve.k1: Input should be a valid number",
        ),
    ],
)
def test_a_bad_set_item_is_one_line_naming_it(scifact_small, tmp_path, command, item, expected):
    dataset = [] if command[0] == "train" else ["--dataset", str(scifact_small)]
    result = cli(tmp_path, *command, *dataset, "--set", item)
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().startswith(expected) and len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_generate_command_reads_at_stage_models_from_its_run_dir(scifact_small, prompts_file, tmp_path):
    from inparsx.generate.cli import generate, referenced_stages
    from inparsx.testing import tiny_llama, train_tokenizer

    tiny_llama(tmp_path / "earlier" / "tune" / "model", train_tokenizer(vocab_size=400))
    assert referenced_stages({"model": "@tune", "prompt": "inpars", "num_docs": 2}) == ["tune"]
    out = tmp_path / "q.jsonl"
    generate(
        dataset=str(scifact_small),
        use="hf",
        out=out,
        seed=1,
        eval_split="test",
        run_dir=tmp_path / "earlier",
        force=False,
        set_=["model=@tune", "num_docs=2", "max_new_tokens=2", f"prompts_file={prompts_file}"],
    )
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 2 and {r["generator"] for r in records} == {"hf:@tune"}
    with pytest.raises(Exception, match="exists; pass --force"):
        generate(
            dataset=str(scifact_small),
            use="hf",
            out=out,
            seed=1,
            eval_split="test",
            run_dir=tmp_path,
            force=False,
            set_=["model=@tune"],
        )
