"""How large a model is, read without loading its weights: parameter counts and the architecture numbers that
size a KV cache and a LoRA.

Sources, best first: the tensor shapes in a local checkpoint's safetensors headers (the ``safetensors``
library), in a GGUF file's header (the ``gguf`` library; its reader is slow on large vocabularies, so the
answer is cached per file), the hub's safetensors metadata (``HfApi.model_info``), the size of a local
``pytorch_model.bin`` divided by its dtype's bytes, and last the size the model's name states
(``Llama-3.1-8B`` -> 8e9, ``SmolLM2-135M`` -> 1.35e8), flagged as such. Architecture numbers (layers, heads,
hidden size) come from ``config.json`` or the GGUF header.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inparsx.errors import StorageError

NAME_SIZE = re.compile(r"(?:^|[-_/.])(\d+(?:\.\d+)?)([bBmM])(?=$|[-_/.])")
"""A size in a model's name: ``8B``, ``3b``, ``135M``, ``1.5B`` between separators."""

GGUF_LORA_NAMES = {
    "q_proj": "attn_q",
    "k_proj": "attn_k",
    "v_proj": "attn_v",
    "o_proj": "attn_output",
    "gate_proj": "ffn_gate",
    "up_proj": "ffn_up",
    "down_proj": "ffn_down",
}
"""transformers' Llama projection names -> the tensor names llama.cpp's GGUF files give them."""

BIN_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass
class ModelSize:
    """What is known of a model's size.

    Attributes:
        params: parameters (tied weights once), ``None`` when unknown.
        source: where ``params`` comes from, in words (``safetensors``, ``GGUF header``, ``hub metadata``,
            ``file size``, ``its name``).
        arch: ``layers``, ``kv_heads``, ``head_dim``, ``hidden``, ``intermediate`` (those known), and
            ``dtype`` (the checkpoint's ``torch_dtype``) when given.
        linear: ``{tensor name: (rows, cols)}`` of the 2-D weights, for counting LoRA parameters.
    """

    params: int | None = None
    source: str = ""
    arch: dict[str, Any] = field(default_factory=dict)
    linear: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.params is not None

    def describe(self) -> str:
        """``134.5M parameters (GGUF header)``, ``~8.0B parameters (from its name)``, or ``size unknown``."""
        if self.params is None:
            return "size unknown"
        approx = "~" if self.source == "its name" else ""
        return f"{approx}{human_count(self.params)} parameters ({self.source})"


def human_count(n: float) -> str:
    """``8030261248`` -> ``8.0B``; ``134515008`` -> ``134.5M``."""
    return f"{n / 1e9:.1f}B" if n >= 1e9 else f"{n / 1e6:.1f}M"


def model_size(
    path: Path | None,
    gguf_file: str | None,
    model: str,
    hub_params: int | None = None,
    hub_config: dict[str, Any] | None = None,
) -> ModelSize:
    """The size of a model found at ``path`` (a folder or file; ``None`` when it is only on the hub).

    Args:
        path: the local folder or file.
        gguf_file: a GGUF file inside ``path``.
        model: the name as the recipe gives it (for the last resort, its name).
        hub_params: the hub's parameter count, when the hub was asked.
        hub_config: the hub's ``config.json``, when it was read there.
    """
    size = ModelSize()
    if path is not None:
        gguf = path / gguf_file if gguf_file else (path if path.suffix == ".gguf" else None)
        size = _gguf_size(gguf) if gguf is not None and gguf.is_file() else _folder_size(path)
    if not size.known and hub_params:
        size.params, size.source = hub_params, "hub metadata"
    if not size.arch and hub_config:
        size.arch = architecture(hub_config)
    if not size.known:
        named = size_from_name(model)
        if named:
            size.params, size.source = named, "its name"
    return size


def size_from_name(model: str) -> int | None:
    """The parameter count a name states (``meta-llama/Llama-3.1-8B-Instruct`` -> 8e9), or ``None``."""
    found = NAME_SIZE.findall(model.rsplit("/", 1)[-1])
    if not found:
        return None
    number, unit = found[-1]
    return int(float(number) * (1e9 if unit in "bB" else 1e6))


def _folder_size(path: Path) -> ModelSize:
    folder = path if path.is_dir() else path.parent
    size = ModelSize()
    config = folder / "config.json"
    if config.is_file():
        try:
            size.arch = architecture(json.loads(config.read_text(encoding="utf-8")))
        except (OSError, ValueError):
            pass
    files = sorted(folder.glob("*.safetensors")) or sorted(folder.glob("*/*.safetensors"))
    if files:
        shapes = _safetensors_shapes(files)
        if shapes:
            size.params = sum(_numel(s) for s in shapes.values())
            size.source = "safetensors"
            size.linear = {name: (s[0], s[1]) for name, s in shapes.items() if len(s) == 2}
            return size
    bins = sorted(folder.glob("pytorch_model*.bin"))
    if bins:
        per = BIN_DTYPE_BYTES.get(str(size.arch.get("dtype", "float32")), 4)
        size.params = sum(f.stat().st_size for f in bins) // per
        size.source = "file size"
    return size


