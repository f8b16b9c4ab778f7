"""Where a generated query ends: stop strings matched on decoded text, and the tokens that make up the query.

Shared by every engine that generates token by token (transformers in :mod:`inparsx.generate.decoding`, vLLM
in :mod:`inparsx.generate.vllm_generator`), so that the same tokens give the same query, the same
log-probabilities and the same ``finish`` whatever ran the model. Imports nothing heavy.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Generation:
    """One generated query: its text (stripped, cut before the stop string), the ids of the tokens that make
    it up, their natural-log probabilities (same length), and why it ended: ``stop`` (a stop string),
    ``eos`` (an end-of-sequence token) or ``length`` (``max_new_tokens`` reached: possibly cut short)."""

    text: str
    token_ids: list[int] = field(default_factory=list)
    log_probs: list[float] = field(default_factory=list)
    finish: str = "length"


def find_stop(text: str, stops: list[str]) -> int | None:
    """Index of the first stop string in ``text``, ignoring leading whitespace (a model that opens with a
    newline has not finished its query yet); ``None`` when there is none."""
    start = len(text) - len(text.lstrip())
    found = [at for stop in stops if stop and (at := text.find(stop, start)) >= 0]
    return min(found) if found else None


def cut_at_stop(tokenizer: Any, ids: list[int], log_probs: list[float], stops: list[str], finish: str) -> Generation:
    """The query that generated tokens ``ids`` (end-of-sequence token excluded) make: the decoded text before
    the first stop string (:func:`find_stop`), and the tokens (and log-probabilities) that produce it. The
    token that completed the stop string is kept only if it also carries query characters. ``finish`` is
    kept when no stop string is found, else it is ``stop``."""
    text = tokenizer.decode(ids, skip_special_tokens=True)
    at = find_stop(text, stops)
    if at is None:
        return Generation(text.strip(), list(ids), list(log_probs), finish)
    before = tokenizer.decode(ids[:-1], skip_special_tokens=True)
    keep = len(ids) - 1 if len(before) >= at else len(ids)
    return Generation(text[:at].strip(), list(ids[:keep]), list(log_probs[:keep]), "stop")
