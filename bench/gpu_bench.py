"""GPU check: throughput of inparsx's engines on random-weight models of real sizes, each beside the bound the
GPU's memory bandwidth (and its matrix-product peak) sets (run through ``bench/gpu.sh``, which installs what is
missing first).

Models (random weights, built from their configs; nothing is downloaded): Llama-3.1-8B in bf16 (generation with
``hf``'s batched generator and with vLLM through the ``vllm`` generator's engine, and one CPO step with a LoRA),
MiniLM-L12 as a cross-encoder and monoT5-3B (reranking forward passes). The HBM bandwidth is measured in the same
run (a large device-to-device copy), and so is the bf16 matrix-product peak. Bounds (each leaves costs out, so
the true one is further still):

- generation: the prefill costs 2 x parameters x prompt tokens FLOPs (at the matmul peak), and every decoding
  step reads all weights once (at the bandwidth; the KV cache read left out), so a batch takes at least
  prefill + new tokens x weight bytes / bandwidth;
- reranking: a batch reads the weights once (bandwidth) and costs 2 x parameters x tokens FLOPs (compute, at
  the matmul peak); the larger of the two times bounds pairs/s;
- a CPO step (LoRA on frozen weights): TRL runs chosen and rejected as one concatenated batch (policy only:
  CPO has no reference model); forward and backward each read the weights once and cost 2 x parameters x
  tokens FLOPs (no weight gradients but the LoRA's), so a step takes at least the larger of 2 x weight bytes /
  bandwidth and 4 x parameters x tokens / peak.

    python bench/gpu_bench.py            # on a GPU, real sizes (about 5-8 min on one H200)
    python bench/gpu_bench.py --tiny     # tiny configs, on the CPU when there is no GPU (a check of the script)

Prints one line per measurement, ``<what>: <measured> (bound <bound>, <fraction> of it)``.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")

LLAMA_8B = dict(
    vocab_size=128256,
    hidden_size=4096,
    intermediate_size=14336,
    num_hidden_layers=32,
    num_attention_heads=32,
    num_key_value_heads=8,
    max_position_embeddings=8192,
    rope_theta=500000.0,
    rms_norm_eps=1e-5,
    tie_word_embeddings=False,
)
"""meta-llama/Llama-3.1-8B's config.json (the rope scaling left out)."""
MINILM_L12 = dict(
    vocab_size=30522,
    hidden_size=384,
    num_hidden_layers=12,
    num_attention_heads=12,
    intermediate_size=1536,
    max_position_embeddings=512,
)
"""cross-encoder/ms-marco-MiniLM-L-12-v2's config."""
MONOT5_3B = dict(
    vocab_size=32128,
    d_model=1024,
    d_ff=16384,
    d_kv=128,
    num_layers=24,
    num_decoder_layers=24,
    num_heads=32,
    feed_forward_proj="relu",
    decoder_start_token_id=0,
    pad_token_id=0,
    eos_token_id=1,
)
"""castorini/monot5-3b-msmarco-10k's config (t5-3b)."""

TINY = {
    "llama": dict(
        vocab_size=512,
        hidden_size=128,
        intermediate_size=256,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
    ),
    "minilm": dict(
        vocab_size=512,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        max_position_embeddings=512,
    ),
    "monot5": dict(
        vocab_size=512,
        d_model=64,
        d_ff=128,
        d_kv=32,
        num_layers=2,
        num_decoder_layers=2,
        num_heads=2,
        feed_forward_proj="relu",
        decoder_start_token_id=0,
        pad_token_id=0,
        eos_token_id=1,
    ),
}


def line(what: str, measured: float, unit: str, bound: float | None = None, higher_is_better: bool = True) -> None:
    """One result line; ``bound`` is what the hardware allows (an upper bound of a rate, a lower one of a time)."""
    text = f"{what}: {measured:,.{3 if measured < 10 else 1}f} {unit}"
    if bound:
        share = measured / bound if higher_is_better else bound / measured
        text += f" (bound {bound:,.{3 if bound < 10 else 1}f} {unit}, {share:.0%} of it)"
    print(text, flush=True)


