"""The rerank stage on real SciFact queries and documents: run files, below-depth order, resumption after a
crash, the zero-shot comparison, and the one-off ``inparsx rerank`` command."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inparsx.datasets.beir import BeirFolderDataset
from inparsx.io import read_jsonl, read_trec_run, write_trec_run
from inparsx.pipeline import StageContext, run_recipe
from inparsx.recipe import validate_recipe
from inparsx.rerank.fusion import interpolate, ranked
from inparsx.testing.fakes import ChecksumReranker
from inparsx.testing.plugins import plugin_module, registered

DEPTH = 8


def first_stage_run(dataset: BeirFolderDataset, path: Path, per_query: int = 15) -> dict:
    """A deterministic first-stage run over real documents: per test query, 15 docs with decreasing scores."""
    docids = sorted(dataset.docs())
    run = {
        qid: {docids[(int(qid) * 7 + i) % len(docids)]: 30.0 - i for i in range(per_query)}
        for qid in dataset.queries("test")
    }
    write_trec_run(path, run)
    return read_trec_run(path)


def scores_of(ctx: StageContext) -> dict:
    """The model's per-query scores that the stage stored in ``rerank/scores.jsonl``."""
    return {obj["qid"]: obj["scores"] for _, obj in read_jsonl(ctx.dir / "scores.jsonl") if "qid" in obj}


def make_ctx(scifact_small: Path, run_dir: Path, table: dict) -> tuple[StageContext, dict]:
    dataset = BeirFolderDataset(scifact_small)
    first = first_stage_run(dataset, run_dir / "retrieve" / "run.trec")
    data = {"recipe": {"name": "t"}, "dataset": {"name": str(scifact_small)}, "rerank": {"use": "checksum", **table}}
    recipe = validate_recipe(data, "t.toml", "", registered_registry())
    name, options = recipe.stages["rerank"].components[0]
    return StageContext(recipe, "rerank", run_dir, [ChecksumReranker(options)], "fp", dataset), first


_REGISTRY = None


def registered_registry():
    return _REGISTRY


@pytest.fixture(autouse=True)
def checksum_plugin():
    global _REGISTRY
    with registered(plugin_module("checksum-plugin", rerankers=[ChecksumReranker])) as registry:
        _REGISTRY = registry
        yield registry
    ChecksumReranker.reset()


def test_stage_reranks_top_depth_and_keeps_the_rest_below_in_first_stage_order(scifact_small, tmp_path):
    from inparsx.rerank.stage import run_stage

    ctx, first = make_ctx(scifact_small, tmp_path, {"model": "m", "depth": DEPTH, "interpolate": 0.5, "fusion": "rrf"})
    run_stage(ctx)
    run = read_trec_run(tmp_path / "rerank" / "run.trec")
    assert set(run) == set(first) == set(ctx.dataset.queries("test"))
    for qid, scores in run.items():
        order, original = ranked(scores), ranked(first[qid])
        assert set(order[:DEPTH]) == set(original[:DEPTH]) and order[DEPTH:] == original[DEPTH:]
    assert any(ranked(run[q])[:DEPTH] != ranked(first[q])[:DEPTH] for q in run)
    assert set(ctx.runs()) == {"retrieve", "rerank", "rerank-alone", "rerank-rrf"}
    assert read_trec_run(ctx.runs()["rerank"]) == interpolate(first, scores_of(ctx), 0.5)
    scores_lines = [obj for _, obj in read_jsonl(tmp_path / "rerank" / "scores.jsonl")]
    assert scores_lines[0]["meta"]["depth"] == DEPTH and len(scores_lines) == 1 + len(first)


