"""Typed component specs (inparsx.specs): validated against the recipe's registry, errors with file, line and
key, the old flat spellings folded in with one warning and the same fingerprint, built by ``ctx.build``."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from inparsx.datasets.beir import BeirFolderDataset
from inparsx.pipeline import StageContext, stage_fingerprints
from inparsx.plugins import Registry, get_plugin_manager
from inparsx.recipe import RecipeErrors, load_recipe
from inparsx.rerank.base import Reranker
from inparsx.rerank.spec import RerankerSpec
from inparsx.specs import RecipeDeprecationWarning, RetrieverSpec
from inparsx.testing.plugins import plugin_module

HEAD = '[recipe]\nname = "specs"\n[dataset]\nname = "beir:scifact"\n'
OLD_TRIPLES = (
    '[triples]\nuse = "bm25-negatives"\ndepth = 50\nretriever = "bm25s"\nretriever_options = { k1 = 1.1 }\n'
    'teacher = "bi-encoder"\nteacher_model = "m"\nteacher_options = { max_length = 128 }\n'
)
NEW_TRIPLES = (
    '[triples]\nuse = "bm25-negatives"\ndepth = 50\n\n[triples.retriever]\nuse = "bm25s"\nk1 = 1.1\n\n'
    '[triples.teacher]\nuse = "bi-encoder"\nmodel = "m"\nmax_length = 128\n'
)
OLD_FILTER = (
    '[filter]\nuse = ["length", "reranker"]\nkeep_top_k = 5\nreranker = "cross-encoder"\nmodel = "m"\n'
    "reranker_options = { max_length = 64 }\n"
)
NEW_FILTER = (
    '[filter]\nuse = ["length", "reranker"]\nkeep_top_k = 5\n\n[filter.reranker.reranker]\n'
    'use = "cross-encoder"\nmodel = "m"\nbatch_size = 16\nmax_length = 64\n'
)
OLD_CONSISTENCY = (
    '[filter]\nuse = ["consistency"]\nby = "self"\ntrainer = "bi-encoder"\nmodel = "m"\n'
    'trainer_options = { epochs = 2 }\nretriever = "bm25s"\nretriever_options = { k1 = 1.1 }\n'
)
NEW_CONSISTENCY = (
    '[filter]\nuse = ["consistency"]\nby = "self"\n\n[filter.consistency.trainer]\nuse = "bi-encoder"\n'
    'base_model = "m"\nepochs = 2\n\n[filter.consistency.retriever]\nuse = "bm25s"\nk1 = 1.1\n'
)
OLD_TUNE = (
    '[tune]\nuse = "cpo"\nbase_model = "m"\njudge = "mix"\njudge_reranker = "bi-encoder"\njudge_model = "j"\n'
    'judge_options = { max_length = 64 }\njudge_weight = 0.3\ndepth = 50\nretriever = "bm25s"\n'
)
NEW_TUNE = (
    '[tune]\nuse = "cpo"\nbase_model = "m"\n\n[tune.judge]\nby = "mix"\nweight = 0.3\ndepth = 50\n\n'
    '[tune.judge.reranker]\nuse = "bi-encoder"\nmodel = "j"\nmax_length = 64\n\n[tune.judge.retriever]\n'
    'use = "bm25s"\n'
)


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(HEAD + body)
    return path


def errors_of(path: Path, registry: Registry | None = None) -> list:
    with pytest.raises(RecipeErrors) as caught:
        load_recipe(path, registry=registry)
    return caught.value.errors


@pytest.mark.parametrize(
    "body,key,line,reason",
    [
        (
            '[triples]\nuse = "bm25-negatives"\n\n[triples.teacher]\nuse = "cross-encodr"\nmodel = "m"\n',
            "triples.teacher.use",
            9,
            "unknown reranker 'cross-encodr'",
        ),
        (
            '[triples]\nuse = "bm25-negatives"\n\n[triples.teacher]\nuse = "cross-encoder"\nmodel = "m"\n'
            "max_lenght = 3\n",
            "triples.teacher.max_lenght",
            11,
            "did you mean 'max_length'?",
        ),
        (
            '[triples]\nuse = "bm25-negatives"\n\n[triples.retriever]\nuse = "bm25"\nk1 = "high"\n',
            "triples.retriever.k1",
            10,
            "valid number",
        ),
        (
            '[triples]\nuse = "bm25-negatives"\nretriever = { use = "bm25", k = 5 }\n',
            "triples.retriever.k",
            7,
            "set depth instead",
        ),
        (
            '[triples]\nuse = "bm25-negatives"\n\n[triples.teacher]\nmodel = "m"\n',
            "triples.teacher.use",
            8,
            "required key is missing",
        ),
        (
            '[filter]\nuse = ["reranker"]\n\n[filter.reranker.reranker]\nuse = "monot5"\nmodel = "m"\ndepth = 3\n',
            "filter.reranker.reranker.depth",
            11,
            "configures the rerank stage",
        ),
    ],
)
def test_spec_errors_name_file_line_and_key(tmp_path, body, key, line, reason):
    path = write(tmp_path, "bad.toml", body)
    (error,) = errors_of(path)
    assert (error.key, error.line) == (key, line) and reason in error.reason
    assert str(error).startswith(f"{path}:{line}: {key}: ")


@pytest.mark.parametrize(
    "old,new,stage",
    [
        (OLD_TRIPLES, NEW_TRIPLES, "triples"),
        (OLD_FILTER, NEW_FILTER, "filter"),
        (OLD_CONSISTENCY, NEW_CONSISTENCY, "consistency"),
        (OLD_TUNE, NEW_TUNE, "tune"),
    ],
)
def test_old_spelling_warns_once_and_means_the_same(tmp_path, old, new, stage):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        before = load_recipe(write(tmp_path, "old.toml", old))
    deprecations = [w for w in caught if issubclass(w.category, RecipeDeprecationWarning)]
    tables = {
        "triples": ["[triples.retriever]", "[triples.teacher]"],
        "filter": ["[filter.reranker.reranker]"],
        "consistency": ["[filter.consistency.retriever]", "[filter.consistency.trainer]"],
        "tune": ["[tune.judge]"],
    }[stage]
    assert len(deprecations) == len(tables)  # one line per moved table
    for warning, table in zip(deprecations, tables):
        assert str(warning.message).startswith(f"{tmp_path / 'old.toml'}:") and table in str(warning.message)
        assert "\n" not in str(warning.message)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeDeprecationWarning)
        after = load_recipe(write(tmp_path, "new.toml", new))
    assert before.filled() == after.filled()
    assert stage_fingerprints(before, "corpus") == stage_fingerprints(after, "corpus")


def test_filled_recipe_writes_the_new_spelling_and_loads_again(tmp_path):
    recipe = load_recipe(write(tmp_path, "new.toml", NEW_TRIPLES))
    filled = recipe.filled()["triples"]
    assert filled["teacher"] == {"use": "bi-encoder", "model": "m", "max_length": 128}
    assert filled["retriever"] == {"use": "bm25s", "k1": 1.1}
    again = tmp_path / "again.toml"
    again.write_text(recipe.to_toml())
    assert load_recipe(again).filled() == recipe.filled()


class OnlyHereReranker(Reranker):
    """A reranker registered only in the test's registry."""

    name = "only-here"