def generation_bound(
    parameters: int, weight_bytes: int, batch: int, prompt: int, new: int, hbm: float, peak: float
) -> float:
    """Generated tokens/s no engine can beat: ``batch`` prompts of ``prompt`` tokens prefilled at the matmul
    ``peak`` (FLOP/s), then ``new`` decoding steps that each read every weight at ``hbm`` (bytes/s)."""
    seconds = 2 * parameters * batch * prompt / peak + new * weight_bytes / hbm
    return batch * new / seconds


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def bandwidth(device, gib: float) -> float:
    """Bytes/s of a device-to-device copy of ``gib`` GiB (read + write counted), best of 5."""
    import torch

    n = int(gib * (1 << 30)) // 2
    a = torch.empty(n, dtype=torch.bfloat16, device=device)
    b = torch.empty_like(a)
    b.copy_(a)
    best = float("inf")
    for _ in range(5):
        synchronize(device)
        began = time.perf_counter()
        b.copy_(a)
        synchronize(device)
        best = min(best, time.perf_counter() - began)
    del a, b
    return 2 * n * 2 / best


def matmul_peak(device, size: int):
    """FLOP/s of a ``size`` x ``size`` matrix product in the dtype the models run in here (bf16 on a GPU, fp32 on
    a CPU), best of 5."""
    import torch

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn_like(a)
    a @ b
    best = float("inf")
    for _ in range(5):
        synchronize(device)
        began = time.perf_counter()
        a @ b
        synchronize(device)
        best = min(best, time.perf_counter() - began)
    return 2 * size**3 / best


def word_tokenizer(vocab: int, folder: Path | None = None, eos: bool = False):
    """A word-level tokenizer of ``vocab`` tokens: ``<pad>`` (id 0, also the unknown token), ``<eos>`` (1),
    ``<bos>`` (2) and made-up words ``t3`` ... (so that any generated id decodes). The special tokens do not
    look like words: an added token is matched inside words too (``t1`` would split ``t15``). ``eos``: the
    tokenizer declares ``<eos>`` and ``<bos>`` (CPO appends the end-of-sequence token to every completion)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    table = {"<pad>": 0, "<eos>": 1, "<bos>": 2, **{f"t{i}": i for i in range(3, vocab)}}
    inner = Tokenizer(models.WordLevel(table, unk_token="<pad>"))
    inner.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=inner,
        pad_token="<pad>",
        unk_token="<pad>",
        **({"eos_token": "<eos>", "bos_token": "<bos>"} if eos else {}),
    )
    if folder is not None:
        tokenizer.save_pretrained(folder)
    return tokenizer


def words(vocab: int, n: int, offset: int) -> str:
    """``n`` made-up words of :func:`word_tokenizer` (one token each), a different sequence per ``offset``."""
    return " ".join(f"t{(offset + 7 * i) % (vocab - 3) + 3}" for i in range(n))


def weight_bytes(model) -> int:
    return sum(p.numel() * p.element_size() for p in model.parameters())


def hf_generation(config, device, batch: int, prompt: int, new: int, hbm: float, peak: float) -> None:
    """Tokens/s of ``hf``'s batched generator (inparsx.generate.decoding.BatchGenerator: static KV cache)."""
    import torch
    from transformers import LlamaForCausalLM

    from inparsx.generate.decoding import BatchGenerator

    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype).eval()
    model.generation_config.eos_token_id = None
    tokenizer = word_tokenizer(config.vocab_size)
    engine = BatchGenerator(model, tokenizer, stops=[], max_new_tokens=new)
    prompts = torch.randint(1, config.vocab_size, (batch, prompt)).tolist()
    engine(prompts[:2])  # warm-up
    synchronize(device)
    began = time.perf_counter()
    engine(prompts)
    synchronize(device)
    seconds = time.perf_counter() - began
    tokens = engine.generated_tokens - 2 * new
    bound = generation_bound(
        sum(p.numel() for p in model.parameters()), weight_bytes(model), batch, prompt, new, hbm, peak
    )
    line(
        f"hf generation, batch {batch}, {prompt}-token prompts, {new} new tokens ({dtype})",
        tokens / seconds,
        "tokens/s",
        bound,
    )
    del model, engine
    if device.type == "cuda":
        torch.cuda.empty_cache()


