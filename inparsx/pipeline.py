"""The pipeline runner: one folder per stage, fingerprints, completion markers, skipping and resumption.

A stage's fingerprint hashes its options, the dataset and the fingerprint of the stage before it, so a
changed option re-runs that stage and every stage after it. A stage folder whose *started* marker carries
another fingerprint is cleared before the stage runs; one with the same fingerprint is kept, so long stages
resume from their ``.partial`` files.
"""

from __future__ import annotations

import hashlib
import json
import os
import pkgutil
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from inparsx.context import MODEL, ComponentContext, missing_output
from inparsx.datasets import Dataset, resolve_dataset
from inparsx.datasets.base import NoDataset
from inparsx.errors import InparsxError
from inparsx.interrupts import interrupted_as
from inparsx.io import atomic_write, read_json, write_json
from inparsx.lock import run_dir_lock
from inparsx.progress import console, out, quiet_library_bars
from inparsx.recipe import STAGES, Recipe
from inparsx.plugins import get_registry

STAGE_RUNNERS: dict[str, str] = {stage: f"inparsx.{stage}.stage:run_stage" for stage in STAGES}
"""Stage name -> ``module:function`` that runs it, imported only when the stage runs."""

DONE_MARKER = ".inparsx-done.json"
STARTED_MARKER = ".inparsx-started.json"
EXCLUDED_QIDS = "excluded_qids.txt"
RUN_NOTES = "runs.json"
"""A stage's notes on the runs it wrote: ``{"runs": {name: description}, "pairs": [{"run", "against",
"question"}]}``; the evaluate stage prints the descriptions and tests each pair (e.g. trained vs zero-shot)."""


def cache_home() -> Path:
    """Where indexes and embeddings are cached: ``$INPARSX_CACHE`` or ``~/.cache/inparsx``."""
    return Path(os.environ.get("INPARSX_CACHE") or Path.home() / ".cache" / "inparsx")


