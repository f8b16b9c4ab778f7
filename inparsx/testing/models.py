"""Tiny random Hugging Face models saved with ``save_pretrained``, with tokenizers trained on the spot.

Each builder writes a complete model folder (config, weights, tokenizer) loadable with ``from_pretrained``
and returns its path. Sizes: 2 layers, hidden 64 by default (a few hundred KB).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

DEFAULT_TEXTS = [
    "Alterations of the architecture of cerebral white matter in the developing human brain.",
    "What is the effect of caffeine during pregnancy?",
    "A rare passion fruit native to Australia. Fruits are green-skinned and white fleshed.",
    "The Canadian Armed Forces started a peacekeeping mission in Egypt in 1956.",
    "Relevant Query: Document: Example 1:\nGood Question: Bad Question: Finding: true false",
]

SIMPLE_CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
"""A minimal Jinja chat template (``<|role|>`` lines) to give a tiny tokenizer, so that chat prompts can be
tested without a real chat model."""


def train_tokenizer(
    texts: Iterable[str] = DEFAULT_TEXTS,
    vocab_size: int = 400,
    byte_level: bool = True,
    special_tokens: tuple[str, ...] = ("<pad>", "</s>", "<unk>", "<s>"),
):
    """Train a BPE tokenizer on ``texts`` and wrap it as a ``PreTrainedTokenizerFast``.

    ``byte_level=True`` gives a GPT-2-style byte-level BPE (every string encodable). ``byte_level=False`` gives a
    whitespace-split character BPE whose vocabulary can be kept under 198 entries, i.e. a tokenizer in which
    GPT-2's newline id 198 does not exist (newlines become ``<unk>`` unless present in ``texts``).
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    texts = list(texts)
    if byte_level:
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=list(special_tokens),
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        )
    else:
        tok = Tokenizer(models.BPE(unk_token="<unk>"))
        tok.pre_tokenizer = pre_tokenizers.Split(pattern=" ", behavior="merged_with_next")
        tok.decoder = decoders.Fuse()
        trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(special_tokens))
    tok.train_from_iterator(texts, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", bos_token="<s>"
    )


def _save(model, tokenizer, path: str | Path) -> Path:
    path = Path(path)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def _seeded(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


def tiny_llama(path: str | Path, tokenizer=None, hidden: int = 64, layers: int = 2, seed: int = 0, **config) -> Path:
    """A random ``LlamaForCausalLM`` (``hidden`` width, ``layers`` layers) saved at ``path``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tokenizer or train_tokenizer()
    _seeded(seed)
    cfg = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
        **config,
    )
    return _save(LlamaForCausalLM(cfg), tokenizer, path)


def tiny_gpt2(path: str | Path, tokenizer=None, hidden: int = 64, layers: int = 2, seed: int = 0) -> Path:
    """A random ``GPT2LMHeadModel`` saved at ``path`` (context 1024 tokens)."""
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = tokenizer or train_tokenizer()
    _seeded(seed)
    cfg = GPT2Config(
        vocab_size=len(tokenizer),
        n_embd=hidden,
        n_layer=layers,
        n_head=4,
        n_positions=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.bos_token_id,
    )
    return _save(GPT2LMHeadModel(cfg), tokenizer, path)


def tiny_t5(
    path: str | Path,
    tokenizer=None,
    hidden: int = 64,
    layers: int = 2,
    seed: int = 0,
    extra_words: Iterable[str] = ("true", "false"),
) -> Path:
    """A random ``T5ForConditionalGeneration`` saved at ``path`` (doc2query-T5 and monoT5 code paths).

    ``extra_words`` are added to the tokenizer as whole tokens so monoT5's ``true``/``false`` are single tokens.
    """
    from transformers import T5Config, T5ForConditionalGeneration

    tokenizer = tokenizer or train_tokenizer()
    tokenizer.add_tokens(list(extra_words))
    _seeded(seed)
    cfg = T5Config(
        vocab_size=len(tokenizer),
        d_model=hidden,
        d_ff=hidden * 2,
        d_kv=16,
        num_layers=layers,
        num_decoder_layers=layers,
        num_heads=4,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        # a config takes keys beyond its dataclass fields (`@strict(accept_kwargs=True)`), which the
        # `@dataclass_transform` that mypy reads does not say; T5's `_shift_right` reads this one
        decoder_start_token_id=tokenizer.pad_token_id,  # type: ignore[call-arg]
    )
    return _save(T5ForConditionalGeneration(cfg), tokenizer, path)


def tiny_bert(path: str | Path, tokenizer=None, hidden: int = 64, layers: int = 2, seed: int = 0, **config) -> Path:
    """A random ``BertModel`` (encoder only) saved at ``path``: loads as a cross-encoder
    (``AutoModelForSequenceClassification``, new head) or as a sentence-transformers bi-encoder (mean pooling).
    ``config``: more ``BertConfig`` fields (e.g. ``hidden_dropout_prob = 0``)."""
    from transformers import BertConfig, BertModel

    tokenizer = tokenizer or train_tokenizer()
    if tokenizer.sep_token is None:
        tokenizer.add_special_tokens({"sep_token": "[SEP]", "cls_token": "[CLS]", "mask_token": "[MASK]"})
    _seeded(seed)
    cfg = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=hidden * 2,
        num_hidden_layers=layers,
        num_attention_heads=4,
        max_position_embeddings=512,
        pad_token_id=tokenizer.pad_token_id,
        **config,
    )
    return _save(BertModel(cfg), tokenizer, path)
