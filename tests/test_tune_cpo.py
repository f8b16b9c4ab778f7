"""The ``cpo`` tuner: pairs from judged samples, TRL CPO with a LoRA, a merged model that ``generate`` loads as
``@tune`` and decodes exactly as the trained adapter does."""

from __future__ import annotations

import json

import pytest

from inparsx.pipeline import run_recipe
from inparsx.recipe import load_recipe
from inparsx.records import SyntheticQuery
from inparsx.tune.cpo import build_pairs, completion

RECIPE = """[recipe]
name = "cpo-tiny"
seed = 3
[dataset]
name = "{data}"
[tune]
use = "cpo"
base_model = "{llama}"
generator = {{ max_new_tokens = 6, max_doc_tokens = 32, dtype = "fp32", batch_size = 4 }}
n_docs = 5
n_candidates = 3
eval_docs = 2
judge.by = "mix"
judge.depth = 20
judge.retriever = "bm25s"
judge.reranker = {{ use = "cross-encoder", model = "{bert}", max_length = 48, dtype = "fp32" }}
lora_r = 4
lora_alpha = 8
lora_dropout = 0.0
precision = "fp32"
max_steps = 2
batch_size = 2
learning_rate = 0.05
max_length = 2048
[generate]
use = "hf"
model = "@tune"
num_docs = 4
max_new_tokens = 6
max_doc_tokens = 32
dtype = "fp32"
"""


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    from inparsx.testing import tiny_bert, tiny_llama

    folder = tmp_path_factory.mktemp("tiny-cpo")
    return {"llama": str(tiny_llama(folder / "llama")), "bert": str(tiny_bert(folder / "bert"))}


def record(qid: str, doc: str, query: str) -> SyntheticQuery:
    return SyntheticQuery(query_id=qid, doc_id=doc, query=query, prompt_text="Document: x\nRelevant Query:")


def test_pairs_take_the_best_and_worst_distinct_queries_and_respect_min_margin():
    records = [
        record("a0", "a", "q one"),
        record("a1", "a", "q two"),
        record("a2", "a", "q one"),
        record("a3", "a", "q three"),
        record("b0", "b", "same"),
        record("b1", "b", "same"),
        record("c0", "c", "x"),
        record("c1", "c", "y"),
    ]
    scores = {"a0": 0.2, "a1": 0.9, "a2": 0.95, "a3": 0.1, "b0": 1.0, "b1": 0.0, "c0": 0.5, "c1": 0.45}
    pairs = build_pairs(records, scores, min_margin=0.1)
    assert [p["doc_id"] for p in pairs] == ["a"]  # b: one distinct query; c: margin 0.05 < 0.1
    pair = pairs[0]
    assert (pair["chosen_query"], pair["rejected_query"]) == ("q two", "q three")  # "q one" keeps its first score
    assert pair["chosen"] == " q two\n" and pair["margin"] == pytest.approx(0.8)
    assert len(build_pairs(records, scores, min_margin=0.0)) == 2


def test_completion_adds_a_space_only_after_a_label():
    assert completion("Query:", "what", "\n") == " what\n"
    assert completion("<|assistant|>\n", "what", "") == "what"


def test_options_refuse_what_the_tuner_sets():
    from inparsx.tune.cpo import CPOOptions

    with pytest.raises(ValueError, match="num_queries_per_doc are set by the tuner"):
        CPOOptions(base_model="m", judge={"by": "consistency"}, generator={"num_queries_per_doc": 2})
    with pytest.raises(ValueError, match="by = 'reranker' needs a reranker and its model"):
        CPOOptions(base_model="m", judge={})


def test_the_generator_is_a_typed_spec_of_a_model_loading_generator(tmp_path):
    from inparsx.recipe import RecipeErrors
    from inparsx.tune.cpo import CandidateGeneratorSpec, CPOOptions

    judge = {"by": "consistency"}
    plain = CPOOptions(base_model="m", judge=judge, generator={"max_new_tokens": 6})
    assert isinstance(plain.generator, CandidateGeneratorSpec) and plain.generator.use == "hf"
    assert plain.model_dump()["generator"] == {"max_new_tokens": 6}  # as given: the fingerprint is kept
    assert CPOOptions(base_model="m", judge=judge).model_dump()["generator"] == {}
    vllm = CPOOptions(base_model="m", judge=judge, generator={"use": "vllm", "dtype": "fp32"})
    assert vllm.model_dump()["generator"] == {"use": "vllm", "dtype": "fp32"}
    sampler = CPOOptions(base_model="m", judge=judge, n_candidates=3, temperature=0.8, top_p=0.9).sampler(top_k=5)
    assert sampler.use == "hf" and sampler.options == {
        "model": "m",
        "num_docs": 300,
        "do_sample": True,
        "num_queries_per_doc": 3,
        "temperature": 0.8,
        "top_p": 0.9,
        "top_k": 5,
    }
    assert CPOOptions(base_model="m", judge=judge).sampler(model="tuned", do_sample=False).options["model"] == "tuned"
    with pytest.raises(ValueError, match=r"model, top_p are set by the tuner \(model: base_model, top_p: top_p\)"):
        CPOOptions(base_model="m", judge=judge, generator={"model": "x", "top_p": 0.5})
    with pytest.raises(ValueError, match="generator.use = 'qrels': a generator that loads no model of its own"):
        CPOOptions(base_model="m", judge=judge, generator={"use": "qrels"})
    recipe = tmp_path / "r.toml"
    recipe.write_text(
        '[recipe]\nname = "r"\n[tune]\nuse = "cpo"\nbase_model = "m"\njudge.by = "consistency"\n'
        "[tune.generator]\nmax_new_tokenz = 6\n"
    )
    with pytest.raises(RecipeErrors, match=r"r.toml:\d+: tune.generator.max_new_tokenz: unknown key of 'hf'"):
        load_recipe(recipe)


