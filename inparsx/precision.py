"""The one ``auto`` precision rule, for training and inference alike, decided from the hardware at run time.

``auto`` means: **bf16 where the device computes it natively** (a CUDA GPU of compute capability 8.0 or later;
a CPU with AVX512-BF16 or AMX-BF16), **fp16 on an older CUDA GPU, fp32 elsewhere**. The trainers
(``train.precision``), the CPO tuner (``tune.precision``), the rerankers and every scorer built on them
(``rerank.dtype``, a filter's or judge's ``dtype``) and the ``hf`` generator (``generate.dtype``) all resolve
``auto`` here, so a recipe's models run in one precision on one machine.

Why: on a CPU without native bf16 (AVX2 only) bf16 matrix products are emulated and far slower than fp32, so
``auto`` stays fp32 there. With AVX512-BF16 (a 2-core AMD EPYC, ``bench/precision.py``, loaded machine) a
training step of the quickstart's MiniLM was 1.15x faster in bf16 autocast with the top 2 layers trained and
1.63x with all layers, and a train-split check of the quickstart moved nDCG@10 by less than its noise (the
CHANGELOG gives the figures). A GPU emulating bf16 (before Ampere) is slower than in fp16, which those GPUs
compute natively. torch is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

AUTO_RULE = (
    "bf16 where the device computes it natively (a CUDA GPU of compute capability 8.0 or later, a CPU "
    "with AVX512-BF16 or AMX), fp16 on an older CUDA GPU, fp32 elsewhere"
)
"""The ``auto`` rule in words: the same words in every docstring, recipe comment and document."""

AUTO_DESCRIPTION = f"auto: {AUTO_RULE}"
"""The description of every ``dtype``/``precision`` option (docs/recipes.md shows it)."""

AUTO_COMMENT = "bf16 where native (GPU cc 8.0+, CPU with AVX512-BF16/AMX), fp16 on an older GPU, else fp32"
"""The rule as recipes' comments state it (shorter, same words)."""

NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""Precision option -> torch dtype name."""


def cpu_bf16_feature() -> str | None:
    """``"AMX-BF16"`` or ``"AVX512-BF16"`` when this CPU has the feature (``/proc/cpuinfo`` flags), else
    ``None``. oneDNN alone also reports bf16 on plain AVX512 CPUs, which only emulate it."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return None
    if "amx_bf16" in flags:
        return "AMX-BF16"
    return "AVX512-BF16" if "avx512_bf16" in flags else None


def native_bf16(device: Any) -> bool:
    """Whether ``device`` (a ``torch.device``) computes bf16 natively: a CUDA GPU of compute capability 8.0+
    (emulation not counted), or a CPU with AVX512-BF16 or AMX that oneDNN uses
    (``torch.ops.mkldnn._is_mkldnn_bf16_supported``)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        try:
            return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()) and cpu_bf16_feature() is not None
        except (AttributeError, RuntimeError):
            return False
    return False


def auto_precision(device: Any) -> str:
    """What ``auto`` resolves to on ``device``: ``bf16``, ``fp16`` or ``fp32`` (:data:`AUTO_RULE`)."""
    if native_bf16(device):
        return "bf16"
    return "fp16" if device.type == "cuda" else "fp32"


def resolve_precision(option: str, device: Any, key: str = "dtype") -> str:
    """A precision option (``auto``, ``bf16``, ``fp16``, ``fp32``) resolved on ``device`` (a ``torch.device``).

    Raises:
        InparsxError: fp16 asked for on a CPU (PyTorch's CPU kernels and autocast do not do fp16 well; ``key``,
            e.g. ``train.precision``, is named).
    """
    from inparsx.errors import InparsxError

    resolved = auto_precision(device) if option == "auto" else option
    if resolved == "fp16" and device.type == "cpu":
        raise InparsxError(f"{key} = 'fp16' needs a GPU; on a CPU use 'bf16' (where supported) or 'fp32'")
    return resolved


def torch_dtype(precision: str) -> Any:
    """The torch dtype of a resolved precision (``bf16`` -> ``torch.bfloat16``)."""
    import torch

    return getattr(torch, NAMES[precision])


def resolve_dtype(option: str, device: Any, key: str = "dtype") -> Any:
    """The torch dtype of a precision option on ``device``: :func:`resolve_precision` (``auto`` by
    :data:`AUTO_RULE`) then :func:`torch_dtype`; how the rerankers load their models.

    Raises:
        InparsxError: fp16 asked for on a CPU (``key`` is named).
    """
    return torch_dtype(resolve_precision(option, device, key))


def precision_name(dtype: Any) -> str:
    """``bf16``/``fp16``/``fp32`` for a torch dtype (or its name); other dtypes by their torch name."""
    text = str(dtype).removeprefix("torch.")
    return {name: short for short, name in NAMES.items()}.get(text, text)


def reason(option: str, resolved: str, device: Any) -> str:
    """Why ``resolved`` ran, in words: ``auto: this CPU computes bf16 natively (AVX512-BF16)``, ``auto: this
    CPU has no native bf16``, ``auto: this GPU has no native bf16``, ``asked for``..."""
    if option != "auto":
        return "asked for"
    kind = "GPU" if device.type == "cuda" else "CPU" if device.type == "cpu" else device.type
    if resolved == "bf16":
        feature = f" ({cpu_bf16_feature()})" if device.type == "cpu" else ""
        return f"auto: this {kind} computes bf16 natively{feature}"
    return f"auto: this {kind} has no native bf16"


def describe(device: Any, option: str, resolved: str) -> str:
    """``cpu, bf16 (auto: this CPU computes bf16 natively (AVX512-BF16))``: what the terminal, summaries,
    model cards and the report say about a model's device and precision."""
    return f"{device}, {resolved} ({reason(option, resolved, device)})"


def ran_with(device: Any, option: str, resolved: str) -> dict[str, str]:
    """The JSON record of what a model ran with: ``{"device", "precision", "precision_reason"}`` (resolved
    values, never ``auto``)."""
    return {"device": str(device), "precision": resolved, "precision_reason": reason(option, resolved, device)}
