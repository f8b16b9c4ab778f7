"""What the ``auto`` precision rule costs or gains on this CPU: one training step of the quickstart's student
(all-MiniLM-L6-v2 bi-encoder, MultipleNegativesRankingLoss with one hard negative, batch 32, 128 tokens) in
fp32 against bf16 autocast (what ``precision = "auto"`` picks on a CPU with AVX512-BF16 or AMX), with all
layers trained and with the top 2 only (``train_layers = 2``, the quickstart's setting), and the encoding of
the same texts for inference as the ``bi-encoder`` reranker runs it (``dtype``: the weights loaded in that dtype,
not autocast).

The settings alternate step by step in one process, so load from other processes falls on all of them alike
(separate training runs under a loaded machine gave ratios that disagreed from run to run). Texts are real
SciFact: a sentence of each document as its query (ICT), the rest of the document as its positive, another
document as its negative. Reported: the median wall seconds and CPU seconds per step of each setting.

    INPARSX_DATA_HOME=/work/shared/data python bench/precision.py [--steps 6]

Prints one line per setting and, last, ``ratio: <fp32 s/step / bf16 s/step, top-2 training>``.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def batch(size: int) -> tuple[list[str], list[str], list[str]]:
    """``size`` (query, positive, negative) texts of real SciFact, ICT queries, drawn with a fixed seed."""
    from inparsx.datasets import resolve_dataset
    from inparsx.generate.ict import ICTGenerator

    docs = list(resolve_dataset("beir:scifact").docs().values())
    rng = random.Random(0)
    generator = ICTGenerator()
    queries, positives, negatives = [], [], []
    for doc in rng.sample(docs, size * 3):
        record = generator.query_for(doc, seed=1)
        if record is not None and len(queries) < size:
            queries.append(record.query)
            positives.append(record.positive_text)
            negatives.append(rng.choice(docs).full_text)
    return queries, positives, negatives


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per setting (after one warm-up each)")
    args = parser.parse_args()
    import torch
    from sentence_transformers import SentenceTransformer, losses

    from inparsx.models import resolve_model_name
    from inparsx.precision import cpu_bf16_feature
    from inparsx.progress import quiet_library_bars
    from inparsx.train.common import freeze_lower_layers

    print(
        f"torch threads: {torch.get_num_threads()}; CPU bf16 feature: {cpu_bf16_feature() or 'none'}; "
        f"load average: {os.getloadavg()[0]:.1f}"
    )
    texts = batch(32)
    path = resolve_model_name("sentence-transformers/all-MiniLM-L6-v2")
    quiet_library_bars()
    models = {}
    for layers in (None, 2):
        model = SentenceTransformer(path, device="cpu")
        model.max_seq_length = 128
        freeze_lower_layers(model, layers)
        loss = losses.MultipleNegativesRankingLoss(model)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=2e-5)
        models[layers] = (model, loss, optimizer)
    encoders = {
        dtype: SentenceTransformer(path, device="cpu", model_kwargs={"dtype": dtype}).eval()
        for dtype in (torch.float32, torch.bfloat16)
    }  # as inparsx.rerank.bi_encoder loads them
    for encoder in encoders.values():
        encoder.max_seq_length = 128

    def features(model, group):
        return {k: v for k, v in model.tokenize(group).items()}

    def train_step(layers, bf16):
        model, loss, optimizer = models[layers]
        model.train()
        inputs = [features(model, group) for group in texts]
        autocast = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext()
        with autocast:
            value = loss(inputs, torch.zeros(len(texts[0])))
        value.backward()
        optimizer.step()
        optimizer.zero_grad()

    def encode(bf16):
        with torch.no_grad():
            encoders[torch.bfloat16 if bf16 else torch.float32].encode(texts[1], batch_size=32, convert_to_tensor=True)

    settings = {
        "train all layers, fp32": lambda: train_step(None, False),
        "train all layers, bf16": lambda: train_step(None, True),
        "train top 2 layers, fp32": lambda: train_step(2, False),
        "train top 2 layers, bf16": lambda: train_step(2, True),
        "encode 32 positives, fp32": lambda: encode(False),
        "encode 32 positives, bf16": lambda: encode(True),
    }
    wall: dict[str, list[float]] = {name: [] for name in settings}
    cpu: dict[str, list[float]] = {name: [] for name in settings}
    for step in range(args.steps + 1):
        for name, run in settings.items():
            began, began_cpu = time.perf_counter(), time.process_time()
            run()
            if step:  # the first round warms up
                wall[name].append(time.perf_counter() - began)
                cpu[name].append(time.process_time() - began_cpu)
    for name in settings:
        print(f"{name:28s} {statistics.median(wall[name]):6.2f} s wall  {statistics.median(cpu[name]):6.2f} s CPU")
    for what in ("train all layers", "train top 2 layers", "encode 32 positives"):
        fp32, bf16 = (statistics.median(wall[f"{what}, {p}"]) for p in ("fp32", "bf16"))
        print(f"{what}: fp32 / bf16 = {fp32 / bf16:.2f}")
    top2 = statistics.median(wall["train top 2 layers, fp32"]) / statistics.median(wall["train top 2 layers, bf16"])
    print(f"ratio: {top2:.2f}")


if __name__ == "__main__":
    main()
