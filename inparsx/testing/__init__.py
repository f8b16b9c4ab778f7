"""Helpers for testing inparsx and third-party plugins offline: tiny random models and their tokenizers.

Nothing here downloads anything. Models are randomly initialised (seeded), so they produce gibberish, but
they exercise every code path (batching, padding, log-probs, quantisation, training) in seconds.
"""

from inparsx.testing.models import SIMPLE_CHAT_TEMPLATE, tiny_bert, tiny_gpt2, tiny_llama, tiny_t5, train_tokenizer

__all__ = ["SIMPLE_CHAT_TEMPLATE", "tiny_bert", "tiny_gpt2", "tiny_llama", "tiny_t5", "train_tokenizer"]