def vllm_generation(config, device, batch: int, prompt: int, new: int, hbm: float, peak: float) -> None:
    """Tokens/s of vLLM through the ``vllm`` generator's engine wrapper (random weights: load_format dummy)."""
    try:
        import vllm  # noqa: F401
    except Exception as exc:  # not installed on this machine, or broken
        print(f"vllm generation: skipped ({type(exc).__name__}: {exc}); carry a vllm wheel to measure it", flush=True)
        return
    import torch

    from inparsx.generate.vllm_engine import EngineConfig, LocalEngine, Request

    with tempfile.TemporaryDirectory() as folder:
        config.save_pretrained(folder)
        word_tokenizer(config.vocab_size, Path(folder))
        dtype = "bfloat16" if device.type == "cuda" else "float32"
        llm = {
            "model": folder,
            "tokenizer": folder,
            "dtype": dtype,
            "load_format": "dummy",
            "max_model_len": prompt + new,
            "max_num_seqs": batch,
            "enable_prefix_caching": False,
            "enforce_eager": device.type != "cuda",
            "gpu_memory_utilization": 0.85,
            "seed": 0,
        }
        if device.type != "cuda":
            llm["kv_cache_memory_bytes"] = 256 << 20
        env = (
            {}
            if device.type == "cuda"
            else {"VLLM_CPU_OMP_THREADS_BIND": os.environ.get("VLLM_CPU_OMP_THREADS_BIND", "0")}
        )
        began = time.perf_counter()
        engine = LocalEngine(EngineConfig(llm, env)).start()
        print(f"vllm: engine start-up {time.perf_counter() - began:.1f} s", flush=True)
        try:
            params = {"n": 1, "max_tokens": new, "temperature": 0.0, "ignore_eos": True, "logprobs": 0}
            prompts = torch.randint(1, config.vocab_size, (batch + 2, prompt)).tolist()
            run(engine, [Request(f"w{i}", p, params) for i, p in enumerate(prompts[:2])])
            began = time.perf_counter()
            tokens = run(engine, [Request(f"r{i}", p, params) for i, p in enumerate(prompts[2:])])
            seconds = time.perf_counter() - began
        finally:
            engine.close()
    parameters = sum_parameters(config)
    bound = generation_bound(parameters, parameters * (2 if dtype == "bfloat16" else 4), batch, prompt, new, hbm, peak)
    line(
        f"vllm generation, batch {batch}, {prompt}-token prompts, {new} new tokens ({dtype})",
        tokens / seconds,
        "tokens/s",
        bound,
    )


def run(engine, requests) -> int:
    """Submit ``requests`` and step the engine until they are done; generated tokens."""
    engine.submit(requests)
    tokens = 0
    while engine.pending:
        for _, completions in engine.step():
            tokens += sum(len(c.token_ids) for c in completions)
    return tokens


def sum_parameters(config) -> int:
    from accelerate import init_empty_weights
    from transformers import AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(config)
    return sum(p.numel() for p in model.parameters())


def reranking(name: str, model, device, batch: int, length: int, hbm: float, peak: float, seq2seq: bool) -> None:
    """Pairs/s of forward passes over ``batch`` pairs of ``length`` tokens (a cross-encoder's logits, or
    monoT5's first decoder step, as inparsx's rerankers run them)."""
    import torch

    ids = torch.randint(2, model.config.vocab_size, (batch, length), device=device)
    mask = torch.ones_like(ids)
    extra = {"decoder_input_ids": torch.zeros(batch, 1, dtype=torch.long, device=device)} if seq2seq else {}
    with torch.inference_mode():
        model(input_ids=ids, attention_mask=mask, **extra)
        synchronize(device)
        began = time.perf_counter()
        repeats = 3
        for _ in range(repeats):
            model(input_ids=ids, attention_mask=mask, **extra)
        synchronize(device)
    seconds = (time.perf_counter() - began) / repeats
    parameters = sum(p.numel() for n, p in model.named_parameters() if "embed" not in n and "shared" not in n)
    floor_seconds = max(weight_bytes(model) / hbm, 2 * parameters * batch * length / peak)
    line(f"{name} reranking, batch {batch} x {length} tokens", batch / seconds, "pairs/s", batch / floor_seconds)