@dataclass
class StageContext:
    """What a stage runner gets: the recipe, its own folder, the run directory and built components.

    ``components`` are the stage's plugins, instantiated from the recipe in ``use`` order. ``inputs`` tells
    where earlier stages' outputs are when they are not in ``run_dir`` (a one-off command's input files):
    ``{"<stage>/<file>": path}`` for one file, ``{"<stage>": folder}`` for every output of a stage. Stage code hands
    components :meth:`component_context`, never this object: a component sees no recipe and no run directory.
    """

    recipe: Recipe
    stage: str
    run_dir: Path
    components: list[Any]
    fingerprint: str = ""
    _dataset: Dataset | None = field(default=None, repr=False)
    inputs: dict[str, Path] = field(default_factory=dict)

    @property
    def dir(self) -> Path:
        """This stage's output folder."""
        return self.run_dir / self.stage

    @property
    def seed(self) -> int:
        return self.recipe.info.seed

    @property
    def settings(self) -> Any:
        """The stage's own validated options (e.g. :class:`~inparsx.rerank.options.RerankStageOptions`), or
        ``None`` for a stage without them (:data:`inparsx.recipe.STAGE_OPTIONS`)."""
        config = self.recipe.stages.get(self.stage)
        return config.settings if config is not None else None

    @property
    def component(self) -> Any:
        """The stage's (first) component."""
        return self.components[0]

    @cached_property
    def dataset(self) -> Dataset:
        """The recipe's dataset, loaded on first use; :class:`~inparsx.datasets.base.NoDataset` when the recipe
        names none (a one-off command that reads no collection, e.g. ``inparsx train``)."""
        if self._dataset is not None:
            return self._dataset
        return resolve_dataset(self.recipe.dataset.name) if self.recipe.dataset.name else NoDataset()

    @property
    def eval_split(self) -> str:
        return self.recipe.dataset.eval_split

    def component_context(self, dataset: Dataset | None = None,
                          outputs: dict[str, Path] | None = None) -> ComponentContext:
        """The narrow context this stage's components get: the dataset (or ``dataset``, e.g. a view without
        the evaluated split), the seed, the evaluated split, this stage's folder as the work folder, the run's
        name, and the folders of every stage before this one in pipeline order (or ``outputs``), which
        ``resolve_model("@stage")`` and ``output(stage, file)`` read. A stage folder given in :attr:`inputs`
        (a one-off command's ``--run-dir``) replaces the one in the run directory."""
        order = list(STAGES)
        earlier = order[: order.index(self.stage)] if self.stage in order else []
        folders = {s: Path(self.inputs.get(s, self.run_dir / s)) for s in earlier}
        return ComponentContext(dataset if dataset is not None else self.dataset, self.dir, self.seed,
                                self.eval_split, folders if outputs is None else outputs,
                                run_name=self.recipe.name, stage=self.stage)

    def output(self, stage: str, filename: str) -> Path:
        """The path of an earlier stage's output file.

        Raises:
            InparsxError: the file does not exist (the stage is missing from the recipe or has not run).
        """
        path = self.inputs.get(f"{stage}/{filename}") or Path(self.inputs.get(stage, self.run_dir / stage)) / filename
        if not path.exists():
            raise missing_output(self.stage, stage, path)
        return path

    def resolve_model(self, value: str, filename: str = MODEL) -> str:
        """A model option: ``@stage`` -> that stage's output folder; a hub id or local path is returned as is."""
        if value.startswith("@"):
            return str(self.output(value[1:], filename))
        return value

    def runs(self) -> dict[str, Path]:
        """Every run produced so far, named after its stage: ``<stage>/run.trec`` is ``<stage>``, and
        ``<stage>/runs/<name>.trec`` is ``<name>``. In pipeline order, a stage's extra runs sorted by name
        (so ``zeroshot`` comes before ``zeroshot-alone``)."""
        found: dict[str, Path] = {}
        for stage in STAGES:
            folder = self.run_dir / stage
            if (folder / "run.trec").is_file():
                found[stage] = folder / "run.trec"
            for extra in sorted((folder / "runs").glob("*.trec"), key=lambda path: path.stem):
                found[extra.stem] = extra
        return found

    def run_notes(self) -> dict[str, Any]:
        """The :data:`RUN_NOTES` of every stage, merged in pipeline order: ``{"runs": {...}, "pairs": [...]}``.

        Raises:
            DataError: a notes file that is not valid JSON or not UTF-8 (path named).
        """
        notes: dict[str, Any] = {"runs": {}, "pairs": []}
        for stage in STAGES:
            path = self.run_dir / stage / RUN_NOTES
            if not path.is_file():
                continue
            found = read_json(path)
            notes["runs"].update(found.get("runs", {}))
            notes["pairs"].extend(found.get("pairs", []))
        return notes

    def excluded_qids(self) -> set[str]:
        """Query ids that earlier stages used (e.g. as few-shot examples) and evaluation must drop."""
        excluded: set[str] = set()
        for stage in STAGES:
            path = self.run_dir / stage / EXCLUDED_QIDS
            if path.is_file():
                excluded.update(line.strip() for line in path.read_text().splitlines() if line.strip())
        return excluded