def test_cpo_round_trip(tmp_path, scifact_small, tiny):
    """Tune, then generate with ``model = "@tune"``: the saved merged model decodes greedily exactly as the
    base plus the trained adapter, and it differs from the base."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from inparsx.generate.decoding import BatchGenerator

    path = tmp_path / "cpo.toml"
    path.write_text(RECIPE.format(data=scifact_small, **tiny))
    run_dir = run_recipe(load_recipe(path), tmp_path / "run")
    tune = run_dir / "tune"
    pairs = [json.loads(line) for line in (tune / "pairs.jsonl").read_text().splitlines()]
    assert pairs and all(p["chosen_score"] > p["rejected_score"] for p in pairs)
    training = json.loads((tune / "training.json").read_text())
    assert training["train"]["global_step"] == 2 and len(training["log"]) == 2
    assert {"loss", "rewards/accuracies", "rewards/margins"} <= set(training["log"][0])
    evaluation = json.loads((tune / "query_eval.json").read_text())
    assert evaluation["documents"] == 2 and evaluation["before"] is not None and evaluation["after"] is not None

    base = AutoModelForCausalLM.from_pretrained(tiny["llama"], dtype=torch.float32)
    merged = AutoModelForCausalLM.from_pretrained(tune / "model", dtype=torch.float32)
    assert any(not torch.equal(a, b) for a, b in zip(base.state_dict().values(), merged.state_dict().values()))
    adapted = PeftModel.from_pretrained(base, str(tune / "adapter")).eval()
    tokenizer = AutoTokenizer.from_pretrained(tune / "model")
    engine = BatchGenerator(adapted, tokenizer, ["\n"], max_new_tokens=6, cache="dynamic")
    generated = [json.loads(line) for line in (run_dir / "generate" / "queries.jsonl").read_text().splitlines()]
    assert len(generated) == 4
    for row in generated:
        ids = tokenizer(row["prompt_text"])["input_ids"]
        assert engine([ids])[0][0].text == row["query"]


def test_qlora_on_an_nf4_base_trains_and_merges_into_a_full_precision_model(tmp_path, tiny):
    """``quantization = "nf4"``: CPO trains the LoRA on a 4-bit base (bitsandbytes), and the merge reloads the
    base unquantised, so the saved model has no quantization config and plain weights."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    from inparsx.context import ComponentContext
    from inparsx.tune.cpo import CPOOptions, CPOTuner, save_merged

    options = CPOOptions(
        base_model=tiny["llama"],
        judge={"by": "consistency"},
        quantization="nf4",
        precision="fp32",
        lora_r=2,
        target_modules=["q_proj", "v_proj"],
        max_steps=1,
        batch_size=2,
        learning_rate=0.05,
        max_length=64,
        generator={"dtype": "fp32"},
    )
    prompt = "Document: cells grow\nRelevant Query:"
    pairs = [{"prompt": prompt, "chosen": " how do cells grow?\n", "rejected": " what\n"}] * 2
    ctx = ComponentContext(None, tmp_path)  # type: ignore[arg-type]
    base, _ = CPOTuner(options).load_base(train=True)
    assert any(type(module).__name__ == "Linear4bit" for module in base.modules())
    metrics = CPOTuner(options).train(pairs, ctx)
    assert metrics["train"]["global_step"] == 1 and metrics["log"][0]["loss"] > 0
    merged = save_merged(options, tmp_path / "adapter", tmp_path / "model")
    assert getattr(AutoConfig.from_pretrained(merged), "quantization_config", None) is None
    model = AutoModelForCausalLM.from_pretrained(merged, dtype=torch.float32)
    assert all(p.dtype == torch.float32 for p in model.parameters())


def test_a_crash_after_training_resumes_without_training_again(tmp_path, scifact_small, tiny, monkeypatch):
    """The adapter saved under the stage's key is reused: a crash in ``save_merged`` (after the adapter was
    saved and the checkpoints removed) and a rerun train no step, and the rerun writes the first run's metrics."""
    from trl.experimental.cpo import CPOTrainer

    from inparsx.tune import cpo

    steps = []
    step = CPOTrainer.training_step
    monkeypatch.setattr(CPOTrainer, "training_step", lambda self, *a, **k: steps.append(1) or step(self, *a, **k))
    merge = cpo.save_merged

    def crash(*args, **kwargs):
        raise RuntimeError("killed while merging")

    path = tmp_path / "cpo.toml"
    path.write_text(RECIPE.format(data=scifact_small, **tiny).replace("eval_docs = 2", "eval_docs = 0"))
    recipe = load_recipe(path)
    monkeypatch.setattr(cpo, "save_merged", crash)
    with pytest.raises(RuntimeError, match="killed while merging"):
        run_recipe(recipe, tmp_path / "run", stop="tune")
    tune = tmp_path / "run" / "tune"
    assert len(steps) == 2 and (tune / "adapter").is_dir() and not (tune / "checkpoints").exists()
    first = json.loads((tune / cpo.ADAPTER_DONE).read_text())

    steps.clear()
    monkeypatch.setattr(cpo, "save_merged", merge)
    run_recipe(recipe, tmp_path / "run", stop="tune")
    assert steps == [] and (tune / "model" / "config.json").is_file()
    training = json.loads((tune / "training.json").read_text())
    assert training["train"]["global_step"] == 2 and training["log"] == first["metrics"]["log"]
