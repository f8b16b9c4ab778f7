"""Prompt building: InPars (static few-shot), InPars-GBQ, Promptagator (dynamic few-shot), custom templates,
and a chat form for instruction-tuned models; documents and prompts truncated in tokens.

Text form follows the InPars toolkit (``inpars/prompt.py``): the template is filled with the document and an
empty query and right-stripped, so the model continues after e.g. ``Relevant Query:``; dynamic templates
repeat their pattern once per few-shot example. The chat form turns every few-shot example into a
(user, assistant) pair of turns and renders them with the tokenizer's chat template.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypedDict, runtime_checkable

from inparsx.errors import InparsxError
from inparsx.generate.fewshot import FewShotExample, FewShotPool
from inparsx.generate.templates import PromptTemplate, fill
from inparsx.records import Document

DEFAULT_INSTRUCTION = "Write a search query that the document answers. Reply with the query only, on one line."
"""System turn of the chat form when no ``instruction`` is given (an empty one leaves the system turn out)."""


@runtime_checkable
class PromptTokenizer(Protocol):
    """What :class:`PromptBuilder` needs of a tokenizer: a Hugging Face ``PreTrainedTokenizer(Fast)`` has it
    all, and a model served elsewhere can bring its own (the ``openai`` plugin's ``ApiTokenizer`` counts
    whitespace-separated words).

    - ``tokenizer(text, add_special_tokens=..., return_offsets_mapping=...)`` returns a mapping whose
      ``"input_ids"`` are the text's token ids (a list of ints) and, with ``return_offsets_mapping=True`` on a
      fast tokenizer, whose ``"offset_mapping"`` holds one ``(start, end)`` character span per token;
    - ``is_fast``: whether those offsets exist (a slow tokenizer is truncated by decoding ids instead);
    - ``decode(ids)``: the text of token ids (truncation by a slow tokenizer);
    - ``chat_template``: the Jinja chat template, empty or ``None`` when the tokenizer has none (then the chat
      form is refused);
    - ``apply_chat_template(messages, tokenize=False, add_generation_prompt=True)``: the text of chat turns
      (:class:`ChatMessage` dicts), ending where the model writes its answer.
    """

    @property
    def is_fast(self) -> bool: ...

    @property
    def chat_template(self) -> str | None: ...

    def __call__(
        self, text: str, add_special_tokens: bool = True, return_offsets_mapping: bool = False
    ) -> Mapping[str, Any]: ...

    def decode(self, ids: list[int]) -> str: ...

    def apply_chat_template(
        self, messages: Sequence[ChatMessage], tokenize: bool = False, add_generation_prompt: bool = True
    ) -> str: ...


class ChatMessage(TypedDict):
    """One chat turn as chat templates and the OpenAI chat API take it: ``role`` (``system``, ``user`` or
    ``assistant``) and ``content``."""

    role: str
    content: str


@dataclass
class Prompt:
    """A built prompt: its text, its token ids (what the model reads), the few-shot query ids it shows and, in
    the chat form, its turns.

    ``messages``: the chat form's turns (system, then a user and an assistant turn per few-shot example, then
    the user turn of the document) that ``text`` renders with the tokenizer's chat template, for a model served
    behind a chat API that applies its own template; ``None`` in the text form.
    """

    text: str
    input_ids: list[int]
    fewshot_ids: list[str] = field(default_factory=list)
    messages: list[ChatMessage] | None = None


@dataclass
class PromptBuilder:
    """Builds the prompt of each document.

    Args:
        template: the pattern (see :class:`~inparsx.generate.templates.PromptTemplate`).
        tokenizer: a Hugging Face tokenizer, or anything else with what :class:`PromptTokenizer` lists
            (counts tokens, cuts documents, renders the chat template).
        chat: render as chat turns with ``tokenizer.apply_chat_template``.
        instruction: what the model is asked to do. In the chat form, the system turn (``None``:
            :data:`DEFAULT_INSTRUCTION`; ``""``: no system turn). In the text form, the first paragraph of
            the prompt, heading the few-shot examples (``None`` or ``""``: none, the InPars prompts as
            published). PATH (arXiv 2406.11706) optimises this text.
        max_doc_tokens: every document (target and few-shot) is cut to this many tokens (InPars: 256).
        max_prompt_tokens: longest prompt; over it, few-shot examples are dropped first, then the target
            document is shortened; the end the model continues (e.g. ``Relevant Query:``) is never cut.
        pool: few-shot pairs of a dynamic template; ``n_fewshot`` of them per document.
    """

    template: PromptTemplate
    tokenizer: PromptTokenizer
    chat: bool = False
    instruction: str | None = None
    max_doc_tokens: int = 256
    max_prompt_tokens: int = 2048
    pool: FewShotPool | None = None
    n_fewshot: int = 3
    _example_docs: dict[str, str] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.template.dynamic and self.pool is None:
            raise InparsxError(f"template {self.template.name!r} is dynamic and needs few-shot examples")
        if self.chat and not self.tokenizer.chat_template:
            raise InparsxError("chat = true needs a tokenizer with a chat template (tokenizer.chat_template is empty)")

    def build(self, doc: Document) -> Prompt:
        """The prompt for ``doc``.

        Raises:
            InparsxError: the template alone (with an empty document) is longer than ``max_prompt_tokens``.
        """
        doc_text = self.truncate(doc.full_text, self.max_doc_tokens)
        examples = self.pool.sample(doc.doc_id, self.n_fewshot) if self.template.dynamic and self.pool else []
        while True:
            messages = self.chat_messages(doc_text, examples) if self.chat else None
            text = self._chat_text(messages) if messages is not None else self.render(doc_text, examples)
            ids = self.encode(text)
            excess = len(ids) - self.max_prompt_tokens
            if excess <= 0:
                return Prompt(text, ids, [e.query_id for e in examples], messages)
            if examples:
                examples = examples[1:]
                continue
            doc_tokens = self.count(doc_text)
            if doc_tokens == 0:
                raise InparsxError(
                    f"prompt template {self.template.name!r} alone is {len(ids)} tokens, more than "
                    f"max_prompt_tokens = {self.max_prompt_tokens}"
                )
            doc_text = self.truncate(doc_text, max(0, doc_tokens - excess))

    def render(self, doc_text: str, examples: list[FewShotExample]) -> str:
        """The prompt text for an (already truncated) document and few-shot examples."""
        if self.chat:
            return self._chat_text(self.chat_messages(doc_text, examples))
        shots = [(self._example_doc(e), e.query) for e in examples]
        head = f"{self.instruction.strip()}\n\n" if self.instruction and self.instruction.strip() else ""
        if self.template.dynamic:
            return head + "".join(self.template.example(d, q) for d, q in shots) + self.template.target(doc_text)
        return head + self.template.target(doc_text)

    def chat_messages(self, doc_text: str, examples: list[FewShotExample]) -> list[ChatMessage]:
        """The chat form's turns for an (already truncated) document and few-shot examples: the system turn
        (the instruction; none when it is ``""``), a (user, assistant) pair per example (a static template's
        example blocks, split at the label before ``{query}``), and the document's user turn."""
        shots = [(self._example_doc(e), e.query) for e in examples]
        if self.template.dynamic:
            turns = [(self.template.target(d), q) for d, q in shots]
            last = self.template.target(doc_text)
        else:
            turns, target = split_static(self.template)
            last = fill(target, doc_text, "").rstrip()
        system = DEFAULT_INSTRUCTION if self.instruction is None else self.instruction
        messages: list[ChatMessage] = [{"role": "system", "content": system}] if system else []
        for user, assistant in turns:
            messages += [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
        messages.append({"role": "user", "content": last})
        return messages

    def _chat_text(self, messages: list[ChatMessage]) -> str:
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def shared_prefix(self) -> str:
        """The text every prompt of this builder starts with, ending at a line break ("" if none).

        Found by rendering two different sentinel documents (and sentinel examples); a generator may cache the
        model's keys and values for it once (prefix caching) instead of recomputing them for every document.
        """

        def sentinel(tag: str) -> str:
            shots = [FewShotExample(f"{tag}{i}", f"{tag}{i}", f"{tag}q", f"{tag}d") for i in range(self.n_fewshot)]
            return self.render(f"{tag}\x00", shots if self.template.dynamic else [])

        common = os.path.commonprefix([sentinel("\x01"), sentinel("\x02")])
        return common[: common.rfind("\n") + 1]

    def encode(self, text: str) -> list[int]:
        """Token ids of a prompt (special tokens added, except in chat form where the template has them)."""
        ids: list[int] = self.tokenizer(text, add_special_tokens=not self.chat)["input_ids"]
        return ids

    def count(self, text: str) -> int:
        """Number of tokens of ``text`` (no special tokens)."""
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def truncate(self, text: str, max_tokens: int) -> str:
        """``text`` cut after its first ``max_tokens`` tokens, keeping the original characters (fast
        tokenizers' offsets; slow ones decode, as the InPars toolkit does)."""
        if max_tokens <= 0:
            return ""
        if self.tokenizer.is_fast:
            enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
            spans = enc["offset_mapping"]
            return text if len(spans) <= max_tokens else text[: spans[max_tokens - 1][1]]
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        return text if len(ids) <= max_tokens else self.tokenizer.decode(ids[:max_tokens])

    def _example_doc(self, example: FewShotExample) -> str:
        if example.doc_id not in self._example_docs:
            self._example_docs[example.doc_id] = self.truncate(example.document, self.max_doc_tokens)
        return self._example_docs[example.doc_id]


def split_static(template: PromptTemplate) -> tuple[list[tuple[str, str]], str]:
    """Split a static template into its few-shot blocks and its target block, for the chat form.

    Blocks are separated by blank lines; the last one holds ``{document}``. Each example block is cut after
    the label that precedes ``{query}`` in the target block (e.g. ``Relevant Query:``): before it is the user
    turn, after it the assistant turn (for InPars-GBQ: the good question, then the bad one).

    Raises:
        InparsxError: an example block without that label.
    """
    blocks = re.split(r"\n[ \t]*\n", template.text.strip("\n"))
    target = blocks[-1]
    line = target[: target.index("{query}")].rsplit("\n", 1)[-1]
    label = line.split("{document}")[-1].strip()
    turns = []
    for block in blocks[:-1]:
        at = block.find(label) if label else -1
        if at < 0:
            raise InparsxError(f"template {template.name!r}: example block has no {label!r} label for the chat form")
        turns.append((block[: at + len(label)].rstrip(), block[at + len(label) :].strip()))
    return turns, target
