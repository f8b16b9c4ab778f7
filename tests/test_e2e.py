"""Every shipped recipe end to end on 30 real SciFact documents, with tiny random models put in through --set.

The models are random, so the figures mean nothing; what is checked is that every stage runs, hands its
output to the next, and that the final table holds BM25, the trained model and (where the recipe asks) the
zero-shot model, each alone and interpolated.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inparsx.pipeline import run_recipe
from inparsx.recipe import load_recipe

RECIPES = Path(__file__).resolve().parent.parent / "recipes"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict[str, str]:
    """Tiny random models: a Llama generator, a T5 (monoT5) and a BERT (bi-/cross-encoder)."""
    from inparsx.testing import tiny_bert, tiny_llama, tiny_t5, train_tokenizer
    from inparsx.testing.models import DEFAULT_TEXTS

    folder = tmp_path_factory.mktemp("tiny-models")
    t5_tokenizer = train_tokenizer([*DEFAULT_TEXTS, "Query: Document: Relevant: true false"], vocab_size=300)
    return {
        "llama": str(tiny_llama(folder / "llama")),
        "t5": str(tiny_t5(folder / "t5", tokenizer=t5_tokenizer)),
        "bert": str(tiny_bert(folder / "bert")),
    }


@pytest.fixture(autouse=True)
def _env(data_home: Path, prompts_file: Path, monkeypatch) -> None:
    monkeypatch.setenv("INPARSX_DATA_HOME", str(data_home))
    monkeypatch.setenv("INPARSX_PROMPTS_FILE", str(prompts_file))


COMMON = [
    "generate.num_docs=30",
    "retrieve.k=20",
    "triples.depth=20",
    "rerank.depth=5",
    "train.max_steps=2",
    "train.batch_size=4",
    "train.save_steps=0",
    "rerank.batch_size=8",
]
MONOT5 = [
    "train.gradient_accumulation_steps=1",
    "train.max_length=96",
    "train.gradient_checkpointing=false",
    "train.precision='fp32'",
    "rerank.dtype='fp32'",
    "rerank.max_length=96",
]
LLM = [
    "filter.min_tokens=0",
    "generate.max_new_tokens=8",
    "generate.dtype='fp32'",
    "generate.batch_size=8",
    "generate.max_doc_tokens=48",
]


def run(name: str, scifact_small: Path, tmp_path: Path, sets: list[str]) -> dict[str, dict[str, float]]:
    recipe = load_recipe(RECIPES / f"{name}.toml", [f"dataset.name={scifact_small}", *COMMON, *sets])
    run_dir = run_recipe(recipe, tmp_path / name)
    card = (run_dir / "train" / "model" / "README.md").read_text()
    assert f"recipe `{name}`" in card and "triples:" in card
    return json.loads((run_dir / "evaluate" / "metrics.json").read_text())


def test_quickstart(scifact_small, tmp_path, tiny):
    metrics = run(
        "scifact-quickstart",
        scifact_small,
        tmp_path,
        [
            f"train.base_model={tiny['bert']}",
            f"rerank.zero_shot_model={tiny['bert']}",
            "train.max_length=64",
            "rerank.max_length=64",
        ],
    )
    assert set(metrics) == {"retrieve", "rerank", "rerank-alone", "zeroshot", "zeroshot-alone"}
    assert all(0.0 <= values["ndcg@10"] <= 1.0 for values in metrics.values())
    table = (tmp_path / "scifact-quickstart" / "evaluate" / "table.txt").read_text()
    verdicts = [line for line in table.splitlines() if line.startswith("did the trained model beat the zero-shot")]
    assert len(verdicts) == 2 and "rerank-alone" in verdicts[1] and "zeroshot-alone" in verdicts[1]
    assert "rerank: trained model" in table and "interpolated with retrieve: 0.5 x model" in table


def test_inpars_v1(scifact_small, tmp_path, tiny):
    metrics = run(
        "scifact-inpars-v1",
        scifact_small,
        tmp_path,
        [
            f"generate.model={tiny['llama']}",
            f"train.base_model={tiny['t5']}",
            f"rerank.zero_shot_model={tiny['t5']}",
            "filter.keep_top_k=20",
            *LLM,
            *MONOT5,
        ],
    )
    assert {"retrieve", "rerank", "zeroshot"} <= set(metrics)


def FILTER_RERANKER(model: str) -> list[str]:
    """``--set`` items giving the ``reranker`` filter's reranker (``[filter.reranker.reranker]``) a tiny model."""
    return [
        f"filter.reranker.reranker.model={model}",
        "filter.reranker.reranker.dtype='fp32'",
        "filter.reranker.reranker.max_length=96",
    ]


