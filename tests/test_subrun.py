"""The sub-run API for tuners (:mod:`inparsx.subrun`): inner stages as typed options validated with the recipe
(file, line and key in errors), run by the recipe runner without a report, their metrics returned as values;
the example of docs/plugins.md ("A tuner that runs inner stages") run as it is written there."""

from __future__ import annotations

import re
import types
from pathlib import Path

import pytest

from inparsx.errors import InparsxError
from inparsx.pipeline import DONE_MARKER, run_recipe
from inparsx.recipe import RecipeErrors, load_recipe
from inparsx.subrun import InnerStage, SubRunResult, inner_stage, run_stages, sub_recipe
from inparsx.testing import tiny_beir
from inparsx.testing.plugins import registered

DOCS = Path(__file__).resolve().parent.parent / "docs" / "plugins.md"

RECIPE = """[recipe]
name = "k1-search"
seed = 3

[dataset]
name = "{data}"

[retrieve]
use = "bm25s"
k = 10

[tune]
use = "bm25-k1"
k1 = [0.2, 1.5]
retrieve = {{ use = "bm25s", k = 10{extra} }}

[evaluate]
metrics = ["ndcg@10"]
"""


def docs_example() -> types.ModuleType:
    """The Python block of the section "A tuner that runs inner stages", executed as a plugin module."""
    section = DOCS.read_text().split("### A tuner that runs inner stages", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    module = types.ModuleType("k1_plugin")
    exec(compile(code, f"{DOCS}:k1-example", "exec", dont_inherit=True), module.__dict__)  # as a file runs it
    return module


@pytest.fixture()
def plugin():
    module = docs_example()
    with registered(module):
        yield module


def test_the_docs_tuner_runs_its_inner_stages_and_gets_metrics_back_without_reports(tmp_path, plugin):
    recipe = tmp_path / "k1.toml"
    recipe.write_text(RECIPE.format(data=tiny_beir(tmp_path / "tiny"), extra=""))
    run_dir = run_recipe(load_recipe(recipe), tmp_path / "run")
    tune = run_dir / "tune"
    assert (tune / "k1.txt").read_text().strip() in ("0.2", "1.5")
    for k1 in (0.2, 1.5):
        inner = tune / f"k1-{k1}"
        assert (inner / "retrieve" / DONE_MARKER).is_file() and (inner / "evaluate" / "metrics.json").is_file()
        assert not (inner / "report.html").exists()  # a sub-run writes no report
        assert f"k1 = {k1}" in (inner / "recipe.toml").read_text()
    assert (run_dir / "report.html").is_file()  # the outer run still does


def test_an_error_in_the_docs_tuners_inner_table_names_the_file_and_the_line(tmp_path, plugin):
    recipe = tmp_path / "k1.toml"
    recipe.write_text(RECIPE.format(data=tiny_beir(tmp_path / "tiny"), extra=", k1x = 2"))
    line = next(n for n, text in enumerate(recipe.read_text().splitlines(), 1) if text.startswith("retrieve = {"))
    with pytest.raises(RecipeErrors) as caught:
        load_recipe(recipe)
    assert str(caught.value).startswith(f"{recipe}:{line}: tune.retrieve.k1x: unknown key; ")
    assert "did you mean 'k1'?" in str(caught.value)
    recipe.write_text(
        RECIPE.format(data=tiny_beir(tmp_path / "tiny"), extra="").replace('use = "bm25s", k = 10 }', 'use = "bm25z" }')
    )
    with pytest.raises(RecipeErrors, match=rf":{line}: tune.retrieve.use: unknown retriever 'bm25z'"):
        load_recipe(recipe)


def test_run_stages_resumes_and_returns_the_metrics_by_run(tmp_path):
    dataset_dir = tiny_beir(tmp_path / "tiny")
    from inparsx.datasets.beir import BeirFolderDataset

    dataset = BeirFolderDataset(dataset_dir)
    stages = [
        inner_stage("retrieve", {"use": "bm25s", "k": 5}),
        inner_stage("evaluate", {"use": "ranx", "metrics": ["ndcg@10", "recall@5"]}),
    ]
    result = run_stages(stages, tmp_path / "inner", dataset, eval_split="train", seed=1)
    assert isinstance(result, SubRunResult) and result.folder == tmp_path / "inner"
    assert set(result.metrics) == {"retrieve"} and set(result.metrics["retrieve"]) == {"ndcg@10", "recall@5"}
    assert 0 < result.metric("retrieve", "ndcg@10") <= 1
    assert not (tmp_path / "inner" / "report.html").exists()
    marker = (tmp_path / "inner" / "retrieve" / DONE_MARKER).stat().st_mtime_ns
    again = run_stages(stages, tmp_path / "inner", dataset, eval_split="train", seed=1)  # finished: skipped
    assert again.metrics == result.metrics
    assert (tmp_path / "inner" / "retrieve" / DONE_MARKER).stat().st_mtime_ns == marker
    with pytest.raises(InparsxError, match="no run 'rerank'; its runs: retrieve"):
        result.metric("rerank", "ndcg@10")
    with pytest.raises(InparsxError, match="has no metric 'map'; its metrics: ndcg@10, recall@5"):
        result.metric("retrieve", "map")


def test_inner_stages_are_typed_tables_that_write_back_filled():
    stage = inner_stage("retrieve", {"use": "bm25s", "k": 5})
    assert isinstance(stage, InnerStage) and (stage.stage, stage.use, stage.options.k) == ("retrieve", "bm25s", 5)
    assert stage["k1"] == 0.9
    assert stage.table() == {"use": "bm25s", **stage.options.model_dump(mode="json", exclude_none=True)}
    changed = stage.with_options(k1=1.5)
    assert (changed.options.k1, stage.options.k1) == (1.5, 0.9)
    with pytest.raises(InparsxError, match=r"retrieve.k1: Input should be greater than or equal to 0"):
        stage.with_options(k1=-1)
    with pytest.raises(InparsxError, match="two \\[retrieve\\] stages"):
        sub_recipe([stage, changed], eval_split="train", seed=1)
    recipe = sub_recipe([stage], eval_split="train", seed=4, name="probe")
    assert list(recipe.stages) == ["retrieve", "evaluate"] and recipe.filled()["recipe"]["seed"] == 4
