"""Reranking a first-stage run with any reranker: the logic shared by the rerank stage, the one-off
``inparsx rerank`` command and the model-based filters.

Pairs of several queries are scored together in chunks (so the reranker's length-sorted batches stay
full), and each finished query's scores are appended to a :class:`~inparsx.io.ResumableJsonl` file, so an
interrupted rerank resumes without rescoring the queries it had finished.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inparsx.datasets import Dataset
from inparsx.errors import DataError
from inparsx.io import ResumableJsonl
from inparsx.progress import console, measured, progress_task, task_of
from inparsx.records import Run
from inparsx.rerank.base import Reranker
from inparsx.rerank.fusion import top_depth


@dataclass
class RerankStats:
    """What one rerank did: ``pairs`` scored now (``resumed``: queries taken from a partial file), seconds."""

    queries: int = 0
    pairs: int = 0
    resumed: int = 0
    seconds: float = 0.0
    skipped: list[str] = field(default_factory=list)

    @property
    def pairs_per_second(self) -> float:
        return self.pairs / self.seconds if self.seconds > 0 else 0.0


def candidates(first_stage: Run, depth: int, queries: Mapping[str, str]) -> dict[str, list[str]]:
    """Each query's top ``depth`` docids in first-stage order, for the queries that have a text."""
    return {qid: top_depth(scores, depth) for qid, scores in first_stage.items() if qid in queries}


def document_texts(dataset: Dataset, docids: Sequence[str] | set[str], source: str | Path = "run") -> dict[str, str]:
    """``{docid: title + " " + text}`` of the given documents (``Document.full_text``, what BEIR's rerankers see).

    Raises:
        DataError: a docid the dataset does not have (names ``source``, e.g. the run file, and the docid).
    """
    docs = dataset.get_docs(docids)
    missing = [d for d in docids if d not in docs]
    if missing:
        raise DataError(
            source,
            f"{len(missing)} docid(s) not in the dataset {dataset.name!r}, "
            f"e.g. {missing[0]!r}: is the run from another collection?",
        )
    return {docid: doc.full_text for docid, doc in docs.items()}


def resume_records(store: ResumableJsonl, meta: dict[str, Any]) -> list[dict[str, Any]]:
    """The records that an earlier, identical job (same ``meta``) already wrote to ``store``, and ``store``
    ready to append to.

    A finished file is copied to the partial file (so that new records can be appended; a copy, not a rename,
    so that a file shared by hard link with a stage store, :mod:`inparsx.store`, is never appended to); a file
    written with other settings (its first line's ``meta`` differs) is discarded with a message. A fresh file
    starts with a ``{"meta": meta}`` line.
    """
    if store.path.exists() and not store.partial.exists():
        shutil.copyfile(store.path, store.partial)
    records = store.existing()
    if records and records[0].get("meta") == meta:
        return records[1:]
    if records:
        console.print(f"[yellow]{store.partial}: written with other settings; starting over[/yellow]")
    store.close()
    store.partial.unlink(missing_ok=True)
    store.append([{"meta": meta}])
    return []


def open_scores(store: ResumableJsonl, meta: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Per-query scores (``{"qid", "scores"}`` records) already in ``store``; see :func:`resume_records`."""
    return {r["qid"]: r["scores"] for r in resume_records(store, meta)}


def rerank_run(
    reranker: Reranker,
    first_stage: Run,
    queries: Mapping[str, str],
    docs: Mapping[str, str],
    depth: int,
    store: ResumableJsonl | None = None,
    meta: dict[str, Any] | None = None,
    description: str = "rerank",
) -> tuple[Run, RerankStats]:
    """Score each query's top ``depth`` first-stage documents with ``reranker`` (already loaded).

    Args:
        reranker: a loaded reranker.
        first_stage: ``{qid: {docid: score}}``.
        queries: ``{qid: text}``; run queries without a text are skipped (listed in ``stats.skipped``).
        docs: ``{docid: text}`` of every candidate (see :func:`document_texts`).
        depth: documents per query rescored.
        store: where finished queries' scores are appended (``{"qid", "scores"}`` lines after a ``meta``
            line); queries found there are not scored again. ``finish()`` is called at the end.
        meta: settings identifying this rerank (model, depth...); a store written with others is discarded.
        description: the progress bar's label (the bar counts pairs/s).

    Returns:
        ``({qid: {docid: reranker score}}`` for the top ``depth`` only; see :mod:`inparsx.rerank.fusion` to
        merge the rest), and the stats.
    """
    todo = candidates(first_stage, depth, queries)
    stats = RerankStats(queries=len(todo), skipped=sorted(set(first_stage) - set(queries)))
    done = open_scores(store, meta or {}) if store is not None else {}
    done = {qid: scores for qid, scores in done.items() if qid in todo}
    stats.resumed = len(done)
    pending = [qid for qid in todo if qid not in done]
    total = sum(len(todo[q]) for q in pending)
    with progress_task(description, total=total, unit="pairs") as (progress, task):
        for chunk in _chunks(pending, todo, max(256, reranker.options.batch_size * 8)):
            scored = _score_chunk(reranker, chunk, todo, queries, docs)
            if store is not None:
                store.append({"qid": qid, "scores": scores} for qid, scores in scored.items())
            done.update(scored)
            progress.advance(task, sum(len(todo[q]) for q in chunk))
        stats.seconds = measured(task_of(progress, task))[1]  # the bar's own clock: its rate is the summary's
    stats.pairs = total
    if store is not None:
        store.finish()
    return {qid: done[qid] for qid in todo}, stats


def _chunks(qids: list[str], todo: Mapping[str, list[str]], size: int):
    """Consecutive groups of whole queries with about ``size`` pairs each."""
    chunk: list[str] = []
    pairs = 0
    for qid in qids:
        chunk.append(qid)
        pairs += len(todo[qid])
        if pairs >= size:
            yield chunk
            chunk, pairs = [], 0
    if chunk:
        yield chunk


def _score_chunk(
    reranker: Reranker,
    chunk: list[str],
    todo: Mapping[str, list[str]],
    queries: Mapping[str, str],
    docs: Mapping[str, str],
) -> dict[str, dict[str, float]]:
    pairs = [(qid, docid) for qid in chunk for docid in todo[qid]]
    scores = reranker.score([queries[q] for q, _ in pairs], [docs[d] for _, d in pairs])
    out: dict[str, dict[str, float]] = {qid: {} for qid in chunk}
    for (qid, docid), value in zip(pairs, scores):
        out[qid][docid] = float(value)
    return out
