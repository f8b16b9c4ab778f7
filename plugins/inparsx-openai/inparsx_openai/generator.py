"""Generator ``openai``: synthetic queries from any OpenAI-compatible endpoint.

vLLM's server (``vllm serve MODEL``), llama.cpp's ``llama-server``, Ollama and hosted APIs all speak the
OpenAI HTTP API (``/v1/completions`` and ``/v1/chat/completions``). The prompts are the ones the built-in
``hf`` generator builds (InPars, InPars-GBQ, Promptagator, custom, chat; see
:class:`inparsx.generate.prompted.PromptOptions`), so the queries are comparable. Requests for one batch of
documents run ``concurrency`` at a time; a failed request (connection error, timeout, HTTP 408/409/429/5xx,
or a body that is not a well-formed completion) is retried with exponential backoff and jitter (tenacity),
and the generate stage appends each finished batch, so an interrupted run resumes with no record lost or
repeated.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from inparsx.errors import InparsxError
from inparsx.generate.prompted import PromptedGenerator, PromptOptions
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.generate.prompts import ChatMessage, Prompt
    from inparsx.models import ModelRef

WORD = re.compile(r"\S+")


class OpenAIOptions(PromptOptions):
    """Options of the ``openai`` generator (the recipe's ``[generate]`` table with ``use = "openai"``)."""

    model: str = Field(description="the model name the server serves (vLLM: the name given to vllm serve)")
    api_base: str = Field("http://127.0.0.1:8000/v1", description="the endpoint, up to and including /v1")
    api_key_env: str = Field(
        "OPENAI_API_KEY",
        description="environment variable holding the API key (servers without authentication accept any value)",
    )
    mode: Literal["completions", "chat"] = Field(
        "completions",
        description="completions: the prompt text (InPars continues it); chat: messages (set chat = true)",
    )
    tokenizer: str | None = Field(
        None,
        description="hub id or folder of the served model's tokenizer, to cut "
        "documents in its tokens; default: whitespace-separated words",
    )
    max_new_tokens: int = Field(64, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["\n"])
    temperature: float = Field(0.0, ge=0, description="0 = greedy (InPars v1)")
    top_p: float = Field(1.0, gt=0, le=1)
    num_queries_per_doc: int = Field(1, ge=1, description="the API's n: completions per document")
    logprobs: bool = Field(
        True,
        description="ask for per-token log-probabilities (InPars' score); servers "
        "that do not return them leave log_probs empty and score null",
    )
    batch_size: int = Field(32, ge=1, description="documents per appended batch")
    concurrency: int = Field(8, ge=1, description="requests in flight at once")
    max_retries: int = Field(6, ge=0, description="retries of one request before the run stops")
    backoff: float = Field(1.0, gt=0, description="seconds before the first retry; doubles each time, max 60")
    timeout: float = Field(120.0, gt=0, description="seconds one request may take")

    @model_validator(mode="after")
    def _mode_matches_chat(self) -> OpenAIOptions:
        if (self.mode == "chat") != self.chat:
            raise ValueError('mode = "chat" and chat = true go together (the prompt is sent as messages)')
        if self.temperature == 0 and self.num_queries_per_doc > 1:
            raise ValueError("num_queries_per_doc > 1 needs temperature > 0 (greedy decoding repeats one query)")
        return self


class OpenAIGenerator(PromptedGenerator):
    """Queries from an OpenAI-compatible server, with bounded concurrency and retries."""

    name = "openai"
    Options: ClassVar[type[OpenAIOptions]] = OpenAIOptions

    def __init__(self, options: OpenAIOptions | None = None):
        super().__init__(options)
        self._client: Any = None

    @property
    def queries_per_doc(self) -> int:
        return self.options.num_queries_per_doc

    def models(self) -> list[ModelRef]:
        """The ``tokenizer``, when one is named (no weights: the server holds the model, nothing else is
        loaded here), for the pre-flight check."""
        from inparsx.models import ModelRef

        if self.options.tokenizer is None:
            return []
        return [ModelRef("tokenizer", self.options.tokenizer, "tokenizer", weights=False)]

    def generate(self, docs: Sequence[Document], ctx: ComponentContext) -> Iterator[list[SyntheticQuery]]:
        """Queries for ``docs``, ``batch_size`` documents per yielded list, in document order.

        Raises:
            InparsxError: a request still fails after ``max_retries`` retries; the documents of its batch that
                did get an answer are yielded first, so nothing finished is lost.
        """
        builder = self.prompt_builder(ctx, load_tokenizer(self.options.tokenizer))
        size = self.options.batch_size
        with ThreadPoolExecutor(max_workers=self.options.concurrency) as pool:
            for start in range(0, len(docs), size):
                batch = docs[start : start + size]
                prompts = [builder.build(doc) for doc in batch]
                futures = [pool.submit(self._request, prompt, ctx.seed) for prompt in prompts]
                records, failure = [], None
                for doc, prompt, future in zip(batch, prompts, futures):
                    try:
                        records += self._records(doc, prompt, future.result())
                    except InparsxError as exc:
                        failure = failure or InparsxError(f"document {doc.doc_id}: {exc}")
                if records:
                    yield records
                if failure:
                    raise failure

    def _records(self, doc: Document, prompt: Prompt, answers: list[tuple[str, list[float]]]) -> list[SyntheticQuery]:
        out = []
        for index, (text, log_probs) in enumerate(answers):
            self.generated_tokens += len(log_probs)
            out.append(
                SyntheticQuery(
                    query_id=f"{doc.doc_id}-{index}",
                    doc_id=doc.doc_id,
                    query=text,
                    log_probs=log_probs,
                    score=sum(log_probs) / len(log_probs) if log_probs else None,
                    prompt_text=prompt.text,
                    generator=f"openai:{self.options.model}",
                    fewshot_examples=prompt.fewshot_ids,
                )
            )
        return out

    def _request(self, prompt: Prompt, seed: int) -> list[tuple[str, list[float]]]:
        """One API call (retried): ``num_queries_per_doc`` (text, token log-probabilities) answers."""
        from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_exponential_jitter

        opts = self.options
        retrying = Retrying(
            stop=stop_after_attempt(opts.max_retries + 1),
            reraise=True,
            wait=wait_exponential_jitter(multiplier=opts.backoff, max=60.0, jitter=opts.backoff),
            retry=retry_if_exception(is_transient),
        )
        try:
            return retrying(self._call, prompt, seed)
        except Exception as exc:
            attempts = retrying.statistics.get("attempt_number", 1)
            if not is_transient(exc):
                why = "not retried (an error a retry cannot fix)"
            else:
                why = f"failed after {attempts - 1} retr{'y' if attempts == 2 else 'ies'}"
            raise InparsxError(f"{opts.api_base}: request {why}: {type(exc).__name__}: {exc}") from None

    def _call(self, prompt: Prompt, seed: int) -> list[tuple[str, list[float]]]:
        opts = self.options
        common = {
            "model": opts.model,
            "max_tokens": opts.max_new_tokens,
            "stop": opts.stop or None,
            "temperature": opts.temperature,
            "top_p": opts.top_p,
            "n": opts.num_queries_per_doc,
            "seed": seed,
        }
        if opts.mode == "chat":
            if prompt.messages is None:
                raise InparsxError('mode = "chat" needs a prompt built in the chat form (chat = true)')
            response = self.client().chat.completions.create(messages=prompt.messages, logprobs=opts.logprobs, **common)
        else:
            response = self.client().completions.create(
                prompt=prompt.text, logprobs=1 if opts.logprobs else None, **common
            )
        answers = parse_choices(response, chat=opts.mode == "chat")
        if len(answers) != opts.num_queries_per_doc:
            raise MalformedResponse(f"expected {opts.num_queries_per_doc} completion(s), got {len(answers)}")
        return [(cut_at_stop(text, opts.stop), log_probs) for text, log_probs in answers]

    def client(self) -> Any:
        """The ``openai.OpenAI`` client (its own retries off: tenacity retries every transient failure)."""
        if self._client is None:
            import openai

            key = os.environ.get(self.options.api_key_env) or "none"
            self._client = openai.OpenAI(
                base_url=self.options.api_base, api_key=key, max_retries=0, timeout=self.options.timeout
            )
        return self._client


class MalformedResponse(Exception):
    """A 200 response whose body is not a usable completion (retried like a server error)."""


def is_transient(exc: BaseException) -> bool:
    """Whether a failed request is worth retrying: connection errors and timeouts, HTTP 408, 409, 429 and
    5xx, and bodies that are not a well-formed completion (invalid JSON, missing choices)."""
    import openai

    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in (408, 409, 429) or exc.status_code >= 500
    return isinstance(
        exc, (openai.APIConnectionError, openai.APIResponseValidationError, MalformedResponse, json.JSONDecodeError)
    )


def parse_choices(response: Any, chat: bool) -> list[tuple[str, list[float]]]:
    """(text, token log-probabilities) of each choice of a completion (``choices[i].text``,
    ``logprobs.token_logprobs``) or chat completion (``choices[i].message.content``, ``logprobs.content[j].logprob``).

    Raises:
        MalformedResponse: a body without choices, text or numeric log-probabilities.
    """
    try:
        answers = []
        for choice in response.choices:
            text = choice.message.content if chat else choice.text
            if not isinstance(text, str):
                raise TypeError(f"choice {choice.index} has no text")
            logprobs = choice.logprobs
            if chat:
                values = [token.logprob for token in (logprobs.content or [])] if logprobs else []
            else:
                values = list(logprobs.token_logprobs or []) if logprobs else []
            answers.append((text, [float(value) for value in values]))
        return answers
    except (AttributeError, TypeError, ValueError) as exc:
        raise MalformedResponse(f"not a well-formed completion ({exc}): {response!r:.200}") from None


def cut_at_stop(text: str, stop: list[str]) -> str:
    """``text`` up to its first stop string, stripped (servers may return the stop or leading spaces)."""
    for mark in stop:
        if mark and mark in text:
            text = text[: text.index(mark)]
    return text.strip()


def load_tokenizer(name: str | None) -> Any:
    """The served model's tokenizer (transformers) when named, else whitespace-separated words, wrapped so that
    a chat prompt's text is the JSON list of its messages (what is sent, kept as the record's ``prompt_text``)."""
    if name is None:
        return ApiTokenizer(None)
    from transformers import AutoTokenizer

    from inparsx.models import resolve_model_name

    try:
        return ApiTokenizer(AutoTokenizer.from_pretrained(resolve_model_name(name)))
    except (OSError, ValueError) as exc:
        raise InparsxError(f"cannot load tokenizer {name!r}: {exc}") from None


class ApiTokenizer:
    """A :class:`~inparsx.generate.prompts.PromptTokenizer` for a model behind an API.

    Token counts (document truncation, prompt length) come from ``inner`` (a transformers tokenizer) or, when
    it is ``None``, from whitespace-separated words. ``apply_chat_template`` returns the messages as JSON text:
    the server applies the model's own chat template to ``Prompt.messages``, which the generator sends, and the
    record's ``prompt_text`` keeps them as text.
    """

    chat_template = "the server's"

    def __init__(self, inner: Any):
        self.inner = inner

    @property
    def is_fast(self) -> bool:
        """Whether character offsets are available (always for words; for a fast transformers tokenizer)."""
        return self.inner is None or bool(self.inner.is_fast)

    def __call__(
        self, text: str, add_special_tokens: bool = True, return_offsets_mapping: bool = False
    ) -> dict[str, Any]:
        if self.inner is not None:
            return self.inner(
                text, add_special_tokens=add_special_tokens, return_offsets_mapping=return_offsets_mapping
            )
        spans = [match.span() for match in WORD.finditer(text)]
        encoded: dict[str, Any] = {"input_ids": list(range(len(spans)))}
        if return_offsets_mapping:
            encoded["offset_mapping"] = spans
        return encoded

    def decode(self, ids: list[int]) -> str:
        """The text of ``ids`` (``inner``'s; word counts are never decoded, their offsets are exact)."""
        text: str = self.inner.decode(ids)
        return text

    @staticmethod
    def apply_chat_template(
        messages: Sequence[ChatMessage], tokenize: bool = False, add_generation_prompt: bool = True
    ) -> str:
        """``messages`` as JSON text: the prompt's text, counted in tokens and kept as ``prompt_text``."""
        return json.dumps(list(messages), ensure_ascii=False)
