"""The ``hf`` generator on real SciFact documents with tiny random Llama, GPT-2 and T5 models: greedy output
identical across runs and batch sizes, scores, stopping on decoded text, sampling, quantisation."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

from inparsx.generate.stage import generate_queries
from inparsx.pipeline import StageContext
from inparsx.plugins import get_registry
from inparsx.recipe import validate_recipe
from inparsx.testing import SIMPLE_CHAT_TEMPLATE, tiny_gpt2, tiny_llama, tiny_t5, train_tokenizer


@pytest.fixture(scope="module")
def models(scifact, prompts_file, tmp_path_factory) -> dict[str, Path]:
    """Tiny random models whose byte-level BPE is trained on real SciFact text and the prompt file."""
    texts = [doc.full_text for _, doc in zip(range(300), scifact.docs_iter())] + [prompts_file.read_text()]
    root = tmp_path_factory.mktemp("models")
    llama_tokenizer = train_tokenizer(texts, vocab_size=1000)
    llama_tokenizer.chat_template = SIMPLE_CHAT_TEMPLATE
    return {
        "llama": tiny_llama(root / "llama", llama_tokenizer),
        "gpt2": tiny_gpt2(root / "gpt2", train_tokenizer(texts, vocab_size=1000)),
        "t5": tiny_t5(root / "t5", train_tokenizer(texts, vocab_size=1000)),
    }


def context(run_dir: Path, dataset, use: str = "hf", seed: int = 1, **options) -> StageContext:
    """A generate-stage context built through recipe validation (as ``inparsx run`` does)."""
    data = {
        "recipe": {"name": "t", "seed": seed},
        "dataset": {"name": "beir:scifact"},
        "generate": {"use": use, **options},
    }
    recipe = validate_recipe(data, "test", "", get_registry())
    name, opts = recipe.stages["generate"].components[0]
    return StageContext(recipe, "generate", run_dir, [get_registry().get("generators", name)(opts)], _dataset=dataset)


def generate(run_dir: Path, dataset, **options) -> list[dict]:
    ctx = context(run_dir, dataset, **options)
    generate_queries(ctx.component_context(), ctx.component, ctx.dir / "queries.jsonl")
    return [json.loads(line) for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]


def assert_same_queries(a: list[dict], b: list[dict], tolerance: float = 1e-4) -> None:
    assert [r["doc_id"] for r in a] == [r["doc_id"] for r in b]
    assert [r["query"] for r in a] == [r["query"] for r in b]
    for x, y in zip(a, b):
        assert len(x["log_probs"]) == len(y["log_probs"])
        assert all(abs(p - q) <= tolerance for p, q in zip(x["log_probs"], y["log_probs"]))


CASES = [
    (model, prompt) for model in ("llama", "gpt2") for prompt in ("inpars", "inpars-gbq", "promptagator", "custom")
] + [("llama", "chat"), ("t5", "inpars"), ("t5", "promptagator"), ("t5", "doc2query")]
"""Every prompt on the causal LMs; on T5 (a different decoding path, same prompt code) a static, a dynamic
and the bare-document prompt."""


@pytest.mark.parametrize("model, prompt", CASES)
def test_greedy_output_is_the_same_across_runs_and_batch_sizes_1_and_8(model, prompt, models, scifact, tmp_path):
    custom = tmp_path / "custom.txt"
    custom.write_text("Scientific abstract: {document}\nA claim it supports: {query}\n")
    # fp32: bf16 (what "auto" picks on a CPU with native bf16) rounds a padded batch differently from a lone one
    options = {
        "model": str(models[model]),
        "num_docs": 20,
        "max_new_tokens": 6,
        "max_doc_tokens": 48,
        "prompt": "inpars" if prompt == "chat" else prompt,
        "chat": prompt == "chat",
        "dtype": "fp32",
    }
    if prompt == "custom":
        options["template"] = str(custom)
    one = generate(tmp_path / "b1", scifact, batch_size=1, **options)
    eight = generate(tmp_path / "b8", scifact, batch_size=8, **options)
    assert len(one) == 20 and len({r["doc_id"] for r in one}) == 20
    assert_same_queries(one, eight)
    if (model, prompt) == ("llama", "inpars"):  # a second run: the same bytes
        generate(tmp_path / "again", scifact, batch_size=8, **options)
        assert (tmp_path / "again/generate/queries.jsonl").read_bytes() == (
            tmp_path / "b8/generate/queries.jsonl"
        ).read_bytes()
    for record in one:
        assert record["generator"] == f"hf:{models[model]}" and record["query_id"] == f"{record['doc_id']}-0"
        assert 0 < len(record["log_probs"]) <= 6 and all(p <= 0 for p in record["log_probs"])
        assert math.isclose(record["score"], sum(record["log_probs"]) / len(record["log_probs"]), rel_tol=1e-12)
    if prompt == "promptagator":
        train = scifact.qrels("train")
        assert all(len(r["fewshot_examples"]) == 3 and set(r["fewshot_examples"]) <= set(train) for r in one)
        assert all(r["prompt_text"].count("\nFinding: ") == 3 for r in one)
        assert all(r["prompt_text"].endswith("\nFinding:") for r in one)


def test_stops_on_a_newline_with_a_tokenizer_without_token_198(scifact, tmp_path):
    """The InPars toolkit stops on GPT-2's token 198; this tokenizer has fewer than 198 tokens."""
    import torch
    from transformers import AutoModelForCausalLM

    tokenizer = train_tokenizer(
        ["Relevant Query: what is the cell?\nDocument: the cell cycle.\nExample 1:\n"] * 3,
        vocab_size=120,
        byte_level=False,
    )
    assert len(tokenizer) < 198 and "\n" in tokenizer.get_vocab()
    path = tiny_llama(tmp_path / "small-vocab", tokenizer)
    options = {
        "model": str(path),
        "num_docs": 8,
        "max_new_tokens": 24,
        "batch_size": 4,
        "prompt": "doc2query",
        "max_doc_tokens": 64,
    }
    free = generate(tmp_path / "free", scifact, stop=[], **options)
    # make the newline twice as likely (in logits) as the token the free run writes most
    model = AutoModelForCausalLM.from_pretrained(path)
    newline = tokenizer.convert_tokens_to_ids("\n")
    written = Counter(t for r in free for t in tokenizer(r["query"], add_special_tokens=False)["input_ids"])
    common = written.most_common(1)[0][0]
    with torch.no_grad():
        model.lm_head.weight[newline] = 2 * model.lm_head.weight[common]
    model.save_pretrained(path)
    unstopped = generate(tmp_path / "unstopped", scifact, stop=[], **options)
    stopped = generate(tmp_path / "stopped", scifact, **options)
    ends = [r for r in unstopped if "\n" in r["query"]]
    assert ends, "the edited model never writes a newline"
    for full, cut in zip(unstopped, stopped):
        assert "\n" not in cut["query"]
        assert cut["query"] == full["query"].split("\n")[0].strip()
        assert cut["log_probs"] == pytest.approx(full["log_probs"][: len(cut["log_probs"])], abs=1e-5)
    assert any(len(r["log_probs"]) < 24 for r in stopped)
    assert {r["extra"]["finish"] for r in stopped} <= {"stop", "eos", "length"}
    assert all(r["extra"]["finish"] == "stop" for r, full in zip(stopped, unstopped) if "\n" in full["query"])
    assert all(r["extra"]["finish"] == "length" for r in unstopped if len(r["log_probs"]) == 24)


