"""Model-based filters (reranker, consistency by bm25 / reranker / self-training) on synthetic queries built
from real SciFact documents, with deterministic fake models and tiny random ones."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

import pytest

from inparsx.context import ComponentContext
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.filter.consistency import ConsistencyFilter
from inparsx.filter.reranker_filter import RerankerFilter
from inparsx.pipeline import StageContext
from inparsx.plugins import Options
from inparsx.recipe import validate_recipe
from inparsx.records import SyntheticQuery
from inparsx.rerank.fusion import ranked
from inparsx.rerank.spec import RerankerSpec
from inparsx.testing.fakes import ChecksumReranker, checksum_score
from inparsx.testing.plugins import plugin_module, registered
from inparsx.train.base import Trainer


class RecordingTrainer(Trainer):
    """Writes an empty model folder and remembers the triples it was given."""

    class Options(Options):
        base_model: str = "base"

    name: ClassVar[str] = "recording"
    calls: ClassVar[list[list[str]]] = []

    def train(self, triples, output_dir, ctx=None):
        RecordingTrainer.calls.append(Path(triples).read_text().splitlines())
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        return Path(output_dir)


@pytest.fixture(autouse=True)
def fakes():
    with registered(plugin_module("fakes", rerankers=[ChecksumReranker], trainers=[RecordingTrainer])) as registry:
        ChecksumReranker.reset()
        RecordingTrainer.calls.clear()
        yield registry


@pytest.fixture(scope="module")
def dataset(scifact_small: Path) -> BeirFolderDataset:
    return BeirFolderDataset(scifact_small)


def make_ctx(dataset: BeirFolderDataset, run_dir: Path, registry) -> ComponentContext:
    data = {"recipe": {"name": "t"}, "dataset": {"name": str(dataset.root)}, "filter": {"use": ["length"]}}
    recipe = validate_recipe(data, "t.toml", "", registry)
    ctx = StageContext(recipe, "filter", run_dir, [], "fp", dataset)
    ctx.dir.mkdir(parents=True, exist_ok=True)
    return ctx.component_context()


def judged_records(dataset: BeirFolderDataset, n: int) -> list[SyntheticQuery]:
    """Real SciFact test queries as synthetic queries of one of their judged documents."""
    qrels, queries = dataset.qrels("test"), dataset.queries("test")
    return [
        SyntheticQuery(query_id=f"s{qid}", doc_id=sorted(qrels[qid])[0], query=queries[qid].text)
        for qid in list(queries)[:n]
    ]


def test_reranker_filter_keeps_the_top_k_and_resumes_from_its_scores_file(dataset, tmp_path, fakes):
    docs = sorted(dataset.docs())[:150]
    records = [
        SyntheticQuery(query_id=f"{d}-{i}", doc_id=d, query=f"question {i} about {d}") for d in docs for i in range(2)
    ]
    options = RerankerFilter.Options(reranker="checksum", model="m", keep_top_k=50, batch_size=4)
    ctx = make_ctx(dataset, tmp_path, fakes)
    ChecksumReranker.crash_on_call = 2  # the first chunk of 256 pairs is saved, then a crash
    with pytest.raises(KeyboardInterrupt):
        RerankerFilter(options).apply(records, ctx)
    ChecksumReranker.reset()
    decisions = RerankerFilter(options).apply(records, ctx)
    assert ChecksumReranker.scored == len(records) - 256
    assert sum(d.keep for d in decisions) == 50
    cutoff = sorted((d.score for d in decisions), reverse=True)[49]
    assert all(d.keep == (d.score >= cutoff) for d in decisions)
    assert {d.reason for d in decisions if not d.keep} == {"not in the top 50 by checksum score"}
    assert (ctx.dir / "reranker-scores.jsonl").is_file()


def test_reranker_filter_with_a_monot5_model(dataset, tmp_path, fakes):
    from inparsx.testing import tiny_t5

    model = tiny_t5(tmp_path / "t5")
    records = judged_records(dataset, 6)
    options = RerankerFilter.Options(
        reranker={"use": "monot5", "model": str(model), "dtype": "fp32", "max_length": 64}, keep_top_k=4
    )
    decisions = RerankerFilter(options).apply(records, make_ctx(dataset, tmp_path, fakes))
    assert sum(d.keep for d in decisions) == 4 and all(0.0 < d.score < 1.0 for d in decisions)


def bm25_rank(dataset, record: SyntheticQuery, depth: int) -> int | None:
    from inparsx.retrieve.stage import open_retriever

    hits = open_retriever("bm25s", {}, dataset).search({record.query_id: record.query}, depth)[record.query_id]
    order = ranked(hits)
    return order.index(record.doc_id) + 1 if record.doc_id in order else None


def test_consistency_by_bm25_keeps_queries_whose_source_ranks_first(dataset, tmp_path, fakes):
    records = judged_records(dataset, 8)
    unrelated = SyntheticQuery(query_id="odd", doc_id=records[0].doc_id, query=records[1].query)
    records.append(unrelated)
    options = ConsistencyFilter.Options(by="bm25", retriever="bm25s", k=1, depth=20)
    decisions = ConsistencyFilter(options).apply(records, make_ctx(dataset, tmp_path, fakes))
    for record, decision in zip(records, decisions):
        rank = bm25_rank(dataset, record, 20)
        assert decision.keep == (rank == 1) and decision.score == (float(rank) if rank else None)
    assert not decisions[-1].keep and decisions[-1].reason == "source document not first by bm25"
    assert any(d.keep for d in decisions)


def test_consistency_by_reranker_ranks_bm25_candidates_plus_the_source(dataset, tmp_path, fakes):
    records = judged_records(dataset, 10)
    options = ConsistencyFilter.Options(
        by="reranker", reranker={"use": "checksum", "model": "m"}, retriever="bm25s", k=3, depth=5
    )
    decisions = ConsistencyFilter(options).apply(records, make_ctx(dataset, tmp_path, fakes))
    from inparsx.retrieve.stage import open_retriever

    bm25 = open_retriever("bm25s", {}, dataset).search({r.query_id: r.query for r in records}, 5)
    docs = dataset.docs()
    for record, decision in zip(records, decisions):
        candidates = set(bm25[record.query_id]) | {record.doc_id}
        scores = {d: checksum_score("m", record.query, docs[d].full_text) for d in candidates}
        rank = ranked(scores).index(record.doc_id) + 1
        assert decision.score == rank and decision.keep == (rank <= 3)
    assert {d.reason for d in decisions if not d.keep} <= {"source document not top 3 by reranker"}


def test_consistency_by_self_trains_once_on_bm25_negatives_then_ranks(dataset, tmp_path, fakes):
    import json

    records = judged_records(dataset, 12)
    options = ConsistencyFilter.Options(
        by="self", trainer="recording", reranker="checksum", retriever="bm25s", depth=10, negatives=2
    )
    ctx = make_ctx(dataset, tmp_path, fakes)
    decisions = ConsistencyFilter(options).apply(records, ctx)
    [triples] = RecordingTrainer.calls
    rows = [json.loads(line) for line in triples]
    assert len(rows) == len(records) and all(len(r["neg_ids"]) == 2 and r["pos_id"] not in r["neg_ids"] for r in rows)
    assert all(d.score is not None for d in decisions) and all(d.keep == (d.score == 1.0) for d in decisions)
    again = ConsistencyFilter(options).apply(records, ctx)
    assert len(RecordingTrainer.calls) == 1 and [d.keep for d in again] == [d.keep for d in decisions]


def test_consistency_options_are_checked_when_the_recipe_is_validated(fakes):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="needs a reranker and its model"):
        ConsistencyFilter.Options(by="reranker")
    with pytest.raises(ValidationError, match="unknown trainer"):
        ConsistencyFilter.Options(by="self", trainer="nope", reranker="checksum")
    with pytest.warns(FutureWarning, match=r"the old spelling of \[filter.consistency.reranker\]"):
        old = ConsistencyFilter.Options(
            by="reranker", reranker="checksum", model="m", reranker_options={"dtype": "fp32"}
        )
    assert old.reranker == RerankerSpec(use="checksum", model="m", options={"dtype": "fp32"})
    with pytest.raises(ValidationError, match="at least k"):
        ConsistencyFilter.Options(k=10, depth=5)


def test_consistency_by_self_with_the_real_bi_encoder_trainer(dataset, tmp_path, fakes):
    """Promptagator's round trip end to end: a tiny BERT bi-encoder trained for two steps, then ranking."""
    from inparsx.testing import tiny_bert

    base = tiny_bert(tmp_path / "bert")
    records = judged_records(dataset, 8)
    options = ConsistencyFilter.Options(
        by="self",
        retriever="bm25s",
        depth=5,
        k=2,
        reranker={"use": "bi-encoder", "dtype": "fp32"},
        trainer={"use": "bi-encoder", "base_model": str(base), "max_steps": 2, "batch_size": 4, "save_steps": 0},
    )
    ctx = make_ctx(dataset, tmp_path, fakes)
    decisions = ConsistencyFilter(options).apply(records, ctx)
    assert (ctx.dir / "consistency-self" / "model" / "config.json").is_file()
    assert all(1 <= d.score <= 6 for d in decisions) and all(d.keep == (d.score <= 2) for d in decisions)
