"""``cross-encoder``: a Hugging Face encoder that reads query and document together (monoBERT; Nogueira & Cho,
2019) and outputs one relevance logit.

Any ``AutoModelForSequenceClassification`` checkpoint works: one trained by inparsx (``@train``), a hub
cross-encoder (``cross-encoder/ms-marco-MiniLM-L-6-v2``), or a bare encoder (e.g. all-MiniLM-L6-v2) whose new
head is random (``num_labels=1``, as ``sentence_transformers.CrossEncoder`` does). The score is the relevance
log-odds: the logit itself with one label, ``logit[1] - logit[0]`` with two (the log-odds of class 1,
monoBERT's "relevant", which orders pairs exactly as its softmax probability does).

Speed: ``torch.inference_mode``; every pair tokenized once, then batched by token length (longest first)
with padding to the longest pair of each batch only; bf16 weights where the hardware computes bf16
natively (``dtype = "auto"``). ``bench/rerank.py`` compares it with ``CrossEncoder.predict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from inparsx.devices import resolve_device
from inparsx.models import from_pretrained
from inparsx.precision import resolve_dtype
from inparsx.rerank.base import Reranker, RerankerOptions
from inparsx.rerank.hardware import length_sorted_batches, model_max_length, pad_batch


class CrossEncoderOptions(RerankerOptions):
    """``cross-encoder`` options: those of every reranker (:class:`~inparsx.rerank.base.RerankerOptions`)."""


class CrossEncoderReranker(Reranker):
    """Scores (query, document) pairs with a sequence-classification encoder (BERT/MiniLM/ELECTRA...)."""

    name: ClassVar[str] = "cross-encoder"
    Options: ClassVar[type[CrossEncoderOptions]] = CrossEncoderOptions

    def load(self, model: str) -> None:
        """Load tokenizer and model from a hub id, folder or ``.gguf`` file onto the device, in eval mode and the
        chosen dtype.

        A checkpoint without a classification head gets a new one with one label (random until trained).
        """
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        opts = self.options
        self.device = resolve_device(opts.device)
        self.dtype = resolve_dtype(opts.dtype, self.device)
        config = from_pretrained(AutoConfig, model)
        has_head = any(a.endswith("ForSequenceClassification") for a in config.architectures or [])
        kwargs: dict[str, Any] = {} if has_head else {"num_labels": 1}
        self.tokenizer = from_pretrained(AutoTokenizer, model)
        self.model = from_pretrained(AutoModelForSequenceClassification, model, dtype=self.dtype, **kwargs)
        self.model.to(self.device).eval()
        self.max_length = model_max_length(self.tokenizer, self.model.config, opts.max_length)
        self.uses_token_types = "token_type_ids" in self.tokenizer.model_input_names

    def score(self, queries: Sequence[str], documents: Sequence[str]) -> list[float]:
        """Relevance log-odds of each pair (see the module docstring); in input order.

        Documents are truncated to fit ``max_length`` with the query; a query longer than half of it is cut
        to half first, so a pair always keeps some document.
        """
        if not queries:
            return []
        encoded = self.encode(queries, documents)
        scores = [0.0] * len(queries)
        for batch in length_sorted_batches([len(ids) for ids in encoded["input_ids"]], self.options.batch_size):
            for index, value in zip(batch, self.forward(encoded, batch)):
                scores[index] = value
        return scores

    def encode(self, queries: Sequence[str], documents: Sequence[str]) -> dict[str, list[list[int]]]:
        """Token ids of every pair (``[CLS] q [SEP] d [SEP]`` for BERT), unpadded, documents truncated."""
        queries = self._short_queries(queries)
        return self.tokenizer(
            list(queries),
            list(documents),
            truncation="only_second",
            max_length=self.max_length,
            return_attention_mask=False,
            return_token_type_ids=self.uses_token_types,
        )

    def _short_queries(self, queries: Sequence[str]) -> Sequence[str]:
        limit = self.max_length // 2
        lengths = self.tokenizer(list(dict.fromkeys(queries)), add_special_tokens=False)["input_ids"]
        too_long = {q: ids[:limit] for q, ids in zip(dict.fromkeys(queries), lengths) if len(ids) > limit}
        if not too_long:
            return queries
        cut = {q: self.tokenizer.decode(ids) for q, ids in too_long.items()}
        return [cut.get(q, q) for q in queries]

    def forward(self, encoded: dict[str, list[list[int]]], batch: list[int]) -> list[float]:
        """Log-odds of the pairs ``batch`` (indices into ``encoded``), one padded forward pass."""
        import torch

        rows = [encoded["input_ids"][i] for i in batch]
        types = [encoded["token_type_ids"][i] for i in batch] if self.uses_token_types else None
        tensors = pad_batch(rows, self.tokenizer.pad_token_id or 0, self.device, types)
        inputs = {"input_ids": tensors[0], "attention_mask": tensors[1]}
        if types is not None:
            inputs["token_type_ids"] = tensors[2]
        with torch.inference_mode():
            logits = self.model(**inputs).logits.float()
        if logits.shape[-1] == 1:
            return logits[:, 0].tolist()
        return (logits[:, 1] - logits[:, 0]).tolist()
