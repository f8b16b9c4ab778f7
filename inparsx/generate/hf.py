"""The ``hf`` generator: synthetic queries from a transformers causal LM or seq2seq model (doc2query-T5 style).

InPars v1 (Bonifacio et al., 2022) decodes greedily from a static 3-shot prompt and scores each query by its
mean token log-probability (InPars toolkit, Abonizio et al., 2023, eq. 1); Promptagator (Dai et al., ICLR
2023) samples 8 queries per document at temperature 0.7 from a dataset-specific few-shot prompt. Both are
options of this one generator. torch and transformers are imported inside methods only.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from inparsx.errors import InparsxError
from inparsx.generate.base import Generator, GeneratorOptions
from inparsx.generate.prompts import DEFAULT_INSTRUCTION
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.generate.fewshot import FewShotPool
    from inparsx.generate.prompts import PromptBuilder
    from inparsx.generate.templates import PromptTemplate
    from inparsx.pipeline import StageContext

BUILTIN_TEMPLATES = {"doc2query": "{document}{query}"}
"""Templates that are not in the InPars file: ``doc2query`` is the bare document (doc2query-T5's input)."""

SORT_WINDOW = 32
"""Documents are sorted by prompt length within windows of ``SORT_WINDOW * batch_size`` documents."""


class HFOptions(GeneratorOptions):
    """Options of the ``hf`` generator (the recipe's ``[generate]`` table with ``use = "hf"``)."""

    model: str = Field(description="hub id, local folder, a .gguf file, or @stage (e.g. @tune)")
    gguf_file: str | None = Field(None, description="a GGUF file inside the model's folder or hub repository "
                                  "(transformers dequantizes it; needs the gguf package)")
    prompt: Literal["inpars", "inpars-gbq", "promptagator", "custom", "doc2query"] = "inpars"
    template: str | None = Field(None, description="custom: a template file; promptagator: a template name "
                                 "in the prompts file (default promptagator-<dataset>)")
    template_mode: Literal["static", "dynamic"] = Field("static", description="custom templates: static, or "
                                                        "dynamic (repeated for few-shot examples, as Promptagator)")
    prompts_file: str | None = Field(None, description="local copy of the InPars templates.yaml "
                                     "(default: $INPARSX_PROMPTS_FILE, else the pinned upstream file)")
    chat: bool = Field(False, description="render with the tokenizer's chat template, few-shot pairs as turns")
    instruction: str = DEFAULT_INSTRUCTION
    n_fewshot: int = Field(3, ge=1, le=8)
    fewshot_pool: int | None = Field(None, ge=1, description="pairs drawn once for the run (default: the "
                                     "whole train split; n_fewshot when examples come from the evaluated split)")
    max_doc_tokens: int = Field(256, ge=1)
    max_prompt_tokens: int = Field(2048, ge=8)
    max_new_tokens: int = Field(64, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["\n"])
    do_sample: bool = False
    temperature: float = Field(1.0, gt=0)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0, description="0 = off")
    num_queries_per_doc: int = Field(1, ge=1)
    batch_size: int = Field(8, ge=1)
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    quantization: Literal["none", "int8", "nf4"] = "none"
    device_map: str | None = Field(None, description='e.g. "auto" to spread a large model over GPUs')
    attn_implementation: str | None = Field(None, description='transformers attention kernel, e.g. "sdpa", '
                                            '"eager", "flash_attention_2" (default: the model\'s)')
    cache: Literal["static", "dynamic"] = "static"
    prefix_cache: bool = True
    revision: str | None = None
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _consistent(self) -> "HFOptions":
        if not self.do_sample and (self.temperature != 1.0 or self.top_p != 1.0 or self.top_k or self.num_queries_per_doc > 1):
            raise ValueError("temperature, top_p, top_k and num_queries_per_doc > 1 need do_sample = true "
                             "(greedy decoding would ignore them or repeat the same query)")
        if self.template_mode == "dynamic" and self.prompt != "custom":
            raise ValueError('template_mode applies to prompt = "custom" (promptagator is always dynamic)')
        if self.prompt == "custom" and not self.template:
            raise ValueError('prompt = "custom" needs template = "<path of a file with {document} and {query}>"')
        return self