def test_inpars_v2(scifact_small, tmp_path, tiny):
    metrics = run(
        "scifact-inpars-v2",
        scifact_small,
        tmp_path,
        [
            f"generate.model={tiny['llama']}",
            "filter.keep_top_k=20",
            *FILTER_RERANKER(tiny["t5"]),
            f"train.base_model={tiny['t5']}",
            f"rerank.zero_shot_model={tiny['t5']}",
            *LLM,
            *MONOT5,
        ],
    )
    assert {"retrieve", "rerank", "zeroshot"} <= set(metrics)


def test_promptagator(scifact_small, tmp_path, tiny):
    metrics = run(
        "scifact-promptagator",
        scifact_small,
        tmp_path,
        [
            f"generate.model={tiny['llama']}",
            "generate.num_queries_per_doc=2",
            "generate.n_fewshot=2",
            "filter.depth=10",
            "filter.k=10",  # the whole trainer table, as trainer_options was given before
            f"filter.consistency.trainer={{use='bi-encoder', base_model='{tiny['bert']}', max_steps=2, "
            "batch_size=4, max_length=64, save_steps=0}",
            "filter.consistency.reranker={use='bi-encoder', dtype='fp32', max_length=64}",
            f"train.base_model={tiny['t5']}",
            *LLM,
            *MONOT5,
        ],
    )
    assert {"retrieve", "rerank"} <= set(metrics)


@pytest.fixture()
def scripted_dspy(monkeypatch):
    """DSPy calls (the dspy generator and tuner, PATH's proposer) answered by DSPy's DummyLM: a random model
    cannot follow DSPy's output format."""
    from dspy.utils import DummyLM

    from inparsx.generate.dspy_generator import DSPyGenerator

    answer = {
        "reasoning": "It is about cells.",
        "query": "What do cells do in the brain?",
        "proposed_instruction": "Ask what a biologist would ask.",
        "proposed_prefix_for_output_field": "Q:",
    }
    lm = DummyLM([answer] * 2000)
    monkeypatch.setattr(DSPyGenerator, "lm", lambda self, ctx: lm)
    monkeypatch.setattr(DSPyGenerator, "models", lambda self: [])  # the scripted LM loads no model


TUNE_LLM = "{max_new_tokens = 6, max_doc_tokens = 32, dtype = 'fp32', batch_size = 8}"
CPO = [
    "tune.n_docs=4",
    "tune.eval_docs=2",
    "tune.n_candidates=2",
    "tune.max_steps=1",
    "tune.batch_size=2",
    "tune.precision='fp32'",
    "tune.lora_r=2",
    "tune.max_length=1024",
    f"tune.generator={TUNE_LLM}",
]


def test_cpo(scifact_small, tmp_path, tiny):
    tune = CPO + [
        f"tune.base_model={tiny['llama']}",
        f"tune.judge.reranker.model={tiny['bert']}",
        "tune.quantization='none'",
        "tune.judge.reranker.dtype='fp32'",
        "tune.judge.reranker.max_length=64",
    ]
    metrics = run(
        "scifact-cpo",
        scifact_small,
        tmp_path,
        [
            *tune,
            f"train.base_model={tiny['bert']}",
            f"rerank.zero_shot_model={tiny['bert']}",
            "train.max_length=64",
            "rerank.max_length=64",
            "rerank.dtype='fp32'",
            "filter.min_tokens=0",
            *LLM,
        ],
    )
    assert {"retrieve", "rerank", "zeroshot"} <= set(metrics)
    assert json.loads((tmp_path / "scifact-cpo" / "tune" / "query_eval.json").read_text())["documents"] == 2


def test_cpo_cpu(scifact_small, tmp_path, tiny):
    # generate.use = "hf": the stages' wiring with a tiny model; vLLM itself is tested in test_generate_vllm*.py
    metrics = run(
        "scifact-cpo-cpu",
        scifact_small,
        tmp_path,
        [
            *CPO,
            "generate.use='hf'",
            f"tune.base_model={tiny['llama']}",
            f"tune.judge.reranker.model={tiny['bert']}",
            "tune.judge.reranker.dtype='fp32'",
            "tune.judge.reranker.max_length=64",
            f"train.base_model={tiny['bert']}",
            f"rerank.zero_shot_model={tiny['bert']}",
            "train.max_length=64",
            "rerank.max_length=64",
            "filter.min_tokens=0",
            *LLM,
        ],
    )
    assert {"retrieve", "rerank", "rerank-alone", "zeroshot", "zeroshot-alone"} <= set(metrics)