@pytest.fixture(scope="module")
def test_registry() -> Registry:
    pm = get_plugin_manager()
    pm.register(plugin_module("only-here", rerankers=[OnlyHereReranker]), name="only-here")
    return Registry(pm)


def test_ctx_build_uses_the_registry_that_validated_the_recipe(tmp_path, test_registry, scifact_small):
    path = write(
        tmp_path,
        "r.toml",
        '[triples]\nuse = "bm25-negatives"\n\n[triples.teacher]\nuse = "only-here"\nmodel = "m"\nmax_length = 32\n',
    )
    assert "unknown reranker 'only-here'" in errors_of(path)[0].reason  # not in the process-wide registry
    recipe = load_recipe(path, registry=test_registry)
    assert recipe.registry is test_registry
    dataset = BeirFolderDataset(scifact_small, name="beir:scifact")
    ctx = StageContext(recipe, "triples", tmp_path / "run", [], "fp", dataset).component_context()
    built = ctx.build(recipe.stages["triples"].components[0][1].teacher)
    assert isinstance(built, OnlyHereReranker) and built.options.max_length == 32


def test_spec_forms_in_python():
    inline = RerankerSpec.model_validate({"use": "cross-encoder", "model": "m", "max_length": 64})
    assert inline == RerankerSpec(use="cross-encoder", model="m", options={"max_length": 64})
    assert inline.model_dump() == {"use": "cross-encoder", "model": "m", "max_length": 64}
    assert RetrieverSpec.model_validate("bm25s") == RetrieverSpec(use="bm25s")  # the short form: no options


SHIPPED = sorted((Path(__file__).resolve().parent.parent / "recipes").glob("*.toml"))


@pytest.mark.parametrize("path", SHIPPED, ids=[p.stem for p in SHIPPED])
def test_shipped_recipes_use_the_new_spelling(path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecipeDeprecationWarning)
        load_recipe(path)