def test_interrupted_stage_resumes_without_rescoring_finished_queries(scifact_small, tmp_path):
    from inparsx.rerank.stage import run_stage

    table = {"model": "m", "depth": 12}  # 30 queries x 12 pairs: a first chunk of 22 queries (>= 256 pairs), then 8
    ctx, first = make_ctx(scifact_small, tmp_path / "crash", table)
    ChecksumReranker.crash_on_call = 2
    with pytest.raises(KeyboardInterrupt):
        run_stage(ctx)
    partial = tmp_path / "crash" / "rerank" / "scores.jsonl.partial"
    done = [obj["qid"] for _, obj in read_jsonl(partial) if "qid" in obj]
    assert 0 < len(done) < len(first)
    with open(partial, "a") as handle:
        handle.write('{"qid": "torn')  # a torn last line, as a crash mid-write leaves
    ChecksumReranker.reset()
    run_stage(ctx)
    assert ChecksumReranker.scored == sum(min(12, len(first[q])) for q in first if q not in done)
    fresh_ctx, _ = make_ctx(scifact_small, tmp_path / "fresh", table)
    run_stage(fresh_ctx)
    assert read_trec_run(tmp_path / "crash" / "rerank" / "run.trec") == read_trec_run(
        tmp_path / "fresh" / "rerank" / "run.trec"
    )


def test_zero_shot_model_writes_its_own_runs(scifact_small, tmp_path):
    from inparsx.rerank.stage import run_stage

    ctx, _ = make_ctx(
        scifact_small, tmp_path, {"model": "trained", "zero_shot_model": "base", "depth": DEPTH, "interpolate": 0.3}
    )
    run_stage(ctx)
    runs = ctx.runs()
    assert list(runs) == ["retrieve", "rerank", "rerank-alone", "zeroshot", "zeroshot-alone"]
    assert read_trec_run(runs["zeroshot"]) != read_trec_run(runs["rerank"])
    notes = ctx.run_notes()
    assert (
        set(notes["runs"]) == set(runs) - {"retrieve"}
        and "interpolated with retrieve: 0.3 x model" in notes["runs"]["rerank"]
    )
    assert [(p["run"], p["against"]) for p in notes["pairs"]] == [
        ("rerank", "zeroshot"),
        ("rerank-alone", "zeroshot-alone"),
    ]
    summary = (tmp_path / "rerank" / "summary.json").read_text()
    assert '"zeroshot"' in summary and '"pairs_per_second"' in summary


def test_compare_models_get_runs_of_their_own_name(scifact_small, tmp_path):
    from inparsx.rerank.stage import run_stage

    ctx, _ = make_ctx(
        scifact_small,
        tmp_path,
        {
            "model": "trained",
            "zero_shot_model": "base",
            "depth": DEPTH,
            "interpolate": 0.5,
            "compare_models": {"ict": "other"},
        },
    )
    run_stage(ctx)
    runs = ctx.runs()
    assert list(runs) == ["retrieve", "rerank", "ict", "ict-alone", "rerank-alone", "zeroshot", "zeroshot-alone"]
    assert read_trec_run(runs["ict"]) not in (read_trec_run(runs["rerank"]), read_trec_run(runs["zeroshot"]))
    notes = ctx.run_notes()
    assert notes["runs"]["ict"].startswith("ict other on the retrieve top 8, interpolated")
    assert [p["against"] for p in notes["pairs"]] == ["zeroshot", "zeroshot-alone"]
    assert (tmp_path / "rerank" / "scores-ict.jsonl").is_file()


@pytest.mark.parametrize("name", ["zeroshot", "rerank-x", "ict-alone", "Bad Name"])
def test_compare_model_names_that_would_clash_are_rejected(name):
    from pydantic import ValidationError

    from inparsx.rerank.options import RerankStageOptions

    with pytest.raises(ValidationError, match=f"compare_models: run name '{name}'"):
        RerankStageOptions(model="m", compare_models={name: "other"})


def test_pipeline_runs_a_real_cross_encoder_on_scifact(scifact_small, tmp_path):
    """The stage through the runner, with a tiny random BERT as cross-encoder (``model`` and zero-shot)."""
    from inparsx.testing import tiny_bert

    model = tiny_bert(tmp_path / "bert")
    run_dir = tmp_path / "run"
    data = {
        "recipe": {"name": "t"},
        "dataset": {"name": str(scifact_small)},
        "rerank": {
            "use": "cross-encoder",
            "model": str(model),
            "depth": 4,
            "dtype": "fp32",
            "max_length": 128,
            "interpolate": 0.5,
        },
    }
    first_stage_run(BeirFolderDataset(scifact_small), run_dir / "retrieve" / "run.trec", per_query=6)
    run_recipe(validate_recipe(data, "t.toml", "", registered_registry()), run_dir)
    run = read_trec_run(run_dir / "rerank" / "run.trec")
    assert len(run) == 30 and all(len(docs) == 6 for docs in run.values())
    assert (run_dir / "rerank" / "runs" / "rerank-alone.trec").is_file()


