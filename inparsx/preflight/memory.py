"""The memory a model needs, from its size and how it is used, against this machine's GPUs or RAM.

Weights: parameters x bytes of the dtype (fp32 4, bf16/fp16 2) or of the bitsandbytes quantization (int8 1,
nf4 0.5): accelerate's ``estimate-memory`` rule (the fp32 size halved, quartered, divided by eight). Training
(``Trainer`` with AdamW): accelerate's ``estimate_training_usage`` of the fp32 size: the model, its
gradients and two optimizer states, 4x the fp32 size in fp32, 4.5x in mixed bf16/fp16 (fp32 master weights,
gradients and half-precision copies); a LoRA trains only its adapters that way, beside the frozen (possibly
quantized) base. Generation adds the KV cache of a batch: ``2 x layers x kv_heads x head_dim x tokens x
sequences`` values in the compute dtype. Activations are not counted, so each figure is a floor.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from inparsx.devices import cuda_gpus
from inparsx.models import ModelRef
from inparsx.preflight.sizes import ModelSize, lora_params

GB = 1e9
DTYPE_BYTES = {"fp32": 4.0, "bf16": 2.0, "fp16": 2.0}
QUANT_BYTES = {"int8": 1.0, "nf4": 0.5}
TRAINING_FACTOR = {"fp32": 4.0, "bf16": 4.5, "fp16": 4.5}
"""accelerate's ``estimate_training_usage``: model + gradients + optimizer states, in units of the fp32 size."""


def size_text(n: float) -> str:
    """Bytes in words: ``16.0 GB`` from 1 GB up, ``45 MB`` below (decimal units, as accelerate prints them)."""
    return f"{n / GB:.1f} GB" if n >= GB else f"{n / 1e6:.0f} MB"


@dataclass(frozen=True)
class Machine:
    """What the models must fit in: the GPUs (name, total bytes) and the RAM (total and available bytes)."""

    gpus: tuple[tuple[str, int], ...]
    ram_total: int
    ram_available: int

    def describe(self) -> str:
        if self.gpus:
            return ", ".join(f"GPU {i}: {name} ({total / GB:.1f} GB)" for i, (name, total) in enumerate(self.gpus))
        return f"no GPU; RAM {self.ram_available / GB:.1f} GB available of {self.ram_total / GB:.1f} GB"


def this_machine() -> Machine:
    """The GPUs torch sees (:func:`inparsx.devices.cuda_gpus`) and the RAM (psutil when installed, else
    ``/proc/meminfo``)."""
    gpus = tuple((gpu.name, gpu.total_memory) for gpu in cuda_gpus())
    total, available = _ram()
    return Machine(gpus, total, available)


def _ram() -> tuple[int, int]:
    try:
        import psutil

        memory = psutil.virtual_memory()
        return int(memory.total), int(memory.available)
    except ImportError:
        pass
    values = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            name, _, rest = line.partition(":")
            values[name] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        return 0, 0
    return values.get("MemTotal", 0), values.get("MemAvailable", values.get("MemFree", 0))


@dataclass
class Need:
    """What one use of a model needs. ``weights`` and ``extra`` in bytes (``None``: unknown); ``extra`` is
    ``extra_kind`` (the KV cache, or the training state); ``gpu``: it runs on a GPU; ``spread``: over all GPUs
    (``device_map = "auto"``)."""

    stage: str
    label: str
    dtype: str
    weights: float | None
    extra: float | None = None
    extra_kind: str = ""
    gpu: bool = False
    spread: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def total(self) -> float | None:
        return None if self.weights is None else self.weights + (self.extra or 0.0)

    def describe(self) -> str:
        if self.weights is None:
            return "size unknown"
        parts = [f"{size_text(self.weights)} weights ({self.dtype})"]
        if self.extra_kind:
            parts.append(
                f"{size_text(self.extra)} {self.extra_kind}" if self.extra is not None else f"{self.extra_kind} unknown"
            )
        return " + ".join(parts) + "".join(f"; {note}" for note in self.notes)


def compute_dtype(ref: ModelRef, gpu: bool) -> str:
    """The dtype a model computes in: its ``dtype``, or for ``auto`` 2 bytes on a GPU (bf16 or fp16) and fp32
    on a CPU (what the ``hf`` generator and the trainers take there; a component whose ``auto`` differs
    declares the dtype it resolves to, as the rerankers do: bf16 on a CPU with native bf16)."""
    if ref.dtype in DTYPE_BYTES:
        return ref.dtype
    return "bf16" if gpu else "fp32"


def runs_on_gpu(ref: ModelRef, machine: Machine) -> bool:
    return bool(machine.gpus) and not ref.device.startswith(("cpu", "mps"))


def need(stage: str, label: str, ref: ModelRef, size: ModelSize, machine: Machine) -> Need:
    """The memory ``ref`` needs with ``size`` on ``machine`` (see the module docstring)."""
    gpu = runs_on_gpu(ref, machine)
    dtype = compute_dtype(ref, gpu)
    shown = ref.quantization if ref.quantization in QUANT_BYTES else dtype
    if size.params is None:
        return Need(stage, label, shown, None, gpu=gpu, spread=ref.device_map == "auto")
    per = QUANT_BYTES.get(ref.quantization, DTYPE_BYTES[dtype])
    result = Need(stage, label, shown, size.params * per, gpu=gpu, spread=ref.device_map == "auto")
    if ref.training == "full":  # mixed precision keeps fp32 master weights
        result.weights, result.dtype = size.params * 4.0, "fp32" if dtype == "fp32" else f"fp32, {dtype} compute"
        result.extra = size.params * 4.0 * (TRAINING_FACTOR[dtype] - 1)
        result.extra_kind = "gradients and AdamW states"
    elif ref.training == "lora":
        adapters = lora_params(size, ref.lora_r, ref.lora_targets)
        result.extra_kind = "LoRA training state"
        result.extra = None if adapters is None else adapters * 4 * TRAINING_FACTOR[dtype]
    elif ref.generation is not None:
        result.extra_kind = "KV cache"
        result.extra = kv_cache_bytes(size, ref, dtype)
    return result


def kv_cache_bytes(size: ModelSize, ref: ModelRef, dtype: str) -> float | None:
    """``2 (keys, values) x layers x kv_heads x head_dim x (prompt + new tokens) x batch x sequences`` values
    of ``dtype``; ``None`` when the architecture is unknown."""
    arch, generation = size.arch, ref.generation
    if generation is None or not all(arch.get(k) for k in ("layers", "kv_heads", "head_dim")):
        return None
    tokens = generation.prompt_tokens + generation.new_tokens
    rows = generation.batch_size * generation.sequences
    return 2.0 * arch["layers"] * arch["kv_heads"] * arch["head_dim"] * tokens * rows * DTYPE_BYTES[dtype]


def budget(item: Need, machine: Machine) -> tuple[float, str]:
    """The bytes ``item`` may use and what they are: one GPU (the largest), all of them (``spread``), or the
    RAM available."""
    if item.gpu:
        if item.spread:
            return float(sum(total for _, total in machine.gpus)), f"{len(machine.gpus)} GPU(s) together"
        name, total = max(machine.gpus, key=lambda g: g[1])
        return float(total), f"the largest GPU ({name})"
    return float(machine.ram_available), "the RAM available"
