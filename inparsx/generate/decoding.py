"""Batched query generation with transformers: left padding, a shared-prefix KV cache, stopping on decoded
text, and the log-probability of every generated token.

Imports torch and transformers at module level: only :mod:`inparsx.generate.hf` imports it, inside methods.

Why each piece (measured on CPU, see ``bench/generate.py``):
- prompts are left-padded and batched, and the attention mask gives every row its true positions
  (transformers derives ``position_ids`` from the mask), so greedy output matches batch size 1;
- the part of the prompt every document shares (the static few-shot examples) is run through the model
  once; its keys and values are copied into each batch's cache, with the padding placed between that prefix
  and each document (the mask hides it);
- a preallocated (static) KV cache replaces the default one that is concatenated at every step;
- a row stops as soon as its decoded text holds a stop string (any tokenizer: no hard-coded newline id, unlike
  the InPars toolkit's GPT-2 token 198) and the batch ends when every row has stopped.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from transformers import (
    DynamicCache,
    LogitsProcessor,
    LogitsProcessorList,
    StaticCache,
    StoppingCriteria,
    StoppingCriteriaList,
)
from transformers.cache_utils import Cache, CacheLayerMixin, DynamicLayer, StaticLayer

from inparsx.generate.stopping import Generation, cut_at_stop, find_stop

if TYPE_CHECKING:  # only the type of `Cache.layers` needs it, so it is not imported at run time
    from transformers.cache_utils import LinearAttentionCacheLayerMixin

__all__ = ["BatchGenerator", "Generation", "find_stop"]


class LogProbTap(LogitsProcessor):
    """Keeps the log-softmax of the current step's scores. Custom processors run after the model's own ones
    (repetition penalty etc., none by default) and before temperature/top-p, so these are the model's
    log-probabilities, as InPars' score (eq. 1 of the InPars toolkit paper) needs."""

    def __init__(self) -> None:
        self.log_probs: torch.Tensor | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.log_probs = torch.log_softmax(scores.float(), dim=-1)
        return scores


class StopWatcher(StoppingCriteria):
    """Per-row bookkeeping at every step: records the new token and its log-probability, marks the row done
    on an end-of-sequence token (not recorded) or when its decoded text holds a stop string."""

    def __init__(self, tokenizer: Any, stops: list[str], eos_ids: set[int], tap: LogProbTap, rows: int):
        self.tokenizer, self.stops, self.eos_ids, self.tap = tokenizer, stops, eos_ids, tap
        self.tokens: list[list[int]] = [[] for _ in range(rows)]
        self.log_probs: list[list[float]] = [[] for _ in range(rows)]
        self.done = [False] * rows
        self.finish = ["length"] * rows

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs: Any) -> torch.BoolTensor:
        """Records this step's tokens; a bool tensor of shape ``(rows,)``, true for each row that is done.

        Raises:
            RuntimeError: the tap holds no log-probabilities (it was not among this step's logits processors).
        """
        last = input_ids[:, -1]
        log_probs = self.tap.log_probs
        if log_probs is None:
            raise RuntimeError("StopWatcher: its LogProbTap saw no scores; pass it to generate's logits_processor")
        chosen = log_probs.gather(1, last[:, None].to(log_probs.device)).squeeze(1)
        pending = []
        for row, (token, log_prob) in enumerate(zip(last.tolist(), chosen.tolist())):
            if self.done[row]:
                continue
            if token in self.eos_ids:
                self.done[row], self.finish[row] = True, "eos"
                continue
            self.tokens[row].append(token)
            self.log_probs[row].append(log_prob)
            pending.append(row)
        if self.stops and pending:
            texts = self.tokenizer.batch_decode([self.tokens[r] for r in pending], skip_special_tokens=True)
            for row, text in zip(pending, texts):
                if find_stop(text, self.stops) is not None:
                    self.done[row], self.finish[row] = True, "stop"
        # transformers types a stopping criterion's result `torch.BoolTensor`, a legacy class that is a dtype check
        # at run time (a bool tensor is an instance) and a class of its own to mypy, which `torch.tensor` never returns
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)  # type: ignore[return-value]

    def result(self, row: int) -> Generation:
        """The query of ``row`` (:func:`~inparsx.generate.stopping.cut_at_stop`)."""
        return cut_at_stop(self.tokenizer, self.tokens[row], self.log_probs[row], self.stops, self.finish[row])


