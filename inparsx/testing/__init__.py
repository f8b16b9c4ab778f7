"""Helpers for testing inparsx and third-party plugins offline: tiny random models and their tokenizers, a
tiny BEIR collection built in code, and the context a component runs in.

Nothing here downloads anything. Models are randomly initialised (seeded), so they produce gibberish, but
they exercise every code path (batching, padding, log-probs, quantisation, training) in seconds.
"""

from inparsx.testing.collections import tiny_beir
from inparsx.testing.context import component_context
from inparsx.testing.models import SIMPLE_CHAT_TEMPLATE, tiny_bert, tiny_gpt2, tiny_llama, tiny_t5, train_tokenizer

__all__ = [
    "component_context",
    "tiny_beir",
    "SIMPLE_CHAT_TEMPLATE",
    "tiny_bert",
    "tiny_gpt2",
    "tiny_llama",
    "tiny_t5",
    "train_tokenizer",
]
