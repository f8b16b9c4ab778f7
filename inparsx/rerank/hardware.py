"""Length limits, length-sorted batching and padding shared by the rerankers.

The device and dtype helpers once here are :func:`inparsx.devices.resolve_device` and
:func:`inparsx.precision.resolve_dtype` / :func:`inparsx.precision.native_bf16`; their old names stay importable
from this module for plugins. torch is imported inside the functions, so importing this module stays cheap.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

from inparsx.devices import resolve_device
from inparsx.precision import NAMES, native_bf16, resolve_dtype

__all__ = [
    "DEFAULT_MAX_LENGTH",
    "DTYPES",
    "length_sorted_batches",
    "model_max_length",
    "native_bf16",
    "pad_batch",
    "resolve_device",
    "resolve_dtype",
]

DTYPES = NAMES
"""Option value -> torch dtype name (:data:`inparsx.precision.NAMES`)."""

DEFAULT_MAX_LENGTH = 512
"""Tokens per pair when ``max_length`` is not set (BERT's and monoT5's usual limit)."""


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
        if other is not None and extra is not None:
            other[i, : len(row)] = torch.tensor(extra[i], dtype=torch.long)
    tensors = (ids.to(device), mask.to(device))
    return tensors + ((other.to(device),) if other is not None else ())
