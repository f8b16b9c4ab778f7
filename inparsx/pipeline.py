"""The pipeline runner: one folder per stage, fingerprints, completion markers, skipping and resumption.

A stage's fingerprint hashes its options, the dataset, its seed and the fingerprint of the stage before it
(:func:`stage_fingerprints`), so a changed option re-runs that stage and every stage after it. A stage's cache
key (:func:`stage_cache_key`) adds what the earlier stages' folders hold now, so a stage re-run by ``--from``
changes the keys of the stages after it. A stage folder whose *started* marker carries another fingerprint or
cache key is cleared before the stage runs; one with the same is kept, so long stages resume from their
``.partial`` files, and components key the caches they keep there by the cache key they are handed. Nothing finished is lost to an
attempt that cannot start: a folder is cleared only once the stage's inputs are known to load (the collection
made available, the earlier stages' files there, every model it names resolved). Before the first stage,
:func:`run_recipe` runs the pre-flight check (:mod:`inparsx.preflight`) of the stages about to run. With a
shared stage store (:mod:`inparsx.store`), a stage whose fingerprint another run has computed is copied from
it, not run.
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

from rich.markup import escape

from inparsx.artifacts import (EXCLUDED, NOTES, RUN, RUNS_FOLDER, SYNTHETIC_QUERIES, TABLE, TRIPLES, Artifact,
                               stage_queries)
from inparsx.artifacts import EXCLUDED_QIDS, RUN_NOTES, cache_home  # noqa: F401 - declared there, importable here too
from inparsx.context import MODEL, ComponentContext, missing_output
from inparsx.datasets import Dataset, resolve_dataset
from inparsx.datasets.base import NoDataset, SampledSplit
from inparsx.errors import InparsxError
from inparsx.interrupts import interrupted_as
from inparsx.io import atomic_write, write_json
from inparsx.lock import run_dir_lock
from inparsx.progress import console, out, quiet_library_bars
from inparsx.recipe import STAGES, Recipe
from inparsx.plugins import get_registry

STAGE_RUNNERS: dict[str, str] = {stage: f"inparsx.{stage}.stage:run_stage" for stage in STAGES}
"""Stage name -> ``module:function`` that runs it, imported only when the stage runs."""

DONE_MARKER = ".inparsx-done.json"
STARTED_MARKER = ".inparsx-started.json"

HELD_OUT_STAGES = ("tune", "generate", "triples", "train")
"""The stages whose dataset is the collection without ``[estimate]``'s held-out documents (the training
side): no held-out document is ever sampled for generation, mined as a negative or trained on."""

UNEVALUATED_STAGES = ("estimate",)
"""Stages whose runs rank other queries than the collection's (the estimate's synthetic ones): the evaluate
stage never scores them against the collection's qrels."""


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
    holdout: Any = None
    """The documents ``[estimate]`` holds out of training (:class:`inparsx.estimate.holdout.Holdout`), or
    ``None``. The stages of :data:`HELD_OUT_STAGES` get its ``training`` view as :attr:`dataset`; the generate
    stage also writes queries for its documents."""
    cache_key: str = ""
    """What every cache kept in the stage's folder is keyed by (:func:`stage_cache_key`): the fingerprint and
    what the earlier stages' folders hold now. ``""``: the fingerprint alone (a context built by hand)."""

    def __post_init__(self) -> None:
        self.cache_key = self.cache_key or self.fingerprint

    @property
    def dir(self) -> Path:
        """This stage's output folder."""
        return self.run_dir / self.stage

    @property
    def seed(self) -> int:
        """The stage's seed: its own ``seed`` key when pinned, else the recipe's."""
        return self.recipe.stage_seed(self.stage)

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
        return recipe_dataset(self.recipe) if self.recipe.dataset.name else NoDataset()

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
                                run_name=self.recipe.name, stage=self.stage, cache_key=self.cache_key,
                                registry=self.recipe.registry)

    def output(self, stage: str, filename: str) -> Path:
        """The path of an earlier stage's output file.

        Raises:
            InparsxError: the file does not exist (the stage is missing from the recipe or has not run).
        """
        path = self.inputs.get(f"{stage}/{filename}") or Path(self.inputs.get(stage, self.run_dir / stage)) / filename
        if not path.exists():
            raise missing_output(self.stage, stage, path)
        return path

    def path_of(self, artifact: Artifact, stage: str | None = None) -> Path:
        """The path of an earlier stage's artifact (:mod:`inparsx.artifacts`), as :meth:`output` finds it (a
        one-off command's :attr:`inputs` first); ``stage`` only for an artifact any stage writes (a run).

        Raises:
            InparsxError: the file does not exist (the message names it, what it holds and its stage).
        """
        owner, file = artifact.of(stage)
        path = self.inputs.get(f"{owner}/{file}") or Path(self.inputs.get(owner, self.run_dir / owner)) / file
        if not path.exists():
            raise missing_output(self.stage, owner, path, artifact)
        return path

    def read(self, artifact: Artifact, stage: str | None = None) -> Any:
        """The contents of an earlier stage's artifact through its reader (see :meth:`path_of`)."""
        return artifact.read(self.path_of(artifact, stage))

    def resolve_model(self, value: str, filename: str = MODEL) -> str:
        """A model option: ``@stage`` -> that stage's output folder; a hub id or local path is returned as is."""
        if value.startswith("@"):
            return str(self.output(value[1:], filename))
        return value

    def runs(self) -> dict[str, Path]:
        """Every run produced so far, named after its stage: ``<stage>/run.trec`` is ``<stage>``, and
        ``<stage>/runs/<name>.trec`` is ``<name>``. In pipeline order, a stage's extra runs sorted by name
        (so ``zeroshot`` comes before ``zeroshot-alone``); the :data:`UNEVALUATED_STAGES` left out."""
        found: dict[str, Path] = {}
        for stage in [s for s in STAGES if s not in UNEVALUATED_STAGES]:
            folder = self.run_dir / stage
            if RUN.in_folder(self.run_dir, stage).is_file():
                found[stage] = RUN.in_folder(self.run_dir, stage)
            for extra in sorted((folder / RUNS_FOLDER).glob("*.trec"), key=lambda path: path.stem):
                found[extra.stem] = extra
        return found

    def run_notes(self) -> dict[str, Any]:
        """The :data:`RUN_NOTES` of every stage, merged in pipeline order: ``{"runs": {...}, "pairs": [...]}``.

        Raises:
            DataError: a notes file that is not valid JSON or not UTF-8 (path named).
        """
        notes: dict[str, Any] = {"runs": {}, "pairs": []}
        for stage in [s for s in STAGES if s not in UNEVALUATED_STAGES]:
            path = NOTES.in_folder(self.run_dir, stage)
            if not path.is_file():
                continue
            found = NOTES.read(path)
            notes["runs"].update(found.get("runs", {}))
            notes["pairs"].extend(found.get("pairs", []))
        return notes

    def excluded_qids(self) -> set[str]:
        """Query ids that earlier stages used (e.g. as few-shot examples) and evaluation must drop."""
        excluded: set[str] = set()
        for stage in STAGES:
            path = EXCLUDED.in_folder(self.run_dir, stage)
            if path.is_file():
                excluded.update(EXCLUDED.read(path))
        return excluded


