"""Build the context a component runs in, without a recipe: for plugin tests.

``component_context(tiny_beir(tmp_path / "data"), seed=1, work_dir=tmp_path / "work")`` gives what the
pipeline runner passes to a component's method: a :class:`~inparsx.context.ComponentContext` with the dataset,
the seed, the evaluated split and a work folder.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from inparsx.context import ComponentContext
from inparsx.datasets.base import Dataset
from inparsx.plugins import Registry


def component_context(
    dataset: Dataset | str | Path,
    *,
    seed: int = 1,
    eval_split: str = "test",
    work_dir: str | Path | None = None,
    outputs: Mapping[str, str | Path] | None = None,
    run_name: str = "",
    stage: str = "",
    cache_key: str = "",
    registry: Registry | None = None,
) -> ComponentContext:
    """A :class:`~inparsx.context.ComponentContext` over ``dataset``, as the pipeline would build it.

    Args:
        dataset: a :class:`~inparsx.datasets.base.Dataset`, or a BEIR folder (e.g. from
            :func:`inparsx.testing.tiny_beir`), loaded as ``BeirFolderDataset`` named after the folder's path.
        seed: the run's seed.
        eval_split: the evaluated split's name.
        work_dir: the component's work folder, created (default: a new temporary folder; pass one under
            pytest's ``tmp_path`` to have it cleaned up).
        outputs: earlier stages' folders the component may read (``{"train": path}``), for ``"@train"``.
        run_name: the run's name (a recipe's name), e.g. for a model card.
        stage: the stage named in messages.
        cache_key: the key the runner would hand the component (its caches are keyed by it).
        registry: the registry ``ctx.build(spec)`` builds from (default: the process-wide one).
    """
    if not isinstance(dataset, Dataset):
        from inparsx.datasets.beir import BeirFolderDataset

        dataset = BeirFolderDataset(Path(dataset), name=str(dataset))
    folder = Path(work_dir) if work_dir is not None else Path(tempfile.mkdtemp(prefix="inparsx-work-"))
    folder.mkdir(parents=True, exist_ok=True)
    return ComponentContext(
        dataset,
        folder,
        seed,
        eval_split,
        {k: Path(v) for k, v in (outputs or {}).items()},
        run_name=run_name,
        stage=stage,
        cache_key=cache_key,
        registry=registry,
    )
