"""bm25-negatives and the triples stage, on real SciFact documents with synthetic queries made from them."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

import inparsx.datasets.beir
import inparsx.retrieve.plugins
import inparsx.triples.plugins
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import DataError, InparsxError
from inparsx.generate.ict import ICTGenerator
from inparsx.io import write_jsonl
from inparsx.pipeline import StageContext
from inparsx.recipe import DatasetConfig, Recipe, RecipeInfo, StageConfig
from inparsx.records import Document, SyntheticQuery
from inparsx.rerank.fusion import interpolate
from inparsx.rerank.fusion import ranked as ranked_ids
from inparsx.retrieve.stage import open_retriever
from inparsx.testing.fakes import ChecksumReranker, checksum_score
from inparsx.testing.plugins import only, plugin_module
from inparsx.triples.bm25_negatives import Bm25Negatives, draw_negatives, teacher_scores
from inparsx.triples.stage import read_synthetic_queries, run_stage


@pytest.fixture(scope="module", autouse=True)
def registry():
    """Only the components these tests need, registered through the hooks."""
    with only(
        inparsx.datasets.beir,
        inparsx.retrieve.plugins,
        inparsx.triples.plugins,
        plugin_module("checksum-plugin", rerankers=[ChecksumReranker]),
    ):
        yield


@pytest.fixture(scope="module")
def small(scifact_small: Path) -> BeirFolderDataset:
    return BeirFolderDataset(scifact_small, name="scifact-small")


def first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s", text.strip(), maxsplit=1)[0][:300]


@pytest.fixture(scope="module")
def records(small: BeirFolderDataset) -> list[SyntheticQuery]:
    """An ICT-style synthetic query per document: its first sentence (so BM25 ranks the positive high)."""
    docs = [d for d in small.docs_iter() if d.text][:60]
    return [
        SyntheticQuery(query_id=f"{d.doc_id}-0", doc_id=d.doc_id, query=first_sentence(d.text), generator="ict")
        for d in docs
    ]


def context(small: BeirFolderDataset, run_dir: Path, seed: int = 1, miner=None, filter_stage=False) -> StageContext:
    stages = {"filter": StageConfig("filter", [])} if filter_stage else {}
    recipe = Recipe(RecipeInfo(name="t", seed=seed), DatasetConfig(name=str(small.root)), stages)
    return StageContext(recipe, "triples", run_dir, [miner or Bm25Negatives()], _dataset=small)


def mine(small, records, tmp_path, seed=1, **options):
    miner = Bm25Negatives(Bm25Negatives.Options(**options))
    return list(miner.mine(records, context(small, tmp_path, seed, miner).component_context()))


def test_positive_is_never_a_negative_even_when_bm25_ranks_it_first(small, records, tmp_path):
    retriever = open_retriever("bm25", {}, small)
    run = retriever.search({r.query_id: r.query for r in records}, 5)
    first = [r for r in records if max(run[r.query_id], key=run[r.query_id].get) == r.doc_id]
    assert len(first) >= 50  # the positive is BM25's top hit for most first-sentence queries
    triples = mine(small, records, tmp_path, depth=5, n_negatives=4)
    assert len(triples) == len(records)
    for triple in triples:
        assert triple.pos_id not in triple.neg_ids
        assert set(triple.neg_ids) <= set(run[triple.query_id])  # drawn from the BM25 top `depth`
        assert len(set(triple.neg_ids)) == len(triple.neg_ids) == 4
    docs = small.docs()
    assert all(
        t.pos_text == docs[t.pos_id].full_text and t.neg_texts == tuple(docs[d].full_text for d in t.neg_ids)
        for t in triples
    )


def test_n_negatives_is_honoured(small, records, tmp_path):
    for n in (1, 3):
        triples = mine(small, records[:20], tmp_path, n_negatives=n)
        assert [len(t.neg_ids) for t in triples] == [n] * 20


def test_draws_are_deterministic_per_seed_and_query(small, records, tmp_path):
    once = mine(small, records, tmp_path, n_negatives=2, seed=7)
    again = mine(small, list(reversed(records)), tmp_path, n_negatives=2, seed=7)
    assert {t.query_id: t.neg_ids for t in once} == {t.query_id: t.neg_ids for t in again}
    other = mine(small, records, tmp_path, n_negatives=2, seed=8)
    changed = sum(a.neg_ids != b.neg_ids for a, b in zip(once, other))
    assert changed >= len(records) // 2


def test_negatives_are_spread_over_the_whole_depth(small, records, tmp_path):
    """Uniform over the top `depth`, not the hardest few: the mean rank of the drawn negatives is mid-list."""
    retriever = open_retriever("bm25", {}, small)
    run = retriever.search({r.query_id: r.query for r in records}, 100)
    ranks = []
    for triple in mine(small, records, tmp_path, depth=100, n_negatives=5):
        ranked = sorted(run[triple.query_id], key=lambda d: -run[triple.query_id][d])
        ranks += [ranked.index(d) for d in triple.neg_ids]
    assert 30 < sum(ranks) / len(ranks) < 70


def test_bm25s_can_rank_the_candidates(small, records, tmp_path):
    triples = mine(small, records[:10], tmp_path, retriever={"use": "bm25s", "k1": 1.2})
    assert len(triples) == 10 and all(t.pos_id not in t.neg_ids for t in triples)


def test_draw_skips_documents_identical_to_the_positive():
    positive = Document("p", "same text", "T")
    docs = {"p": positive, "dup": Document("dup", "same text", "T"), "x": Document("x", "other", "")}
    for seed in range(20):
        assert draw_negatives(["dup", "p", "x"], positive, docs, 2, random.Random(seed)) == ["x"]


def test_query_with_nothing_but_its_positive_gets_no_triple(small, tmp_path):
    docs = list(small.docs_iter())
    retriever = open_retriever("bm25", {}, small)
    unique = find_term_in_one_document(docs, retriever)
    assert unique is not None, "no SciFact term found in exactly one document of the subset"
    term, doc_id = unique
    records = [SyntheticQuery("lonely", doc_id, term), SyntheticQuery("stop", doc_id, "the of and")]
    write_jsonl(
        tmp_path / "generate" / "queries.jsonl",
        [r.to_dict() for r in records] + [SyntheticQuery("ok", docs[0].doc_id, first_sentence(docs[0].text)).to_dict()],
    )
    run_stage(context(small, tmp_path))
    triples = [json.loads(line) for line in (tmp_path / "triples" / "triples.jsonl").read_text().splitlines()]
    assert [t["query_id"] for t in triples] == ["ok"]
    summary = json.loads((tmp_path / "triples" / "summary.json").read_text())
    assert summary["queries"] == 3 and summary["triples"] == 1 and summary["queries_without_triple"] == 2
    assert summary["query_ids_without_triple"] == ["lonely", "stop"] and summary["source"] == "generate/queries.jsonl"


def find_term_in_one_document(docs: list[Document], retriever) -> tuple[str, str] | None:
    for doc in docs[:40]:
        words = sorted({w for w in re.findall(r"[a-z]{9,}", doc.text.lower())})[:10]
        run = retriever.search({w: w for w in words}, 10)
        for word in words:
            if list(run[word]) == [doc.doc_id]:
                return word, doc.doc_id
    return None


def test_stage_reads_the_filter_output_when_the_recipe_filters(small, records, tmp_path):
    write_jsonl(tmp_path / "generate" / "queries.jsonl", [r.to_dict() for r in records])
    write_jsonl(tmp_path / "filter" / "queries.jsonl", [r.to_dict() for r in records[:7]])
    run_stage(context(small, tmp_path, filter_stage=True))
    lines = (tmp_path / "triples" / "triples.jsonl").read_text().splitlines()
    assert [json.loads(line)["query_id"] for line in lines] == [r.query_id for r in records[:7]]
    assert set(json.loads(lines[0])) == {"query_id", "query", "pos_id", "pos_text", "neg_ids", "neg_texts"}
    assert json.loads((tmp_path / "triples" / "summary.json").read_text())["source"] == "filter/queries.jsonl"
    assert not list((tmp_path / "triples").glob("*.tmp"))


@pytest.mark.parametrize("remove_sentence", [True, False])
def test_ict_positive_without_its_sentence_reaches_the_triples(small, tmp_path, remove_sentence):
    """With ``remove_sentence``, no triple's positive contains its query; without it, every positive does."""
    ict = ICTGenerator(ICTGenerator.Options(remove_sentence=remove_sentence))
    records = [r for r in (ict.query_for(doc, seed=1) for doc in small.docs_iter()) if r is not None]
    write_jsonl(tmp_path / "generate" / "queries.jsonl", [r.to_dict() for r in records])
    miner = Bm25Negatives(Bm25Negatives.Options(retriever="bm25s"))
    run_stage(context(small, tmp_path, miner=miner))
    triples = [json.loads(line) for line in (tmp_path / "triples" / "triples.jsonl").read_text().splitlines()]
    assert len(triples) > 200
    containing = [t for t in triples if t["query"] in t["pos_text"]]
    if remove_sentence:
        docs = small.docs()
        assert not [t for t in containing if docs[t["pos_id"]].text.count(t["query"]) == 1]
        assert all(t["pos_text"] != docs[t["pos_id"]].full_text for t in triples)
    else:
        assert len(containing) == len(triples)


