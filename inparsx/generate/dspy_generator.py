"""The ``dspy`` generator: a DSPy program (document -> query) writes the synthetic queries.

InPars+ (arXiv 2508.13930, ``danilotpnta/IR2-project`` ``inpars/generate_DSPy.py``) runs the signature
``DocumentToQuery`` through ``dspy.ChainOfThought`` on Llama-3.1-8B served by vLLM; the chain of thought is
kept here as the record's rationale. The language model is either a local transformers model, plugged into
DSPy 3.4 as an engine object (:class:`TransformersEngine`, decoding through the ``hf`` generator's
:class:`~inparsx.generate.decoding.BatchGenerator`), or any OpenAI-compatible endpoint (``api_base``, e.g. a
vLLM server). ``program`` loads a compiled program (the ``dspy`` tuner's ``tune/program.json``). A document
whose answer DSPy cannot parse gets a record with an empty query and ``extra["parse_error"]`` (the length
filter drops it); the count is in ``generate/dspy.stats.json``. dspy is imported inside methods only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from inparsx.errors import InparsxError
from inparsx.generate.base import Generator, GeneratorOptions
from inparsx.io import write_json
from inparsx.precision import AUTO_DESCRIPTION
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef

SIGNATURE_INSTRUCTION = "Extract a single relevant query that encompasses the document."
"""The docstring of InPars+'s ``DocumentToQuery`` signature (``inpars/generate_DSPy.py``)."""
DOCUMENT_DESC = "The full document text to analyze."
QUERY_DESC = "A single relevant query ending in question mark that represents the document."
DSPY_PROMPT_TOKENS = 200
"""Tokens of DSPy's chat-adapter scaffolding around the document (field names, descriptions, format rules),
for the pre-flight check's estimate."""


class DSPyOptions(GeneratorOptions):
    """Options of the ``dspy`` generator.

    ``model``: a local transformers model (hub id, folder, or ``@tune``), or with ``api_base`` the name the
    endpoint serves (e.g. ``openai/meta-llama/Llama-3.1-8B-Instruct``, litellm's provider prefix).
    ``api_key_env``: the environment variable holding the endpoint's key. ``module``: ``ChainOfThought``
    (InPars+) or ``Predict``. ``program``: a compiled program JSON, or ``@tune``. ``instruction``: the
    signature's instruction (default InPars+'s). ``max_doc_words``: documents are cut to this many words.
    ``max_new_tokens``, ``temperature`` (0: greedy): decoding. ``dtype``, ``quantization``: loading of a local
    model, as the ``hf`` generator's options.
    """

    model: str
    api_base: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    module: Literal["ChainOfThought", "Predict"] = "ChainOfThought"
    program: str | None = None
    instruction: str = SIGNATURE_INSTRUCTION
    max_doc_words: int = Field(256, ge=1)
    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0)
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field("auto", description=AUTO_DESCRIPTION)
    quantization: Literal["none", "int8", "nf4"] = "none"


def build_program(module: str, instruction: str = SIGNATURE_INSTRUCTION) -> Any:
    """``dspy.ChainOfThought`` or ``dspy.Predict`` over ``document -> query`` (InPars+'s field descriptions)."""
    import dspy

    signature = dspy.Signature(
        {"document": dspy.InputField(desc=DOCUMENT_DESC), "query": dspy.OutputField(desc=QUERY_DESC)}, instruction
    )
    return getattr(dspy, module)(signature)


def truncate_words(text: str, limit: int) -> str:
    """The first ``limit`` whitespace-separated words of ``text``."""
    words = text.split()
    return text if len(words) <= limit else " ".join(words[:limit])


class TransformersEngine:
    """A DSPy 3.4 engine (``complete(Request) -> Response``, :mod:`dspy.clients.engines.base`) over a loaded
    transformers causal LM: the messages are rendered with the tokenizer's chat template (or joined as
    ``role: text`` lines when it has none) and decoded greedily (temperature 0) or by sampling, stopping at
    the request's stop strings or an end-of-sequence token.

    Args:
        model, tokenizer: as :func:`inparsx.generate.hf.load_model` returns them.
        max_new_tokens: the budget when the request sets none.
        name: the model name reported in responses.
    """

    def __init__(self, model: Any, tokenizer: Any, max_new_tokens: int = 256, name: str = "local"):
        self.model, self.tokenizer, self.max_new_tokens, self.name = model, tokenizer, max_new_tokens, name
        self.generated_tokens = 0
        self.calls = 0

    def render(self, request: Any) -> str:
        """The prompt text of a ``dspy.lm15.Request``."""
        messages = []
        if request.system is not None:
            system = request.system if isinstance(request.system, str) else "".join(p.text for p in request.system)
            messages.append({"role": "system", "content": system})
        messages.extend({"role": m.role, "content": m.text or ""} for m in request.messages)
        if getattr(self.tokenizer, "chat_template", None):
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "".join(f"{m['role']}: {m['content']}\n" for m in messages) + "assistant:"

    def complete(self, request: Any) -> Any:
        """Generate the answer to ``request`` (one completion; DSPy owns retries and caching)."""
        from dspy.lm15 import Message, Response, TextPart, Usage

        from inparsx.generate.decoding import BatchGenerator

        config = request.config
        sampling = (
            {"temperature": config.temperature, "top_p": config.top_p or 1.0, "top_k": 0}
            if config.temperature
            else None
        )
        engine = BatchGenerator(
            self.model,
            self.tokenizer,
            list(config.stop),
            config.max_tokens or self.max_new_tokens,
            sampling,
            cache="dynamic",
        )
        text = self.render(request)
        ids = self.tokenizer(text, add_special_tokens=not getattr(self.tokenizer, "chat_template", None))["input_ids"]
        generation = engine([ids], seed=config.seed or self.calls)[0][0]
        self.calls += 1
        self.generated_tokens += len(generation.token_ids)
        finish = "length" if generation.finish == "length" else "stop"
        return Response(
            id=None,
            model=self.name,
            message=Message.assistant([TextPart(generation.text)]),
            finish_reason=finish,
            usage=Usage(
                input_tokens=len(ids),
                output_tokens=len(generation.token_ids),
                total_tokens=len(ids) + len(generation.token_ids),
            ),
        )

    def stream(self, request: Any) -> Any:
        """The engine contract's stream: the whole completion as one start-to-end event sequence."""
        from dspy.lm15 import response_to_events

        return response_to_events(self.complete(request))

    def close(self) -> None:
        """Nothing to release: the model belongs to the generator."""