class BatchGenerator:
    """Generates queries for batches of tokenized prompts.

    Args:
        model: a loaded causal LM or seq2seq model (eval mode).
        tokenizer: its tokenizer, with a pad token.
        stops: stop strings, matched on decoded text.
        max_new_tokens: generation budget per query.
        sampling: ``{"temperature", "top_p", "top_k"}`` to sample, ``None`` for greedy decoding.
        num_return: queries per prompt (rows ``i * num_return + j`` belong to prompt ``i``).
        cache: ``"static"`` (preallocated KV cache; for an encoder-decoder model, its decoder's) or ``"dynamic"``
            (transformers' default).
        prefix: token ids every prompt starts with (cached once), or empty.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        stops: list[str],
        max_new_tokens: int = 64,
        sampling: dict[str, float] | None = None,
        num_return: int = 1,
        cache: str = "static",
        prefix: list[int] | None = None,
    ):
        self.model, self.tokenizer, self.stops = model, tokenizer, stops
        self.max_new_tokens, self.sampling, self.num_return, self.cache = max_new_tokens, sampling, num_return, cache
        self.seq2seq = bool(model.config.is_encoder_decoder)
        self.pad_id = tokenizer.pad_token_id
        self.eos_ids = _eos_ids(model, tokenizer)
        self.generated_tokens = 0
        self.prefix = list(prefix or []) if not self.seq2seq else []
        self._prefix_cache: DynamicCache | None = None

    @torch.inference_mode()
    def __call__(self, prompts: list[list[int]], seed: int = 0) -> list[list[Generation]]:
        """``num_return`` generations per prompt, in prompt order. ``seed`` seeds sampling for this batch."""
        inputs = self._inputs(prompts)
        rows = len(prompts) * self.num_return
        tap = LogProbTap()
        watcher = StopWatcher(self.tokenizer, self.stops, self.eos_ids, tap, rows)
        if self.sampling is not None:
            torch.manual_seed(seed)
        self.model.generate(
            **inputs,
            **self._seq2seq_cache(),
            max_new_tokens=self.max_new_tokens,
            num_beams=1,
            pad_token_id=self.pad_id,
            do_sample=self.sampling is not None,
            **(self.sampling or {}),
            logits_processor=LogitsProcessorList([tap]),
            stopping_criteria=StoppingCriteriaList([watcher]),
        )
        self.generated_tokens += sum(len(t) for t in watcher.tokens)
        results = [watcher.result(r) for r in range(rows)]
        return [results[i * self.num_return : (i + 1) * self.num_return] for i in range(len(prompts))]

    def _seq2seq_cache(self) -> dict[str, Any]:
        """An encoder-decoder model's cache choice for ``generate``: transformers' ``cache_implementation =
        "static"`` for its decoder when ``cache`` is static (a decoder-only model gets its cache object from
        :meth:`_inputs` instead, with the shared prefix in it)."""
        return {"cache_implementation": "static"} if self.seq2seq and self.cache == "static" else {}

    def _inputs(self, prompts: list[list[int]]) -> dict[str, Any]:
        device = self.model.device
        shared = len(self.prefix) if self.prefix and all(p[: len(self.prefix)] == self.prefix for p in prompts) else 0
        tails = [p[shared:] for p in prompts]
        width = max(len(t) for t in tails)
        if self.seq2seq:
            rows = [(t + [self.pad_id] * (width - len(t)), [1] * len(t) + [0] * (width - len(t))) for t in tails]
        else:
            rows = [
                (
                    self.prefix[:shared] + [self.pad_id] * (width - len(t)) + t,
                    [1] * shared + [0] * (width - len(t)) + [1] * len(t),
                )
                for t in tails
            ]
        ids = torch.tensor([r[0] for r in rows], device=device).repeat_interleave(self.num_return, 0)
        mask = torch.tensor([r[1] for r in rows], device=device).repeat_interleave(self.num_return, 0)
        inputs: dict[str, Any] = {"input_ids": ids, "attention_mask": mask}
        if not self.seq2seq:
            inputs["past_key_values"] = self._cache(ids.shape[0], ids.shape[1] + self.max_new_tokens, shared)
        return inputs

    def _cache(self, batch: int, length: int, shared: int) -> Cache | None:
        """An empty KV cache for ``batch`` rows, holding the shared prefix when ``shared`` > 0; ``None`` for a
        model with sliding-window or hybrid layers (transformers then chooses its cache)."""
        if self.cache == "static":
            static = StaticCache(config=self.model.config, max_cache_len=length)
            layers = _plain_layers(static, StaticLayer)
            if layers is None:
                return None
            if shared:
                for layer, source in zip(layers, self._prefix_kv().layers):
                    keys, values = _filled(source)
                    layer.update(keys.expand(batch, -1, -1, -1), values.expand(batch, -1, -1, -1))
            return static
        dynamic = DynamicCache(config=self.model.config)
        if _plain_layers(dynamic, DynamicLayer) is None:
            return None
        if shared:
            dynamic = copy.deepcopy(self._prefix_kv())
            dynamic.batch_repeat_interleave(batch)
        return dynamic

    def _prefix_kv(self) -> DynamicCache:
        if self._prefix_cache is None:
            ids = torch.tensor([self.prefix], device=self.model.device)
            cache = DynamicCache(config=self.model.config)
            self.model(input_ids=ids, attention_mask=torch.ones_like(ids), past_key_values=cache, use_cache=True)
            self._prefix_cache = cache
        return self._prefix_cache


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = model.generation_config.eos_token_id
    ids = set(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


_Layer = TypeVar("_Layer", bound=CacheLayerMixin)


def _plain_layers(cache: Cache, kind: type[_Layer]) -> list[_Layer] | None:
    """The layers of ``cache`` when every one is exactly ``kind`` (none a sliding-window, indexed, quantized or
    linear-attention layer), else ``None``."""
    layers = [layer for layer in cache.layers if type(layer) is kind]
    return layers if len(layers) == len(cache.layers) else None


def _filled(layer: CacheLayerMixin | LinearAttentionCacheLayerMixin) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys and values (``(1, heads, prefix tokens, head size)`` each) the prefix pass wrote into ``layer``.

    Raises:
        RuntimeError: the layer holds none (not an attention layer, or the pass did not reach it).
    """
    if not isinstance(layer, CacheLayerMixin) or layer.keys is None or layer.values is None:
        raise RuntimeError(f"the shared prefix's cache layer {type(layer).__name__} holds no keys and values")
    return layer.keys, layer.values