def test_teacher_scores_rank_as_the_rerank_interpolation_in_model_units():
    model = {"a": 0.9, "b": 0.5, "c": 0.7, "d": 0.62}
    bm25 = {"a": 3.0, "b": 12.0, "c": 8.0}  # d: not retrieved by BM25
    assert teacher_scores(model, bm25, 1.0) == model
    for alpha in (0.3, 0.5, 0.8):
        fused = teacher_scores(model, bm25, alpha)
        interpolated = interpolate({"q": bm25}, {"q": model}, alpha)["q"]
        assert ranked_ids(fused) == ranked_ids(interpolated)
        span = 0.9 - 0.5
        for x, y in (("a", "b"), ("c", "d"), ("b", "d")):
            assert fused[x] - fused[y] == pytest.approx(span / alpha * (interpolated[x] - interpolated[y]))


def test_teacher_scores_every_triple_over_its_bm25_candidates(small, records, tmp_path):
    triples = mine(
        small, records[:8], tmp_path, depth=30, teacher={"use": "checksum", "model": "zs"}, teacher_alpha=0.4
    )
    assert len(triples) == 8 and all(t.pos_score is not None and len(t.neg_scores) == 1 for t in triples)
    docs = small.docs()
    run = open_retriever("bm25", {}, small).search({t.query_id: t.query for t in triples}, 30)
    for triple in triples:
        hits = run[triple.query_id]
        raw = {d: checksum_score("zs", triple.query, docs[d].full_text) for d in hits if d != triple.pos_id}
        raw[triple.pos_id] = checksum_score("zs", triple.query, triple.pos_text)
        expected = teacher_scores(raw, hits, 0.4)
        assert triple.pos_score == expected[triple.pos_id] and triple.neg_scores == (expected[triple.neg_ids[0]],)


