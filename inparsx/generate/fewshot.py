"""Few-shot examples for dynamic prompts (Promptagator, Dai et al., ICLR 2023): real (query, judged document)
pairs of the dataset, re-sampled and re-ordered for every document with the seed.

Examples come from the ``train`` split, else ``dev``/``validation``, else ``test``. When they come from the
evaluated split, the generate stage writes the ids it used to ``excluded_qids.txt`` and evaluation drops them.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from inparsx.datasets import Dataset
from inparsx.errors import InparsxError
from inparsx.progress import console

SPLIT_PREFERENCE = ("train", "dev", "validation", "test")
"""Where few-shot examples are taken from, first split present wins (test only as a last resort)."""


@dataclass(frozen=True, slots=True)
class FewShotExample:
    """One few-shot pair: a real query and a document judged relevant to it (full text: title and body)."""

    query_id: str
    doc_id: str
    query: str
    document: str


@dataclass
class FewShotPool:
    """The pairs a run may show the model, and the per-document sampler.

    ``split`` is where they come from; ``evaluated`` is true when that split is the one evaluated.
    """

    split: str
    examples: list[FewShotExample]
    seed: int
    evaluated: bool = False

    def sample(self, doc_id: str, k: int) -> list[FewShotExample]:
        """``k`` distinct examples in random order, drawn with ``(seed, doc_id)``, never one whose document is
        ``doc_id`` itself (the model would copy its query). Deterministic per document, whatever the batch or
        process, so a resumed or sharded run builds the same prompts."""
        candidates = [e for e in self.examples if e.doc_id != doc_id]
        return random.Random(f"{self.seed}:fewshot:{doc_id}").sample(candidates, min(k, len(candidates)))


def choose_split(available: list[str]) -> str:
    """The first of :data:`SPLIT_PREFERENCE` in ``available``.

    Raises:
        InparsxError: the dataset has no split with qrels.
    """
    for split in SPLIT_PREFERENCE:
        if split in available:
            return split
    raise InparsxError(
        "few-shot examples need judged queries, but the dataset has no qrels split "
        f'({", ".join(SPLIT_PREFERENCE)}); use prompt = "inpars" or a static custom template'
    )


def judged_pairs(dataset: Dataset, split: str) -> list[FewShotExample]:
    """One (query, document) pair per judged query of ``split``: its most relevant document (ties: smallest
    docid), skipping queries whose text or document is missing. Ordered by query id."""
    qrels, queries = dataset.qrels(split), dataset.queries(split)
    best = {}
    for qid in sorted(qrels):
        positives = sorted((-rel, docid) for docid, rel in qrels[qid].items() if rel > 0)
        if positives and qid in queries and queries[qid].text.strip():
            best[qid] = positives[0][1]
    docs = dataset.get_docs(best.values())
    return [
        FewShotExample(qid, docid, queries[qid].text, docs[docid].full_text)
        for qid, docid in best.items()
        if docid in docs
    ]


def build_pool(
    dataset: Dataset, eval_split: str, seed: int, n_fewshot: int, pool_size: int | None = None
) -> FewShotPool:
    """The few-shot pool of a run.

    Args:
        dataset: where pairs come from (:func:`choose_split` picks the split).
        eval_split: the evaluated split; examples from it are reported and later dropped from evaluation.
        seed: draws the pool (when smaller than the split) and every per-document sample.
        n_fewshot: examples per prompt.
        pool_size: pairs drawn once from the split; ``None`` = every pair, except from the evaluated split,
            where it is ``n_fewshot`` (the InPars toolkit's choice: few ids lost to evaluation).

    Raises:
        InparsxError: no split with qrels, or fewer usable pairs than ``n_fewshot``.
    """
    split = choose_split(dataset.splits())
    pairs = judged_pairs(dataset, split)
    evaluated = split == eval_split
    size = pool_size or (n_fewshot if evaluated else len(pairs))
    if len(pairs) < n_fewshot:
        raise InparsxError(
            f"split {split!r} has {len(pairs)} usable (query, judged document) pairs, fewer than "
            f"n_fewshot = {n_fewshot}"
        )
    if size < len(pairs):
        pairs = random.Random(f"{seed}:fewshot-pool").sample(pairs, size)
    if evaluated:
        console.print(
            f"[yellow]few-shot examples come from the evaluated split {split!r}: the query ids used "
            f"(at most {len(pairs)}) are written to excluded_qids.txt and dropped from evaluation[/yellow]"
        )
    return FewShotPool(split, pairs, seed, evaluated)
