"""Benchmark: the ``hf`` generator (batch 16) against a plain per-document ``generate`` loop (the InPars
toolkit's default, batch size 1) on the same random Llama and the same real SciFact documents, on CPU.

Both sides get the same prompts (InPars 3-shot, documents cut at 256 tokens), greedy decoding, at most 64 new
tokens, stopping at a newline: the baseline as the InPars toolkit does it (the newline's token id as
``eos_token_id``, ``output_scores`` and a log-softmax afterwards), ``hf`` on decoded text. Every side first
warms up on two other documents; then the sides take turns on chunks of documents, in a rotating order, so
that load from other processes and drift hit them alike.

    python bench/generate.py [--docs 200] [--chunk 16] [--batch-size 16]

The ``hf`` side runs in fp32 and, where the CPU has bf16 kernels (AVX512-BF16 or AMX), also in bf16. Prints
docs/s of each side, how many of its queries equal the baseline's, and as its last line
``ratio: <docs/s of the faster hf side / docs/s of the baseline>``.
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


def build_model(folder: Path, texts: list[str], hidden: int, layers: int, vocab: int) -> str:
    """A random Llama (``layers`` x ``hidden``) with a byte-level BPE trained on the given texts."""
    from inparsx.testing import tiny_llama, train_tokenizer

    tokenizer = train_tokenizer(texts, vocab_size=vocab)
    return str(tiny_llama(folder / "llama", tokenizer, hidden=hidden, layers=layers))


def baseline(model, tokenizer, prompts: list[str], newline_id: int, max_new_tokens: int) -> list[str]:
    """The InPars toolkit's loop (``inpars/inpars.py``), batch size 1: one ``generate`` per document."""
    import torch

    queries = []
    with torch.inference_mode():
        for prompt in prompts:
            tokens = tokenizer([prompt], return_tensors="pt")
            out = model.generate(**tokens, max_new_tokens=max_new_tokens, do_sample=False, output_scores=True,
                                 return_dict_in_generate=True, eos_token_id=newline_id,
                                 pad_token_id=tokenizer.pad_token_id)
            generated = out.sequences[:, tokens["input_ids"].shape[-1]:]
            torch.stack(out.scores, dim=1).log_softmax(dim=-1).max(dim=2)  # the toolkit's log-probs
            queries.append(tokenizer.decode(generated[0], skip_special_tokens=True).strip())
    return queries


def _hf_runner(generator, ctx):
    """Documents -> ({doc_id: query}, seconds) through the ``hf`` generator (prompt building timed too)."""
    def run(docs):
        began = time.perf_counter()
        queries = {r.doc_id: r.query for batch in generator.generate(docs, ctx) for r in batch}
        return queries, time.perf_counter() - began
    return run


def _baseline_runner(model, tokenizer, builder, newline_id: int, max_new_tokens: int):
    """Documents -> ({doc_id: query}, seconds) through the per-document loop (prompts built untimed)."""
    def run(docs):
        prompts = [builder.build(d).text for d in docs]
        began = time.perf_counter()
        answers = baseline(model, tokenizer, prompts, newline_id, max_new_tokens)
        return dict(zip([d.doc_id for d in docs], answers)), time.perf_counter() - began
    return run


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
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--chunk", type=int, default=16, help="documents per turn; the sides take turns in a rotating order")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--layers", type=int, default=8)
    parser.add_argument("--vocab", type=int, default=8000)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    args = parser.parse_args()

    import torch
    from transformers import AutoModelForCausalLM

    from inparsx.datasets import resolve_dataset
    from inparsx.generate.stage import sample_docs

    if not os.environ.get("INPARSX_DATA_HOME"):
        sys.exit("set INPARSX_DATA_HOME to the folder holding beir/scifact")
    dataset = resolve_dataset("beir:scifact")
    docs = sample_docs(dataset, args.docs, seed=1)
    bf16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
    dtypes = ["fp32", "bf16"] if bf16 else ["fp32"]
    with tempfile.TemporaryDirectory() as tmp:
        texts = [d.full_text for d in sample_docs(dataset, 2000, seed=2)]
        model_path = build_model(Path(tmp), texts, args.hidden, args.layers, args.vocab)
        sides = {f"hf {dtype}": hf_side(dtype, model_path, args, dataset, tmp) for dtype in dtypes}
        generator, ctx = sides["hf fp32"]
        tokenizer = generator.load(ctx)[1]
        plain = AutoModelForCausalLM.from_pretrained(model_path, dtype="float32").eval()
        builder = generator.prompt_builder(ctx, tokenizer, plain)
        newline_id = tokenizer.convert_tokens_to_ids("\u010a")  # byte-level BPE's "\n"
        print(f"model: Llama {args.layers} layers x {args.hidden}, vocab {len(tokenizer)}, "
              f"{sum(p.numel() for p in plain.parameters()) / 1e6:.1f}M parameters; {len(docs)} SciFact documents; "
              f"mean prompt {sum(len(builder.build(d).input_ids) for d in docs) / len(docs):.0f} tokens; "
              f"torch threads {torch.get_num_threads()}; bf16 kernels: {bf16}", flush=True)
        runners = {name: _hf_runner(gen, gen_ctx) for name, (gen, gen_ctx) in sides.items()}
        runners["baseline"] = _baseline_runner(plain, tokenizer, builder, newline_id, args.max_new_tokens)
        sampled = {d.doc_id for d in docs}
        warmup = [d for d in sample_docs(dataset, args.docs + 2, seed=1) if d.doc_id not in sampled][:2]
        for run in runners.values():
            run(warmup)
        times = {name: 0.0 for name in runners}
        per_chunk: dict[str, list[float]] = {name: [] for name in runners}
        queries: dict[str, dict[str, str]] = {name: {} for name in runners}
        names = list(runners)
        for round_, start in enumerate(range(0, len(docs), args.chunk)):
            chunk = docs[start:start + args.chunk]
            for name in names[round_ % len(names):] + names[:round_ % len(names)]:  # rotate the order
                answers, seconds = runners[name](chunk)
                queries[name].update(answers)
                times[name] += seconds
                per_chunk[name].append(seconds)
            print(f"  {start + len(chunk)}/{len(docs)} docs: "
                  + ", ".join(f"{name} {seconds:.1f} s" for name, seconds in times.items()), flush=True)
    rates = {name: len(docs) / seconds for name, seconds in times.items()}
    for name in sides:
        same = sum(queries[name][d.doc_id] == queries["baseline"][d.doc_id] for d in docs)
        chunk_ratios = [b / h for b, h in zip(per_chunk["baseline"], per_chunk[name])]
        print(f"{name} (batch {args.batch_size}): {rates[name]:.3f} docs/s; "
              f"{same}/{len(docs)} queries identical to the baseline's; ratio {rates[name] / rates['baseline']:.2f} "
              f"(per chunk: median {statistics.median(chunk_ratios):.2f}, min {min(chunk_ratios):.2f}, "
              f"max {max(chunk_ratios):.2f})")
    print(f"baseline (per-document generate loop, batch 1, fp32): {rates['baseline']:.3f} docs/s")
    best = max(sides, key=lambda name: rates[name])
    print(f"best: {best}")
    print(f"ratio: {rates[best] / rates['baseline']:.2f}")


if __name__ == "__main__":
    main()
