"""The ``hf`` generator: synthetic queries from a transformers causal LM or seq2seq model (doc2query-T5 style).

InPars v1 (Bonifacio et al., 2022) decodes greedily from a static 3-shot prompt and scores each query by its
mean token log-probability (InPars toolkit, Abonizio et al., 2023, eq. 1); Promptagator (Dai et al., ICLR
2023) samples 8 queries per document at temperature 0.7 from a dataset-specific few-shot prompt. Both are
options of this one generator. torch and transformers are imported inside methods only.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from inparsx.devices import is_distributed, process_device
from inparsx.errors import InparsxError
from inparsx.generate.prompted import DecodingOptions, PromptedGenerator, dataset_short_name
from inparsx.precision import AUTO_DESCRIPTION
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.generate.prompts import PromptBuilder
    from inparsx.models import ModelRef

__all__ = ["HFGenerator", "HFOptions", "dataset_short_name", "load_model"]

SORT_WINDOW = 32
"""Documents are sorted by prompt length within windows of ``SORT_WINDOW * batch_size`` documents."""


class HFOptions(DecodingOptions):
    """Options of the ``hf`` generator (the recipe's ``[generate]`` table with ``use = "hf"``); the prompt and
    decoding options are :class:`~inparsx.generate.prompted.DecodingOptions`."""

    model: str = Field(description="hub id, local folder, a .gguf file, or @stage (e.g. @tune)")
    gguf_file: str | None = Field(
        None,
        description="a GGUF file inside the model's folder or hub repository "
        "(transformers dequantizes it; needs the gguf package)",
    )
    batch_size: int = Field(8, ge=1)
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field("auto", description=AUTO_DESCRIPTION)
    quantization: Literal["none", "int8", "nf4"] = "none"
    device_map: str | None = Field(None, description='e.g. "auto" to spread a large model over GPUs')
    attn_implementation: str | None = Field(
        None,
        description='transformers attention kernel, e.g. "sdpa", "eager", "flash_attention_2" (default: the model\'s)',
    )
    cache: Literal["static", "dynamic"] = Field(
        "static", description="the KV cache of generation: static (preallocated) or dynamic (transformers' default)"
    )
    prefix_cache: bool | None = Field(
        None,
        description="compute the prompt prefix every document shares once "
        "(default: on for decoder-only models; an encoder-decoder model reads its "
        "whole input at once, so true is refused with one)",
    )


class HFGenerator(PromptedGenerator):
    """Queries from a transformers model: batched, left-padded, prefix-cached, stopped on decoded text."""

    name = "hf"
    Options: ClassVar[type[HFOptions]] = HFOptions

    def __init__(self, options: HFOptions | None = None):
        super().__init__(options)
        self._loaded: tuple[Any, Any] | None = None

    @property
    def queries_per_doc(self) -> int:
        return self.options.num_queries_per_doc

    def models(self) -> list[ModelRef]:
        """The generator model, loaded as :func:`load_model` loads it (dtype, quantization, device map), and
        how it generates (:class:`~inparsx.models.Generation`: ``num_docs`` documents, ``num_queries_per_doc``
        each, ``batch_size`` at a time, the estimated prompt and ``max_new_tokens``; the prompt's shared prefix
        is computed once unless ``prefix_cache = false``)."""
        from inparsx.models import Generation, ModelRef

        opts = self.options
        prompt, shared = self.prompt_tokens_estimate()
        generation = Generation(
            opts.num_docs,
            opts.num_queries_per_doc,
            opts.batch_size,
            prompt,
            opts.max_new_tokens,
            shared if opts.prefix_cache is not False else 0,
        )
        return [
            ModelRef(
                "model",
                opts.model,
                "generator",
                dtype=opts.dtype,
                quantization=opts.quantization,
                generation=generation,
                gguf_file=opts.gguf_file,
                revision=opts.revision,
                device_map=opts.device_map,
            )
        ]

    def generate(self, docs: Sequence[Document], ctx: ComponentContext) -> Iterator[list[SyntheticQuery]]:
        """Queries for ``docs`` batch by batch (documents sorted by prompt length within windows).

        Raises:
            InparsxError: the model cannot be loaded, the template is missing or invalid, or a prompt cannot
                fit ``max_prompt_tokens``.
        """
        model, tokenizer = self.load(ctx)
        builder = self.prompt_builder(ctx, tokenizer, self.max_prompt_tokens_for(model))
        engine = self._engine(model, tokenizer, builder)
        size, counted = self.options.batch_size, self.generated_tokens
        for start in range(0, len(docs), size * SORT_WINDOW):
            window = docs[start : start + size * SORT_WINDOW]
            prompts = [builder.build(doc) for doc in window]
            order = sorted(range(len(window)), key=lambda i: -len(prompts[i].input_ids))
            for at in range(0, len(order), size):
                batch = order[at : at + size]
                outputs = engine([prompts[i].input_ids for i in batch], seed=_batch_seed(ctx.seed, window[batch[0]]))
                self.generated_tokens = counted + engine.generated_tokens
                yield [
                    self.inpars_record("hf", window[i], prompts[i], k, g)
                    for i, gens in zip(batch, outputs)
                    for k, g in enumerate(gens)
                ]

    def load(self, ctx: ComponentContext) -> tuple[Any, Any]:
        """The model (eval mode, on its device) and its tokenizer (pad token set), loaded once."""
        if self._loaded is None:
            self._loaded = load_model(ctx.resolve_model(self.options.model), self.options)
            self.ran_with = say_what_runs(self._loaded[0], self.options, f"generate ({self.name})", ctx)
        return self._loaded

    def max_prompt_tokens_for(self, model: Any) -> int:
        """The longest prompt ``model`` can continue, in tokens: ``max_prompt_tokens``, capped for a decoder-only
        model at its context window (``config.max_position_embeddings`` or ``n_positions``) minus
        ``max_new_tokens``; an encoder-decoder reads the prompt in its encoder, so only the option applies.
        ``model``: a loaded transformers model (anything with a ``config``), or ``None`` for the option alone.
        Pass the result to :meth:`prompt_builder`."""
        limit: int = self.options.max_prompt_tokens
        context = _context_length(model)
        if context and not getattr(model.config, "is_encoder_decoder", False):
            limit = min(limit, context - self.options.max_new_tokens)
        return limit

    def _engine(self, model: Any, tokenizer: Any, builder: PromptBuilder) -> Any:
        from inparsx.generate.decoding import BatchGenerator

        opts = self.options
        if opts.prefix_cache and model.config.is_encoder_decoder:
            raise InparsxError(
                f"generate.prefix_cache = true, but {opts.model} is an encoder-decoder (seq2seq) model: "
                "its encoder reads the whole prompt at once, so there is no prefix to cache; leave "
                "prefix_cache unset"
            )
        prefix = (
            builder.shared_prefix() if opts.prefix_cache is not False and not model.config.is_encoder_decoder else ""
        )
        prefix_ids = builder.encode(prefix)[:-1] if prefix else []  # drop the last token: it may merge onwards
        sampling = (
            {"temperature": opts.temperature, "top_p": opts.top_p, "top_k": opts.top_k} if opts.do_sample else None
        )
        return BatchGenerator(
            model,
            tokenizer,
            opts.stop,
            opts.max_new_tokens,
            sampling,
            opts.num_queries_per_doc,
            opts.cache,
            prefix_ids if len(prefix_ids) >= 8 else None,
        )


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

    common = source_kwargs(options)
    try:
        tokenizer = from_pretrained(AutoTokenizer, path, options.gguf_file, **common)
        config = from_pretrained(AutoConfig, path, options.gguf_file, **common)
        cls = AutoModelForSeq2SeqLM if config.is_encoder_decoder else AutoModelForCausalLM
        kwargs = model_kwargs(options)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*MatMul8bitLt.*")
            model = from_pretrained(cls, path, options.gguf_file, **kwargs)
    except (OSError, ValueError, ImportError) as exc:
        raise InparsxError(f"cannot load generator model {path!r}: {exc}") from None
    if "device_map" not in kwargs:
        model.to(process_device())
    model.eval()
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise InparsxError(f"{path}: the tokenizer has neither a pad nor an eos token to pad batches with")
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right" if config.is_encoder_decoder else "left"
    return model, tokenizer


def source_kwargs(options: HFOptions) -> dict[str, Any]:
    """``revision`` and ``trust_remote_code``: the ``from_pretrained`` arguments of tokenizer, config and model."""
    return {"revision": options.revision, "trust_remote_code": options.trust_remote_code}


def model_kwargs(options: HFOptions) -> dict[str, Any]:
    """Every keyword argument the model's ``from_pretrained`` gets (:func:`source_kwargs` and the placement:
    dtype, attention kernel, quantisation, device map)."""
    return {**source_kwargs(options), **_placement(options)}


def _placement(options: HFOptions) -> dict[str, Any]:
    """dtype, quantization_config and device_map arguments of ``from_pretrained``."""
    from inparsx.precision import torch_dtype

    compute = torch_dtype(generator_precision(options))
    kwargs: dict[str, Any] = {"dtype": compute}
    if options.attn_implementation:
        kwargs["attn_implementation"] = options.attn_implementation
    if options.device_map and is_distributed():
        from inparsx.progress import console

        console.print(
            f"[yellow]data parallel: device_map = {options.device_map!r} ignored, each process loads "
            "the whole model on its own device[/yellow]"
        )
    elif options.device_map:
        kwargs["device_map"] = options.device_map
    if options.quantization != "none":
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = (
            BitsAndBytesConfig(load_in_8bit=True)
            if options.quantization == "int8"
            else BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=compute)
        )
        kwargs.setdefault("device_map", {"": str(process_device())})
    return kwargs


def say_what_runs(model: Any, options: Any, label: str, ctx: ComponentContext) -> dict[str, str]:
    """Log the device and precision a loaded generator model runs with (``generate (hf): <model> on cpu, bf16
    (auto: this CPU computes bf16 natively (AVX512-BF16))``, plus ``, nf4 weights`` when quantised) and return
    them as recorded in ``queries.stats.json``: ``{"model", "device", "precision", "precision_reason"}`` and
    ``quantization`` when not ``none`` (resolved values, :func:`inparsx.precision.ran_with`). ``options``: any
    options with ``model``, ``dtype`` and ``quantization`` (the ``hf`` and ``dspy`` generators')."""
    from inparsx.precision import describe, precision_name, ran_with

    device, precision = model.device, precision_name(model.dtype)
    quantized = "" if options.quantization == "none" else f", {options.quantization} weights"
    ctx.log(f"{label}: {options.model} on {describe(device, options.dtype, precision)}{quantized}")
    return {
        "model": options.model,
        **ran_with(device, options.dtype, precision),
        **({"quantization": options.quantization} if quantized else {}),
    }


def generator_precision(options: HFOptions) -> str:
    """``options.dtype`` resolved on this process's device by the one ``auto`` rule
    (:data:`inparsx.precision.AUTO_RULE`); with ``quantization``, the dtype the quantised layers compute in.

    Raises:
        InparsxError: fp16 asked for on a CPU.
    """
    from inparsx.precision import resolve_precision

    return resolve_precision(options.dtype, process_device(), "generate.dtype")


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
