"""Training speed of the ``bi-encoder`` trainer on a CPU: full fine-tuning in fp32 (the baseline) against bf16
autocast and against training only the top layers (``train_layers``), on the same real SciFact triples.

Triples: ICT queries from the ``ict`` generator (a sentence of each document, removed from its positive) with
one random other document as negative. Model: all-MiniLM-L6-v2 (the packaged checkpoint), 128 tokens, batch
32. Each setting trains ``--steps`` optimiser steps through :class:`inparsx.train.bi_encoder.BiEncoderTrainer`;
the first step is not timed (warm-up); settings run in turn, ``--rounds`` times, alternating, so that load
from other processes hits them alike. Reported: seconds per step (median over rounds).

    INPARSX_DATA_HOME=/work/shared/data python bench/train_speed.py [--steps 4] [--rounds 2]

Prints one line per setting and, last, ``ratio: <baseline s/step / fastest setting s/step>``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("INPARSX_NO_PROGRESS", "1")

SETTINGS = {
    "full fp32 (baseline)": {"precision": "fp32"},
    "full bf16": {"precision": "bf16"},
    "top 2 layers fp32": {"precision": "fp32", "train_layers": 2},
    "top 2 layers bf16": {"precision": "bf16", "train_layers": 2},
}


def write_triples(path: Path, n: int) -> None:
    """``n`` ICT triples from the real SciFact corpus (``beir:scifact``), one random negative each."""
    from inparsx.datasets import resolve_dataset
    from inparsx.generate.ict import ICTGenerator

    docs = list(resolve_dataset("beir:scifact").docs().values())
    rng = random.Random(0)
    generator = ICTGenerator()
    with open(path, "w") as handle:
        for doc in rng.sample(docs, n * 2):
            record = generator.query_for(doc, seed=1)
            if record is None:
                continue
            negative = rng.choice(docs)
            handle.write(
                json.dumps(
                    {
                        "query_id": record.query_id,
                        "query": record.query,
                        "pos_id": doc.doc_id,
                        "pos_text": record.positive_text,
                        "neg_ids": [negative.doc_id],
                        "neg_texts": [negative.full_text],
                    }
                )
                + "\n"
            )
            n -= 1
            if n == 0:
                return


def seconds_per_step(triples: Path, out: Path, steps: int, settings: dict) -> float:
    """Train ``steps`` steps; returns the mean seconds of steps 2..n (from the trainer's step timestamps)."""
    from transformers import TrainerCallback

    from inparsx.train.bi_encoder import BiEncoderTrainer

    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    trainer = BiEncoderTrainer(
        BiEncoderTrainer.Options(max_steps=steps, batch_size=32, max_length=128, save_steps=0, **settings)
    )
    trainer.callbacks.append(Clock())
    trainer.train(triples, out)
    return (stamps[-1] - stamps[0]) / (len(stamps) - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    import torch

    print(f"torch threads: {torch.get_num_threads()}; CPU load average: {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        triples = Path(tmp) / "triples.jsonl"
        write_triples(triples, 32 * args.steps)
        timings: dict[str, list[float]] = {name: [] for name in SETTINGS}
        for _ in range(args.rounds):
            for name, settings in SETTINGS.items():
                timings[name].append(seconds_per_step(triples, Path(tmp) / "model", args.steps, settings))
    medians = {name: statistics.median(values) for name, values in timings.items()}
    for name, value in medians.items():
        print(f"{name:24s} {value:6.2f} s/step")
    baseline = medians["full fp32 (baseline)"]
    print(f"ratio: {baseline / min(medians.values()):.2f}")


if __name__ == "__main__":
    main()