class DSPyGenerator(Generator):
    """Runs the DSPy program on every document; one record per document (see the module docstring)."""

    name: ClassVar[str] = "dspy"
    Options: ClassVar[type[DSPyOptions]] = DSPyOptions

    def __init__(self, options: DSPyOptions | None = None):
        super().__init__(options)
        self.parse_failures = 0
        self.documents = 0
        self._lm: Any = None
        self._engine: TransformersEngine | None = None

    def models(self) -> list[ModelRef]:
        """The local model (none with ``api_base``: the endpoint serves it), loaded in ``dtype`` and
        ``quantization``, one document at a time: a prompt of about ``max_doc_words`` words plus DSPy's field
        instructions, and ``max_new_tokens`` (the chain of thought and the query)."""
        from inparsx.models import Generation, ModelRef

        opts = self.options
        if opts.api_base:
            return []
        prompt = opts.max_doc_words * 4 // 3 + DSPY_PROMPT_TOKENS
        return [
            ModelRef(
                "model",
                opts.model,
                "generator",
                dtype=opts.dtype,
                quantization=opts.quantization,
                generation=Generation(opts.num_docs, 1, 1, prompt, opts.max_new_tokens),
            )
        ]

    def lm(self, ctx: ComponentContext) -> Any:
        """The ``dspy.LM``: an OpenAI-compatible endpoint with ``api_base``, else a local model as an engine.

        Raises:
            InparsxError: the local model cannot be loaded.
        """
        if self._lm is None:
            import dspy

            opts = self.options
            if opts.api_base:
                self._lm = dspy.LM(
                    opts.model,
                    api_base=opts.api_base,
                    api_key=os.environ.get(opts.api_key_env, "none"),
                    temperature=opts.temperature,
                    max_tokens=opts.max_new_tokens,
                    cache=False,
                )
            else:
                from inparsx.generate.hf import HFOptions, load_model, say_what_runs

                path = ctx.resolve_model(opts.model)
                model, tokenizer = load_model(
                    path, HFOptions(model=path, dtype=opts.dtype, quantization=opts.quantization)
                )
                self.ran_with = say_what_runs(model, opts, f"{self.name} generator", ctx)
                self._engine = TransformersEngine(model, tokenizer, opts.max_new_tokens, name=opts.model)
                self._lm = dspy.LM(
                    f"local/{opts.model}",
                    engine=self._engine,
                    cache=False,
                    temperature=opts.temperature,
                    max_tokens=opts.max_new_tokens,
                )
        return self._lm

    def program(self, ctx: ComponentContext) -> Any:
        """The program: built from ``module`` and ``instruction``, then loaded from ``program`` when set.

        Raises:
            InparsxError: the program file is missing or does not match ``module``.
        """
        program = build_program(self.options.module, self.options.instruction)
        if self.options.program:
            from inparsx.artifacts import PROGRAM

            path = ctx.resolve_model(self.options.program, PROGRAM)
            try:
                program.load(path)
            except (OSError, KeyError, ValueError) as exc:
                raise InparsxError(f"cannot load the DSPy program {path} as a {self.options.module}: {exc}") from None
        return program

    def generate(self, docs: Sequence[Document], ctx: ComponentContext) -> Iterator[list[SyntheticQuery]]:
        """One record per document, yielded one by one (DSPy calls the model per document)."""
        import dspy

        program, lm = self.program(ctx), self.lm(ctx)
        with dspy.context(lm=lm):
            for doc in docs:
                yield [self.run_one(program, doc)]
                if self._engine is not None:
                    self.generated_tokens = self._engine.generated_tokens
        self.write_stats(ctx)

    def run_one(self, program: Any, doc: Document) -> SyntheticQuery:
        """The program's query for ``doc`` (empty, with ``extra["parse_error"]``, when the answer cannot be parsed)."""
        from dspy.utils.exceptions import AdapterParseError

        self.documents += 1
        extra: dict[str, Any] = {}
        try:
            prediction = program(document=truncate_words(doc.full_text, self.options.max_doc_words))
            query = str(prediction.query or "").strip()
            if getattr(prediction, "reasoning", None):
                extra["rationale"] = prediction.reasoning
        except AdapterParseError as exc:
            self.parse_failures += 1
            query, extra["parse_error"] = "", str(exc).splitlines()[0][:300]
        return SyntheticQuery(
            query_id=f"{doc.doc_id}-0",
            doc_id=doc.doc_id,
            query=query,
            generator=f"dspy:{self.options.module}:{self.options.model}",
            extra=extra,
        )

    def write_stats(self, ctx: ComponentContext) -> None:
        """``dspy.stats.json`` in the stage folder: documents run in this process and parse failures."""
        write_json(
            ctx.dir / "dspy.stats.json",
            {
                "documents": self.documents,
                "parse_failures": self.parse_failures,
                "module": self.options.module,
                "program": self.options.program,
            },
        )