def test_custom_stop_strings_cut_the_query_before_them(models, scifact, tmp_path):
    options = {"model": str(models["gpt2"]), "num_docs": 6, "max_new_tokens": 16, "batch_size": 3}
    free = generate(tmp_path / "free", scifact, stop=[], **options)
    marker = next(ch for ch in free[0]["query"][3:] if ch.isalpha())
    cut = generate(tmp_path / "cut", scifact, stop=[marker, "\n"], **options)
    for full, short in zip(free, cut):
        at = full["query"].find(marker, len(full["query"]) - len(full["query"].lstrip()))
        expected = full["query"][:at].strip() if at >= 0 else full["query"]
        assert short["query"] == expected.split("\n")[0].strip()
    assert len(cut[0]["log_probs"]) < len(free[0]["log_probs"])


def test_sampling_writes_several_queries_per_document(models, scifact, tmp_path):
    options = {
        "model": str(models["llama"]),
        "prompt": "promptagator",
        "num_docs": 4,
        "max_new_tokens": 8,
        "max_doc_tokens": 48,
        "do_sample": True,
        "temperature": 0.7,
        "num_queries_per_doc": 3,
        "batch_size": 2,
    }
    records = generate(tmp_path / "a", scifact, **options)
    again = generate(tmp_path / "b", scifact, **options)
    assert len(records) == 12 and len({r["query_id"] for r in records}) == 12
    assert [r["query"] for r in records] == [r["query"] for r in again]
    by_doc = {}
    for r in records:
        by_doc.setdefault(r["doc_id"], []).append(r["query"])
    assert len(by_doc) == 4 and any(len(set(qs)) > 1 for qs in by_doc.values())