def recipe_dataset(recipe: Recipe, dataset: Dataset | None = None) -> Dataset:
    """The dataset the stages of ``recipe`` see: ``dataset`` (default: ``recipe.dataset.name`` resolved), and,
    with ``[dataset] eval_queries = N``, a :class:`~inparsx.datasets.base.SampledSplit` view whose evaluated
    split holds N queries drawn with ``eval_queries_seed`` (a message says how many of how many).

    Raises:
        InparsxError: the name resolves to no dataset.
    """
    config = recipe.dataset
    dataset = dataset if dataset is not None else resolve_dataset(config.name)
    if config.eval_queries is None:
        return dataset
    sampled = SampledSplit(dataset, config.eval_split, config.eval_queries, config.sample_seed)
    console.print(f"evaluating {sampled.describe()}"
                  + (f"; eval_queries = {config.eval_queries} is more than the split has"
                     if config.eval_queries > sampled.total else ""), markup=False)
    return sampled


def stage_fingerprint(recipe: Recipe, stage: str, previous: str, dataset_fingerprint: str) -> str:
    """sha256 (16 hex digits) of the stage's filled options, the dataset, the stage's seed and the previous
    fingerprint.

    The dataset part is its name, the evaluated split and the corpus fingerprint, plus ``eval_queries`` and its
    seed when a sample is evaluated (recipes without one keep the fingerprints they had). The seed is the
    stage's own (``[stage] seed``) when pinned, else the recipe's (:meth:`~inparsx.recipe.Recipe.stage_seed`):
    the pinned key is not part of the options, so pinning the recipe's own value keeps the fingerprint.
    """
    config = recipe.dataset
    sample = [config.eval_queries, config.sample_seed] if config.eval_queries is not None else []
    options = recipe.filled().get(stage)
    if isinstance(options, dict):
        options = {key: value for key, value in options.items() if key != "seed"}
    payload = json.dumps({"stage": stage, "options": options, "seed": recipe.stage_seed(stage),
                          "dataset": [config.name, config.eval_split, dataset_fingerprint, *sample],
                          "previous": previous}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def stage_fingerprints(recipe: Recipe, corpus: str, stages: list[str] | None = None) -> dict[str, str]:
    """The fingerprint of every stage of ``recipe`` (or of ``stages``, in pipeline order), as :func:`run_recipe`
    computes it: each one chains the previous one (:func:`stage_fingerprint`). The one place that says
    which computation a stage folder holds: the runner's completion markers, the shared stage store
    (:mod:`inparsx.store`) and ``inparsx sweep`` all read it.

    Args:
        recipe: a validated recipe.
        corpus: the collection's fingerprint (``Dataset.fingerprint()``).
        stages: the stages to cover (default: all of the recipe's).
    """
    found: dict[str, str] = {}
    previous = ""
    for stage in stages if stages is not None else list(recipe.stages):
        previous = found[stage] = stage_fingerprint(recipe, stage, previous, corpus + _holdout_tag(recipe, stage))
    return found


def _holdout_tag(recipe: Recipe, stage: str) -> str:
    """What ``[estimate]``'s held-out documents add to the dataset part of a training-side stage
    (:data:`HELD_OUT_STAGES`): their count, and their seed when it is not the stage's own; ``""`` otherwise.
    (Later stages follow through the previous fingerprint.)"""
    if "estimate" not in recipe.stages or stage not in HELD_OUT_STAGES:
        return ""
    seed, count = recipe.stage_seed("estimate"), recipe.stages["estimate"].settings.docs
    return f"+holdout{count}" + ("" if seed == recipe.stage_seed(stage) else f"s{seed}")


OUTPUT_STAMP = "output"
"""The key of a done marker holding :func:`output_stamp` of the finished folder."""


def output_stamp(folder: Path) -> str:
    """sha256 (16 hex digits) of the relative names, sizes and modification times (ns) of the files under
    ``folder``, its markers left out: it changes whenever a stage writes its outputs again (a retrained model
    at the same path), without hashing gigabytes of weights. Written into the done marker
    (:data:`OUTPUT_STAMP`), which a stage store copies along."""
    digest = hashlib.sha256()
    for item in sorted(p for p in folder.rglob("*") if p.is_file() and p.name not in (DONE_MARKER, STARTED_MARKER)):
        stat = item.stat()
        digest.update(f"{item.relative_to(folder)} {stat.st_size} {stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def stage_cache_key(fingerprint: str, run_dir: Path, earlier: list[str]) -> str:
    """The key a stage's component-level caches (resumable scores, trained adapters...) are written under:
    sha256 (16 hex digits) of the stage's ``fingerprint`` and the :func:`output_stamp` that each of the
    ``earlier`` stages' done markers in ``run_dir`` records.

    The fingerprint alone does not change when ``--from train`` retrains a model at the same path with the
    same options; this key does, so the rerank stage never serves the previous model's scores. It is stable
    while the earlier folders are untouched, so an interrupted stage resumes. A marker written before stamps
    existed counts as ``""``.
    """
    stamps = {stage: read_marker(run_dir / stage / DONE_MARKER).get(OUTPUT_STAMP, "") for stage in earlier}
    payload = json.dumps({"fingerprint": fingerprint, "earlier": stamps}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def read_marker(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_recipe(recipe: Recipe, run_dir: Path | None = None, start: str | None = None, stop: str | None = None,
               dataset: Dataset | None = None, store: str | Path | None = None, check: bool = True) -> Path:
    """Run a recipe's stages in pipeline order, skipping finished ones; returns the run directory.

    Args:
        recipe: a validated recipe.
        run_dir: output folder (default ``runs/<recipe name>``).
        start: re-run from this stage on, even where finished (``--from``).
        stop: stop after this stage (``--to``).
        dataset: the dataset to use instead of resolving ``recipe.dataset.name`` (e.g. the PATH tuner's
            view of the train split, whose inner runs evaluate on gold train queries).
        store: a shared stage store's folder (:mod:`inparsx.store`, ``--store``): a stage whose fingerprint
            is in it is copied from it instead of run, and a stage run here is added to it (the stages of
            :data:`UNSHARED_STAGES` excepted). A stage forced by ``start`` runs and replaces its entry.
        check: run the pre-flight check (:func:`inparsx.preflight.check_recipe`) of the stages about to run
            before the first of them, printing a line per model and the memory verdict (``False``: an inner
            run whose models the outer check covered).

    Only one process at a time may run in ``run_dir`` (see :mod:`inparsx.lock`).

    Raises:
        InparsxError: ``start``/``stop`` name a stage that is not in the recipe, ``start`` comes after
            ``stop``, or a stage fails on bad input.
        PreflightError: a model that is missing or gated, or too large for this machine (before any stage).
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
    from inparsx.store import StageStore

    with run_dir_lock(run_dir):
        with atomic_write(run_dir / "recipe.toml") as handle:
            handle.write(recipe.to_toml())
        _run_stages(recipe, run_dir, names[: names.index(stop) + 1 if stop else None], start, dataset,
                    StageStore(store) if store is not None else None, check)
    return run_dir


UNSHARED_STAGES = ("evaluate",)
"""Stages never taken from or added to a stage store: the evaluate stage writes the run's ``report.html``
beside its folder, and costs seconds."""


def _run_stages(recipe: Recipe, run_dir: Path, stages: list[str], start: str | None,
                dataset: Dataset | None = None, store: Any = None, check: bool = True) -> None:
    """Run ``stages`` in order, skipping finished ones unless at or after ``start``, each taken from ``store``
    (a :class:`~inparsx.store.StageStore`) when it holds it; Ctrl-C names the stage. The pre-flight check of
    the stages that will run comes first (``check``)."""
    names = list(recipe.stages)
    with interrupted_as(f"start-up, before any stage ran ({run_dir})"):
        dataset = recipe_dataset(recipe, dataset)
        registry = get_registry()
        holdout = _holdout(recipe, dataset)
        fingerprints = stage_fingerprints(recipe, dataset.fingerprint())
    plan, forcing = [], False
    for stage in stages:
        forcing = forcing or stage == start
        fingerprint = fingerprints[stage]
        done = not forcing and read_marker(run_dir / stage / DONE_MARKER).get("fingerprint") == fingerprint
        plan.append((stage, fingerprint, done, forcing))
    if check:
        with interrupted_as(f"the pre-flight check, before any stage ran ({run_dir})"):
            preflight(recipe, run_dir, [stage for stage, _, done, _ in plan if not done], dataset)
    for stage, fingerprint, done, forcing in plan:
        folder = run_dir / stage
        if done:
            console.print(f"[green]✓[/green] {stage}: already done ({folder}), skipped")
            _show_stored_table(folder)
            continue
        with interrupted_as(f"stage {stage!r} ({folder})"):
            held = holdout is not None and stage in HELD_OUT_STAGES
            components = [registry.get(STAGES[stage], name)(options)
                          for name, options in recipe.stages[stage].components]
            seen = holdout.training if held else dataset
            key = stage_cache_key(fingerprint, run_dir, names[: names.index(stage)])
            ctx = StageContext(recipe, stage, run_dir, components, fingerprint, seen, holdout=holdout, cache_key=key)
            if store is None or stage in UNSHARED_STAGES:
                _run_stage(ctx, forcing and stage == start)
                continue
            with store.claim(stage, fingerprint, run_dir):
                if not forcing and store.ready(stage, fingerprint):
                    store.take(stage, fingerprint, folder)
                    console.print(f"[green]✓[/green] {stage}: taken from the stage store "
                                  f"({store.entry(stage, fingerprint)}), not run")
                    continue
                _run_stage(ctx, forcing and stage == start)
                store.publish(stage, fingerprint, folder)


def _holdout(recipe: Recipe, dataset: Dataset) -> Any:
    """The :class:`~inparsx.estimate.holdout.Holdout` of a recipe with ``[estimate]`` (its ``docs`` drawn with
    the estimate stage's seed, lazily), else ``None``."""
    if "estimate" not in recipe.stages:
        return None
    from inparsx.estimate.holdout import Holdout

    return Holdout(dataset, recipe.stages["estimate"].settings.docs, recipe.stage_seed("estimate"))


def preflight(recipe: Recipe, run_dir: Path, stages: list[str], dataset: Dataset | None = None) -> None:
    """The pre-flight check of ``stages`` (:func:`inparsx.preflight.check_recipe`): its lines printed, then
    :class:`~inparsx.preflight.PreflightError` when a model is missing, gated or too large."""
    from inparsx.preflight import check_recipe

    report = check_recipe(recipe, run_dir, stages, dataset, say=_say)
    if report.lines:
        console.rule("[bold]pre-flight check[/bold]")
        for line in report.lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    report.raise_for_problems()


def _say(line: str) -> None:
    console.print(f"[yellow]{escape(line)}[/yellow]", soft_wrap=True)


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
        if recipe.dataset.name or dataset is not None:
            dataset = recipe_dataset(recipe, dataset)
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
    table = folder / TABLE.file
    if table.is_file():
        out.print(table.read_text().rstrip(), markup=False, highlight=False)


def inputs_ready(ctx: StageContext) -> None:
    """Check that what the stage reads will load, before its folder is touched: the collection (downloaded now
    if need be, :meth:`~inparsx.datasets.base.Dataset.prepare`), the earlier stages' files the stage reads
    (:data:`STAGE_INPUTS`), and every model its components and its own options name
    (:func:`inparsx.preflight.check_stage_models`: resolved without loading; ``@stage`` outputs present).

    Raises:
        InparsxError: something the stage needs is missing, with what and where; the folder is untouched.
    """
    from inparsx.preflight import check_stage_models
    from inparsx.preflight.check import stage_models

    ctx.dataset.prepare()
    for needed in STAGE_INPUTS.get(ctx.stage, ()):
        needed(ctx)
    check_stage_models(ctx.stage, stage_models(ctx.components, ctx.settings), ctx.resolve_model, _say)


STAGE_INPUTS: dict[str, tuple[Callable[[StageContext], Path | None], ...]] = {
    "filter": (lambda ctx: ctx.path_of(SYNTHETIC_QUERIES),),
    "triples": (lambda ctx: ctx.path_of(stage_queries(ctx.recipe.stages)),),
    "train": (lambda ctx: ctx.path_of(TRIPLES),),
    "rerank": (lambda ctx: ctx.path_of(RUN, ctx.settings.first_stage) if ctx.dataset.has_labels() else None,),
}
"""Stage -> checks of the earlier stages' files its runner reads (each raises, naming the file, when it is
missing; ``None`` when the stage reads nothing there, e.g. rerank on a collection without labels), made by
:func:`inputs_ready` before the folder is cleared."""


def _run_stage(ctx: StageContext, fresh: bool, prepared: Callable[[], None] | None = None) -> None:
    """Check the stage's inputs (:func:`inputs_ready`), then clear (another fingerprint or cache key in the
    started marker, or ``fresh``) and mark the stage folder, call ``prepared()`` when given (the one-off
    runner's barrier), run the stage and write its done marker with the :func:`output_stamp` of the folder."""
    folder = ctx.dir
    inputs_ready(ctx)
    marker = read_marker(folder / STARTED_MARKER)
    started = marker.get("fingerprint")
    same = started == ctx.fingerprint and marker.get("key", ctx.cache_key) == ctx.cache_key
    if folder.exists() and (fresh or not same):
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / DONE_MARKER).unlink(missing_ok=True)
    resuming = same and not fresh and _holds_work(folder)
    write_json(folder / STARTED_MARKER, {"fingerprint": ctx.fingerprint, "key": ctx.cache_key})
    console.rule(f"[bold]{ctx.stage}[/bold] ({', '.join(c.name for c in ctx.components)})"
                 + (" [yellow]resuming[/yellow]" if resuming else ""))
    quiet_library_bars()
    if prepared is not None:
        prepared()
    began = time.perf_counter()
    _call_runner(ctx)
    seconds = time.perf_counter() - began
    write_json(folder / DONE_MARKER, {"fingerprint": ctx.fingerprint, "seconds": round(seconds, 3),
                                      "use": [c.name for c in ctx.components], "key": ctx.cache_key,
                                      OUTPUT_STAMP: output_stamp(folder)})
    console.print(f"[green]✓[/green] {ctx.stage}: done in {seconds:.1f} s")


def _holds_work(folder: Path) -> bool:
    """Whether an earlier attempt left anything in ``folder`` to resume from: a non-empty file other than the
    markers (so the header says "resuming" only when something is resumed, not after a failure at start-up)."""
    return any(path.is_file() and path.name not in (STARTED_MARKER, DONE_MARKER) and path.stat().st_size > 0
               for path in folder.rglob("*"))


def _call_runner(ctx: StageContext) -> None:
    """Import the stage's runner (:data:`STAGE_RUNNERS`) and call it with ``ctx``."""
    pkgutil.resolve_name(STAGE_RUNNERS[ctx.stage])(ctx)