def test_rerank_command_writes_the_run_and_the_interpolated_run(scifact_small, tmp_path):
    from inparsx.rerank.command import rerank

    dataset = BeirFolderDataset(scifact_small)
    first = first_stage_run(dataset, tmp_path / "bm25.trec")
    out = tmp_path / "out" / "reranked.trec"
    rerank(
        run=tmp_path / "bm25.trec",
        dataset=str(scifact_small),
        model="m",
        out=out,
        use="checksum",
        depth=5,
        set_=["interpolate=0.5", "batch_size=8"],
    )
    run = read_trec_run(out)
    assert set(run) == set(first)
    assert all(ranked(run[q])[5:] == ranked(first[q])[5:] for q in run)
    alone = read_trec_run(tmp_path / "out" / "reranked-alone.trec")
    assert run != alone and set(alone) == set(first)
    assert not list((tmp_path / "out").glob("*.scores.jsonl*"))


def test_rerank_command_line(scifact_small, tmp_path):
    import typer
    from typer.testing import CliRunner

    from inparsx.rerank import plugins

    cli = typer.Typer(pretty_exceptions_enable=False)

    @cli.callback()
    def main() -> None:
        """inparsx (test app)."""

    plugins.register_commands(app=cli)
    first_stage_run(BeirFolderDataset(scifact_small), tmp_path / "bm25.trec")
    args = [
        "rerank",
        "--run",
        str(tmp_path / "bm25.trec"),
        "--dataset",
        str(scifact_small),
        "--model",
        "m",
        "--out",
        str(tmp_path / "r.trec"),
        "--use",
        "checksum",
        "--depth",
        "3",
        "--set",
        "fusion='rrf'",
    ]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "r.trec").is_file() and (tmp_path / "r-alone.trec").is_file()


class ReverseChecksum(ChecksumReranker):
    """Another kind of reranker (as a bi-encoder is beside a cross-encoder): ``1 - checksum``."""

    name = "reverse"

    def score(self, queries, documents):
        return [1.0 - s for s in super().score(queries, documents)]


THREE_WAY = {
    "model": "trained",
    "zero_shot_model": "base",
    "depth": DEPTH,
    "interpolate": 0.5,
    "fuse": {"first_stage": 1, "zero_shot_model": 1, "model": 1},
}


def reverse_registry():
    return registered(plugin_module("checksum-plugin", rerankers=[ChecksumReranker, ReverseChecksum]))


def test_three_way_fusion_is_the_final_run_with_its_zero_shot_fusion_beside_it(scifact_small, tmp_path):
    from inparsx.rerank.fusion import fuse, minmax
    from inparsx.rerank.stage import run_stage

    ctx, first = make_ctx(scifact_small, tmp_path, THREE_WAY)
    run_stage(ctx)
    runs = ctx.runs()
    assert list(runs) == [
        "retrieve",
        "rerank",
        "rerank-alone",
        "rerank-interpolated",
        "zeroshot",
        "zeroshot-alone",
        "zeroshot-interpolated",
    ]
    trained = scores_of(ctx)
    zero = {obj["qid"]: obj["scores"] for _, obj in read_jsonl(ctx.dir / "scores-zeroshot.jsonl") if "qid" in obj}
    three = read_trec_run(runs["rerank"])
    for qid, top in trained.items():  # by hand: a third of each run's min-max normalised score
        lexical = minmax({d: first[qid][d] for d in top})
        expected = {d: (lexical[d] + minmax(zero[qid])[d] + minmax(top)[d]) / 3 for d in top}
        assert ranked(three[qid])[:DEPTH] == ranked(expected)
    assert three == fuse(first, trained, [(first, 1), (zero, 1), (trained, 1)])
    assert read_trec_run(runs["rerank-interpolated"]) == interpolate(first, trained, 0.5)
    baseline = read_trec_run(runs["zeroshot"])  # BM25 + zero-shot, as the interpolated zero-shot run ranks
    assert {q: ranked(s) for q, s in baseline.items()} == {
        q: ranked(s) for q, s in interpolate(first, zero, 0.5).items()
    }
    notes = ctx.run_notes()
    assert notes["pairs"][0] == {
        "run": "rerank",
        "against": "zeroshot",
        "question": (
            "did the trained fusion beat the zero-shot fusion (retrieve + zero-shot + trained vs retrieve + zero-shot)?"
        ),
    }
    assert (
        "fusion retrieve + zero-shot + trained: 0.333 x retrieve, 0.333 x zero-shot, 0.333 x trained"
        in notes["runs"]["rerank"]
    )
    assert "fusion retrieve + zero-shot: 0.5 x retrieve, 0.5 x zero-shot" in notes["runs"]["zeroshot"]


