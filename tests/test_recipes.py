"""Every shipped recipe validates (``inparsx validate``) and its settings say what the papers say."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from inparsx.recipe import load_recipe

RECIPES = sorted((Path(__file__).resolve().parent.parent / "recipes").glob("*.toml"))
PAPERS = ["scifact-inpars-v1", "scifact-inpars-v2", "scifact-promptagator"]


@pytest.fixture(autouse=True)
def _data_home(data_home: Path, monkeypatch) -> None:
    monkeypatch.setenv("INPARSX_DATA_HOME", str(data_home))


def test_the_recipes_are_shipped():
    names = {p.stem for p in RECIPES}
    assert {"scifact-bm25", "scifact-quickstart", *PAPERS} <= names


@pytest.mark.parametrize("path", RECIPES, ids=[p.stem for p in RECIPES])
def test_validates_with_the_cli(path: Path):
    from inparsx.cli.main import _add_plugin_commands, app

    _add_plugin_commands()
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert "valid" in result.output
    assert load_recipe(path).name == path.stem


@pytest.mark.parametrize("name", PAPERS)
def test_paper_recipes_use_the_published_reranker_settings(name: str):
    recipe = load_recipe(Path(RECIPES[0].parent, f"{name}.toml"))
    train = dict(recipe.stages["train"].components)["monot5"]
    assert train.batch_size * train.gradient_accumulation_steps == 128  # InPars: batch 128
    assert (train.learning_rate, train.lr_scheduler, train.max_length) == (3e-4, "constant", 512)
    generate = dict(recipe.stages["generate"].components)["hf"]
    assert generate.model == "EleutherAI/gpt-j-6b"
    if name != "scifact-promptagator":
        assert train.max_steps == 156 and train.base_model == "castorini/monot5-3b-msmarco-10k"
        assert not generate.do_sample and recipe.stages["rerank"].settings.depth == 1000
    else:
        assert (generate.do_sample, generate.temperature, generate.num_queries_per_doc) == (True, 0.7, 8)
        consistency = dict(recipe.stages["filter"].components)["consistency"]
        assert (consistency.by, consistency.k) == ("self", 1)


def test_inpars_v2_filters_with_monot5_3b_top_10k():
    recipe = load_recipe(Path(RECIPES[0].parent, "scifact-inpars-v2.toml"))
    reranker = dict(recipe.stages["filter"].components)["reranker"]
    assert (reranker.reranker.use, reranker.reranker.model, reranker.keep_top_k) == (
        "monot5",
        "castorini/monot5-3b-msmarco-10k",
        10000,
    )
    assert dict(recipe.stages["generate"].components)["hf"].prompt == "inpars-gbq"


def test_quickstart_is_cpu_sized():
    recipe = load_recipe(Path(RECIPES[0].parent, "scifact-quickstart.toml"))
    assert recipe.stages["generate"].use == ["ict"] and recipe.stages["train"].use == ["bi-encoder"]
    rerank = recipe.stages["rerank"].settings
    assert rerank.zero_shot_model and rerank.interpolate is not None and rerank.depth <= 50


@pytest.mark.parametrize("name", ["scifact-cpo", "scifact-cpo-cpu"])
def test_cpo_recipes_use_the_inpars_plus_cpo_settings(name: str):
    recipe = load_recipe(Path(RECIPES[0].parent, f"{name}.toml"))
    cpo = recipe.stages["tune"].components[0][1]
    assert (cpo.lora_r, cpo.lora_alpha, cpo.beta, cpo.cpo_alpha, cpo.loss_type) == (16, 16, 0.1, 1.0, "sigmoid")
    assert set(cpo.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert (cpo.judge.by, cpo.judge.weight, cpo.judge.depth, cpo.eval_docs) == ("mix", 0.5, 100, 200)
    use = "vllm" if name == "scifact-cpo-cpu" else "hf"  # the CPU recipe generates with vLLM for CPU
    assert dict(recipe.stages["generate"].components)[use].model == "@tune"
    if name == "scifact-cpo-cpu":
        assert cpo.generator["use"] == "vllm"
        assert cpo.base_model == "HuggingFaceTB/SmolLM2-135M-Instruct" and cpo.precision == "auto"
        assert cpo.max_steps * cpo.batch_size <= cpo.n_docs  # a few hundred pairs at most, one pass
    else:
        assert cpo.base_model == "meta-llama/Llama-3.1-8B-Instruct" and cpo.quantization == "nf4"


def test_dspy_recipe_runs_the_inpars_plus_chain_of_thought():
    recipe = load_recipe(Path(RECIPES[0].parent, "scifact-dspy.toml"))
    generate = dict(recipe.stages["generate"].components)["dspy"]
    assert (generate.model, generate.module, generate.program, generate.max_new_tokens) == (
        "meta-llama/Llama-3.1-8B",
        "ChainOfThought",
        "@tune",
        200,
    )
    train = dict(recipe.stages["train"].components)["monot5"]
    assert (train.base_model, train.max_steps) == ("castorini/monot5-3b-msmarco-10k", 156)
    assert dict(recipe.stages["filter"].components)["reranker"].keep_top_k == 10000


def test_path_recipe_scores_instructions_on_ten_train_queries():
    recipe = load_recipe(Path(RECIPES[0].parent, "scifact-path.toml"))
    path = recipe.stages["tune"].components[0][1]
    assert (path.n_gold, path.gold_split, path.metric) == (10, "train", "ndcg@10")
    generate = dict(recipe.stages["generate"].components)["hf"]
    assert generate.instruction == "@tune" and generate.prompt == path.generator["prompt"]


def test_inpars_cpu_runs_the_real_smollm2_with_the_inpars_filter_and_marginmse():
    recipe = load_recipe(Path(RECIPES[0].parent, "scifact-inpars-cpu.toml"))
    generate = dict(recipe.stages["generate"].components)["vllm"]
    assert (generate.model, generate.prompt, generate.do_sample) == (
        "HuggingFaceTB/SmolLM2-135M-Instruct",
        "inpars",
        False,
    )
    assert recipe.stages["filter"].use == ["copied", "scores"]
    triples = dict(recipe.stages["triples"].components)["bm25-negatives"]
    assert (
        triples.teacher.use == "bi-encoder"
        and dict(recipe.stages["train"].components)["bi-encoder"].loss == "margin-mse"
    )
    rerank = recipe.stages["rerank"].settings
    assert rerank.zero_shot_model and "ict" in rerank.compare_models


def test_path_cpu_recipe_runs_smollm2_and_minilm_on_ten_train_queries():
    recipe = load_recipe(Path(RECIPES[0].parent, "scifact-path-cpu.toml"))
    path = recipe.stages["tune"].components[0][1]
    assert (path.n_gold, path.gold_split, path.metric) == (10, "train", "ndcg@10")
    assert path.generator["model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and path.proposer_model is None
    assert (path.generator["dtype"], path.proposer_format, path.generator["use"]) == ("fp32", "plain", "vllm")
    assert len(path.seed_instructions) + path.breadth * path.rounds >= 3
    assert (path.train["use"], path.train["base_model"]) == ("bi-encoder", "sentence-transformers/all-MiniLM-L6-v2")
    generate = dict(recipe.stages["generate"].components)["vllm"]
    assert generate.instruction == "@tune" and generate.prompt == path.generator["prompt"] == "inpars"
