"""``monot5``: T5 as a pointwise reranker (Nogueira, Jiang, Pradeep & Lin, "Document Ranking with a Pretrained
Sequence-to-Sequence Model", Findings of EMNLP 2020).

Input ``Query: {q} Document: {d} Relevant:``; the score is P(true) from the softmax over the logits of the
``true`` and ``false`` tokens at the first decoding step (castorini's monoT5 convention: the T5 vocabulary
entries ``▁true``/``▁false``; InPars-v2 filtered with ``castorini/monot5-3b-msmarco-10k``'s P(true)).

Truncation shortens the document only: the query prefix and the ``Relevant:`` suffix are always kept, so
the model always sees the question it was trained to answer (the InPars toolkit's reranker truncates the
whole prompt from the end, which can cut ``Relevant:``). A pair that fits is tokenized exactly as the
whole prompt string. :func:`encode_pairs` is the one formatting function of both the reranker and the
``monot5`` trainer, so training and reranking see identical inputs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from inparsx.devices import resolve_device
from inparsx.errors import InparsxError
from inparsx.models import from_pretrained, resolve_model_name
from inparsx.precision import resolve_dtype
from inparsx.rerank.base import Reranker, RerankerOptions
from inparsx.rerank.hardware import length_sorted_batches, pad_batch

PREFIX = "Query: {query} Document: "
SUFFIX = " Relevant:"
MAX_LENGTH = 512


def monot5_prompt(query: str, document: str) -> str:
    """The monoT5 input text: ``Query: {query} Document: {document} Relevant:``."""
    return PREFIX.format(query=query) + document + SUFFIX


def monot5_input_ids(
    tokenizer: Any, queries: Sequence[str], documents: Sequence[str], max_length: int = MAX_LENGTH
) -> list[list[int]]:
    """Token ids (with the tokenizer's special tokens, e.g. T5's ``</s>``) of each monoT5 prompt, at most
    ``max_length`` long, unpadded.

    A prompt that is too long is rebuilt from a shorter document (cut at a token boundary found with the
    tokenizer's offsets), so the suffix ``Relevant:`` and the query are never cut; only a query that alone
    leaves no room for any document is itself shortened, still before ``Document:``.

    Args:
        tokenizer: a Hugging Face tokenizer (fast tokenizers cut at exact token offsets).
        queries, documents: parallel sequences of texts.
        max_length: tokens per prompt (monoT5: 512).
    """
    ids = tokenizer([monot5_prompt(q, d) for q, d in zip(queries, documents)])["input_ids"]
    for i, row in enumerate(ids):
        if len(row) > max_length:
            ids[i] = _fit(tokenizer, queries[i], documents[i], max_length, len(row) - max_length)
    return ids


def _fit(tokenizer: Any, query: str, document: str, max_length: int, over: int) -> list[int]:
    """The ids of the prompt, ``over`` tokens too long, with the document (then, if it is used up, the query)
    shortened until the whole fits ``max_length``.

    Raises:
        InparsxError: ``max_length`` cannot hold even the template with a one-token query.
    """
    keep_query, keep_doc = len(_tokens(tokenizer, query)), len(_tokens(tokenizer, document))
    for _ in range(32):
        if keep_doc > 0:
            keep_doc = max(0, keep_doc - over)
        elif keep_query > 1:
            keep_query = max(1, keep_query - over)
        else:
            break
        ids = tokenizer(monot5_prompt(_cut(tokenizer, query, keep_query), _cut(tokenizer, document, keep_doc)))[
            "input_ids"
        ]
        over = len(ids) - max_length
        if over <= 0:
            return ids
    raise InparsxError(
        f"monot5: max_length = {max_length} tokens cannot hold the prompt template {monot5_prompt('q', 'd')!r}"
    )


def _tokens(tokenizer: Any, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _cut(tokenizer: Any, text: str, keep: int) -> str:
    """``text`` up to the end of its ``keep``-th token (character offsets of a fast tokenizer, else decoding)."""
    if keep <= 0:
        return ""
    if getattr(tokenizer, "is_fast", False):
        offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
        return text if keep >= len(offsets) else text[: offsets[keep - 1][1]]
    ids = _tokens(tokenizer, text)
    return text if keep >= len(ids) else tokenizer.decode(ids[:keep], skip_special_tokens=True)


def encode_pairs(tokenizer: Any, queries: Sequence[str], documents: Sequence[str], max_length: int = MAX_LENGTH):
    """A padded batch (``input_ids``, ``attention_mask`` as torch tensors, shape (n, longest)) of monoT5
    prompts; truncation as in :func:`monot5_input_ids`. Used by the ``monot5`` trainer's collator."""
    return tokenizer.pad(
        {"input_ids": monot5_input_ids(tokenizer, queries, documents, max_length)}, return_tensors="pt"
    )


def label_token_id(tokenizer: Any, word: str) -> int:
    """The vocabulary id that starts ``word`` as T5 generates it first (``▁true`` in the T5 vocabulary).

    Tries, in order: the single token that ``word`` encodes to, the SentencePiece entry ``▁word``, an entry
    ``word`` (added tokens of tiny test tokenizers).

    Raises:
        InparsxError: none exists (e.g. a tokenizer that splits ``true`` into several pieces).
    """
    encoded = _tokens(tokenizer, word)
    if len(encoded) == 1:
        return encoded[0]
    vocab = tokenizer.get_vocab()
    for entry in ("\u2581" + word, word):
        if entry in vocab:
            return vocab[entry]
    raise InparsxError(
        f"monot5: the tokenizer has no single token for {word!r} (it encodes to {len(encoded)} "
        "tokens); set true_token/false_token to words it has"
    )


class MonoT5Options(RerankerOptions):
    """``monot5`` options. ``true_token``/``false_token``: the answer words (``yes``/``no`` for the mT5 mMARCO
    rerankers); ``None`` (default): the words the model was trained with when an inparsx ``monot5`` trainer
    made it (its ``inparsx_training.json``), else ``true``/``false``. A word that differs from the trained one
    is refused when the model loads. ``max_length`` defaults to 512. fp16 overflows in T5's feed-forward
    layers; prefer bf16."""

    true_token: str | None = None
    false_token: str | None = None


def answer_words(path: str, options: MonoT5Options) -> tuple[str, str]:
    """``(true word, false word)`` for the model at ``path``: the options', else those it was trained with
    (``inparsx_training.json`` beside a model made by the ``monot5`` trainer), else ``("true", "false")``.

    Raises:
        InparsxError: an option that differs from the word the model was trained with.
    """
    import json
    from pathlib import Path

    info = Path(path) / "inparsx_training.json"
    trained = json.loads(info.read_text()).get("options", {}) if info.is_file() else {}
    words = []
    for key, default in (("true_token", "true"), ("false_token", "false")):
        given, learned = getattr(options, key), trained.get(key)
        if given is not None and learned is not None and given != learned:
            raise InparsxError(
                f"monot5: {key} = {given!r} but the model at {path} was trained with {key} = "
                f"{learned!r}; leave {key} unset to use the trained one"
            )
        words.append(given or learned or default)
    return words[0], words[1]


class MonoT5Reranker(Reranker):
    """Scores pairs by monoT5's P(true) (a T5 / mT5 / FLAN-T5 checkpoint trained as monoT5)."""

    name: ClassVar[str] = "monot5"
    Options: ClassVar[type[MonoT5Options]] = MonoT5Options

    def load(self, model: str) -> None:
        """Load a T5 model (``AutoModelForSeq2SeqLM``) and its tokenizer; find the true/false token ids.

        Raises:
            InparsxError: the tokenizer lacks a single token for ``true_token`` or ``false_token``, or one
                differs from the word the model was trained with.
        """
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        opts = self.options
        self.device = resolve_device(opts.device)
        self.dtype = resolve_dtype(opts.dtype, self.device)
        self.tokenizer = from_pretrained(AutoTokenizer, model)
        self.model = from_pretrained(AutoModelForSeq2SeqLM, model, dtype=self.dtype).to(self.device).eval()
        self.max_length = opts.max_length or MAX_LENGTH
        true, false = answer_words(resolve_model_name(model), opts)
        self.label_ids = [label_token_id(self.tokenizer, false), label_token_id(self.tokenizer, true)]

    def score(self, queries: Sequence[str], documents: Sequence[str]) -> list[float]:
        """P(true) of each pair, in input order (computed in float64 from the two logits, so that near-certain
        pairs do not all round to 1.0)."""
        if not queries:
            return []
        ids = monot5_input_ids(self.tokenizer, queries, documents, self.max_length)
        scores = [0.0] * len(ids)
        for batch in length_sorted_batches([len(row) for row in ids], self.options.batch_size):
            for index, value in zip(batch, self.forward([ids[i] for i in batch])):
                scores[index] = value
        return scores

    def forward(self, rows: list[list[int]]) -> list[float]:
        """P(true) for a batch of token-id rows: one encoder pass and one decoder step."""
        import torch

        input_ids, mask = pad_batch(rows, self.tokenizer.pad_token_id or 0, self.device)
        start = self.model.config.decoder_start_token_id
        decoder = torch.full((len(rows), 1), start if start is not None else 0, dtype=torch.long, device=self.device)
        with torch.inference_mode():
            logits = self.model(input_ids=input_ids, attention_mask=mask, decoder_input_ids=decoder).logits
        pair = logits[:, 0, self.label_ids].double()
        return torch.log_softmax(pair, dim=-1)[:, 1].exp().tolist()
