"""Model-free filters (length, copied, scores) and the filter stage, on synthetic queries built from real
SciFact documents."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inparsx.context import ComponentContext
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import InparsxError
from inparsx.filter.rules import CopiedFilter, LengthFilter, ScoresFilter, copied_fraction, longest_shared_run, words
from inparsx.pipeline import StageContext
from inparsx.plugins import get_registry
from inparsx.recipe import validate_recipe
from inparsx.records import SyntheticQuery


@pytest.fixture(scope="module")
def dataset(scifact_small: Path) -> BeirFolderDataset:
    return BeirFolderDataset(scifact_small)


def make_ctx(dataset: BeirFolderDataset, run_dir: Path, table: dict | None = None) -> StageContext:
    data = {"recipe": {"name": "t"}, "dataset": {"name": str(dataset.root)}, "filter": table or {"use": ["length"]}}
    recipe = validate_recipe(data, "t.toml", "", get_registry())
    registry = get_registry()
    components = [registry.get("filters", n)(o) for n, o in recipe.stages["filter"].components]
    return StageContext(recipe, "filter", run_dir, components, "fp", dataset)


def filter_ctx(dataset: BeirFolderDataset, run_dir: Path) -> ComponentContext:
    """What a filter gets in a filter stage over ``dataset``."""
    return make_ctx(dataset, run_dir).component_context()


def record(qid: str, doc_id: str, query: str, score: float | None = None, log_probs=()) -> SyntheticQuery:
    return SyntheticQuery(query_id=qid, doc_id=doc_id, query=query, score=score, log_probs=list(log_probs))


def judged(dataset: BeirFolderDataset, n: int) -> list[tuple[str, str, str]]:
    """(qid, real test query, a judged document id) for the first ``n`` test queries."""
    qrels, queries = dataset.qrels("test"), dataset.queries("test")
    return [(qid, queries[qid].text, sorted(qrels[qid])[0]) for qid in list(queries)[:n]]


# ---- length ----


def test_length_drops_too_short_and_too_long_queries(dataset, tmp_path):
    ((qid, text, doc),) = judged(dataset, 1)
    records = [record("ok", doc, text), record("short", doc, "Vitamin D"), record("long", doc, "word " * 40)]
    decisions = LengthFilter(LengthFilter.Options(max_tokens=30)).apply(records, filter_ctx(dataset, tmp_path))
    assert [d.keep for d in decisions] == [True, False, False]
    assert decisions[1].reason == "fewer than 3 words" and decisions[1].score == 2.0
    assert decisions[2].reason == "more than 30 words"


def test_length_counts_generated_tokens_as_the_inpars_toolkit(dataset, tmp_path):
    ((qid, text, doc),) = judged(dataset, 1)
    records = [record("two", doc, text, log_probs=[-0.1, -0.2]), record("four", doc, "x", log_probs=[-0.1] * 4)]
    decisions = LengthFilter(LengthFilter.Options(count_by="generated")).apply(records, filter_ctx(dataset, tmp_path))
    assert [d.keep for d in decisions] == [False, True] and decisions[0].reason == "fewer than 3 tokens"
    with pytest.raises(InparsxError, match="log_probs"):
        LengthFilter(LengthFilter.Options(count_by="generated")).apply(
            [record("n", doc, text)], filter_ctx(dataset, tmp_path)
        )


def test_length_counts_a_tokenizers_tokens(dataset, tmp_path):
    from inparsx.testing import train_tokenizer

    tokenizer = train_tokenizer()
    tokenizer.save_pretrained(tmp_path / "tok")
    ((qid, text, doc),) = judged(dataset, 1)
    expected = len(tokenizer(text, add_special_tokens=False)["input_ids"])
    [decision] = LengthFilter(LengthFilter.Options(count_by=str(tmp_path / "tok"))).apply(
        [record("q", doc, text)], filter_ctx(dataset, tmp_path)
    )
    assert decision.score == expected and expected != len(text.split())


# ---- copied ----


def test_word_normalisation_and_longest_shared_run():
    assert words("Café-au-lait, IS good!") == ["cafe", "au", "lait", "is", "good"]
    assert longest_shared_run("a b c d".split(), "x a b y b c d z".split()) == 3
    assert longest_shared_run("p q".split(), "x y".split()) == 0


def test_copied_drops_a_sentence_copied_from_its_document(dataset, tmp_path):
    rows = judged(dataset, 2)
    (_, real_query, doc), (_, _, doc2) = rows
    text = dataset.docs()[doc].text
    sentence = " ".join(text.split()[5:17])
    records = [
        record("copied", doc, sentence.upper() + "?"),  # verbatim, other case and punctuation
        record("real", doc, real_query),  # a real SciFact query for this document
        record("half", doc2, " ".join(dataset.docs()[doc2].text.split()[:6]) + " in mice treated with lithium"),
        record("missing", "no-such-doc", "a query"),
    ]
    decisions = CopiedFilter().apply(records, filter_ctx(dataset, tmp_path))
    assert [d.keep for d in decisions] == [False, True, True, False]
    assert decisions[0].reason == "copied from its document" and decisions[0].score == 1.0
    assert decisions[3].reason == "source document not in the corpus"
    strict = CopiedFilter(CopiedFilter.Options(max_copied=0.5)).apply(records[:3], filter_ctx(dataset, tmp_path))
    assert [d.keep for d in strict] == [False, True, False]
    assert strict[2].reason == "at least 0.5 of its words copied from its document"
    assert copied_fraction(records[2].query, dataset.docs()[doc2].full_text) == pytest.approx(strict[2].score, abs=1e-4)


# ---- scores ----


def test_scores_keeps_the_top_k_by_mean_log_probability(dataset, tmp_path):
    rows = judged(dataset, 4)
    records = [
        record(f"q{i}", doc, text, score=s) for i, ((_, text, doc), s) in enumerate(zip(rows, [-0.5, -0.1, -2.0, -0.3]))
    ]
    records.append(record("from-log-probs", rows[0][2], rows[0][1], log_probs=[-0.05, -0.15]))  # mean -0.1
    decisions = ScoresFilter(ScoresFilter.Options(keep_top_k=3)).apply(records, filter_ctx(dataset, tmp_path))
    assert [d.keep for d in decisions] == [False, True, False, True, True]
    assert decisions[4].score == pytest.approx(-0.1)
    assert decisions[0].reason == "not in the top 3 by mean log-probability"
    with pytest.raises(InparsxError, match="no score"):
        ScoresFilter().apply([record("bare", rows[0][2], "q")], filter_ctx(dataset, tmp_path))


# ---- the stage ----


def write_generated(run_dir: Path, records: list[SyntheticQuery]) -> None:
    (run_dir / "generate").mkdir(parents=True)
    with open(run_dir / "generate" / "queries.jsonl", "w") as handle:
        handle.writelines(json.dumps(r.to_dict()) + "\n" for r in records)


def test_stage_chains_filters_in_recipe_order_and_reports_every_decision(dataset, tmp_path, capsys):
    from inparsx.filter.stage import SCORES_KEY, run_stage

    rows = judged(dataset, 6)
    records = [record(f"q{i}", doc, text, score=-0.1 * i) for i, (_, text, doc) in enumerate(rows)]
    records[1].query = "Vitamin D"  # too short
    records[2].query = " ".join(dataset.docs()[rows[2][2]].text.split()[:8])  # copied
    write_generated(tmp_path, records)
    table = {"use": ["length", "copied", "scores"], "keep_top_k": 2, "length": {"min_tokens": 3}}
    ctx = make_ctx(dataset, tmp_path, table)
    ctx.dir.mkdir(parents=True)
    run_stage(ctx)
    kept = [json.loads(line) for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]
    assert [r["query_id"] for r in kept] == ["q0", "q3"]
    assert set(kept[0]["extra"][SCORES_KEY]) == {"length", "copied", "scores"}
    decisions = {d["query_id"]: d for d in map(json.loads, (ctx.dir / "decisions.jsonl").read_text().splitlines())}
    assert len(decisions) == 6 and decisions["q1"]["filter"] == "length" and decisions["q2"]["filter"] == "copied"
    assert decisions["q4"]["reason"] == "not in the top 2 by mean log-probability" and not decisions["q5"]["kept"]
    summary = json.loads((ctx.dir / "summary.json").read_text())
    assert summary["kept"] == 2 and [s["in"] for s in summary["filters"]] == [6, 5, 4]
    assert summary["filters"][2]["dropped"] == {"not in the top 2 by mean log-probability": 2}
    assert "kept 2 of 6" in capsys.readouterr().out


def test_recipe_routes_top_level_and_sub_table_keys(dataset, tmp_path):
    ctx = make_ctx(dataset, tmp_path, {"use": ["length", "scores"], "keep_top_k": 7, "length": {"max_tokens": 50}})
    length, scores = ctx.components
    assert (length.options.max_tokens, scores.options.keep_top_k) == (50, 7)


def test_filter_command_writes_a_run_directory(dataset, tmp_path):
    from inparsx.filter.command import filter_command

    rows = judged(dataset, 3)
    records = [record(f"q{i}", doc, text, score=-float(i)) for i, (_, text, doc) in enumerate(rows)]
    write_generated(tmp_path / "gen", records)
    filter_command(
        tmp_path / "gen" / "generate" / "queries.jsonl",
        dataset=str(dataset.root),
        run_dir=tmp_path / "out",
        use="length,scores",
        set_=["keep_top_k=1", "length.min_tokens=2"],
    )
    kept = (tmp_path / "out" / "filter" / "queries.jsonl").read_text().splitlines()
    assert [json.loads(line)["query_id"] for line in kept] == ["q0"]
