"""Recipes: loading, --set overrides, and one clear error per problem (file, line, dotted key, reason)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import Field

from inparsx.errors import RecipeError
from inparsx.filter.base import Filter
from inparsx.plugins import Options
from inparsx.recipe import RecipeErrors, apply_override, load_recipe
from inparsx.retrieve.base import Retriever
from inparsx.testing.plugins import plugin_module, registered


class FakeRetriever(Retriever):
    """A retriever for tests."""

    name = "fake-bm25"

    class Options(Options):
        k: int = Field(1000, ge=1)
        k1: float = 0.9
        fields: str = "flat"


class FakeFilter(Filter):
    name = "fake-len"

    class Options(Options):
        min_tokens: int = 3
        keep_top_k: int = 10


class FakeScores(Filter):
    name = "fake-scores"

    class Options(Options):
        keep_top_k: int = 10


@pytest.fixture()
def registry():
    with registered(plugin_module("fakes", retrievers=[FakeRetriever], filters=[FakeFilter, FakeScores])) as reg:
        yield reg


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.toml"
    path.write_text(text)
    return path


BASE = """[recipe]
name = "t"

[dataset]
name = "beir:scifact"

[retrieve]
use = "fake-bm25"
k1 = 1.2
"""


def test_loads_and_fills_defaults(tmp_path, registry):
    recipe = load_recipe(write(tmp_path, BASE))
    name, options = recipe.stages["retrieve"].components[0]
    assert (name, options.k1, options.k) == ("fake-bm25", 1.2, 1000)
    filled = recipe.filled()
    assert filled["retrieve"] == {"use": "fake-bm25", "k": 1000, "k1": 1.2, "fields": "flat"}
    assert filled["recipe"]["seed"] == 1 and filled["dataset"]["eval_split"] == "test"
    assert 'use = "fake-bm25"' in recipe.to_toml()


def test_set_overrides_convert_types(tmp_path, registry):
    recipe = load_recipe(write(tmp_path, BASE), ["retrieve.k=100", "retrieve.fields=multifield", "recipe.seed=7"])
    options = recipe.stages["retrieve"].components[0][1]
    assert (options.k, options.fields, recipe.info.seed) == (100, "multifield", 7)


def test_set_needs_key_and_value():
    with pytest.raises(RecipeError, match="expected dotted.key=value"):
        apply_override({}, "retrieve.k")


def test_misspelled_key_names_file_line_key_and_suggestion(tmp_path, registry):
    path = write(tmp_path, BASE.replace("k1 = 1.2", "k_1 = 1.2"))
    with pytest.raises(RecipeErrors) as info:
        load_recipe(path)
    (error,) = info.value.errors
    assert (error.key, error.line) == ("retrieve.k_1", 9)
    assert str(error).startswith(f"{path}:9: retrieve.k_1: unknown key") and "did you mean 'k1'" in str(error)


def test_wrong_type_is_reported(tmp_path, registry):
    path = write(tmp_path, BASE.replace("k1 = 1.2", 'k = "many"'))
    with pytest.raises(RecipeErrors) as info:
        load_recipe(path)
    (error,) = info.value.errors
    assert error.key == "retrieve.k" and error.line == 9 and "'many'" in error.reason


def test_unknown_plugin_lists_available_and_suggests(tmp_path, registry):
    path = write(tmp_path, BASE.replace('use = "fake-bm25"', 'use = "fake-bm52"'))
    with pytest.raises(RecipeErrors) as info:
        load_recipe(path)
    (error,) = info.value.errors
    assert error.key == "retrieve.use" and error.line == 8
    assert "available:" in error.reason and "fake-bm25" in error.reason and "did you mean 'fake-bm25'" in error.reason


def test_unknown_table_and_missing_dataset(tmp_path, registry):
    path = write(tmp_path, '[recipe]\nname = "t"\n\n[retreive]\nuse = "x"\n')
    with pytest.raises(RecipeErrors) as info:
        load_recipe(path)
    messages = [str(e) for e in info.value.errors]
    assert any("retreive: unknown table" in m and "did you mean 'retrieve'" in m for m in messages)
    assert any("dataset: missing table" in m for m in messages)


def test_invalid_toml_gives_line(tmp_path, registry):
    with pytest.raises(RecipeError, match=r"r.toml:3: invalid TOML"):
        load_recipe(write(tmp_path, '[recipe]\nname = "t"\nseed = = 1\n'))


def test_filter_list_routes_shared_and_subtable_keys(tmp_path, registry):
    text = BASE + '\n[filter]\nuse = ["fake-len", "fake-scores"]\nkeep_top_k = 5\n\n[filter.fake-len]\nmin_tokens = 4\n'
    recipe = load_recipe(write(tmp_path, text))
    (_, length), (_, scores) = recipe.stages["filter"].components
    assert (length.min_tokens, length.keep_top_k, scores.keep_top_k) == (4, 5, 5)
    assert recipe.filled()["filter"]["use"] == ["fake-len", "fake-scores"]


def test_filter_key_no_filter_accepts(tmp_path, registry):
    text = BASE + '\n[filter]\nuse = ["fake-scores"]\nmin_tokens = 4\n'
    with pytest.raises(RecipeErrors, match=r"filter.min_tokens: unknown key"):
        load_recipe(write(tmp_path, text))


def test_list_use_rejected_for_single_component_stage(tmp_path, registry):
    with pytest.raises(RecipeErrors, match="retrieve.use: must be a plugin name"):
        load_recipe(write(tmp_path, BASE.replace('use = "fake-bm25"', 'use = ["fake-bm25"]')))
