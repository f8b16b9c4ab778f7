"""The generate stage: sample documents, run the generator, append its queries as they come, resume after a
crash, and merge the shards of a data-parallel run (``accelerate launch``).

Output: ``generate/queries.jsonl`` (one :class:`~inparsx.records.SyntheticQuery` per line, in the order of the
document sample), ``generate/excluded_qids.txt`` when few-shot examples came from the evaluated split, and
``generate/queries.stats.json`` (counts and rates); with ``[estimate]``, also ``generate/heldout.jsonl`` and
``heldout.stats.json``, the queries of the held-out documents.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inparsx.artifacts import EXCLUDED_QIDS, HELDOUT_QUERIES, SYNTHETIC_QUERIES
from inparsx.datasets import Dataset
from inparsx.devices import rank, split_between_processes, wait_for_processes, world_size
from inparsx.errors import PluginError
from inparsx.io import ResumableJsonl, atomic_write, write_json, write_jsonl
from inparsx.progress import console, measured, progress_task, task_of
from inparsx.records import Document, SyntheticQuery

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.generate.base import Generator
    from inparsx.pipeline import StageContext

QUERIES = SYNTHETIC_QUERIES.file


@dataclass
class GenerationSummary:
    """What a generation run produced: documents with queries, queries, wall seconds of this process's
    generation, tokens generated (0 without an LLM), the excluded query ids (few-shot, evaluated split) and the
    documents sampled (``num_docs``, or the whole corpus when smaller)."""

    docs: int
    queries: int
    seconds: float
    generated_tokens: int
    excluded_qids: list[str]
    sampled: int = 0


def run_stage(ctx: StageContext) -> None:
    """Write ``<run>/generate/queries.jsonl`` with the recipe's generator (see :func:`generate_queries`).

    With ``[estimate]``, the sample is drawn from the collection without the held-out documents, and the
    held-out documents get their queries in ``generate/heldout.jsonl`` (never read by a training stage).
    A file finished by an interrupted attempt of this stage is kept rather than generated again.
    """

    cctx, generator = ctx.component_context(), ctx.component
    jobs: list[tuple[Path, list[Document] | None, str]] = [(ctx.dir / QUERIES, None, f"generate ({generator.name})")]
    if ctx.holdout is not None:
        jobs.append((ctx.dir / HELDOUT_QUERIES.file, ctx.holdout.documents(), f"generate held-out ({generator.name})"))
    for out, docs, label in jobs:
        if len(jobs) > 1 and out.is_file() and out.with_name(f"{out.stem}.stats.json").is_file():
            console.print(f"{out.name}: finished by an earlier attempt, kept", markup=False)
            continue
        generate_queries(cctx, generator, out, docs, label)
    if len(jobs) > 1 and Shards().is_main:
        _exclude_fewshot(cctx, generator, [out for out, _, _ in jobs])


def _exclude_fewshot(ctx: ComponentContext, generator: Generator, files: list[Path]) -> None:
    """Write ``excluded_qids.txt``: the few-shot examples of every file's records, when they come from the
    evaluated split (each :func:`generate_queries` call writes its own file's)."""
    import json

    if generator.fewshot_split(ctx) != ctx.eval_split:
        return
    qids = {
        qid
        for path in files
        for line in path.read_text(encoding="utf-8").splitlines()
        if line.strip()
        for qid in json.loads(line).get("fewshot_examples") or []
    }
    with atomic_write(files[0].with_name(EXCLUDED_QIDS)) as handle:
        handle.writelines(f"{qid}\n" for qid in sorted(qids))


def generate_queries(
    ctx: ComponentContext, generator: Generator, out: Path, docs: list[Document] | None = None, label: str | None = None
) -> GenerationSummary:
    """Generate queries for the sampled documents (or ``docs``, when given; else the generator's
    :meth:`~inparsx.generate.base.Generator.select_documents`, when it chooses them) into ``out``, resuming from
    ``out``'s ``.partial`` file. ``ctx`` is the generator's context: its dataset is sampled with its seed.
    ``label`` names the progress bar (default ``generate (<generator>)``).

    Every document of the sample ends with all its records exactly once: records are appended per batch
    (fsynced), and a rerun skips the documents whose records are all there (a document cut short by a crash
    is dropped and redone). Under ``accelerate launch`` each process takes a contiguous shard of the
    remaining documents and the main process merges the shards. The finished file is sorted in sample order,
    so it does not depend on batch size, resumption or the number of processes.

    Raises:
        InparsxError: from the generator (model, template) or the dataset.
    """
    shards = Shards()
    if docs is None:
        docs = generator.select_documents(ctx)
    if docs is None:
        docs = sample_docs(ctx.dataset, generator.options.num_docs, ctx.seed)
        if len(docs) < generator.options.num_docs and shards.is_main:
            console.print(
                f"num_docs = {generator.options.num_docs}, but the collection holds {len(docs)} documents: "
                "all of them are used",
                markup=False,
                soft_wrap=True,
            )
    position = {doc.doc_id: i for i, doc in enumerate(docs)}
    main = ResumableJsonl(out)
    if shards.is_main:
        _drop_incomplete(main, position, generator.queries_per_doc)
        _merge_shards(main, shards, position, generator.queries_per_doc)
    shards.barrier()
    done = {r["doc_id"] for r in main.existing()}
    todo = shards.split([doc for doc in docs if doc.doc_id not in done])
    if done and shards.is_main:
        console.print(f"resuming: {len(done)} of {len(docs)} documents already have queries")
    writer = main if shards.count == 1 else ResumableJsonl(shards.part_path(out, shards.index))
    written, seconds = _run(generator, todo, ctx, writer, show=shards.is_main, label=label)
    writer.close()
    shards.barrier()
    summary = GenerationSummary(len(todo), written, seconds, generator.generated_tokens, [], len(docs))
    if shards.is_main:
        _merge_shards(main, shards)
        summary = _finish(main, position, generator, ctx, summary)
    shards.barrier()
    return summary


def _run(
    generator: Generator,
    docs: list[Document],
    ctx: ComponentContext,
    writer: ResumableJsonl,
    show: bool,
    label: str | None = None,
) -> tuple[int, float]:
    """Generate and append batch by batch, with a progress bar (``label``, default ``generate (<name>)``) of
    docs/s and ETA, plus queries/s and generated tokens/s measured from the end of the first batch (so that
    model loading does not count). Returns the records written and the seconds the bar measured
    (:func:`inparsx.progress.measured`), so the docs/s of
    ``queries.stats.json`` is the bar's."""
    written, first = 0, None
    if not docs:
        return 0, 0.0  # a finished run interrupted before its last step: no model to load
    began = time.perf_counter()
    bar = progress_task(label or f"generate ({generator.name})", total=len(docs), unit="docs") if show else _silent()
    with bar as (progress, task):
        for batch in generator.generate(docs, ctx):
            writer.append(record.to_dict() for record in by_document(batch, generator))
            written += len(batch)
            if progress is not None and task is not None:  # None: no bar in this process (_silent)
                progress.update(task, advance=len({r.doc_id for r in batch}), extra=_rates(first, written, generator))
            first = first or (time.perf_counter(), written, generator.generated_tokens)
        seconds = time.perf_counter() - began
        if progress is not None and task is not None:
            progress.update(task, completed=len(docs))
            seconds = measured(task_of(progress, task))[1]
    return written, seconds


def _rates(first: tuple[float, int, int] | None, written: int, generator: Generator) -> str:
    """``12.3 queries/s · 456 tokens/s`` since ``first`` = (time, queries, tokens) at the end of the first batch."""
    if first is None:
        return ""
    elapsed = max(time.perf_counter() - first[0], 1e-9)
    text = f"{(written - first[1]) / elapsed:,.1f} queries/s"
    if generator.generated_tokens:
        text += f" · {(generator.generated_tokens - first[2]) / elapsed:,.0f} tokens/s"
    return text


@contextlib.contextmanager
def _silent() -> Iterator[tuple[None, None]]:
    """A stand-in for a progress bar (processes other than the main one show none): no progress, no task."""
    yield None, None


def _finish(
    main: ResumableJsonl,
    position: dict[str, int],
    generator: Generator,
    ctx: ComponentContext,
    summary: GenerationSummary,
) -> GenerationSummary:
    """Sort the records in sample order, write the final file, the excluded ids and the stats."""
    rate = summary.docs / summary.seconds if summary.seconds else 0.0  # documents generated in this run
    records = sorted(main.existing(), key=lambda r: position[r["doc_id"]])
    write_jsonl(main.path, records)
    main.partial.unlink(missing_ok=True)
    summary.docs = len({r["doc_id"] for r in records})
    summary.queries = len(records)
    split = generator.fewshot_split(ctx)
    if split is not None and split == ctx.eval_split:
        summary.excluded_qids = sorted({qid for r in records for qid in r.get("fewshot_examples") or []})
        with atomic_write(main.path.with_name(EXCLUDED_QIDS)) as handle:
            handle.writelines(f"{qid}\n" for qid in summary.excluded_qids)
    with_query = {r["doc_id"] for r in records}
    without = [doc_id for doc_id, _ in sorted(position.items(), key=lambda item: item[1]) if doc_id not in with_query]
    write_json(
        main.path.with_name(f"{main.path.stem}.stats.json"),
        {
            **asdict(summary),
            "excluded_qids": len(summary.excluded_qids),
            "generator": generator.name,
            "fewshot_split": split,
            "docs_per_s_this_run": round(rate, 3),
            "docs_without_query": without,
            "ran_with": generator.ran_with,
        },
    )
    console.print(
        f"{summary.queries} queries for {summary.docs} documents -> {main.path}"
        + (
            f"; {len(summary.excluded_qids)} few-shot query ids excluded from evaluation"
            if summary.excluded_qids
            else ""
        ),
        markup=False,
        soft_wrap=True,
    )
    if without:
        console.print(short_count_note(generator, len(without), len(position)), markup=False, soft_wrap=True)
    return summary


def short_count_note(generator: Generator, missing: int, sampled: int) -> str:
    """Why fewer documents have queries than were sampled: ``1 of the 2000 sampled documents got no query
    (ict writes none for a document without ...); their ids are in queries.stats.json``."""
    why = f" ({generator.name} writes none for {generator.no_query_reason})" if generator.no_query_reason else ""
    return (
        f"{missing} of the {sampled} sampled documents got no query{why}; their ids are in "
        f"{QUERIES.replace('.jsonl', '.stats.json')} (docs_without_query)"
    )


def sample_docs(dataset: Dataset, num_docs: int, seed: int) -> list[Document]:
    """``num_docs`` documents drawn without replacement with ``seed`` (all of them, shuffled, when the corpus
    is smaller), in draw order. One pass over the corpus; only the drawn documents are kept."""
    count = dataset.docs_count()
    positions = random.Random(seed).sample(range(count), min(num_docs, count))
    rank = {pos: i for i, pos in enumerate(positions)}
    picked: list[Document | None] = [None] * len(positions)
    found = 0
    for pos, doc in enumerate(dataset.docs_iter()):
        if pos in rank:
            picked[rank[pos]] = doc
            found += 1
            if found == len(positions):
                break
    return [doc for doc in picked if doc is not None]


def by_document(batch: list[SyntheticQuery], generator: Generator) -> list[SyntheticQuery]:
    """``batch`` with each document's records next to each other (documents in the order of their first
    record, a document's records in their order), so a crash that tears the batch's write can cut short only
    the file's last document (see :func:`complete_records`).

    Raises:
        PluginError: a document has more records than ``generator.queries_per_doc``, the most it declares.
    """
    groups: dict[str, list[SyntheticQuery]] = {}
    for record in batch:
        groups.setdefault(record.doc_id, []).append(record)
    most = generator.queries_per_doc
    for doc_id, records in groups.items():
        if len(records) > most:
            raise PluginError(
                f"generator {generator.name!r} wrote {len(records)} records for document {doc_id}, "
                f"more than its queries_per_doc = {most} (the most one document yields)"
            )
    return [record for records in groups.values() for record in records]


def complete_records(records: list[dict[str, Any]], position: dict[str, int], per_doc: int) -> list[dict[str, Any]]:
    """The records of an interrupted run that are kept: those of documents in the sample (``position``) whose
    records are all there.

    Every document's records come in one batch, appended in one write with a document's records next to each
    other (:func:`by_document`), and a torn write keeps a prefix of its lines. So only the file's last document
    can have been cut short: it is dropped (and redone) when it has fewer than ``per_doc`` records, the most a
    document yields (``Generator.queries_per_doc``). Any other document is complete whatever its count: a
    generator may write fewer records for a document than the most (none, even).
    """
    keep = [r for r in records if r["doc_id"] in position]
    if records:
        last = records[-1]["doc_id"]
        if sum(r["doc_id"] == last for r in records) < per_doc:
            keep = [r for r in keep if r["doc_id"] != last]
    return keep


def _drop_incomplete(main: ResumableJsonl, position: dict[str, int], per_doc: int) -> None:
    """Remove, from an interrupted run's records, those of documents not in the sample or cut short
    (:func:`complete_records`)."""
    records = main.existing()
    keep = complete_records(records, position, per_doc)
    if len(keep) != len(records):
        with atomic_write(main.partial) as handle:
            handle.writelines(_line(r) for r in keep)


def _merge_shards(
    main: ResumableJsonl, shards: Shards, position: dict[str, int] | None = None, per_doc: int | None = None
) -> None:
    """Append every process's partial file (this run's or a crashed one's) to the main one, then delete it.
    With ``position`` and ``per_doc`` (a crashed run's files, before resuming), each file's records are first
    cut to :func:`complete_records`."""
    for part in sorted(main.path.parent.glob(f"{main.path.stem}.rank*{main.path.suffix}.partial")):
        shard = ResumableJsonl(part.with_name(part.name[: -len(".partial")]))
        records = shard.existing()
        if position is not None and per_doc is not None:
            records = complete_records(records, position, per_doc)
        if records:
            main.append(records)
        part.unlink()
    main.close()


def _line(record: dict[str, Any]) -> str:
    import json

    return json.dumps(record, ensure_ascii=False) + "\n"


class Shards:
    """This process's place in a data-parallel run (:mod:`inparsx.devices`): ``count`` processes
    (``accelerate launch`` or torchrun), this one's ``index``, a barrier and a contiguous split (accelerate's
    ``PartialState.split_between_processes``). A single process needs no accelerate."""

    def __init__(self) -> None:
        self.count = world_size()
        self.index = rank()

    @property
    def is_main(self) -> bool:
        return self.index == 0

    def split(self, items: list[Document]) -> list[Document]:
        return split_between_processes(items) if self.count > 1 else items

    def barrier(self) -> None:
        if self.count > 1:
            wait_for_processes()

    @staticmethod
    def part_path(out: Path, index: int) -> Path:
        """Where process ``index`` appends its records (``queries.rank<i>.jsonl.partial``)."""
        return out.with_name(f"{out.stem}.rank{index}{out.suffix}")