def test_weighted_rrf_over_n_runs_and_a_fusion_without_the_zero_shot_run(scifact_small, tmp_path):
    from inparsx.rerank.stage import run_stage

    table = {
        "model": "trained",
        "zero_shot_model": "base",
        "depth": DEPTH,
        "rrf_k": 10,
        "fuse": {"first_stage": 2, "model": 1},
        "fuse_method": "rrf",
    }
    ctx, first = make_ctx(scifact_small, tmp_path, table)
    run_stage(ctx)
    trained = scores_of(ctx)
    zero = {obj["qid"]: obj["scores"] for _, obj in read_jsonl(ctx.dir / "scores-zeroshot.jsonl") if "qid" in obj}
    for name, model_scores in (("rerank", trained), ("zeroshot", zero)):  # the zero-shot run takes the model's place
        run = read_trec_run(ctx.runs()[name])
        for qid, top in model_scores.items():
            lexical = {d: r for r, d in enumerate(ranked({d: first[qid][d] for d in top}), 1)}
            neural = {d: r for r, d in enumerate(ranked(top), 1)}
            expected = {d: 2 / (10 + lexical[d]) + 1 / (10 + neural[d]) for d in top}
            assert ranked(run[qid])[:DEPTH] == ranked(expected)
    assert "reciprocal rank fusion (k=10), weights retrieve 2, trained 1" in ctx.run_notes()["runs"]["rerank"]


def test_the_zero_shot_run_may_use_another_reranker(scifact_small, tmp_path):
    from inparsx.rerank.stage import run_stage
    from inparsx.testing.fakes import checksum_score

    global _REGISTRY
    with reverse_registry() as registry:
        _REGISTRY = registry
        table = {**THREE_WAY, "zero_shot_reranker": "reverse", "zero_shot_options": {"batch_size": 4}}
        ctx, _ = make_ctx(scifact_small, tmp_path, table)
        run_stage(ctx)
    zero = [obj for _, obj in read_jsonl(ctx.dir / "scores-zeroshot.jsonl")]
    assert zero[0]["meta"]["reranker"] == "reverse"
    qid, scores = zero[1]["qid"], zero[1]["scores"]
    docs, text = ctx.dataset.docs(), ctx.dataset.queries("test")[qid].text
    assert all(s == 1.0 - checksum_score("base", text, docs[d].full_text) for d, s in scores.items())
    summary = json.loads((tmp_path / "rerank" / "summary.json").read_text())
    assert summary["zeroshot"]["reranker"] == "reverse" and summary["rerank"]["reranker"] == "checksum"
    assert ctx.run_notes()["runs"]["zeroshot"].startswith("zero-shot model (reverse) base on the retrieve top 8")


