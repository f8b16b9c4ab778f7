"""The stage specs (:mod:`inparsx.stages`): one declaration per stage from which the recipe loader's, the
registry's, the runner's and the cache key's tables derive; a key both a stage and its component declare is
refused when the component registers."""

from __future__ import annotations

import ast
import inspect
from typing import ClassVar

import pytest

from inparsx import cachekey, hookspecs, pipeline, plugins, recipe, stages
from inparsx.artifacts import ARTIFACTS
from inparsx.errors import InparsxError, PluginError
from inparsx.rerank.base import RerankerOptions
from inparsx.testing.fakes import ChecksumReranker
from inparsx.testing.plugins import plugin_module, registered


def test_the_tables_derive_from_the_specs():
    specs = stages.STAGE_SPECS
    assert list(recipe.STAGES) == [spec.name for spec in specs] == list(pipeline.STAGE_RUNNERS)
    assert recipe.STAGES == {
        "retrieve": "retrievers",
        "tune": "tuners",
        "generate": "generators",
        "filter": "filters",
        "triples": "miners",
        "train": "trainers",
        "rerank": "rerankers",
        "estimate": "retrievers",
        "evaluate": "evaluators",
    }
    assert recipe.MULTI_USE_STAGES == {"filter"} and recipe.DEFAULT_USE == {"evaluate": "ranx", "estimate": "bm25"}
    assert recipe.STAGE_OPTIONS == {
        "rerank": "inparsx.rerank.options:RerankStageOptions",
        "estimate": "inparsx.estimate.options:EstimateStageOptions",
    }
    assert pipeline.STAGE_RUNNERS["rerank"] == "inparsx.rerank.stage:run_stage"
    assert all(callable(__import__("pkgutil").resolve_name(spec.runner)) for spec in specs)
    assert cachekey.STAGE_READS == {spec.name: spec.reads for spec in specs}
    assert cachekey.OPTIONS_READ == {"estimate": ("rerank", "evaluate")}
    assert plugins.KINDS == {kind.name: kind.hook for kind in stages.COMPONENT_KINDS}
    assert plugins.BASES["rerankers"] == stages.stage_spec("rerank").base == "inparsx.rerank.base:Reranker"
    assert stages.stage_spec("rerank").options_model().__name__ == "RerankStageOptions"
    with pytest.raises(InparsxError, match="no stage 'rank'; the stages: retrieve, tune"):
        stages.stage_spec("rank")


def test_every_hook_of_a_kind_is_a_hookspec():
    hooks = {
        name for name, value in vars(hookspecs).items() if name.startswith("register_") and inspect.isfunction(value)
    }
    assert hooks - {"register_commands"} == {kind.hook for kind in stages.COMPONENT_KINDS}


def test_every_artifact_is_written_by_the_stage_it_names():
    for artifact in ARTIFACTS:
        if artifact.stage is not None:
            assert artifact in stages.stage_spec(artifact.stage).writes, artifact.name
    for spec in stages.STAGE_SPECS:
        assert all(a.stage in (None, spec.name) for a in spec.writes), spec.name
        for read in spec.reads:
            for artifact in stages.as_input(read).choices:
                owner = artifact.stage
                assert owner is None or list(recipe.STAGES).index(owner) < list(recipe.STAGES).index(spec.name)


def test_the_spec_module_imports_no_stage_code():
    tree = ast.parse(inspect.getsource(stages))
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    imported |= {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    assert imported <= {"__future__", "pkgutil", "dataclasses", "typing", "inparsx.artifacts", "inparsx.errors"}


class ClashingOptions(RerankerOptions):
    depth: int = 3
    """A key of [rerank]'s own options (RerankStageOptions.depth)."""


class ClashingReranker(ChecksumReranker):
    name: ClassVar[str] = "clashing"
    Options: ClassVar[type[RerankerOptions]] = ClashingOptions


def test_a_key_both_the_stage_and_its_component_declare_is_refused_at_registration():
    with pytest.raises(
        PluginError,
        match=r"clash-plugin: rerankers 'clashing' declares option 'depth', which the "
        r"rerank stage's own options declare too",
    ):
        with registered(plugin_module("clash-plugin", rerankers=[ClashingReranker])):
            pass
    assert stages.shared_option_keys("rerankers", ClashingOptions) == [("rerank", "depth")]
    assert stages.shared_option_keys("rerankers", RerankerOptions) == []
