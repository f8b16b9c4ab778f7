"""docs/recipes.md is generated from the options models and must match them."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from inparsx.docgen import options_table, recipes_markdown
from inparsx.plugins import Options

PAGE = Path(__file__).resolve().parent.parent / "docs" / "recipes.md"


def test_recipes_page_is_up_to_date():
    assert PAGE.read_text() == recipes_markdown(), (
        "docs/recipes.md is out of date: run `python -m inparsx.docgen > docs/recipes.md`"
    )


def test_every_stage_and_builtin_option_is_on_the_page():
    from inparsx.plugins import get_registry
    from inparsx.recipe import STAGES

    page = recipes_markdown()
    registry = get_registry()
    for stage, kind in STAGES.items():
        assert f"## [{stage}]" in page
        for entry in registry.entries[kind].values():
            if entry.package == "inparsx":
                section = page.split(f"### {stage}: `{entry.name}`", 1)[1].split("\n### ", 1)[0]
                assert all(f"| `{key}` |" in section for key in entry.cls.Options.model_fields), (stage, entry.name)


def test_options_table_shows_type_default_constraints_and_description():
    class Demo(Options):
        depth: int = Field(100, ge=1, le=1000, description="documents | per query")
        mode: str = "flat"

    table = options_table(Demo)
    assert "| `depth` | int | `100` | >= 1, <= 1000 | documents \\| per query |" in table
    assert '| `mode` | str | `"flat"` |  |  |' in table


def test_stage_options_are_documented_once_under_their_stage():
    from inparsx.recipe import STAGE_OPTIONS, stage_options_model

    page = recipes_markdown()
    for stage in STAGE_OPTIONS:
        assert page.count(f"### {stage}: stage options") == 1
        stage_part = page.split(f"## [{stage}]", 1)[1].split("\n## ", 1)[0]
        own, *components = stage_part.split("\n### ")[1:]
        assert own.startswith(f"{stage}: stage options") and components
        for key in stage_options_model(stage).model_fields:
            assert f"| `{key}` |" in own
            assert all(f"| `{key}` |" not in section for section in components), key
