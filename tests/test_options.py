"""Options that were accepted but did not (fully) reach their behaviour: each now works or is refused when the
recipe loads, with the file, the key, why, and what to use instead."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import InparsxError, RecipeError
from inparsx.plugins import get_registry
from inparsx.recipe import RecipeErrors, load_recipe, validate_recipe
from inparsx.testing import tiny_bert, tiny_t5

RECIPE = """[recipe]
name = "t"

[dataset]
name = "beir:scifact"
"""


def options(kind: str, name: str, **values):
    return get_registry().get(kind, name).Options(**values)


def recipe_errors(tmp_path: Path, text: str, overrides: list[str] | None = None) -> list:
    path = tmp_path / "r.toml"
    path.write_text(RECIPE + text)
    with pytest.raises(RecipeErrors) as info:
        load_recipe(path, overrides)
    return info.value.errors


# row 1: --set filter.<key> wins over a [filter.<name>] sub-table


def test_set_filter_key_overrides_the_filter_subtable(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(
        RECIPE + '[filter]\nuse = ["length", "scores"]\nkeep_top_k = 5\n\n[filter.length]\nmin_tokens = 6\n'
    )
    recipe = load_recipe(path, ["filter.min_tokens=1"])
    (_, length), (_, scores) = recipe.stages["filter"].components
    assert (length.min_tokens, scores.keep_top_k) == (1, 5)
    recipe = load_recipe(path, ["filter.length.min_tokens=2"])
    assert recipe.stages["filter"].components[0][1].min_tokens == 2


def test_filter_command_set_overrides_the_same_way(tmp_path):
    from inparsx.recipe import one_stage_recipe

    recipe = one_stage_recipe(
        "filter", ["length", "scores"], ["length.min_tokens=6", "min_tokens=1", "keep_top_k=5"], "d"
    )
    (_, length), (_, scores) = recipe.stages["filter"].components
    assert (length.min_tokens, scores.keep_top_k) == (1, 5)
    recipe = one_stage_recipe("filter", ["length"], ["filter.length.min_tokens=2"], "d")
    assert recipe.stages["filter"].components[0][1].min_tokens == 2


# row 2: n_negatives reaches training; contradicting values are refused


def write_triples(path: Path, negatives: int, n: int = 6) -> Path:
    rows = [
        {
            "query_id": f"q{i}",
            "query": f"query {i} about cells",
            "pos_id": f"d{i}",
            "pos_text": f"positive {i}",
            "neg_ids": [f"n{i}-{k}" for k in range(negatives)],
            "neg_texts": [f"negative {i} {k}" for k in range(negatives)],
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def bert(tmp_path_factory) -> Path:
    return tiny_bert(tmp_path_factory.mktemp("models") / "bert")


@pytest.fixture(scope="module")
def t5(tmp_path_factory) -> Path:
    return tiny_t5(tmp_path_factory.mktemp("models") / "t5")


def test_training_takes_every_mined_negative_unless_limited(tmp_path, bert):
    triples = write_triples(tmp_path / "t.jsonl", negatives=3)
    cls = get_registry().get("trainers", "cross-encoder")
    trainer = cls(cls.Options(base_model=str(bert), max_steps=1, save_steps=0))
    hf, *_ = trainer.prepare(triples, tmp_path / "m")
    assert hf.train_dataset["label"].count(0.0) == 18 and trainer.negatives == 3
    limited = cls(cls.Options(base_model=str(bert), max_steps=1, save_steps=0, num_negatives=1))
    hf, *_ = limited.prepare(triples, tmp_path / "m2")
    assert hf.train_dataset["label"].count(0.0) == 6


def test_recipe_refuses_num_negatives_that_differ_from_n_negatives(tmp_path):
    text = '[triples]\nuse = "bm25-negatives"\nn_negatives = 4\n\n[train]\nuse = "bi-encoder"\nnum_negatives = 1\n'
    (error,) = recipe_errors(tmp_path, text)
    assert error.key == "train.num_negatives" and error.line == 12
    assert "only 1 of the 4 mined negatives" in error.reason and "leave num_negatives out" in error.reason


def test_consistency_refuses_trainer_num_negatives_other_than_negatives():
    with pytest.raises(ValidationError, match="trainer: num_negatives = 1 but negatives = 3"):
        options("filters", "consistency", by="self", negatives=3, trainer={"use": "bi-encoder", "num_negatives": 1})
    options("filters", "consistency", by="self", negatives=3)
    with pytest.raises(ValidationError, match="by = 'self' scores the self-trained model; remove reranker.model"):
        options("filters", "consistency", by="self", reranker={"use": "bi-encoder", "model": "b"})


# rows 3-6: options given to a nested component that it would ignore are refused


def test_retriever_options_k_is_refused_where_depth_decides():
    with pytest.raises(ValidationError, match="k: would be ignored.*set depth instead"):
        options("miners", "bm25-negatives", retriever={"use": "bm25", "k": 5})
    with pytest.raises(ValidationError, match="k: would be ignored.*set depth instead"):
        options("filters", "consistency", retriever={"use": "bm25", "k": 5})


STAGE_KEYS = [
    ("depth", 5),
    ("interpolate", 0.5),
    ("fusion", "rrf"),
    ("rrf_k", 10),
    ("zero_shot_model", "x"),
    ("first_stage", "x"),
]


@pytest.mark.parametrize("key,value", STAGE_KEYS)
def test_rerank_stage_keys_in_a_filter_reranker_are_refused(key, value):
    with pytest.raises(ValidationError, match=f"{key}: configures the rerank stage"):
        options("filters", "reranker", reranker={"use": "cross-encoder", "model": "m", key: value})


@pytest.mark.parametrize("key,value", STAGE_KEYS)
def test_rerank_stage_keys_in_the_consistency_reranker_are_refused(key, value):
    with pytest.raises(ValidationError, match=f"{key}: configures the rerank stage"):
        options("filters", "consistency", by="reranker", reranker={"use": "cross-encoder", "model": "m", key: value})


def test_consistency_validates_its_retriever_when_the_recipe_loads(tmp_path):
    (error,) = recipe_errors(tmp_path, '[filter]\nuse = ["consistency"]\nretriever = "bm25x"\n')
    assert error.key == "filter.consistency.retriever.use" and "unknown retriever 'bm25x'" in error.reason
    with pytest.raises(ValidationError, match="k3: unknown key of 'bm25s'"):
        options("filters", "consistency", retriever={"use": "bm25s", "k3": 1})


# row 7: train_layers freezes T5's shared embedding (and the head tied to it)


def test_train_layers_freezes_the_t5_shared_embedding(t5):
    from transformers import AutoModelForSeq2SeqLM

    from inparsx.train.common import freeze_lower_layers

    model = AutoModelForSeq2SeqLM.from_pretrained(t5)
    trainable, total = freeze_lower_layers(model, 1)
    assert not model.shared.weight.requires_grad and not model.get_output_embeddings().weight.requires_grad
    assert model.encoder.block[1].layer[0].SelfAttention.q.weight.requires_grad
    assert not model.encoder.block[0].layer[0].SelfAttention.relative_attention_bias.weight.requires_grad
    assert trainable < total - model.shared.weight.numel() + 1


# row 8: no negatives with a loss that has no other negatives


@pytest.mark.parametrize(
    "name,extra", [("cross-encoder", {"loss": "bce"}), ("cross-encoder", {"loss": "lce"}), ("monot5", {})]
)
def test_zero_negatives_refused_where_the_loss_needs_them(name, extra):
    with pytest.raises(ValidationError, match="num_negatives"):
        options("trainers", name, num_negatives=0, **extra)
    options("trainers", "cross-encoder", num_negatives=0, loss="mnrl")
    options("trainers", "bi-encoder", num_negatives=0)


# row 9: warm-up with the constant schedule


def test_warmup_with_the_constant_schedule_is_refused_and_defaults_to_zero():
    with pytest.raises(ValidationError, match="constant_with_warmup"):
        options("trainers", "cross-encoder", lr_scheduler="constant", warmup_ratio=0.1)
    assert options("trainers", "cross-encoder", lr_scheduler="constant").warmup_ratio == 0.0
    assert options("trainers", "monot5").warmup_ratio == 0.0
    assert options("trainers", "cross-encoder").warmup_ratio == 0.1


# rows 10, 12, 13: generator options that a prompt or a model would ignore


@pytest.mark.parametrize(
    "values,expected",
    [
        ({"prompt": "inpars", "n_fewshot": 5}, "n_fewshot would be ignored"),
        ({"prompt": "inpars-gbq", "fewshot_pool": 10}, "fewshot_pool would be ignored"),
        (
            {"prompt": "promptagator", "n_fewshot": 4, "fewshot_pool": 2},
            "fewshot_pool = 2 is smaller than n_fewshot = 4",
        ),
        ({"prompt": "promptagator", "fewshot_pool": 2}, "smaller than n_fewshot = 3"),
        ({"prompt": "inpars", "template": "promptagator-scifact"}, "would replace the 'inpars' template"),
        ({"prompt": "doc2query", "template": "x"}, "would replace the 'doc2query' template"),
        ({"prompt": "custom", "template": "t.txt", "prompts_file": "p.yaml"}, "prompts_file would be ignored"),
    ],
)
def test_generator_options_that_the_prompt_ignores_are_refused(values, expected):
    with pytest.raises(ValidationError, match=expected):
        options("generators", "hf", model="m", **values)


def test_promptagator_few_shot_options_are_accepted():
    opts = options("generators", "hf", model="m", prompt="promptagator", n_fewshot=4, fewshot_pool=4)
    assert opts.fewshot == 4 and options("generators", "hf", model="m", prompt="promptagator").fewshot == 3


def test_prefix_cache_true_is_refused_for_a_seq2seq_model(t5, scifact, tmp_path):
    from inparsx.pipeline import StageContext

    data = {
        "recipe": {"name": "t"},
        "dataset": {"name": "beir:scifact"},
        "generate": {"use": "hf", "model": str(t5), "prompt": "doc2query", "prefix_cache": True, "max_new_tokens": 4},
    }
    recipe = validate_recipe(data, "test", "", get_registry())
    generator = get_registry().get("generators", "hf")(recipe.stages["generate"].components[0][1])
    ctx = StageContext(recipe, "generate", tmp_path, [generator], _dataset=scifact)
    with pytest.raises(InparsxError, match="encoder-decoder .* leave prefix_cache unset"):
        next(generator.generate([next(scifact.docs_iter())], ctx.component_context()))


# row 14: `inparsx rerank --set` of a key the command never reads


@pytest.mark.parametrize("key", ["first_stage=x", "model=x", "depth=5", "rerank.depth=5"])
def test_rerank_command_refuses_keys_it_does_not_read(key):
    from inparsx.recipe import one_stage_recipe
    from inparsx.rerank.command import REFUSED

    with pytest.raises(RecipeError, match=f"--set: {re.escape(key)}: .* is not a --set option of this command"):
        one_stage_recipe("rerank", "cross-encoder", [key], "d", flags={"model": "m", "depth": None}, refused=REFUSED)


# row 15: `inparsx filter` reruns into the same folder retrain and rescore when options change


def test_filter_command_retrains_the_self_model_when_its_options_or_seed_change(scifact_small, tmp_path, monkeypatch):
    from inparsx.filter.command import filter_command
    from inparsx.filter.consistency import ConsistencyFilter

    dataset = BeirFolderDataset(scifact_small)
    qrels, queries = dataset.qrels("test"), dataset.queries("test")
    records = [
        {"query_id": f"s{q}", "doc_id": sorted(qrels[q])[0], "query": queries[q].text} for q in list(queries)[:6]
    ]
    path = tmp_path / "queries.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    trained: list[str] = []

    def fake_train(self, records, ctx):
        trained.append(self.training_key(records, ctx))
        return Path("unused")

    monkeypatch.setattr(ConsistencyFilter, "train_self", fake_train)
    monkeypatch.setattr(ConsistencyFilter, "rerank", lambda self, records, bm25, model, ctx: {})
    base = ["by=self", "retriever=bm25s"]
    for extra, seed in (([], 1), (["negatives=2"], 1), ([], 7), (["trainer={use = 'bi-encoder', epochs = 2}"], 1)):
        filter_command(path, str(scifact_small), tmp_path / "run", "consistency", base + extra, seed)
    assert len(set(trained)) == 4


def test_consistency_reuses_a_self_trained_model_only_with_the_same_key(scifact_small, tmp_path, monkeypatch):
    from inparsx.context import ComponentContext
    from inparsx.filter.consistency import ConsistencyFilter
    from inparsx.pipeline import StageContext

    dataset = BeirFolderDataset(scifact_small)
    data = {"recipe": {"name": "t"}, "dataset": {"name": str(scifact_small)}, "filter": {"use": ["length"]}}
    ctx = StageContext(
        validate_recipe(data, "t", "", get_registry()), "filter", tmp_path, [], "fp", dataset
    ).component_context()
    built: list[dict] = []

    class Miner:
        def mine(self, records, ctx):
            return iter(())

    class Trainer:
        def train(self, triples, out, ctx):
            Path(out).mkdir(parents=True, exist_ok=True)

    def build(self, spec):
        built.append(spec.options)
        return Miner() if spec.kind == "miners" else Trainer()

    monkeypatch.setattr(ComponentContext, "build", build)
    first = ConsistencyFilter(ConsistencyFilter.Options(by="self", negatives=1, retriever="bm25s"))
    first.train_self([], ctx)
    first.train_self([], ctx)
    assert len(built) == 2  # miner + trainer once: the second call reused the model
    ConsistencyFilter(ConsistencyFilter.Options(by="self", negatives=2, retriever="bm25s")).train_self([], ctx)
    assert len(built) == 4 and built[2]["n_negatives"] == 2


# extra: monoT5 answer words carry from training to reranking


def test_monot5_reranker_reads_the_trained_answer_words(t5, tmp_path):
    import shutil

    model = tmp_path / "trained"
    shutil.copytree(t5, model)
    reranker = get_registry().build("rerankers", "monot5", {"device": "cpu", "dtype": "fp32"})
    reranker.load(str(model))
    true_false = list(reranker.label_ids)
    (model / "inparsx_training.json").write_text(
        json.dumps({"options": {"true_token": "false", "false_token": "true"}})
    )
    reranker.load(str(model))
    assert reranker.label_ids == true_false[::-1]
    explicit = get_registry().build("rerankers", "monot5", {"true_token": "true", "device": "cpu"})
    with pytest.raises(InparsxError, match="trained with true_token = 'false'"):
        explicit.load(str(model))


def test_recipe_refuses_monot5_words_that_differ_between_train_and_rerank(tmp_path):
    text = (
        '[train]\nuse = "monot5"\ntrue_token = "yes"\n\n'
        '[rerank]\nuse = "monot5"\nmodel = "@train"\ntrue_token = "true"\n'
    )
    (error,) = recipe_errors(tmp_path, text)
    assert error.key == "rerank.true_token" and "train.true_token = 'yes'" in error.reason


# extra: precision = "auto" picks bf16 only where the GPU computes it natively


def test_auto_precision_does_not_count_emulated_bf16(monkeypatch):
    import torch

    from inparsx.train.common import precision_flags

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert precision_flags("auto") == {"bf16": False, "fp16": True, "use_cpu": False}
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    assert precision_flags("auto")["bf16"]


# extra: runs.json states how deep the rerank really went; the recipe refuses depth > retrieve.k


def test_run_notes_state_the_depth_actually_reranked():
    from inparsx.rerank.options import RerankStageOptions
    from inparsx.rerank.stage import run_notes

    opts = RerankStageOptions(model="m", depth=1000)
    notes = run_notes({"rerank": "m"}, opts, "retrieve", reranked=100)
    assert "top 100 (all it holds; depth = 1000)" in notes["runs"]["rerank"]
    assert "top 1000," in run_notes({"rerank": "m"}, opts, "retrieve", reranked=1000)["runs"]["rerank"]


def test_recipe_refuses_a_rerank_depth_beyond_the_retrieved_run(tmp_path):
    text = '[retrieve]\nuse = "bm25s"\nk = 100\n\n[rerank]\nuse = "cross-encoder"\nmodel = "m"\ndepth = 200\n'
    (error,) = recipe_errors(tmp_path, text)
    assert (error.key, error.line) == ("rerank.depth", 13) and "at most 100" in error.reason


def test_rerank_keys_are_routed_to_the_stage_or_the_reranker(tmp_path):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE + '[rerank]\nuse = "monot5"\nmodel = "m"\ndepth = 20\ntrue_token = "yes"\ndtype = "fp32"\n')
    config = load_recipe(path).stages["rerank"]
    (_, reranker), stage = config.components[0], config.settings
    assert (stage.model, stage.depth, reranker.true_token, reranker.dtype) == ("m", 20, "yes", "fp32")
    assert "depth" not in type(reranker).model_fields and "dtype" not in type(stage).model_fields
    assert load_recipe(path).filled()["rerank"] == {
        "use": "monot5",
        **stage.model_dump(exclude_none=True),
        **reranker.model_dump(exclude_none=True),
    }


def test_a_rerank_key_neither_takes_names_file_line_and_both_sets_of_keys(tmp_path):
    (error,) = recipe_errors(tmp_path, '[rerank]\nuse = "cross-encoder"\nmodel = "m"\ndepht = 5\n')
    assert (error.key, error.line) == ("rerank.depht", 9)
    assert "unknown key of [rerank] or of 'cross-encoder'" in error.reason and "did you mean 'depth'" in error.reason
    assert "batch_size" in error.reason and "zero_shot_model" in error.reason
    (error,) = recipe_errors(tmp_path, '[rerank]\nuse = "cross-encoder"\ndepth = 5\n')
    assert (error.key, error.reason) == ("rerank.model", "required key is missing")


def test_static_cache_reaches_a_seq2seq_models_generate(t5):
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from inparsx.generate.decoding import BatchGenerator

    model, tokenizer = AutoModelForSeq2SeqLM.from_pretrained(t5).eval(), AutoTokenizer.from_pretrained(t5)
    seen: list[dict] = []
    generate = model.generate
    model.generate = lambda **kwargs: seen.append(kwargs) or generate(**kwargs)
    prompt = tokenizer("What is the effect of caffeine")["input_ids"]
    outputs = [
        BatchGenerator(model, tokenizer, ["\n"], 5, cache=cache)([prompt])[0][0].text for cache in ("static", "dynamic")
    ]
    assert seen[0].get("cache_implementation") == "static" and "cache_implementation" not in seen[1]
    assert outputs[0] == outputs[1]


def test_epochs_decide_the_length_unless_max_steps_is_given():
    assert options("trainers", "monot5", epochs=2).max_steps is None
    assert options("trainers", "monot5").max_steps == 156
    with pytest.raises(ValidationError, match="epochs = 2 would be ignored: max_steps = 10"):
        options("trainers", "cross-encoder", epochs=2, max_steps=10)


# CPO loss options that TRL's CPOTrainer would ignore for the chosen loss_type (trl.experimental.cpo.CPOConfig)


def cpo_options(**values):
    return options("tuners", "cpo", base_model="m", judge_model="j", **values)


CPO_IGNORED = [
    ({"simpo_gamma": 0.7}, "simpo_gamma = 0.7 would be ignored: .* not 'sigmoid'"),
    ({"loss_type": "hinge", "simpo_gamma": 0.5}, "simpo_gamma = 0.5 would be ignored"),
    (
        {"loss_type": "alphapo", "alpha": 0.25, "cpo_alpha": 1.0},
        "cpo_alpha = 1 would be ignored: .* sets cpo_alpha = 0",
    ),
    ({"loss_type": "alphapo"}, 'with alpha = 0 is exactly loss_type = "simpo" with cpo_alpha = 0'),
]


@pytest.mark.parametrize("values,expected", CPO_IGNORED)
def test_cpo_loss_options_that_the_loss_ignores_are_refused(values, expected):
    with pytest.raises(ValidationError, match=expected):
        cpo_options(**values)


def test_cpo_loss_defaults_are_trls_for_the_loss_in_use(tmp_path):
    from trl.experimental.cpo import CPOConfig

    assert cpo_options().simpo_gamma is None
    simpo = cpo_options(loss_type="simpo")
    assert (simpo.simpo_gamma, simpo.cpo_alpha) == (0.5, 1.0) == (CPOConfig(str(tmp_path), bf16=False).simpo_gamma, 1.0)
    alphapo = cpo_options(loss_type="alphapo", alpha=0.25)
    trl = CPOConfig(
        str(tmp_path),
        bf16=False,
        loss_type="alphapo",
        alpha=0.25,
        cpo_alpha=alphapo.cpo_alpha,
        simpo_gamma=alphapo.simpo_gamma,
    )
    assert (alphapo.cpo_alpha, alphapo.simpo_gamma) == (trl.cpo_alpha, trl.simpo_gamma) == (0.0, 0.5)
    assert cpo_options(loss_type="simpo", simpo_gamma=1.0, cpo_alpha=0.0).simpo_gamma == 1.0


def test_a_refused_cpo_loss_option_names_the_file_line_and_key(tmp_path):
    text = '[tune]\nuse = "cpo"\nbase_model = "m"\njudge_model = "j"\nloss_type = "ipo"\nsimpo_gamma = 0.3\n'
    (error,) = recipe_errors(tmp_path, text)
    assert error.key.startswith("tune") and "simpo_gamma = 0.3 would be ignored" in error.reason
