"""Build the context a component runs in, without a recipe file: for plugin tests.

``stage_context(component, "generate", dataset_folder, run_dir)`` gives what the pipeline runner would pass
to the component's method (the dataset, the seed, the evaluated split, the stage's work folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inparsx.datasets.beir import BeirFolderDataset
from inparsx.pipeline import StageContext
from inparsx.recipe import STAGES, DatasetConfig, Recipe, RecipeInfo, StageConfig


def stage_context(component: Any, stage: str, dataset: str | Path, run_dir: str | Path, seed: int = 1,
                  eval_split: str = "test") -> StageContext:
    """A :class:`~inparsx.pipeline.StageContext` for one component of ``stage`` over a BEIR folder.

    Raises:
        ValueError: ``stage`` is not a pipeline stage.
    """
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}")
    folder = Path(dataset)
    recipe = Recipe(RecipeInfo(name="test", seed=seed), DatasetConfig(name=str(folder), eval_split=eval_split),
                    {stage: StageConfig(stage, [(component.name, component.options)])})
    ctx = StageContext(recipe, stage, Path(run_dir), [component], "test", BeirFolderDataset(folder, name=str(folder)))
    ctx.dir.mkdir(parents=True, exist_ok=True)
    return ctx