class HFGenerator(Generator):
    """Queries from a transformers model: batched, left-padded, prefix-cached, stopped on decoded text."""

    name = "hf"
    Options: ClassVar[type[HFOptions]] = HFOptions

    def __init__(self, options: HFOptions | None = None):
        super().__init__(options)
        self._pool: FewShotPool | None = None
        self._loaded: tuple[Any, Any] | None = None

    @property
    def queries_per_doc(self) -> int:
        return self.options.num_queries_per_doc

    def fewshot_split(self, ctx: "StageContext") -> str | None:
        pool = self._fewshot_pool(ctx)
        return pool.split if pool else None

    def generate(self, docs: Sequence[Document], ctx: "StageContext") -> Iterator[list[SyntheticQuery]]:
        """Queries for ``docs`` batch by batch (documents sorted by prompt length within windows).

        Raises:
            InparsxError: the model cannot be loaded, the template is missing or invalid, or a prompt cannot
                fit ``max_prompt_tokens``.
        """
        model, tokenizer = self.load(ctx)
        builder = self.prompt_builder(ctx, tokenizer, model)
        engine = self._engine(model, tokenizer, builder)
        size, counted = self.options.batch_size, self.generated_tokens
        for start in range(0, len(docs), size * SORT_WINDOW):
            window = docs[start:start + size * SORT_WINDOW]
            prompts = [builder.build(doc) for doc in window]
            order = sorted(range(len(window)), key=lambda i: -len(prompts[i].input_ids))
            for at in range(0, len(order), size):
                batch = order[at:at + size]
                outputs = engine([prompts[i].input_ids for i in batch], seed=_batch_seed(ctx.seed, window[batch[0]]))
                self.generated_tokens = counted + engine.generated_tokens
                yield [self._record(window[i], prompts[i], k, g) for i, gens in zip(batch, outputs)
                       for k, g in enumerate(gens)]

    def _record(self, doc: Document, prompt: Any, index: int, generation: Any) -> SyntheticQuery:
        log_probs = generation.log_probs
        score = sum(log_probs) / len(log_probs) if log_probs else None
        return SyntheticQuery(query_id=f"{doc.doc_id}-{index}", doc_id=doc.doc_id, query=generation.text,
                              log_probs=log_probs, score=score, prompt_text=prompt.text,
                              generator=f"hf:{self.options.model}", fewshot_examples=prompt.fewshot_ids,
                              extra={"finish": generation.finish})

    def load(self, ctx: "StageContext") -> tuple[Any, Any]:
        """The model (eval mode, on its device) and its tokenizer (pad token set), loaded once."""
        if self._loaded is None:
            self._loaded = load_model(ctx.resolve_model(self.options.model), self.options)
        return self._loaded

    def template(self, ctx: "StageContext") -> "PromptTemplate":
        """The prompt template the options name (see :class:`HFOptions`)."""
        from inparsx.generate.templates import PromptTemplate, load_templates, read_custom_template

        opts = self.options
        if opts.prompt == "custom":
            return read_custom_template(opts.template, dynamic=opts.template_mode == "dynamic")
        if opts.prompt in BUILTIN_TEMPLATES:
            return PromptTemplate(opts.prompt, BUILTIN_TEMPLATES[opts.prompt])
        templates = load_templates(opts.prompts_file)
        name = opts.template or (f"promptagator-{dataset_short_name(ctx.dataset.name)}" if opts.prompt == "promptagator" else opts.prompt)
        if name not in templates:
            available = ", ".join(sorted(templates))
            raise InparsxError(f"no prompt template {name!r} in the prompts file; available: {available} "
                               "(set the generator option template to one of them)")
        return templates[name]

    def prompt_builder(self, ctx: "StageContext", tokenizer: Any, model: Any = None) -> "PromptBuilder":
        """The prompt builder of this run (``model`` caps the prompt length to its context window)."""
        from inparsx.generate.prompts import PromptBuilder

        opts = self.options
        template = self.template(ctx)
        limit = opts.max_prompt_tokens
        context = _context_length(model)
        if context and not getattr(model.config, "is_encoder_decoder", False):
            limit = min(limit, context - opts.max_new_tokens)
        return PromptBuilder(template, tokenizer, chat=opts.chat, instruction=opts.instruction,
                             max_doc_tokens=opts.max_doc_tokens, max_prompt_tokens=limit,
                             pool=self._fewshot_pool(ctx) if template.dynamic else None, n_fewshot=opts.n_fewshot)

    def _fewshot_pool(self, ctx: "StageContext") -> "FewShotPool | None":
        if self._pool is None and self._dynamic():
            from inparsx.generate.fewshot import build_pool

            self._pool = build_pool(ctx.dataset, ctx.eval_split, ctx.seed, self.options.n_fewshot,
                                    self.options.fewshot_pool)
        return self._pool

    def _dynamic(self) -> bool:
        return self.options.prompt == "promptagator" or (self.options.prompt == "custom" and self.options.template_mode == "dynamic")

    def _engine(self, model: Any, tokenizer: Any, builder: "PromptBuilder") -> Any:
        from inparsx.generate.decoding import BatchGenerator

        opts = self.options
        prefix = builder.shared_prefix() if opts.prefix_cache else ""
        prefix_ids = builder.encode(prefix)[:-1] if prefix else []  # drop the last token: it may merge onwards
        sampling = {"temperature": opts.temperature, "top_p": opts.top_p, "top_k": opts.top_k} if opts.do_sample else None
        return BatchGenerator(model, tokenizer, opts.stop, opts.max_new_tokens, sampling, opts.num_queries_per_doc,
                              opts.cache, prefix_ids if len(prefix_ids) >= 8 else None)


