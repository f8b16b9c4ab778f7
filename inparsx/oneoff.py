"""What the one-off stage commands share: a one-stage recipe run by the pipeline's own stage runner in a work
folder beside the command's output, whose files are then moved to the paths the command was given.

``inparsx retrieve --out run.trec`` runs the retrieve stage in ``.run.trec.inparsx/`` (markers, fingerprint,
resumption, atomic writes: :func:`inparsx.pipeline.run_one_stage`), moves ``retrieve/run.trec`` to
``run.trec`` and deletes the work folder. An interrupted command leaves the work folder, and the same command
run again resumes from it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from inparsx.errors import InparsxError
from inparsx.io import storage_errors


def work_dir(out: Path) -> Path:
    """The work folder of a command writing ``out``: ``.<out name>.inparsx`` beside it."""
    return out.parent / f".{out.name}.inparsx"


def run_to(
    recipe, stage: str, out: Path, outputs: Callable[[Path], dict[Path, Path]], inputs: dict[str, Path] | None = None
):
    """Run ``stage`` of ``recipe`` in :func:`work_dir` of ``out``, then move its files where the command puts
    them and delete the work folder (the main process only, under ``accelerate launch``).

    Args:
        recipe: a one-stage recipe (:func:`inparsx.recipe.one_stage_recipe`).
        stage: the stage.
        out: the command's output path (the work folder goes beside it).
        outputs: the stage folder -> ``{file or folder in it: destination}``; missing sources are skipped.
        inputs: earlier stages' outputs (:class:`inparsx.pipeline.StageContext`).

    Returns:
        The stage's context (its ``dir`` is gone once the files are moved).

    Raises:
        InparsxError: a destination folder that exists and is not empty; and whatever the stage raises.
    """
    from inparsx.devices import is_main_process
    from inparsx.pipeline import run_one_stage

    work = work_dir(out)
    ctx = run_one_stage(recipe, stage, work, inputs)
    if is_main_process():
        for source, target in outputs(ctx.dir).items():
            if source.exists():
                move(source, target)
        shutil.rmtree(work, ignore_errors=True)
    return ctx


def move(source: Path, target: Path) -> None:
    """Move a finished file or folder to ``target`` with one rename (atomic on one file system); a file
    replaces ``target``, a folder replaces only an empty one.

    Raises:
        InparsxError: ``target`` is a folder that is not empty.
        StorageError: the rename fails (permission, a missing parent folder...).
    """
    if source.is_dir() and target.is_dir() and any(target.iterdir()):
        raise InparsxError(
            f"{target} exists and is not empty; remove it or choose another --out (the result is kept in {source})"
        )
    with storage_errors(target):
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, target)


def refuse_existing(out: Path, force: bool | None = None) -> None:
    """Refuse to write over ``out`` (a file, or a folder that is not empty) unless ``force`` (``None``: the
    command has no ``--force``), before any work is done.

    Raises:
        InparsxError: ``out`` exists (the message says how to go on).
    """
    taken = out.is_file() or (out.is_dir() and any(out.iterdir()))
    if taken and not force:
        raise InparsxError(
            f"{out} exists; "
            + ("pass --force to overwrite it" if force is not None else "remove it or choose another --out")
        )


def refuse_without_labels(dataset: str, split: str, what: str) -> None:
    """Refuse, before any work, a one-off command on ``split``'s queries of a collection without labels (it has
    no queries: the queries' texts come from the collection).

    Raises:
        InparsxError: the collection has no labels (the message points at ``[estimate]``).
    """
    from inparsx.datasets import resolve_dataset

    if not resolve_dataset(dataset).has_labels():
        raise InparsxError(
            f"{dataset}: a collection without labels has no {split} queries to be {what}; a "
            "recipe's [estimate] retrieves and reranks synthetic queries of held-out documents"
        )