def stage_fingerprint(recipe: Recipe, stage: str, previous: str, dataset_fingerprint: str) -> str:
    """sha256 (16 hex digits) of the stage's filled options, the dataset, the seed and the previous fingerprint."""
    payload = json.dumps({"stage": stage, "options": recipe.filled().get(stage), "seed": recipe.info.seed,
                          "dataset": [recipe.dataset.name, recipe.dataset.eval_split, dataset_fingerprint],
                          "previous": previous}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def read_marker(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_recipe(recipe: Recipe, run_dir: Path | None = None, start: str | None = None, stop: str | None = None,
               dataset: Dataset | None = None) -> Path:
    """Run a recipe's stages in pipeline order, skipping finished ones; returns the run directory.

    Args:
        recipe: a validated recipe.
        run_dir: output folder (default ``runs/<recipe name>``).
        start: re-run from this stage on, even where finished (``--from``).
        stop: stop after this stage (``--to``).
        dataset: the dataset to use instead of resolving ``recipe.dataset.name`` (e.g. the PATH tuner's
            view of the train split, whose inner runs evaluate on gold train queries).

    Only one process at a time may run in ``run_dir`` (see :mod:`inparsx.lock`).

    Raises:
        InparsxError: ``start``/``stop`` name a stage that is not in the recipe, ``start`` comes after
            ``stop``, or a stage fails on bad input.
        RunDirLocked: another process is running in ``run_dir``.
        Interrupted: Ctrl-C; says which stage stopped (finished stages and partial results are kept).
        StorageError: a file or folder cannot be written (permission, disk full, a path that is a file).
    """
    run_dir = Path(run_dir or Path("runs") / recipe.name)
    names = list(recipe.stages)
    for flag, value in (("--from", start), ("--to", stop)):
        if value is not None and value not in names:
            raise InparsxError(f"{flag} {value}: not a stage of this recipe; its stages: {', '.join(names)}")
    if start is not None and stop is not None and names.index(start) > names.index(stop):
        raise InparsxError(f"--from {start} comes after --to {stop} in this recipe ({' -> '.join(names)}): "
                           "nothing would run; give a --from stage at or before the --to stage")
    with run_dir_lock(run_dir):
        with atomic_write(run_dir / "recipe.toml") as handle:
            handle.write(recipe.to_toml())
        _run_stages(recipe, run_dir, names[: names.index(stop) + 1 if stop else None], start, dataset)
    return run_dir


def _run_stages(recipe: Recipe, run_dir: Path, stages: list[str], start: str | None,
                dataset: Dataset | None = None) -> None:
    """Run ``stages`` in order, skipping finished ones unless at or after ``start``; Ctrl-C names the stage."""
    with interrupted_as(f"start-up, before any stage ran ({run_dir})"):
        dataset = dataset or resolve_dataset(recipe.dataset.name)
        registry = get_registry()
    previous, forcing = "", False
    for stage in stages:
        forcing = forcing or stage == start
        fingerprint = stage_fingerprint(recipe, stage, previous, dataset.fingerprint())
        previous = fingerprint
        folder = run_dir / stage
        if not forcing and read_marker(folder / DONE_MARKER).get("fingerprint") == fingerprint:
            console.print(f"[green]✓[/green] {stage}: already done ({folder}), skipped")
            _show_stored_table(folder)
            continue
        with interrupted_as(f"stage {stage!r} ({folder})"):
            components = [registry.get(STAGES[stage], name)(options)
                          for name, options in recipe.stages[stage].components]
            ctx = StageContext(recipe, stage, run_dir, components, fingerprint, dataset)
            _run_stage(ctx, forcing and stage == start)


def run_one_stage(recipe: Recipe, stage: str, run_dir: Path, inputs: dict[str, Path] | None = None,
                  dataset: Dataset | None = None) -> StageContext:
    """Run one stage of ``recipe`` into ``run_dir/<stage>`` the way :func:`run_recipe` runs it: components built
    from the registry, the stage's runner (:data:`STAGE_RUNNERS`), the started/done markers, the folder
    cleared when the fingerprint changed and kept (so the stage resumes) when it did not. The one-off stage
    commands (``inparsx generate``, ``filter``, ``train``, ``rerank``, ``retrieve``) run through here.

    The stage always runs (a finished folder with the same fingerprint is run again, reusing what the stage
    keeps, e.g. the reranker's scores). Its fingerprint covers ``inputs``' contents in place of the previous
    stage's fingerprint. Under ``accelerate launch``/torchrun only the main process (``RANK`` 0) locks,
    clears and marks the folder; the others wait for it, then run the stage too (data-parallel generation
    and training).

    Args:
        recipe: a validated recipe holding ``stage`` (e.g. :func:`inparsx.recipe.one_stage_recipe`).
        stage: the stage to run.
        run_dir: the run directory.
        inputs: earlier stages' outputs, see :class:`StageContext`.
        dataset: the dataset (default: ``recipe.dataset.name`` resolved; none when that name is empty).

    Raises:
        RunDirLocked: another process runs in ``run_dir``. Interrupted: Ctrl-C (partial results kept).
        InparsxError, DataError, StorageError: as the stage raises them.
    """
    inputs = dict(inputs or {})
    with interrupted_as(f"stage {stage!r} ({run_dir / stage})"):
        if dataset is None and recipe.dataset.name:
            dataset = resolve_dataset(recipe.dataset.name)
        previous = inputs_fingerprint(inputs)
        fingerprint = stage_fingerprint(recipe, stage, previous, dataset.fingerprint() if dataset else "")
        components = [get_registry().get(STAGES[stage], name)(options)
                      for name, options in recipe.stages[stage].components]
        ctx = StageContext(recipe, stage, Path(run_dir), components, fingerprint, dataset, inputs)
        if not is_main_process():
            wait_for_processes()  # the main process prepares the folder first
            _call_runner(ctx)
            return ctx
        with run_dir_lock(Path(run_dir)):
            _run_stage(ctx, False, wait_for_processes)
    return ctx


def inputs_fingerprint(inputs: dict[str, Path]) -> str:
    """sha256 (16 hex digits) of input files' contents (a folder: its files' names, sizes and modification
    times), by input name; ``""`` without inputs."""
    if not inputs:
        return ""
    digest = hashlib.sha256()
    for name, path in sorted(inputs.items()):
        digest.update(f"{name}={path}\n".encode())
        path = Path(path)
        if path.is_file():
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
        elif path.is_dir():
            for item in sorted(p for p in path.rglob("*") if p.is_file()):
                stat = item.stat()
                digest.update(f"{item.relative_to(path)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def is_main_process() -> bool:
    """``False`` in a process other than the first of ``accelerate launch``/torchrun (``RANK`` > 0)."""
    return int(os.environ.get("RANK", "0")) == 0


def wait_for_processes() -> None:
    """A barrier across the processes of ``accelerate launch``/torchrun (accelerate's ``PartialState``);
    nothing in a single process."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        import torch
        from accelerate import PartialState

        PartialState(cpu=not torch.cuda.is_available()).wait_for_everyone()


def _show_stored_table(folder: Path) -> None:
    """Print the results table a finished evaluate stage saved (``table.txt``), so a rerun still shows it."""
    table = folder / "table.txt"
    if table.is_file():
        out.print(table.read_text().rstrip(), markup=False, highlight=False)


def _run_stage(ctx: StageContext, fresh: bool, prepared: Callable[[], None] | None = None) -> None:
    """Clear (other fingerprint or ``fresh``) and mark the stage folder, call ``prepared()`` when given (the
    one-off runner's barrier), run the stage and write its done marker."""
    folder = ctx.dir
    started = read_marker(folder / STARTED_MARKER).get("fingerprint")
    if folder.exists() and (fresh or started != ctx.fingerprint):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE_MARKER).unlink(missing_ok=True)
    resuming = started == ctx.fingerprint and not fresh and _holds_work(folder)
    write_json(folder / STARTED_MARKER, {"fingerprint": ctx.fingerprint})
    console.rule(f"[bold]{ctx.stage}[/bold] ({', '.join(c.name for c in ctx.components)})"
                 + (" [yellow]resuming[/yellow]" if resuming else ""))
    quiet_library_bars()
    if prepared is not None:
        prepared()
    began = time.perf_counter()
    _call_runner(ctx)
    seconds = time.perf_counter() - began
    write_json(folder / DONE_MARKER, {"fingerprint": ctx.fingerprint, "seconds": round(seconds, 3),
                                      "use": [c.name for c in ctx.components]})
    console.print(f"[green]✓[/green] {ctx.stage}: done in {seconds:.1f} s")


def _holds_work(folder: Path) -> bool:
    """Whether an earlier attempt left anything in ``folder`` to resume from: a non-empty file other than the
    markers (so the header says "resuming" only when something is resumed, not after a failure at start-up)."""
    return any(path.is_file() and path.name not in (STARTED_MARKER, DONE_MARKER) and path.stat().st_size > 0
               for path in folder.rglob("*"))


def _call_runner(ctx: StageContext) -> None:
    """Import the stage's runner (:data:`STAGE_RUNNERS`) and call it with ``ctx``."""
    pkgutil.resolve_name(STAGE_RUNNERS[ctx.stage])(ctx)