def test_dspy(scifact_small, tmp_path, tiny, scripted_dspy):
    metrics = run(
        "scifact-dspy",
        scifact_small,
        tmp_path,
        [
            "tune.num_docs=4",
            f"tune.judge.reranker.model={tiny['t5']}",
            "tune.judge.reranker.dtype='fp32'",
            "tune.judge.reranker.max_length=96",
            "filter.keep_top_k=20",
            "filter.min_tokens=0",
            *FILTER_RERANKER(tiny["t5"]),
            f"train.base_model={tiny['t5']}",
            f"rerank.zero_shot_model={tiny['t5']}",
            *MONOT5,
        ],
    )
    assert {"retrieve", "rerank", "zeroshot"} <= set(metrics)
    assert (tmp_path / "scifact-dspy" / "tune" / "program.json").is_file()


def test_path(scifact_small, tmp_path, tiny, scripted_dspy):
    inner = [
        f"tune.generator={{model='{tiny['llama']}', prompt='inpars-gbq', "
        "max_new_tokens=6, max_doc_tokens=32, dtype='fp32'}",
        "tune.num_docs=6",
        "tune.n_gold=3",
        "tune.breadth=1",
        "tune.rounds=1",
        "tune.retrieve={use='bm25', k=10}",
        "tune.filter={use=['length'], min_tokens=0}",
        "tune.triples={use='bm25-negatives', depth=10}",
        f"tune.train={{use='cross-encoder', base_model='{tiny['bert']}', max_steps=1, batch_size=4, "
        "max_length=64, save_steps=0}",
        "tune.rerank={use='cross-encoder', model='@train', depth=5, max_length=64, dtype='fp32'}",
    ]
    metrics = run(
        "scifact-path",
        scifact_small,
        tmp_path,
        [
            *inner,
            f"generate.model={tiny['llama']}",
            "filter.keep_top_k=20",
            *FILTER_RERANKER(tiny["t5"]),
            f"train.base_model={tiny['t5']}",
            f"rerank.zero_shot_model={tiny['t5']}",
            *LLM,
            *MONOT5,
        ],
    )
    assert {"retrieve", "rerank", "zeroshot"} <= set(metrics)
    candidates = json.loads((tmp_path / "scifact-path" / "tune" / "path.json").read_text())["candidates"]
    assert len(candidates) == 3


def test_path_cpu(scifact_small, tmp_path, tiny, monkeypatch):
    from inparsx.generate.dspy_generator import DSPyGenerator

    replies = iter(["Improved instruction: Ask what a biologist would ask.", '"Name the finding as a question."'])
    monkeypatch.setattr(DSPyGenerator, "lm", lambda self, ctx: lambda prompt: [next(replies)])  # plain proposer
    bert = tiny["bert"]
    inner = [
        f"tune.generator={{model='{tiny['llama']}', prompt='inpars', "
        "max_new_tokens=6, max_doc_tokens=32, dtype='fp32'}",
        "tune.num_docs=6",
        "tune.n_gold=3",
        "tune.retrieve={use='bm25', fields='flat', k=10}",
        "tune.filter={use=['length'], min_tokens=0}",
        "tune.triples={use='bm25-negatives', depth=10}",
        f"tune.train={{use='bi-encoder', base_model='{bert}', max_steps=1, batch_size=4, max_length=64, save_steps=0}}",
        f"tune.rerank={{use='bi-encoder', model='@train', zero_shot_model='{bert}', depth=5, max_length=64}}",
    ]
    metrics = run(
        "scifact-path-cpu",
        scifact_small,
        tmp_path,
        [
            *inner,
            "generate.use='hf'",
            f"generate.model={tiny['llama']}",
            f"train.base_model={bert}",
            f"rerank.zero_shot_model={bert}",
            "train.max_length=64",
            "rerank.max_length=64",
            "filter.min_tokens=0",
            *LLM,
        ],
    )
    assert {"retrieve", "rerank", "rerank-alone", "zeroshot", "zeroshot-alone"} <= set(metrics)
    result = json.loads((tmp_path / "scifact-path-cpu" / "tune" / "path.json").read_text())
    assert [c["instruction"] for c in result["candidates"]] == [
        "",
        "Write a search query that the document answers.",
        "Ask what a biologist would ask.",
        "Name the finding as a question.",
    ]
