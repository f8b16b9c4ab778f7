"""One ``auto`` precision rule for training and inference, decided from the hardware at run time."""

from __future__ import annotations

import pytest
import torch

from inparsx import precision
from inparsx.errors import InparsxError

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


@pytest.mark.parametrize(
    "device, native, expected", [(CPU, True, "bf16"), (CPU, False, "fp32"), (CUDA, True, "bf16"), (CUDA, False, "fp16")]
)
def test_the_rule(monkeypatch, device, native, expected):
    monkeypatch.setattr(precision, "native_bf16", lambda d: native)
    assert precision.auto_precision(device) == expected
    assert precision.resolve_precision("auto", device) == expected
    assert precision.resolve_precision("fp32", device) == "fp32"  # asked for: kept


def test_fp16_on_a_cpu_is_refused_naming_the_key():
    with pytest.raises(InparsxError, match="train.precision = 'fp16' needs a GPU"):
        precision.resolve_precision("fp16", CPU, "train.precision")


@pytest.mark.parametrize("native", [True, False])
def test_training_and_inference_follow_the_same_rule(monkeypatch, native):
    from inparsx.generate.hf import HFOptions, generator_precision
    from inparsx.rerank.hardware import resolve_dtype
    from inparsx.train.common import precision_flags, resolve_training_precision
    from inparsx.tune.cpo import CPOOptions, CPOTuner

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(precision, "native_bf16", lambda d: native)
    expected = "bf16" if native else "fp32"
    assert resolve_training_precision("auto") == expected
    assert precision_flags("auto") == {"bf16": native, "fp16": False, "use_cpu": True}
    assert precision.precision_name(resolve_dtype("auto", CPU)) == expected
    assert generator_precision(HFOptions(model="m")) == expected
    tuner = CPOTuner(CPOOptions(base_model="m", judge="consistency"))
    assert tuner.precision_flags() == {"bf16": native, "fp16": False, "use_cpu": True}


def test_native_bf16_needs_the_cpu_feature(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_feature", lambda: None)
    assert not precision.native_bf16(CPU)  # oneDNN also says yes on a plain AVX512 CPU that only emulates bf16


def test_what_ran_is_said_in_resolved_words(monkeypatch):
    monkeypatch.setattr(precision, "cpu_bf16_feature", lambda: "AVX512-BF16")
    assert precision.describe(CPU, "auto", "bf16") == "cpu, bf16 (auto: this CPU computes bf16 natively (AVX512-BF16))"
    assert precision.describe(CPU, "auto", "fp32") == "cpu, fp32 (auto: this CPU has no native bf16)"
    assert precision.ran_with(CPU, "bf16", "bf16") == {
        "device": "cpu",
        "precision": "bf16",
        "precision_reason": "asked for",
    }
    assert precision.precision_name(torch.bfloat16) == "bf16" and precision.precision_name("torch.float32") == "fp32"


def test_recipes_and_docs_use_the_same_words_for_auto():
    """Every comment on a precision/dtype "auto" line of a shipped recipe states the one rule, in its words."""
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for recipe in sorted((root / "recipes").glob("*.toml")):
        for number, line in enumerate(recipe.read_text().splitlines(), 1):
            if re.match(r'(precision|dtype) = "auto"', line):
                comment = line.partition("#")[2].strip()
                assert comment == precision.AUTO_COMMENT, f"{recipe.name}:{number}: {comment}"