def cpo_step(config, device, batch: int, length: int, hbm: float, peak: float) -> None:
    """Seconds of one TRL CPO step with a LoRA (r 16, all projections) on the Llama config."""
    try:
        from trl.experimental.cpo import CPOConfig, CPOTrainer
    except Exception as exc:
        print(f"cpo step: skipped ({type(exc).__name__}: {exc}); carry a trl wheel to measure it", flush=True)
        return
    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import LlamaForCausalLM, TrainerCallback

    from inparsx.tune.cpo import LORA_TARGETS

    bf16 = device.type == "cuda"
    with torch.device(device):
        model = LlamaForCausalLM(config).to(torch.bfloat16 if bf16 else torch.float32)
    tokenizer = word_tokenizer(config.vocab_size, eos=True)
    vocab = config.vocab_size
    # prompt, completion and the appended <bos>/<eos> fill max_length; completions open with a space, so that
    # TRL's prompt + completion text splits into the same words
    rows = [
        {
            "prompt": words(vocab, length - 18, i),
            "chosen": " " + words(vocab, 16, i + 1),
            "rejected": " " + words(vocab, 16, i + 2),
        }
        for i in range(batch * 3)
    ]
    times: list[float] = []

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            synchronize(device)
            times.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            synchronize(device)
            times[-1] = time.perf_counter() - times[-1]

    with tempfile.TemporaryDirectory() as out:
        args = CPOConfig(
            output_dir=out,
            max_steps=3,
            per_device_train_batch_size=batch,
            learning_rate=1e-4,
            max_length=length,
            bf16=bf16,
            use_cpu=device.type != "cuda",
            report_to="none",
            save_strategy="no",
            disable_tqdm=True,
            logging_steps=100,
            remove_unused_columns=False,
        )
        trainer = CPOTrainer(
            model=model,
            args=args,
            train_dataset=Dataset.from_list(rows),
            processing_class=tokenizer,
            peft_config=LoraConfig(r=16, lora_alpha=16, target_modules=LORA_TARGETS, task_type="CAUSAL_LM"),
            callbacks=[Clock()],
        )
        trainer.train()
    step = min(times[1:]) if len(times) > 1 else times[0]
    frozen = sum(p.numel() for n, p in model.named_parameters() if "lora_" not in n)
    tokens = 2 * batch * length  # chosen and rejected sequences
    bound = max(2 * weight_bytes(model) / hbm, 4 * frozen * tokens / peak)
    line(f"cpo step (LoRA r 16, batch {batch} pairs x {length} tokens)", step, "s", bound, higher_is_better=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny configs (on the CPU when there is no GPU)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["hf", "vllm", "rerank", "cpo"])
    args = parser.parse_args()

    import torch
    from transformers import (
        BertConfig,
        BertForSequenceClassification,
        LlamaConfig,
        T5Config,
        T5ForConditionalGeneration,
    )

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.type == "cpu" and not args.tiny:
        raise SystemExit("no GPU here: run with --tiny to check the script on the CPU")
    name = torch.cuda.get_device_name(0) if device.type == "cuda" else "CPU"
    hbm = bandwidth(device, 4.0 if not args.tiny else 0.25)
    peak = matmul_peak(device, 8192 if not args.tiny else 512)
    print(
        f"device: {name}; measured copy bandwidth {hbm / 1e9:,.0f} GB/s, {'bf16' if device.type == 'cuda' else 'fp32'} "
        f"matmul peak {peak / 1e12:,.3f} TFLOP/s",
        flush=True,
    )
    sizes = TINY if args.tiny else {"llama": LLAMA_8B, "minilm": MINILM_L12, "monot5": MONOT5_3B}
    llama = LlamaConfig(**sizes["llama"])
    batch, prompt, new = (4, 64, 8) if args.tiny else (64, 512, 64)
    if "hf" not in args.skip:
        hf_generation(llama, device, batch, prompt, new, hbm, peak)
    if "vllm" not in args.skip:
        vllm_generation(llama, device, batch, prompt, new, hbm, peak)
    if "rerank" not in args.skip:
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        with torch.device(device):
            minilm = BertForSequenceClassification(BertConfig(**sizes["minilm"], num_labels=1)).to(dtype).eval()
        reranking(
            "MiniLM-L12 cross-encoder",
            minilm,
            device,
            8 if args.tiny else 512,
            64 if args.tiny else 256,
            hbm,
            peak,
            seq2seq=False,
        )
        del minilm
        with torch.device(device):
            monot5 = T5ForConditionalGeneration(T5Config(**sizes["monot5"])).to(dtype).eval()
        reranking(
            "monoT5-3B", monot5, device, 4 if args.tiny else 128, 64 if args.tiny else 512, hbm, peak, seq2seq=True
        )
        del monot5
        if device.type == "cuda":
            torch.cuda.empty_cache()
    if "cpo" not in args.skip:
        cpo_step(llama, device, 2 if args.tiny else 4, 64 if args.tiny else 512, hbm, peak)
    print(json.dumps({"device": name, "hbm_gb_s": round(hbm / 1e9, 1), "matmul_tflops": round(peak / 1e12, 3)}))


if __name__ == "__main__":
    main()
