"""The tune stage's plumbing: ``@tune`` without a tune stage is a clean error, a tuner must write what it
declares, and a tuner cannot point at another stage's model."""

from __future__ import annotations

from pathlib import Path

import pytest

from inparsx.context import ComponentContext
from inparsx.errors import InparsxError, PluginError
from inparsx.pipeline import run_recipe
from inparsx.recipe import load_recipe
from inparsx.testing.plugins import plugin_module, registered
from inparsx.tune.base import INSTRUCTION, Tuner

RECIPE = """[recipe]
name = "t"
[dataset]
name = "{data}"
{tables}
"""


def recipe(tmp_path: Path, data: Path, tables: str):
    path = tmp_path / "r.toml"
    path.write_text(RECIPE.format(data=data, tables=tables))
    return load_recipe(path)


@pytest.mark.parametrize(
    "table",
    [
        'use = "hf"\nmodel = "@tune"',
        'use = "hf"\nmodel = "m"\ninstruction = "@tune"',
        'use = "dspy"\nmodel = "m"\nprogram = "@tune"',
    ],
)
def test_at_tune_without_a_tune_stage_is_a_clean_error(tmp_path, scifact_small, table):
    with pytest.raises(
        InparsxError,
        match=r"r.toml:\d+: generate.\w+: @tune is the output of stage 'tune', but the "
        r"recipe has no \[tune\] stage before \[generate\]",
    ):
        recipe(tmp_path, scifact_small, f"[generate]\n{table}\nnum_docs = 1")


class InstructionOnly(Tuner):
    """Writes an instruction, not a model."""

    name = "instruction-only"
    output = INSTRUCTION

    def tune(self, ctx: ComponentContext) -> Path:
        (ctx.dir / INSTRUCTION).write_text("Ask.\n")
        return ctx.dir / INSTRUCTION


def test_at_tune_whose_output_is_missing_is_a_clean_error(tmp_path, scifact_small):
    tables = '[tune]\nuse = "instruction-only"\n[generate]\nuse = "hf"\nmodel = "@tune"\nnum_docs = 1'
    with registered(plugin_module("instruction-only", tuners=[InstructionOnly])):
        ready = recipe(tmp_path, scifact_small, tables)
        with pytest.raises(InparsxError, match=r"needs .*tune/model, the output of stage 'tune'"):
            run_recipe(ready, tmp_path / "run")


class Silent(Tuner):
    """Writes nothing."""

    name = "silent"

    def tune(self, ctx: ComponentContext) -> Path:
        return ctx.dir / self.output


def test_a_tuner_must_write_its_output(tmp_path, scifact_small):
    with registered(plugin_module("silent", tuners=[Silent])):
        with pytest.raises(PluginError, match="did not write"):
            run_recipe(recipe(tmp_path, scifact_small, '[tune]\nuse = "silent"'), tmp_path / "run")


class Resolver(Tuner):
    """Resolves a hub id, then the retrieve stage's output (which a tuner may not read)."""

    name = "resolver"

    def tune(self, ctx: ComponentContext) -> Path:
        assert ctx.resolve_model("org/model") == "org/model"
        ctx.resolve_model("@retrieve", "run.trec")
        raise AssertionError("unreachable")


def test_a_tuner_cannot_use_another_stage_output(tmp_path, scifact_small):
    (tmp_path / "run" / "retrieve").mkdir(parents=True)
    (tmp_path / "run" / "retrieve" / "run.trec").write_text("")
    with registered(plugin_module("resolver", tuners=[Resolver])):
        with pytest.raises(
            InparsxError,
            match=r"@retrieve: stage 'tune' cannot read the output of stage 'retrieve' "
            r"\(no earlier stage's output is available to it\)",
        ):
            run_recipe(recipe(tmp_path, scifact_small, '[tune]\nuse = "resolver"'), tmp_path / "run")


def test_the_tune_stage_names_the_generate_table_literally(tmp_path, scifact_small, capsys):
    """Recipe table names in messages are text, not rich markup ("[generate]" used to vanish)."""
    with registered(plugin_module("instruction-only", tuners=[InstructionOnly])):
        run_recipe(recipe(tmp_path, scifact_small, '[tune]\nuse = "instruction-only"'), tmp_path / "run")
    assert 'use it in [generate] as "@tune"' in " ".join(capsys.readouterr().err.split())
