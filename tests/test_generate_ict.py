"""The ``ict`` generator (Inverse Cloze Task) and its sentence splitter, on the whole real SciFact corpus."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from inparsx.generate.ict import ICTGenerator, split_sentences
from inparsx.generate.stage import generate_queries, sample_docs
from inparsx.pipeline import StageContext
from inparsx.plugins import get_registry
from inparsx.recipe import validate_recipe
from inparsx.records import Document


def sentences(text: str) -> list[str]:
    return [text[a:b] for a, b in split_sentences(text)]


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Levels rose (p < 0.05). Doses of 3.5 mg were used. Smith et al. found more.",
            ["Levels rose (p < 0.05).", "Doses of 3.5 mg were used.", "Smith et al. found more."],
        ),
        (
            "Cells were fixed, e.g. with PFA. As shown in Fig. 2 and Eq. 3, it binds. In the U.S. Most do.",
            ["Cells were fixed, e.g. with PFA.", "As shown in Fig. 2 and Eq. 3, it binds.", "In the U.S. Most do."],
        ),
        (
            "BACKGROUND Vitamin D is common. METHODS AND RESULTS We measured vitamin D. 45% responded.",
            ["Vitamin D is common.", "We measured vitamin D.", "45% responded."],
        ),
        (
            'It is "done." Then (n = 5) it ended! Really? Yes... "Quoted start" here.',
            ['It is "done."', "Then (n = 5) it ended!", "Really?", "Yes...", '"Quoted start" here.'],
        ),
        (
            "DNA damage accumulates. RNA Pol II stalls. MAIN OUTCOME MEASURES Survival at 5 years.",
            ["DNA damage accumulates.", "RNA Pol II stalls.", "Survival at 5 years."],
        ),
    ],
)
def test_sentence_splitter_on_scientific_prose(text, expected):
    assert sentences(text) == expected


def test_spans_index_the_original_text():
    text = "  First one here.   Second one here.  "
    assert [text[a:b] for a, b in split_sentences(text)] == ["First one here.", "Second one here."]


def run_ict(run_dir: Path, dataset, seed: int = 1, **options) -> list[dict]:
    data = {
        "recipe": {"name": "ict", "seed": seed},
        "dataset": {"name": "beir:scifact"},
        "generate": {"use": "ict", **options},
    }
    recipe = validate_recipe(data, "test", "", get_registry())
    name, opts = recipe.stages["generate"].components[0]
    ctx = StageContext(recipe, "generate", run_dir, [get_registry().get("generators", name)(opts)], _dataset=dataset)
    generate_queries(ctx.component_context(), ctx.component, ctx.dir / "queries.jsonl")
    return [json.loads(line) for line in (ctx.dir / "queries.jsonl").read_text().splitlines()]


def test_ict_over_the_whole_scifact_corpus_in_under_30_s(scifact, tmp_path):
    began = time.perf_counter()
    records = run_ict(tmp_path / "a", scifact)
    seconds = time.perf_counter() - began
    assert seconds < 30, f"ICT took {seconds:.1f} s"
    docs = scifact.docs()
    assert len(docs) == 5183 and len(records) > 5100 and len({r["doc_id"] for r in records}) == len(records)
    for record in records:
        doc = docs[record["doc_id"]]
        start, end = record["extra"]["sentence_span"]
        assert record["query"] == doc.text[start:end] and 5 <= len(record["query"].split()) <= 64
        positive = record["positive_text"]
        assert record["query"] not in positive or doc.text.count(record["query"]) > 1
        assert (
            positive
            == Document(
                doc.doc_id, f"{doc.text[:start].rstrip()} {doc.text[end:].lstrip()}".strip(), doc.title
            ).full_text
        )
        assert record["generator"] == "ict" and record["log_probs"] == [] and record["score"] is None


def test_ict_is_seeded(scifact, tmp_path):
    first = run_ict(tmp_path / "a", scifact, num_docs=200)
    again = run_ict(tmp_path / "b", scifact, num_docs=200)
    other = run_ict(tmp_path / "c", scifact, seed=2, num_docs=200)
    assert first == again
    assert {r["doc_id"] for r in first} != {r["doc_id"] for r in other}


def test_ict_options(scifact):
    doc = scifact.docs()["4983"]
    kept = ICTGenerator(ICTGenerator.Options(remove_sentence=False)).query_for(doc, seed=1)
    assert kept is not None and kept.positive_text is None
    assert ICTGenerator(ICTGenerator.Options(min_words=500, max_words=600)).query_for(doc, seed=1) is None
    one_sentence = Document("x", "Only one sentence here in this abstract.", "Title")
    assert ICTGenerator().query_for(one_sentence, seed=1) is None
    with pytest.raises(ValueError, match="min_words"):
        ICTGenerator.Options(min_words=10, max_words=5)


def test_first_sentences_restricts_the_draw_to_the_opening_sentences(scifact):
    docs = list(scifact.docs().values())[:300]
    first_two = ICTGenerator(ICTGenerator.Options(first_sentences=2, min_words=1, max_words=1000))
    anywhere = ICTGenerator(ICTGenerator.Options(min_words=1, max_words=1000))
    positions = []
    for doc in docs:
        spans = split_sentences(doc.text)
        record = first_two.query_for(doc, seed=1)
        if len(spans) < 2:
            assert record is None
            continue
        positions.append(spans.index(tuple(record.extra["sentence_span"])))
        other = anywhere.query_for(doc, seed=1)
        positions.append(-1 - spans.index(tuple(other.extra["sentence_span"])))
    ours = [p for p in positions if p >= 0]
    assert set(ours) == {0, 1}  # both opening sentences are drawn, nothing later
    assert max(-1 - p for p in positions if p < 0) >= 5  # without the option, later sentences are drawn too


def test_documents_are_sampled_without_replacement_with_the_seed(scifact):
    sample = sample_docs(scifact, 100, seed=7)
    assert len({d.doc_id for d in sample}) == 100
    assert [d.doc_id for d in sample] == [d.doc_id for d in sample_docs(scifact, 100, seed=7)]
    assert [d.doc_id for d in sample] != [d.doc_id for d in sample_docs(scifact, 100, seed=8)]
    assert len(sample_docs(scifact, 100_000, seed=7)) == 5183