def test_unknown_teacher_or_teacher_option_is_rejected():
    with pytest.raises(ValidationError, match="depht: unknown key of 'checksum'"):
        Bm25Negatives.Options(teacher={"use": "checksum", "model": "m", "depht": 3})
    with pytest.raises(ValidationError, match="use: unknown reranker 'nope'"):
        Bm25Negatives.Options(teacher={"use": "nope", "model": "m"})
    with pytest.raises(ValidationError, match="teacher: needs model"):
        Bm25Negatives.Options(teacher={"use": "checksum"})
    with pytest.warns(
        FutureWarning, match=r"teacher, teacher_model, teacher_options: the old spelling of \[triples.teacher\]"
    ):
        old = Bm25Negatives.Options(teacher="checksum", teacher_model="m", teacher_options={"max_length": 9})
    assert old.teacher == Bm25Negatives.Options(teacher={"use": "checksum", "model": "m", "max_length": 9}).teacher


def test_stage_without_queries_names_the_missing_stage(small, tmp_path):
    with pytest.raises(InparsxError, match="generate"):
        run_stage(context(small, tmp_path))


def test_bad_records_are_reported_with_file_and_line(tmp_path):
    path = tmp_path / "queries.jsonl"
    path.write_text('{"query_id": "a", "doc_id": "1", "query": "x"}\n{"query_id": "b", "query": "y"}\n')
    with pytest.raises(DataError, match=r"queries.jsonl:2"):
        read_synthetic_queries(path)
    path.write_text('{"query_id": "a", "doc_id": "1", "query": "x"}\n{"query_id": "a", "doc_id": "2", "query": "y"}\n')
    with pytest.raises(DataError, match=r"queries.jsonl:2: query_id 'a' repeats line 1"):
        read_synthetic_queries(path)


