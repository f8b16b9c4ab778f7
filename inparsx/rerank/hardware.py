"""Devices, dtypes, model-name resolution and length-sorted batching shared by the rerankers.

torch is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from inparsx.errors import InparsxError

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
"""Option value -> torch dtype name."""

DEFAULT_MAX_LENGTH = 512
"""Tokens per pair when ``max_length`` is not set (BERT's and monoT5's usual limit)."""


def resolve_device(option: str) -> Any:
    """A ``torch.device`` for a ``device`` option: ``auto`` -> ``cuda`` when available, else ``cpu``.

    Raises:
        InparsxError: a CUDA device asked for on a machine without one.
    """
    import torch

    if option == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if option.startswith("cuda") and not torch.cuda.is_available():
        raise InparsxError(f"device {option!r}: no CUDA GPU is available here; use device = 'cpu' or 'auto'")
    return torch.device(option)


def native_bf16(device: Any) -> bool:
    """Whether ``device`` computes bf16 natively (:func:`inparsx.precision.native_bf16`)."""
    from inparsx.precision import native_bf16 as native

    return native(device)


def resolve_dtype(option: str, device: Any) -> Any:
    """The torch dtype for a ``dtype`` option on ``device``; ``auto`` follows the one rule of
    :mod:`inparsx.precision` (bf16 where native, fp16 on an older CUDA GPU, fp32 elsewhere).

    Raises:
        InparsxError: fp16 asked for on a CPU (slow and unsupported by several CPU kernels).
    """
    from inparsx.precision import resolve_precision, torch_dtype

    return torch_dtype(resolve_precision(option, device))


def model_max_length(tokenizer: Any, config: Any, option: int | None) -> int:
    """Tokens per input: ``option`` if set, else the lowest of 512, the tokenizer's ``model_max_length`` and
    the config's ``max_position_embeddings`` (when the model has absolute positions)."""
    if option is not None:
        return option
    limits = [DEFAULT_MAX_LENGTH, getattr(config, "max_position_embeddings", None) or DEFAULT_MAX_LENGTH]
    declared = getattr(tokenizer, "model_max_length", None)
    if isinstance(declared, int) and 0 < declared < 1_000_000:
        limits.append(declared)
    return min(limits)


def length_sorted_batches(lengths: Sequence[int], batch_size: int) -> Iterator[list[int]]:
    """Indices grouped in batches of similar length, longest first, so that dynamic padding pads little.

    Args:
        lengths: token count of each input.
        batch_size: inputs per batch.

    Yields:
        Lists of indices into ``lengths`` (each index exactly once).
    """
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    for start in range(0, len(order), batch_size):
        yield order[start : start + batch_size]


def pad_batch(rows: Sequence[Sequence[int]], pad_id: int, device: Any, extra: Sequence[Sequence[int]] | None = None):
    """Right-pad token-id lists into tensors ``(input_ids, attention_mask[, extra])`` of shape (batch, longest).

    ``extra`` (e.g. BERT's ``token_type_ids``) is padded with zeros.
    """
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    other = torch.zeros((len(rows), width), dtype=torch.long) if extra is not None else None
    for i, row in enumerate(rows):
        ids[i, : len(row)] = torch.tensor(row, dtype=torch.long)
        mask[i, : len(row)] = 1
        if other is not None:
            other[i, : len(row)] = torch.tensor(extra[i], dtype=torch.long)
    tensors = (ids.to(device), mask.to(device))
    return tensors + ((other.to(device),) if other is not None else ())
