"""The minimal plugin: its components on their own, and a recipe that uses them through the installed entry points."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys

from inparsx.records import SyntheticQuery
from inparsx.testing import component_context, tiny_beir
from inparsx.testing.collections import DOCS
from inparsx.testing.contracts import FilterContract, GeneratorContract
from inparsx_titles import TitleGenerator, TitleOptions, UniqueFilter

RECIPE = """
[recipe]
name = "titles"

[dataset]
name = "{dataset}"

[generate]
use = "title"
min_words = 3

[filter]
use = ["unique", "length"]
min_tokens = 3
"""


def test_titles_become_queries_and_short_ones_are_skipped(tmp_path):
    generator = TitleGenerator(TitleOptions(min_words=3))
    ctx = component_context(tiny_beir(tmp_path / "tiny"), work_dir=tmp_path / "run")
    docs = list(ctx.dataset.docs_iter())
    records = [r for batch in generator.generate(docs, ctx) for r in batch]
    assert {r.doc_id: r.query for r in records} == {d: t for d, (t, _) in DOCS.items() if len(t.split()) >= 3}


def test_unique_keeps_the_first_of_each_query_text():
    records = [SyntheticQuery(f"q{i}", f"d{i}", text) for i, text in enumerate(["Vitamin D", "vitamin  d", "Malaria"])]
    decisions = UniqueFilter().apply(records, None)
    assert [d.keep for d in decisions] == [True, False, True] and decisions[1].reason == "duplicate of q0"
    assert [d.keep for d in UniqueFilter(UniqueFilter.Options(case_sensitive=True)).apply(records, None)] == [
        True,
        True,
        True,
    ]


def test_a_recipe_uses_the_installed_plugin(tmp_path):
    names = {e.name: e.dist.metadata["Name"] for e in importlib.metadata.entry_points(group="inparsx")}
    assert names.get("titles") == "inparsx-titles", "install the plugin: pip install -e plugins/inparsx-titles"
    recipe = tmp_path / "titles.toml"
    recipe.write_text(RECIPE.format(dataset=tiny_beir(tmp_path / "tiny")))
    cli = [sys.executable, "-m", "inparsx.cli.main"]
    listed = subprocess.run([*cli, "plugins"], capture_output=True, text=True, check=True).stdout
    assert "inparsx-titles" in listed and "0.1.0" in listed
    subprocess.run(
        [*cli, "run", str(recipe), "--run-dir", str(tmp_path / "run")],
        check=True,
        env={**os.environ, "INPARSX_NO_PROGRESS": "1"},
    )
    summary = json.loads((tmp_path / "run" / "filter" / "summary.json").read_text())
    kept = (tmp_path / "run" / "filter" / "queries.jsonl").read_text().splitlines()
    assert len(kept) == sum(len(t.split()) >= 3 for t, _ in DOCS.values()), summary


class TestTitleGeneratorContract(GeneratorContract):
    def make_generator(self):
        return TitleGenerator(TitleOptions(min_words=1))


class TestUniqueFilterContract(FilterContract):
    def make_filter(self):
        return UniqueFilter()
