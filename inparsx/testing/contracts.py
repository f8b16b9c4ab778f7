"""Contract test cases that a plugin's tests subclass, in the spirit of PyTerrier's extension tests.

Each class holds pytest tests of what every component of a kind must do, whatever it computes. A plugin's
test module subclasses it with a ``Test`` name and says how to build its component::

    from inparsx.testing.contracts import GeneratorContract

    class TestTitleGenerator(GeneratorContract):
        def make_generator(self):
            return TitleGenerator(TitleGenerator.Options(min_words=1))

The built-in components pass the same tests, and deliberately broken fakes fail them
(``tests/test_contracts.py``). Kinds: generators, filters, miners, rerankers, trainers, retrievers (shapes of
the run, ``k``, determinism, ``search`` before ``index``), evaluators (runs and metrics asked, values in
[0, 1], per-query means, paired tests) and tuners (the declared output, the evaluated split never asked for,
same seed same bytes). Everything runs on the 15-document
collection of :func:`inparsx.testing.tiny_beir`; override :meth:`Contract.collection` for another one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from inparsx.artifacts import INSTRUCTION, MODEL, PROGRAM, SYNTHETIC_QUERIES, TRIPLES
from inparsx.context import ComponentContext
from inparsx.datasets.base import Dataset, WithoutSplit
from inparsx.errors import InparsxError
from inparsx.evaluate.base import Evaluator
from inparsx.filter.base import Decision, Filter
from inparsx.generate.base import Generator
from inparsx.records import Document, Qrels, Query, Run, SyntheticQuery
from inparsx.rerank.base import Reranker
from inparsx.retrieve.base import Retriever
from inparsx.testing.collections import tiny_beir
from inparsx.testing.context import component_context
from inparsx.train.base import Trainer
from inparsx.triples.base import Miner, Triple
from inparsx.tune.base import Tuner


class Contract:
    """Shared set-up: the collection and the context of one stage."""

    stage = ""

    def collection(self, tmp_path: Path) -> Path:
        """The BEIR folder the tests run on (default: :func:`~inparsx.testing.tiny_beir`)."""
        return tiny_beir(tmp_path / "collection")

    def context(self, tmp_path: Path) -> ComponentContext:
        """The context the component gets: the collection, seed 1, evaluated split ``test``, a work folder."""
        return component_context(self.collection(tmp_path), work_dir=tmp_path / "run" / self.stage, stage=self.stage)

    @staticmethod
    def title_records(ctx: ComponentContext) -> list[SyntheticQuery]:
        """One synthetic query per document of the collection: its title."""
        return [
            SyntheticQuery(f"{doc.doc_id}-0", doc.doc_id, doc.title or doc.text[:40], generator="contract")
            for doc in ctx.dataset.docs_iter()
        ]


class GeneratorContract(Contract):
    """A generator yields valid records, every record of a document in one batch, and a run interrupted after
    its first batch resumes to the same documents with no record repeated. ``make_generator`` should yield
    several batches for the collection (a small ``batch_size``)."""

    stage = "generate"

    def make_generator(self) -> Generator:
        raise NotImplementedError

    def test_records_are_valid_and_grouped_by_document(self, tmp_path: Path) -> None:
        generator = self.make_generator()
        ctx = self.context(tmp_path)
        docs = list(ctx.dataset.docs_iter())
        finished: set[str] = set()
        query_ids: list[str] = []
        for batch in generator.generate(docs, ctx):
            assert isinstance(batch, list) and all(isinstance(r, SyntheticQuery) for r in batch)
            in_batch = {r.doc_id for r in batch}
            assert not in_batch & finished, "a document's records came in two batches"
            assert in_batch <= {doc.doc_id for doc in docs}, "a record names a document it was not given"
            for doc_id in in_batch:
                assert sum(r.doc_id == doc_id for r in batch) <= generator.queries_per_doc
            finished |= in_batch
            for record in batch:
                assert isinstance(record.query, str) and (record.score is None or math.isfinite(record.score))
                json.dumps(record.to_dict())
                query_ids.append(record.query_id)
        assert finished, "no record for any document"
        assert len(query_ids) == len(set(query_ids)), "query ids repeat"

    def test_an_interrupted_run_resumes_without_loss_or_repetition(self, tmp_path: Path) -> None:
        whole = self._run(self.make_generator(), tmp_path / "whole")
        generator = self.make_generator()
        original = generator.generate

        def first_batch_then_stop(docs: Sequence[Document], ctx: ComponentContext) -> Iterator[list[SyntheticQuery]]:
            yield next(iter(original(docs, ctx)))
            raise _Interrupted

        generator.generate = first_batch_then_stop  # type: ignore[method-assign]
        try:
            self._run(generator, tmp_path / "resumed")
        except _Interrupted:
            pass
        resumed = self._run(self.make_generator(), tmp_path / "resumed")
        assert sorted(r["query_id"] for r in resumed) == sorted(r["query_id"] for r in whole)

    def _run(self, generator: Generator, folder: Path) -> list[dict[str, Any]]:
        from inparsx.generate.stage import generate_queries

        folder.mkdir(parents=True, exist_ok=True)
        ctx = self.context(folder)
        generate_queries(ctx, generator, ctx.dir / SYNTHETIC_QUERIES.file)
        return [json.loads(line) for line in (ctx.dir / SYNTHETIC_QUERIES.file).read_text().splitlines()]


class _Interrupted(Exception):
    pass


class FilterContract(Contract):
    """A filter returns one decision per record, in order, gives a reason for each record it drops, and
    changes no record (filters only remove)."""

    stage = "filter"

    def make_filter(self) -> Filter:
        raise NotImplementedError

    def make_records(self, ctx: ComponentContext) -> list[SyntheticQuery]:
        """The records to filter (default: each document's title, plus a copy of each title under a new id)."""
        titles = self.title_records(ctx)
        return titles + [SyntheticQuery(f"{r.doc_id}-1", r.doc_id, r.query.upper(), score=-1.0) for r in titles]

    def test_one_decision_per_record_with_reasons(self, tmp_path: Path) -> None:
        component = self.make_filter()
        ctx = self.context(tmp_path)
        records = self.make_records(ctx)
        before = [r.to_dict() for r in records]
        decisions = component.apply(records, ctx)
        assert len(decisions) == len(records) and all(isinstance(d, Decision) for d in decisions)
        assert all(d.keep or (isinstance(d.reason, str) and d.reason) for d in decisions), "a drop without a reason"
        assert all(d.score is None or math.isfinite(d.score) for d in decisions)
        assert [r.to_dict() for r in records] == before, "a filter changed a record"


class MinerContract(Contract):
    """A miner builds triples only for the records it is given, with their own document as the positive, and
    never returns the positive among the negatives."""

    stage = "triples"

    def make_miner(self) -> Miner:
        raise NotImplementedError

    def test_never_returns_the_positive(self, tmp_path: Path) -> None:
        miner = self.make_miner()
        ctx = self.context(tmp_path)
        records = self.title_records(ctx)
        sources = {r.query_id: r.doc_id for r in records}
        triples = list(miner.mine(records, ctx))
        assert triples and all(isinstance(t, Triple) for t in triples)
        for triple in triples:
            assert sources[triple.query_id] == triple.pos_id
            assert triple.pos_id not in triple.neg_ids and len(triple.neg_ids) == len(triple.neg_texts)


class RerankerContract(Contract):
    """A reranker returns one finite score per (query, document) pair, in the order of the pairs."""

    stage = "rerank"

    def make_reranker(self) -> Reranker:
        raise NotImplementedError

    def model(self, tmp_path: Path) -> str:
        """What ``load`` gets: a model folder or hub id."""
        raise NotImplementedError

    def test_one_finite_score_per_pair_in_order(self, tmp_path: Path) -> None:
        reranker = self.make_reranker()
        reranker.load(self.model(tmp_path))
        docs = [doc.full_text for doc in self.context(tmp_path).dataset.docs_iter()][:6]
        queries = ["does caffeine affect sleep"] * 3 + ["malaria drug resistance"] * 3
        scores = reranker.score(queries, docs)
        assert len(scores) == len(docs) and all(isinstance(s, float) and math.isfinite(s) for s in scores)
        backwards = reranker.score(queries[::-1], docs[::-1])
        assert backwards == _approx(scores[::-1])


class TrainerContract(Contract):
    """A trainer saves, in the folder it is given, a model that its reranker loads and scores with."""

    stage = "train"

    def make_trainer(self) -> Trainer:
        raise NotImplementedError

    def make_reranker(self) -> Reranker:
        raise NotImplementedError

    def test_saves_a_model_its_reranker_loads(self, tmp_path: Path) -> None:
        trainer = self.make_trainer()
        ctx = self.context(tmp_path)
        docs = list(ctx.dataset.docs_iter())
        path = ctx.dir / TRIPLES.file
        with open(path, "w", encoding="utf-8") as handle:
            for i, doc in enumerate(docs):
                negative = docs[(i + 5) % len(docs)]
                handle.write(
                    json.dumps(
                        {
                            "query_id": f"{doc.doc_id}-0",
                            "query": doc.title,
                            "pos_id": doc.doc_id,
                            "pos_text": doc.full_text,
                            "neg_ids": [negative.doc_id],
                            "neg_texts": [negative.full_text],
                        }
                    )
                    + "\n"
                )
        saved = Path(trainer.train(path, ctx.dir / "model", ctx))
        assert saved.is_dir() and any(saved.iterdir())
        reranker = self.make_reranker()
        reranker.load(str(saved))
        scores = reranker.score([docs[0].title, docs[1].title], [docs[0].full_text, docs[1].full_text])
        assert len(scores) == 2 and all(math.isfinite(s) for s in scores)


class RetrieverContract(Contract):
    """A retriever, once ``index(dataset)`` has run, returns for every query asked (and no other) a ranking of
    at most ``k`` documents of the corpus with finite float scores, the same ranking every time and after
    indexing again (a cached index); ``search`` before ``index`` raises :class:`~inparsx.errors.InparsxError`;
    ``index_info`` is a JSON-ready dict."""

    stage = "retrieve"

    def make_retriever(self) -> Retriever:
        raise NotImplementedError

    def queries(self, ctx: ComponentContext) -> dict[str, str]:
        """The queries searched (default: every query of the collection, plus one of no known word)."""
        asked = {qid: q.text for split in ("train", "test") for qid, q in ctx.dataset.queries(split).items()}
        return {**asked, "nothing": "zzzqx"}

    def test_a_run_of_at_most_k_corpus_documents_per_query(self, tmp_path: Path) -> None:
        ctx = self.context(tmp_path)
        retriever = self.make_retriever()
        retriever.index(ctx.dataset)
        queries, corpus = self.queries(ctx), set(ctx.dataset.docs())
        for k in (1, 3):
            run = retriever.search(queries, k)
            assert isinstance(run, dict) and set(run) == set(queries), "the run's qids are not the queries asked"
            for qid, ranking in run.items():
                assert isinstance(ranking, dict) and len(ranking) <= k, f"{qid}: more than k = {k} documents"
                assert set(ranking) <= corpus, f"{qid}: a document not in the corpus"
                assert all(isinstance(s, float) and math.isfinite(s) for s in ranking.values()), qid
        info = retriever.index_info
        assert isinstance(info, dict)
        json.dumps(info)

    def test_the_same_run_every_time_and_from_a_cached_index(self, tmp_path: Path) -> None:
        ctx = self.context(tmp_path)
        retriever = self.make_retriever()
        retriever.index(ctx.dataset)
        queries = self.queries(ctx)
        first = retriever.search(queries, 5)
        assert any(first.values()), "no query found any document"
        assert retriever.search(queries, 5) == first
        again = self.make_retriever()
        again.index(ctx.dataset)
        assert again.search(queries, 5) == first

    def test_search_before_index_is_an_error(self, tmp_path: Path) -> None:
        try:
            self.make_retriever().search({"q1": "caffeine"}, 3)
        except InparsxError:
            return
        raise AssertionError("search() before index() returned instead of raising InparsxError")


class EvaluatorContract(Contract):
    """An evaluator returns ``{run: {metric: value}}`` for exactly the runs and metrics asked (canonical names),
    each a finite float in [0, 1] (1 for a run that ranks each query's relevant documents first on ``ndcg@10``,
    0 for an empty run), the same values every time; when it gives per-query scores, they are arrays aligned
    with its qids whose means are the values; when it gives a paired test, a p-value in [0, 1] and a
    ``significant`` flag for every run but the baseline."""

    stage = "evaluate"
    metrics: tuple[str, ...] = ("ndcg@10", "recall@100", "mrr@10")

    def make_evaluator(self) -> Evaluator:
        raise NotImplementedError

    def qrels_and_runs(self, ctx: ComponentContext) -> tuple[Qrels, dict[str, Run]]:
        """The test qrels and three runs: ``perfect`` (each query's relevant documents first), ``shuffled``
        (every document, scored by a checksum) and ``empty``."""
        import zlib

        qrels = ctx.dataset.qrels("test")
        docs = sorted(ctx.dataset.docs())
        perfect = {
            qid: {**{d: 0.5 for d in docs}, **{d: 1.0 + g for d, g in judged.items()}} for qid, judged in qrels.items()
        }
        shuffled = {qid: {d: zlib.crc32(f"{qid}|{d}".encode()) / 2**32 for d in docs} for qid in qrels}
        return qrels, {"perfect": perfect, "shuffled": shuffled, "empty": {}}

    def test_values_for_the_runs_and_metrics_asked(self, tmp_path: Path) -> None:
        ctx = self.context(tmp_path)
        evaluator = self.make_evaluator()
        qrels, runs = self.qrels_and_runs(ctx)
        values = evaluator.evaluate(qrels, runs, list(self.metrics))
        assert set(values) == set(runs), "one entry per run asked"
        for name, by_metric in values.items():
            assert set(by_metric) == set(self.metrics), f"{name}: not the metrics asked"
            assert all(isinstance(v, float) and math.isfinite(v) and 0.0 <= v <= 1.0 for v in by_metric.values())
        assert math.isclose(values["perfect"]["ndcg@10"], 1.0, rel_tol=1e-6), "a perfect run's ndcg@10 is not 1"
        assert all(v == 0.0 for v in values["empty"].values())
        assert evaluator.evaluate(qrels, runs, list(self.metrics)) == values

    def test_per_query_scores_average_to_the_values(self, tmp_path: Path) -> None:
        ctx = self.context(tmp_path)
        evaluator = self.make_evaluator()
        qrels, runs = self.qrels_and_runs(ctx)
        per_query = evaluator.per_query(qrels, runs, list(self.metrics))
        if per_query is None:
            return
        qids, scores = per_query
        assert sorted(qids) == sorted(qrels) and set(scores) == set(runs)
        values = evaluator.evaluate(qrels, runs, list(self.metrics))
        for name, by_metric in scores.items():
            assert set(by_metric) == set(self.metrics)
            for metric, array in by_metric.items():
                assert array.shape == (len(qids),)
                assert math.isclose(float(array.mean()), values[name][metric], rel_tol=1e-6, abs_tol=1e-9), (
                    f"{name} {metric}: the per-query mean is not the value"
                )
        tested = evaluator.significance(scores, "shuffled")
        if tested is None:
            return
        assert set(tested) == set(runs) - {"shuffled"}
        for entries in tested.values():
            for entry in entries.values():
                assert 0.0 <= entry["p_value"] <= 1.0 and isinstance(entry["significant"], bool)


class TunerContract(Contract):
    """A tuner writes what it declares (``output``: :data:`~inparsx.artifacts.MODEL`, ``PROGRAM`` or
    ``INSTRUCTION``) at ``ctx.dir / output`` and returns that path, never asks for the evaluated split's queries
    or qrels (its dataset hides them; the contract also records what it asked for, so a tuner that swallowed
    the error still fails), and writes the same bytes for the same seed."""

    stage = "tune"

    def make_tuner(self) -> Tuner:
        raise NotImplementedError

    def context(self, tmp_path: Path) -> ComponentContext:
        """The tune stage's context: the collection without the evaluated split, no earlier stage's output."""
        ctx = super().context(tmp_path)
        return component_context(_Recording(ctx.dataset, ctx.eval_split), work_dir=ctx.dir, stage=self.stage)

    def test_writes_its_output_and_never_asks_for_the_evaluated_split(self, tmp_path: Path) -> None:
        tuner = self.make_tuner()
        assert tuner.output in (MODEL, PROGRAM, INSTRUCTION)
        ctx = self.context(tmp_path)
        path = Path(tuner.tune(ctx))
        assert path == ctx.dir / tuner.output and path.exists(), f"tune() did not write {ctx.dir / tuner.output}"
        assert isinstance(ctx.dataset, _Recording) and ctx.eval_split not in ctx.dataset.asked, (
            "the tuner asked for the evaluated split"
        )

    def test_the_same_seed_writes_the_same_output(self, tmp_path: Path) -> None:
        written = []
        for attempt in ("a", "b"):
            ctx = self.context(tmp_path / attempt)
            written.append(_contents(Path(self.make_tuner().tune(ctx))))
        assert written[0] == written[1], "two runs with the same seed wrote different outputs"


class _Recording(WithoutSplit):
    """:class:`~inparsx.datasets.base.WithoutSplit` that also records the splits asked for (``asked``)."""

    def __init__(self, base: Dataset, hidden: str):
        super().__init__(base, hidden)
        self.asked: list[str] = []

    def queries(self, split: str) -> dict[str, Query]:
        self.asked.append(split)
        return super().queries(split)

    def qrels(self, split: str) -> Qrels:
        self.asked.append(split)
        return super().qrels(split)


def _contents(path: Path) -> dict[str, bytes]:
    """A file's bytes, or every file's under a folder (by relative path)."""
    if path.is_file():
        return {"": path.read_bytes()}
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def _approx(values: list[float]) -> Any:
    import pytest

    return pytest.approx(values, rel=1e-4, abs=1e-5)