@pytest.mark.parametrize("quantization, layer", [("int8", "Linear8bitLt"), ("nf4", "Linear4bit")])
def test_bitsandbytes_quantisation_runs_on_cpu(quantization, layer, models, scifact, tmp_path):
    ctx = context(
        tmp_path,
        scifact,
        model=str(models["llama"]),
        quantization=quantization,
        num_docs=3,
        max_new_tokens=4,
        batch_size=3,
    )
    model, _ = ctx.component.load(ctx.component_context())
    assert type(model.model.layers[0].mlp.up_proj).__name__ == layer
    generate_queries(ctx.component_context(), ctx.component, ctx.dir / "queries.jsonl")
    records = [json.loads(line) for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]
    assert len(records) == 3 and all(r["log_probs"] and max(r["log_probs"]) <= 0 for r in records)
    ran = json.loads((ctx.dir / "queries.stats.json").read_text())["ran_with"]
    assert ran["quantization"] == quantization and ran["device"] == "cpu" and ran["precision"] in ("bf16", "fp32")


def test_options_are_validated_before_loading_anything(scifact, tmp_path):
    from inparsx.recipe import RecipeErrors

    for bad, key in (
        (dict(temperature=0.7), "do_sample"),
        (dict(prompt="custom"), "template"),
        (dict(n_fewshot=9), "n_fewshot"),
        (dict(quantization="int4"), "quantization"),
        (dict(batch_sise=8), "batch_sise"),
    ):
        with pytest.raises(RecipeErrors, match=key):
            context(tmp_path, scifact, model="missing/model", **bad)


def test_a_model_that_cannot_be_loaded_is_a_clear_error(scifact, tmp_path):
    from inparsx.errors import InparsxError

    with pytest.raises(InparsxError, match="cannot load generator model"):
        generate(tmp_path, scifact, model=str(tmp_path / "no-such-model"), num_docs=2)


def test_prompt_builder_takes_the_base_signature_and_the_context_cap_is_its_own_method():
    import inspect
    from types import SimpleNamespace

    from inparsx.generate.hf import HFGenerator
    from inparsx.generate.prompted import PromptedGenerator

    assert "prompt_builder" not in vars(HFGenerator), "hf must not give the third argument another meaning"
    assert list(inspect.signature(PromptedGenerator.prompt_builder).parameters) == [
        "self",
        "ctx",
        "tokenizer",
        "max_prompt_tokens",
    ]
    generator = HFGenerator(HFGenerator.Options(model="m", max_prompt_tokens=500, max_new_tokens=40))

    def model(**config):
        return SimpleNamespace(config=SimpleNamespace(**config))

    assert generator.max_prompt_tokens_for(None) == 500
    assert generator.max_prompt_tokens_for(model(max_position_embeddings=4096)) == 500
    assert generator.max_prompt_tokens_for(model(max_position_embeddings=512)) == 512 - 40
    assert generator.max_prompt_tokens_for(model(n_positions=256)) == 256 - 40
    assert generator.max_prompt_tokens_for(model(n_positions=256, is_encoder_decoder=True)) == 500


def test_a_prompt_longer_than_the_context_window_is_cut_to_fit(models, scifact, tmp_path):
    from inparsx.generate.hf import HFGenerator
    from inparsx.testing import component_context

    generator = HFGenerator(
        HFGenerator.Options(
            model=str(models["gpt2"]),
            prompt="inpars",
            max_doc_tokens=2000,
            max_prompt_tokens=100_000,
            max_new_tokens=24,
            dtype="fp32",
        )
    )
    ctx = component_context(scifact, work_dir=tmp_path)
    model, tokenizer = generator.load(ctx)
    builder = generator.prompt_builder(ctx, tokenizer, generator.max_prompt_tokens_for(model))
    longest = max(scifact.docs_iter(), key=lambda doc: len(doc.full_text))
    assert len(generator.prompt_builder(ctx, tokenizer).build(longest).input_ids) > 1024
    assert len(builder.build(longest).input_ids) <= 1024 - 24