def test_positive_outside_the_corpus_is_a_clear_error(small, tmp_path):
    with pytest.raises(InparsxError, match="not in scifact-small"):
        mine(small, [SyntheticQuery("q", "no-such-doc", "vitamin D")], tmp_path)


def test_options_are_validated_against_the_retriever():
    with pytest.raises(ValidationError, match="unknown retriever 'bm52'"):
        Bm25Negatives.Options(retriever="bm52")
    with pytest.raises(ValidationError, match="fields"):
        Bm25Negatives.Options(retriever={"use": "bm25", "fields": "titles"})
    with pytest.raises(ValidationError):
        Bm25Negatives.Options(n_negatives=0)
    assert Bm25Negatives.Options(retriever={"use": "bm25", "fields": "multifield"}).depth == 1000


def two_positive_query(small: BeirFolderDataset) -> tuple[str, str, str]:
    """A query built from the first sentences of two real documents, so BM25 ranks both of them on top."""
    first, second = [d for d in small.docs_iter() if d.text][:2]
    return f"{first_sentence(first.text)} {first_sentence(second.text)}", first.doc_id, second.doc_id


def test_no_negative_is_another_positive_of_the_same_query(small, tmp_path):
    query, one, two = two_positive_query(small)
    same = [
        SyntheticQuery(query_id="a", doc_id=one, query=query),
        SyntheticQuery(query_id="b", doc_id=two, query=f" {query.upper()} "),
    ]
    told = [SyntheticQuery(query_id="a", doc_id=one, query=query, extra={"judged_relevant": [two]})]
    alone = [SyntheticQuery(query_id="a", doc_id=one, query=query)]
    drawn_before = set()
    for seed in range(1, 9):
        drawn_before |= {d for t in mine(small, alone, tmp_path, seed, depth=3, n_negatives=1) for d in t.neg_ids}
        for triples in (
            mine(small, same, tmp_path, seed, depth=3, n_negatives=2),
            mine(small, told, tmp_path, seed, depth=3, n_negatives=2),
        ):
            assert all(not {one, two} & set(t.neg_ids) for t in triples) and all(t.neg_ids for t in triples)
    assert two in drawn_before  # without knowing it is relevant, BM25's top 3 does give it as a negative


def test_draw_skips_duplicates_of_every_relevant_document():
    docs = {
        "p": Document("p", "positive"),
        "r": Document("r", "other positive"),
        "copy": Document("copy", "other positive"),
        "n": Document("n", "negative"),
    }
    for seed in range(10):
        assert draw_negatives(["r", "copy", "n"], docs["p"], docs, 3, random.Random(seed), relevant={"r"}) == ["n"]


def test_the_teacher_does_not_score_the_other_positives(small, tmp_path):
    query, one, two = two_positive_query(small)
    told = [SyntheticQuery(query_id="a", doc_id=one, query=query, extra={"judged_relevant": [two]})]
    ChecksumReranker.reset()
    triples = mine(small, told, tmp_path, depth=10, teacher={"use": "checksum", "model": "zs"})
    docs = small.docs()
    hits = open_retriever("bm25", {}, small).search({"a": query}, 10)["a"]
    assert two in hits
    raw = {d: checksum_score("zs", query, docs[d].full_text) for d in hits if d not in (one, two)}
    raw[one] = checksum_score("zs", query, docs[one].full_text)
    expected = teacher_scores(raw, hits, 0.5)
    assert ChecksumReranker.scored == len(hits) - 1  # every candidate but the other positive (and the positive once)
    assert triples[0].neg_scores == tuple(expected[d] for d in triples[0].neg_ids)