@pytest.mark.parametrize(
    "table,message",
    [
        (
            {"fuse": {"first_stage": 1, "zero_shot_model": 1, "model": 1}},
            r"'zero_shot_model' names no run of this stage \(zero_shot_model is not set\)",
        ),
        (
            {"fuse": {"first_stage": 1, "bm25": 1, "model": 1}},
            r"'bm25' names no run of this stage; the runs are: first_stage, model",
        ),
        ({"fuse": {"first_stage": 1, "zero_shot_model": 1}, "zero_shot_model": "z"}, "fuse must hold model"),
        ({"fuse": {"model": 1}}, "at least two runs"),
        ({"fuse": {"first_stage": 0, "model": 1}}, "'first_stage' must be above 0"),
        ({"fuse_method": "rrf"}, "fuse_method is the method of fuse, which is not set"),
        ({"zero_shot_reranker": "checksum"}, "zero_shot_reranker scores with zero_shot_model, which is not set"),
        (
            {"zero_shot_model": "z", "zero_shot_options": {"batch_size": 4}},
            "zero_shot_options are the options of zero_shot_reranker",
        ),
        (
            {"zero_shot_model": "z", "zero_shot_reranker": "checksum", "zero_shot_options": {"depht": 4}},
            "zero_shot_options for 'checksum'",
        ),
        (
            {"zero_shot_model": "z", "zero_shot_reranker": "checksum", "zero_shot_options": {"depth": 4}},
            "configures the rerank stage",
        ),
        ({"zero_shot_model": "z", "zero_shot_reranker": "nope"}, "nope"),
        ({"compare_models": {"model": "m2"}}, "clashes with the stage's own runs"),
        ({"compare_models": {"ict-interpolated": "m2"}}, "clashes with the stage's own runs"),
    ],
)
def test_fusions_and_zero_shot_rerankers_that_cannot_run_are_refused_when_the_recipe_loads(table, message):
    from inparsx.recipe import RecipeErrors

    data = {"recipe": {"name": "t"}, "dataset": {"name": "x"}, "rerank": {"use": "checksum", "model": "m", **table}}
    with pytest.raises(RecipeErrors, match=message):
        validate_recipe(data, "t.toml", "", registered_registry())


def test_a_fusion_that_names_a_compared_model_and_the_command_names_its_files(scifact_small, tmp_path):
    from inparsx.rerank.command import rerank

    first_stage_run(BeirFolderDataset(scifact_small), tmp_path / "bm25.trec")
    out = tmp_path / "out" / "r.trec"
    rerank(
        run=tmp_path / "bm25.trec",
        dataset=str(scifact_small),
        model="m",
        out=out,
        use="checksum",
        depth=5,
        set_=["compare_models={ict = 'other'}", "fuse={first_stage = 1, ict = 1, model = 1}", "interpolate=0.5"],
    )
    names = sorted(p.name for p in out.parent.glob("*.trec"))
    assert names == [
        "r-alone.trec",
        "r-ict-alone.trec",
        "r-ict-interpolated.trec",
        "r-ict.trec",
        "r-interpolated.trec",
        "r.trec",
    ]
    assert read_trec_run(out) != read_trec_run(tmp_path / "out" / "r-ict.trec")


def test_the_evaluate_stage_gives_the_verdict_trained_fusion_vs_zero_shot_fusion(scifact_small, tmp_path):
    data = {
        "recipe": {"name": "t"},
        "dataset": {"name": str(scifact_small)},
        "retrieve": {"use": "bm25s", "k": 20},
        "rerank": {"use": "checksum", **THREE_WAY},
        "evaluate": {"use": "ranx", "metrics": ["ndcg@10"]},
    }
    run_dir = run_recipe(validate_recipe(data, "t.toml", "", registered_registry()), tmp_path / "run")
    comparison = json.loads((run_dir / "evaluate" / "comparison.json").read_text())
    first = comparison["pairs"][0]
    assert (first["run"], first["against"]) == ("rerank", "zeroshot")
    assert first["question"].startswith("did the trained fusion beat the zero-shot fusion")
    assert first["verdict"] in ("yes", "not significantly", "no") and "p_value" in first["metrics"]["ndcg@10"]
    table = (run_dir / "evaluate" / "table.txt").read_text()
    assert (
        "did the trained fusion beat the zero-shot fusion (retrieve + zero-shot + trained vs retrieve + zero-shot)?"
        in table
    )