def _safetensors_shapes(files: list[Path]) -> dict[str, list[int]]:
    """Every floating-point tensor's shape from the headers of ``files`` (``safetensors.safe_open``; no tensor
    is read)."""
    from safetensors import SafetensorError, safe_open

    shapes: dict[str, list[int]] = {}
    for file in files:
        try:
            with safe_open(str(file), "np") as handle:
                for key in handle.keys():
                    tensor = handle.get_slice(key)
                    if tensor.get_dtype().startswith(("I", "U", "BOOL")):
                        continue  # integer buffers (BERT's position_ids), not parameters
                    shapes[key if key not in shapes else f"{file.name}/{key}"] = list(tensor.get_shape())
        except (OSError, ValueError, RuntimeError, SafetensorError):
            continue  # an unreadable header: the size is unknown here, and loading the model will say why
    return shapes


def _numel(shape: list[int]) -> int:
    total = 1
    for dim in shape:
        total *= int(dim)
    return total


def _gguf_size(file: Path) -> ModelSize:
    """Parameters and architecture from a GGUF file's header, cached by (path, size, modification time)."""
    from inparsx.artifacts import cache_home

    stat = file.stat()
    key = f"{file.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache = cache_home() / "preflight" / "gguf-sizes.json"
    try:
        known = json.loads(cache.read_text())
    except (OSError, ValueError):
        known = {}
    if key not in known:
        known[key] = _read_gguf(file)
        from inparsx.io import write_json

        try:
            write_json(cache, known)
        except (OSError, StorageError):
            pass  # a read-only cache only costs the next check the same read
    entry = known[key]
    return ModelSize(
        entry["params"], "GGUF header", entry["arch"], {name: tuple(shape) for name, shape in entry["linear"].items()}
    )


def _read_gguf(file: Path) -> dict[str, Any]:
    from gguf import GGUFReader

    reader = GGUFReader(str(file))

    def value(name: str) -> Any:
        found = reader.fields.get(name)
        if found is None or not found.data:
            return None
        part = found.parts[found.data[0]]
        return bytes(part).decode() if found.types and found.types[0].name == "STRING" else part.tolist()[0]

    arch_name = value("general.architecture") or "llama"
    heads = value(f"{arch_name}.attention.head_count")
    hidden = value(f"{arch_name}.embedding_length")
    arch = {
        "layers": value(f"{arch_name}.block_count"),
        "kv_heads": value(f"{arch_name}.attention.head_count_kv") or heads,
        "hidden": hidden,
        "intermediate": value(f"{arch_name}.feed_forward_length"),
        "head_dim": hidden // heads if hidden and heads else None,
    }
    linear = {t.name: [int(d) for d in t.shape] for t in reader.tensors if len(t.shape) == 2}
    return {
        "params": int(sum(int(t.n_elements) for t in reader.tensors)),
        "arch": {k: v for k, v in arch.items() if v is not None},
        "linear": linear,
    }


def architecture(config: dict[str, Any]) -> dict[str, Any]:
    """The numbers of a transformers ``config.json`` that size a KV cache and a LoRA: ``layers`` (the decoder's,
    for an encoder-decoder), ``kv_heads``, ``head_dim``, ``hidden``, ``intermediate``, ``encoder_decoder``, and
    ``dtype`` (``torch_dtype``). Names differ by family (Llama, GPT-2/GPT-J, T5, BERT); the first found wins."""
    config = config.get("text_config") or config

    def first(*names: str) -> Any:
        return next((config[n] for n in names if isinstance(config.get(n), int)), None)

    layers = first("num_decoder_layers", "num_hidden_layers", "n_layer", "num_layers")
    heads = first("num_attention_heads", "n_head", "num_heads")
    hidden = first("hidden_size", "n_embd", "d_model")
    arch = {
        "layers": layers,
        "kv_heads": first("num_key_value_heads") or heads,
        "hidden": hidden,
        "intermediate": first("intermediate_size", "n_inner", "d_ff"),
        "head_dim": first("head_dim", "d_kv") or (hidden // heads if hidden and heads else None),
        "encoder_decoder": bool(config.get("is_encoder_decoder")),
        "dtype": config.get("torch_dtype") or config.get("dtype"),
    }
    return {k: v for k, v in arch.items() if v is not None}


def lora_params(size: ModelSize, rank: int, targets: tuple[str, ...]) -> int | None:
    """Trainable parameters of LoRA adapters of ``rank`` on the linear layers named ``targets``: ``rank x (rows +
    cols)`` for each matching 2-D weight (peft's LoRA: ``A`` is ``r x in``, ``B`` is ``out x r``). ``None`` when
    the weights' shapes are unknown."""
    if not size.linear or not rank:
        return None
    suffixes = tuple(f"{t}.weight" for t in targets) + tuple(
        f"{GGUF_LORA_NAMES[t]}.weight" for t in targets if t in GGUF_LORA_NAMES
    )
    total = sum(rows + cols for name, (rows, cols) in size.linear.items() if name.endswith(suffixes))
    return rank * total if total else None