def load_model(path: str, options: HFOptions) -> tuple[Any, Any]:
    """Load a causal LM or seq2seq model and its tokenizer as ``options`` say (dtype, bitsandbytes
    quantisation, device map; one device per process under ``accelerate launch``). ``path`` may be a packaged
    hub id or a ``.gguf`` file (see :func:`inparsx.models.model_source`); ``options.gguf_file`` names a GGUF
    file inside it.

    Raises:
        InparsxError: the model or tokenizer cannot be loaded (missing folder, no network, unknown id).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoModelForSeq2SeqLM, AutoTokenizer

    from inparsx.models import from_pretrained

    common = {"revision": options.revision, "trust_remote_code": options.trust_remote_code}
    try:
        tokenizer = from_pretrained(AutoTokenizer, path, options.gguf_file, **common)
        config = from_pretrained(AutoConfig, path, options.gguf_file, **common)
        cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        kwargs = {**common, **_placement(options)}
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
            model = from_pretrained(cls, path, options.gguf_file, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise InparsxError(f"cannot load generator model {path!r}: {exc}") from None
    if "device_map" not in kwargs:
        model.to(_device())
    model.eval()
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise InparsxError(f"{path}: the tokenizer has neither a pad nor an eos token to pad batches with")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right" if config.is_encoder_decoder else "left"
    return model, tokenizer


def _placement(options: HFOptions) -> dict[str, Any]:
    """dtype, quantization_config and device_map arguments of ``from_pretrained``."""
    import torch

    dtypes = {"auto": "auto", "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}
    kwargs: dict[str, Any] = {"dtype": dtypes[options.dtype]}
    if options.attn_implementation:
        kwargs["attn_implementation"] = options.attn_implementation
    if options.device_map and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from inparsx.progress import console

        console.print(f"[yellow]data parallel: device_map = {options.device_map!r} ignored, each process loads "
                      "the whole model on its own device[/yellow]")
    elif options.device_map:
        kwargs["device_map"] = options.device_map
    if options.quantization != "none":
        from transformers import BitsAndBytesConfig

        compute = dtypes[options.dtype] if options.dtype != "auto" else (torch.bfloat16 if torch.cuda.is_available() else torch.float32)
        kwargs["quantization_config"] = (BitsAndBytesConfig(load_in_8bit=True) if options.quantization == "int8" else
                                         BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                                                            bnb_4bit_compute_dtype=compute))
        kwargs.setdefault("device_map", {"": str(_device())})
    return kwargs


def _device() -> Any:
    """This process's device: its GPU under ``accelerate launch`` / torchrun, else cuda, mps or cpu."""
    import torch

    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        from accelerate import PartialState

        return PartialState(cpu=not torch.cuda.is_available()).device
    if torch.cuda.is_available():
        return torch.device("cuda")
    return torch.device("mps" if torch.backends.mps.is_available() else "cpu")


def _context_length(model: Any) -> int | None:
    config = getattr(model, "config", None)
    for key in ("max_position_embeddings", "n_positions"):
        if isinstance(value := getattr(config, key, None), int):
            return value
    return None


def _batch_seed(seed: int, first: Document) -> int:
    """A sampling seed per batch, from the run seed and the batch's first document (stable across resumes)."""
    import hashlib

    return int.from_bytes(hashlib.sha256(f"{seed}:{first.doc_id}".encode()).digest()[:4], "big")


def dataset_short_name(name: str) -> str:
    """``beir:scifact`` / ``irds:beir/scifact/test`` / a folder path -> ``scifact`` (Promptagator's template key)."""
    parts = [p for p in name.split(":", 1)[-1].replace("\\", "/").split("/") if p]
    while len(parts) > 1 and parts[-1] in ("train", "dev", "test", "validation"):
        parts.pop()
    return parts[-1] if parts else name
