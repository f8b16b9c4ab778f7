"""Contract test cases that a plugin's tests subclass, in the spirit of PyTerrier's extension tests.

Each class holds pytest tests of what every component of a kind must do, whatever it computes. A plugin's
test module subclasses it with a ``Test`` name and says how to build its component::

    from inparsx.testing.contracts import GeneratorContract

    class TestTitleGenerator(GeneratorContract):
        def make_generator(self):
            return TitleGenerator(TitleGenerator.Options(min_words=1))

The built-in components pass the same tests (``tests/test_contracts.py``). Everything runs on the 15-document
collection of :func:`inparsx.testing.tiny_beir`; override :meth:`Contract.collection` for another one.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from inparsx.artifacts import SYNTHETIC_QUERIES, TRIPLES
from inparsx.filter.base import Decision, Filter
from inparsx.generate.base import Generator
from inparsx.records import SyntheticQuery
from inparsx.rerank.base import Reranker
from inparsx.testing.collections import tiny_beir
from inparsx.context import ComponentContext
from inparsx.testing.context import component_context
from inparsx.train.base import Trainer
from inparsx.triples.base import Miner, Triple


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
        return [SyntheticQuery(f"{doc.doc_id}-0", doc.doc_id, doc.title or doc.text[:40], generator="contract")
                for doc in ctx.dataset.docs_iter()]


class GeneratorContract(Contract):
    """A generator yields valid records, every record of a document in one batch, and a run interrupted after
    its first batch resumes to the same documents with no record repeated. ``make_generator`` should yield
    several batches for the collection (a small ``batch_size``)."""

    stage = "generate"

    def make_generator(self) -> Generator:
        raise NotImplementedError

    def test_records_are_valid_and_grouped_by_document(self, tmp_path):
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

    def test_an_interrupted_run_resumes_without_loss_or_repetition(self, tmp_path):
        whole = self._run(self.make_generator(), tmp_path / "whole")
        generator = self.make_generator()
        original = generator.generate

        def first_batch_then_stop(docs, ctx):
            yield next(iter(original(docs, ctx)))
            raise _Interrupted

        generator.generate = first_batch_then_stop  # type: ignore[method-assign]
        try:
            self._run(generator, tmp_path / "resumed")
        except _Interrupted:
            pass
        resumed = self._run(self.make_generator(), tmp_path / "resumed")
        assert sorted(r["query_id"] for r in resumed) == sorted(r["query_id"] for r in whole)

    def _run(self, generator: Generator, folder: Path) -> list[dict]:
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

    def test_one_decision_per_record_with_reasons(self, tmp_path):
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

    def test_never_returns_the_positive(self, tmp_path):
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

    def test_one_finite_score_per_pair_in_order(self, tmp_path):
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

    def test_saves_a_model_its_reranker_loads(self, tmp_path):
        trainer = self.make_trainer()
        ctx = self.context(tmp_path)
        docs = list(ctx.dataset.docs_iter())
        path = ctx.dir / TRIPLES.file
        with open(path, "w", encoding="utf-8") as handle:
            for i, doc in enumerate(docs):
                negative = docs[(i + 5) % len(docs)]
                handle.write(json.dumps({"query_id": f"{doc.doc_id}-0", "query": doc.title, "pos_id": doc.doc_id,
                                         "pos_text": doc.full_text, "neg_ids": [negative.doc_id],
                                         "neg_texts": [negative.full_text]}) + "\n")
        saved = Path(trainer.train(path, ctx.dir / "model", ctx))
        assert saved.is_dir() and any(saved.iterdir())
        reranker = self.make_reranker()
        reranker.load(str(saved))
        scores = reranker.score([docs[0].title, docs[1].title], [docs[0].full_text, docs[1].full_text])
        assert len(scores) == 2 and all(math.isfinite(s) for s in scores)


def _approx(values: list[float]) -> Any:
    import pytest

    return pytest.approx(values, rel=1e-4, abs=1e-5)
