"""Explicit contracts: the narrow component context, optional capabilities declared on the base classes (no
probes in stage code), and the registry given to ``load_recipe`` used for components named inside options."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import pytest
from pydantic import Field

import inparsx
from inparsx.context import ComponentContext
from inparsx.datasets.base import Dataset, SplitHiddenError, WithoutSplit
from inparsx.datasets.beir import BeirFolderDataset
from inparsx.errors import InparsxError
from inparsx.generate.ict import ICTGenerator
from inparsx.pipeline import StageContext
from inparsx.plugins import Options, Registry, get_plugin_manager, get_registry
from inparsx.recipe import RecipeErrors, load_recipe, validate_recipe
from inparsx.rerank.base import Reranker, RerankerOptions
from inparsx.retrieve.base import Retriever
from inparsx.testing import component_context, tiny_beir
from inparsx.testing.plugins import plugin_module
from inparsx.train.base import Trainer
from inparsx.triples.base import Miner
from inparsx.triples.bm25_negatives import Bm25Negatives
from inparsx.tune.stage import tune_context

PACKAGE = Path(inparsx.__file__).parent


# --- the narrow context -------------------------------------------------------------------------------------


def test_a_plugin_builds_the_context_without_a_recipe(tmp_path):
    ctx = component_context(tiny_beir(tmp_path / "tiny"), seed=7, work_dir=tmp_path / "work")
    assert (ctx.seed, ctx.eval_split, ctx.dir, dict(ctx.outputs)) == (7, "test", tmp_path / "work", {})
    assert ctx.dir.is_dir() and not hasattr(ctx, "recipe") and not hasattr(ctx, "run_dir")
    docs = list(ctx.dataset.docs_iter())
    records = [r for batch in ICTGenerator().generate(docs, ctx) for r in batch]
    assert {r.doc_id for r in records} == {d.doc_id for d in docs}
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.seed = 2  # type: ignore[misc]


def test_resolve_model_reads_only_the_declared_stages(tmp_path):
    (tmp_path / "train" / "model").mkdir(parents=True)
    ctx = ComponentContext(
        None,
        tmp_path / "rerank",
        outputs={"train": tmp_path / "train"},  # type: ignore[arg-type]
        stage="rerank",
    )
    assert ctx.resolve_model("org/model") == "org/model"
    assert ctx.resolve_model("@train") == str(tmp_path / "train" / "model")
    with pytest.raises(InparsxError, match=r"needs .*train/missing.txt, the output of stage 'train'"):
        ctx.output("train", "missing.txt")
    with pytest.raises(
        InparsxError,
        match=r"@tune: stage 'rerank' cannot read the output of stage 'tune' "
        r"\(it reads train\); give a hub id",
    ):
        ctx.resolve_model("@tune")


def test_the_stage_context_gives_earlier_outputs_and_the_tuner_none(tmp_path, scifact_small):
    data = {
        "recipe": {"name": "narrow", "seed": 5},
        "dataset": {"name": str(scifact_small)},
        "generate": {"use": "ict"},
    }
    recipe = validate_recipe(data, "t", "", get_registry())
    dataset = BeirFolderDataset(scifact_small)
    ctx = StageContext(recipe, "generate", tmp_path, [], "fp", dataset).component_context()
    assert dict(ctx.outputs) == {"retrieve": tmp_path / "retrieve", "tune": tmp_path / "tune"}
    assert (ctx.dataset, ctx.seed, ctx.dir, ctx.run_name, ctx.stage) == (
        dataset,
        5,
        tmp_path / "generate",
        "narrow",
        "generate",
    )
    tuner = tune_context(StageContext(recipe, "tune", tmp_path, [], "fp", dataset))
    assert dict(tuner.outputs) == {} and isinstance(tuner.dataset, WithoutSplit)
    with pytest.raises(SplitHiddenError):
        tuner.dataset.qrels("test")


# --- contracts declared on base classes, no probes in stage code ----------------------------------------------


def test_no_base_class_mentions_the_stage_context():
    bases = sorted(PACKAGE.glob("*/base.py"))
    assert len(bases) >= 9
    offenders = [str(path.relative_to(PACKAGE)) for path in bases if "StageContext" in path.read_text()]
    assert not offenders, f"component contracts must take inparsx.context.ComponentContext: {offenders}"


def _probes(path: Path, root: Path = PACKAGE) -> list[str]:
    """Every ``hasattr``/``getattr`` call in ``path``, as ``file:line: call``."""
    return [
        f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")
    ]


def test_stage_code_does_not_probe_components():
    files = sorted(PACKAGE.glob("*/stage.py")) + [PACKAGE / "pipeline.py"]
    assert len(files) >= 9
    probes = [probe for path in files for probe in _probes(path)]
    assert not probes, "declare the member on the base class instead of probing for it:\n" + "\n".join(probes)


def test_the_probe_scan_finds_a_probe(tmp_path):
    sample = tmp_path / "stage.py"
    sample.write_text(
        "n = getattr(miner.options, 'n_negatives', 1)\ndevice = reranker.device\nok = hasattr(reranker, 'device')\n"
    )
    assert _probes(sample, tmp_path) == [
        "stage.py:1: getattr(miner.options, 'n_negatives', 1)",
        "stage.py:3: hasattr(reranker, 'device')",
    ]


class NoDepth(Miner):
    name = "no-depth"


class TwoDefault(Miner):
    name = "two-default"

    class Options(Options):
        n_negatives: int = 2


def test_optional_capabilities_have_defaults_on_the_base_classes():
    assert Retriever().index_info == {}
    retriever = Retriever()
    retriever.index_info = {"docs": 3}
    assert retriever.index_info == {"docs": 3}
    assert NoDepth().n_negatives == 1 and TwoDefault().n_negatives == 2
    assert Bm25Negatives(Bm25Negatives.Options(n_negatives=4)).n_negatives == 4
    reranker = Reranker(RerankerOptions())
    assert (reranker.device, reranker.dtype, reranker.model, reranker.tokenizer) == (None, None, None, None)
    reranker.model, reranker.tokenizer = object(), object()
    reranker.unload()
    assert reranker.model is None and reranker.tokenizer is None
    assert Dataset.name == "" and WithoutSplit(Dataset(), "test").name == ""


# --- the registry given to load_recipe is used for nested names ----------------------------------------------


class SpecialReranker(Reranker):
    name = "special"


class SpecialTrainerOptions(Options):
    base_model: str = "m"
    num_negatives: int | None = Field(None, ge=1)


class SpecialTrainer(Trainer):
    name = "special"
    Options = SpecialTrainerOptions


HEAD = '[recipe]\nname = "nested"\n[dataset]\nname = "beir:scifact"\n'
NESTED = {
    "filter reranker": '[filter]\nuse = ["reranker"]\nreranker = "special"\nmodel = "m"\n',
    "consistency trainer": '[filter]\nuse = ["consistency"]\nby = "self"\ntrainer = "special"\n',
    "triples teacher": '[triples]\nuse = "bm25-negatives"\nteacher = "special"\nteacher_model = "m"\n',
    "judge reranker": '[tune]\nuse = "cpo"\nbase_model = "m"\njudge_reranker = "special"\njudge_model = "m"\n',
    "path inner stages": '[tune]\nuse = "path"\ngenerator = {model = "m"}\ntrain = {use = "special"}\n',
}


@pytest.fixture(scope="module")
def special_registry() -> Registry:
    """The entry-point components plus ``special`` (a reranker and a trainer), not made process-wide."""
    pm = get_plugin_manager()
    pm.register(plugin_module("special", rerankers=[SpecialReranker], trainers=[SpecialTrainer]), name="special")
    return Registry(pm)


@pytest.mark.parametrize("where", list(NESTED))
def test_load_recipe_validates_nested_names_with_the_given_registry(tmp_path, special_registry, where):
    path = tmp_path / "nested.toml"
    path.write_text(HEAD + NESTED[where])
    recipe = load_recipe(path, registry=special_registry)
    assert recipe.stages
    with pytest.raises(RecipeErrors, match=r"unknown (reranker|trainer) 'special'"):
        load_recipe(path)
