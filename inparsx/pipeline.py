"""The pipeline runner: one folder per stage, cache keys, completion markers, skipping and resumption.

Each stage has a fingerprint (its options, the dataset, its seed: :func:`inparsx.cachekey.stage_fingerprint`)
and a cache key: the fingerprint plus the content fingerprints of the artifacts the stage reads
(:func:`inparsx.cachekey.stage_cache_key`, :data:`inparsx.cachekey.STAGE_READS`), computed just before the
runner decides to skip or run the stage, once the stages before it ran. A finished folder whose done marker
holds the key is skipped: a changed option re-runs its stage, and the stages after it re-run when what they read
changed (a ``[retrieve]`` option leaves ``tune`` alone; a hand-edited ``generate/queries.jsonl`` re-runs the
filter stage). ``--from`` re-runs a stage and every stage after it. A stage folder whose *started* marker
carries another fingerprint or key is cleared before the stage runs; one with the same is kept, so long stages
resume from their ``.partial`` files, and components key the caches they keep there by the key they are handed
(:attr:`inparsx.context.ComponentContext.cache_key`). Nothing finished is lost to an attempt that cannot start:
a folder is cleared only once the stage's inputs are known to load (the collection made available, the earlier
stages' files there, every model it names resolved). Before the first stage, :func:`run_recipe` runs the
pre-flight check (:mod:`inparsx.preflight`) of the stages that may run. With a shared stage store
(:mod:`inparsx.store`), a stage whose key another run has computed is copied from it, not run.
"""

from __future__ import annotations

import hashlib
import json
import pkgutil
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from rich.markup import escape

from inparsx.artifacts import (  # noqa: F401 - declared there, importable here too
    EXCLUDED,
    EXCLUDED_QIDS,
    NOTES,
    RUN,
    RUN_NOTES,
    RUNS_FOLDER,
    SYNTHETIC_QUERIES,
    TABLE,
    TRIPLES,
    Artifact,
    cache_home,
    stage_queries,
)
from inparsx.cachekey import (  # markers and read_marker: declared there, importable here too
    DONE_MARKER,
    HASHES,
    HELD_OUT_STAGES,
    OPTIONS_READ,
    STAGE_READS,  # noqa: F401 - declared there, importable (and patched by tests) here too
    STARTED_MARKER,
    content_fingerprint,
    read_marker,
    stage_cache_key,
    stage_fingerprint,
    stage_fingerprints,
    stage_inputs,
)
from inparsx.context import MODEL, ComponentContext, missing_output
from inparsx.datasets import Dataset, resolve_dataset
from inparsx.datasets.base import NoDataset, SampledSplit
from inparsx.datasets.holdout import Holdout
from inparsx.devices import is_main_process, wait_for_processes  # used here, and importable here as before
from inparsx.errors import InparsxError
from inparsx.interrupts import interrupted_as
from inparsx.io import atomic_write, write_json
from inparsx.lock import run_dir_lock
from inparsx.plugins import get_registry
from inparsx.preflight import check_recipe
from inparsx.progress import console, out, quiet_library_bars
from inparsx.recipe import STAGES, Recipe
from inparsx.stages import STAGE_SPECS, as_input
from inparsx.store import StageStore

if TYPE_CHECKING:
    from inparsx.estimate.options import EstimateStageOptions

STAGE_RUNNERS: dict[str, str] = {spec.name: spec.runner for spec in STAGE_SPECS}
"""Stage name -> ``module:function`` that runs it (:attr:`inparsx.stages.StageSpec.runner`), imported only when
the stage runs."""


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
    holdout: Holdout | None = None
    """The documents ``[estimate]`` holds out of training (:class:`inparsx.datasets.holdout.Holdout`), or
    ``None``. The stages of :data:`HELD_OUT_STAGES` get its ``training`` view as :attr:`dataset`; the generate
    stage also writes queries for its documents."""
    cache_key: str = ""
    """What the stage is skipped and stored by, and every cache kept in its folder is keyed by
    (:func:`inparsx.cachekey.stage_cache_key`): the fingerprint and the contents of what the stage reads.
    ``""``: the fingerprint alone (a context built by hand)."""
    hashes: dict[str, Any] = field(default_factory=dict)
    """The content hashes of the files the key covers (:data:`inparsx.cachekey.HASHES`), kept in the markers so
    that an unchanged file is not hashed again."""
    report: bool = True
    """Whether the evaluate stage writes the run's ``report.html`` (``False``: a tuner's inner run,
    :func:`inparsx.subrun.run_stages`, whose report nobody reads)."""

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

    def component_context(
        self, dataset: Dataset | None = None, outputs: dict[str, Path] | None = None
    ) -> ComponentContext:
        """The narrow context this stage's components get: the dataset (or ``dataset``, e.g. a view without
        the evaluated split), the seed, the evaluated split, this stage's folder as the work folder, the run's
        name, and the folders of every stage before this one in pipeline order (or ``outputs``), which
        ``resolve_model("@stage")`` and ``output(stage, file)`` read. A stage folder given in :attr:`inputs`
        (a one-off command's ``--run-dir``) replaces the one in the run directory."""
        order = list(STAGES)
        earlier = order[: order.index(self.stage)] if self.stage in order else []
        folders = {s: Path(self.inputs.get(s, self.run_dir / s)) for s in earlier}
        return ComponentContext(
            dataset if dataset is not None else self.dataset,
            self.dir,
            self.seed,
            self.eval_split,
            folders if outputs is None else outputs,
            run_name=self.recipe.name,
            stage=self.stage,
            cache_key=self.cache_key,
            registry=self.recipe.registry,
        )

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
    console.print(
        f"evaluating {sampled.describe()}"
        + (
            f"; eval_queries = {config.eval_queries} is more than the split has"
            if config.eval_queries > sampled.total
            else ""
        ),
        markup=False,
    )
    return sampled


def _stage_key(
    recipe: Recipe, stage: str, fingerprints: dict[str, str], run_dir: Path, memo: dict[str, Any] | None = None
) -> tuple[str, dict[str, Any]]:
    """The cache key of ``stage`` in ``run_dir`` as its inputs are now (:func:`inparsx.cachekey.stage_cache_key`
    over :func:`~inparsx.cachekey.stage_inputs`), and the hashes of the files read. The hash cache of the
    stage's markers is reused, with ``memo`` (the hashes computed earlier in this process, which it gains)."""
    inputs = {
        f"{owner}/{file}" if file else owner: run_dir / owner / file
        for owner, file in stage_inputs(recipe, stage, STAGES)
    }
    folder = run_dir / stage
    memo = memo if memo is not None else {}
    cache = {
        **read_marker(folder / STARTED_MARKER).get(HASHES, {}),
        **read_marker(folder / DONE_MARKER).get(HASHES, {}),
        **memo,
    }
    options = {other: fingerprints[other] for other in OPTIONS_READ.get(stage, ()) if other in fingerprints}
    key, hashes = stage_cache_key(fingerprints[stage], inputs, run_dir, cache, options)
    memo.update(hashes)
    return key, hashes


def _upstream(recipe: Recipe, stage: str) -> set[str]:
    """The stages whose outputs ``stage`` reads (:func:`~inparsx.cachekey.stage_inputs`)."""
    return {owner for owner, _ in stage_inputs(recipe, stage, STAGES)}


def run_recipe(
    recipe: Recipe,
    run_dir: Path | None = None,
    start: str | None = None,
    stop: str | None = None,
    dataset: Dataset | None = None,
    store: str | Path | None = None,
    check: bool = True,
    report: bool = True,
) -> Path:
    """Run a recipe's stages in pipeline order, skipping finished ones; returns the run directory.

    Args:
        recipe: a validated recipe.
        run_dir: output folder (default ``runs/<recipe name>``).
        start: re-run from this stage on, even where finished (``--from``).
        stop: stop after this stage (``--to``).
        dataset: the dataset to use instead of resolving ``recipe.dataset.name`` (e.g. the PATH tuner's
            view of the train split, whose inner runs evaluate on gold train queries).
        store: a shared stage store's folder (:mod:`inparsx.store`, ``--store``): a stage whose cache key
            is in it is copied from it instead of run, and a stage run here is added to it (the stages of
            :data:`UNSHARED_STAGES` excepted). A stage forced by ``start`` runs and replaces its entry.
        check: run the pre-flight check (:func:`inparsx.preflight.check_recipe`) of the stages about to run
            before the first of them, printing a line per model and the memory verdict (``False``: an inner
            run whose models the outer check covered).
        report: the evaluate stage writes ``report.html`` (``False``: a tuner's inner run, which reads its
            metrics as values, :mod:`inparsx.subrun`).

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
        raise InparsxError(
            f"--from {start} comes after --to {stop} in this recipe ({' -> '.join(names)}): "
            "nothing would run; give a --from stage at or before the --to stage"
        )
    with run_dir_lock(run_dir):
        with atomic_write(run_dir / "recipe.toml") as handle:
            handle.write(recipe.to_toml())
        _run_stages(
            recipe,
            run_dir,
            names[: names.index(stop) + 1 if stop else None],
            start,
            dataset,
            StageStore(store) if store is not None else None,
            check,
            report,
        )
    return run_dir


UNSHARED_STAGES = ("evaluate",)
"""Stages never taken from or added to a stage store: the evaluate stage writes the run's ``report.html``
beside its folder, and costs seconds."""


def _run_stages(
    recipe: Recipe,
    run_dir: Path,
    stages: list[str],
    start: str | None,
    dataset: Dataset | None = None,
    store: Any = None,
    check: bool = True,
    report: bool = True,
) -> None:
    """Run ``stages`` in order, skipping finished ones (their done marker holds the key computed just before)
    unless at or after ``start``, each taken from ``store`` (a :class:`~inparsx.store.StageStore`) when it holds
    its key; Ctrl-C names the stage. The pre-flight check of the stages that may run comes first (``check``);
    ``report``: the evaluate stage writes ``report.html``."""
    with interrupted_as(f"start-up, before any stage ran ({run_dir})"):
        dataset = recipe_dataset(recipe, dataset)
        registry = get_registry()
        holdout = _holdout(recipe, dataset)
        fingerprints = stage_fingerprints(recipe, dataset.fingerprint())
    memo: dict[str, Any] = {}  # the files' hashes computed in this process
    if check:
        with interrupted_as(f"the pre-flight check, before any stage ran ({run_dir})"):
            preflight(recipe, run_dir, _may_run(recipe, run_dir, stages, start, fingerprints, memo), dataset)
    forcing = False
    for stage in stages:
        forcing = forcing or stage == start
        folder, fingerprint = run_dir / stage, fingerprints[stage]
        with interrupted_as(f"stage {stage!r} ({folder})"):
            key, hashes = _stage_key(
                recipe, stage, fingerprints, run_dir, memo
            )  # its inputs as the stages before left them
        if not forcing and _finished(folder, fingerprint, key):
            console.print(f"[green]✓[/green] {stage}: already done ({folder}), skipped")
            _show_stored_table(folder)
            continue
        with interrupted_as(f"stage {stage!r} ({folder})"):
            held = holdout is not None and stage in HELD_OUT_STAGES
            components = [
                registry.get(STAGES[stage], name)(options) for name, options in recipe.stages[stage].components
            ]
            seen = holdout.training if held and holdout is not None else dataset
            ctx = StageContext(
                recipe,
                stage,
                run_dir,
                components,
                fingerprint,
                seen,
                holdout=holdout,
                cache_key=key,
                hashes=hashes,
                report=report,
            )
            if store is None or stage in UNSHARED_STAGES:
                _run_stage(ctx, forcing and stage == start)
                continue
            with store.claim(stage, key, run_dir):
                if not forcing and store.ready(stage, key):
                    store.take(stage, key, folder)
                    console.print(
                        f"[green]✓[/green] {stage}: taken from the stage store ({store.entry(stage, key)}), not run"
                    )
                    continue
                _run_stage(ctx, forcing and stage == start)
                store.publish(stage, key, folder)


def _finished(folder: Path, fingerprint: str, key: str) -> bool:
    """Whether ``folder``'s done marker says it holds the computation of ``key`` (and ``fingerprint``)."""
    marker = read_marker(folder / DONE_MARKER)
    return marker.get("key") == key and marker.get("fingerprint") == fingerprint


def _may_run(
    recipe: Recipe,
    run_dir: Path,
    stages: list[str],
    start: str | None,
    fingerprints: dict[str, str],
    memo: dict[str, Any],
) -> list[str]:
    """The stages the pre-flight check covers: those forced by ``start``, those whose folder does not hold their
    key now, and those reading an output of a stage that may run (its key is known only once that one ran)."""
    found: list[str] = []
    forcing = False
    for stage in stages:
        forcing = forcing or stage == start
        if (
            forcing
            or _upstream(recipe, stage) & set(found)
            or not _finished(
                run_dir / stage, fingerprints[stage], _stage_key(recipe, stage, fingerprints, run_dir, memo)[0]
            )
        ):
            found.append(stage)
    return found


def _holdout(recipe: Recipe, dataset: Dataset) -> Holdout | None:
    """The :class:`~inparsx.datasets.holdout.Holdout` of a recipe with ``[estimate]`` (its ``docs`` drawn with
    the estimate stage's seed, lazily), else ``None``."""
    if "estimate" not in recipe.stages:
        return None
    settings = cast("EstimateStageOptions", recipe.stages["estimate"].settings)  # the estimate stage's own options
    return Holdout(dataset, settings.docs, recipe.stage_seed("estimate"))


def preflight(recipe: Recipe, run_dir: Path, stages: list[str], dataset: Dataset | None = None) -> None:
    """The pre-flight check of ``stages`` (:func:`inparsx.preflight.check_recipe`): its lines printed, then
    :class:`~inparsx.preflight.PreflightError` when a model is missing, gated or too large."""
    report = check_recipe(recipe, run_dir, stages, dataset, say=_say)
    if report.lines:
        console.rule("[bold]pre-flight check[/bold]")
        for line in report.lines:
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    report.raise_for_problems()


def _say(line: str) -> None:
    console.print(f"[yellow]{escape(line)}[/yellow]", soft_wrap=True)


def run_one_stage(
    recipe: Recipe, stage: str, run_dir: Path, inputs: dict[str, Path] | None = None, dataset: Dataset | None = None
) -> StageContext:
    """Run one stage of ``recipe`` into ``run_dir/<stage>`` the way :func:`run_recipe` runs it: components built
    from the registry, the stage's runner (:data:`STAGE_RUNNERS`), the started/done markers, the folder
    cleared when the fingerprint or cache key changed and kept (so the stage resumes) when they did not. The
    one-off stage commands (``inparsx generate``, ``filter``, ``train``, ``rerank``, ``retrieve``) run through
    here.

    The stage always runs (a finished folder with the same key is run again, reusing what the stage keeps,
    e.g. the reranker's scores). Its cache key covers the contents of ``inputs`` (all of them: the command
    gives only what the stage reads). Under ``accelerate launch``/torchrun only the main process (``RANK`` 0) locks,
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
        fingerprint = stage_fingerprint(recipe, stage, "", dataset.fingerprint() if dataset else "")
        folder = Path(run_dir) / stage
        cache = read_marker(folder / DONE_MARKER).get(HASHES, {})
        key, hashes = stage_cache_key(fingerprint, inputs, Path(run_dir), cache)
        components = [
            get_registry().get(STAGES[stage], name)(options) for name, options in recipe.stages[stage].components
        ]
        ctx = StageContext(
            recipe, stage, Path(run_dir), components, fingerprint, dataset, inputs, cache_key=key, hashes=hashes
        )
        if not is_main_process():
            wait_for_processes()  # the main process prepares the folder first
            _call_runner(ctx)
            return ctx
        with run_dir_lock(Path(run_dir)):
            _run_stage(ctx, False, wait_for_processes)
    return ctx


def inputs_fingerprint(inputs: dict[str, Path]) -> str:
    """sha256 (16 hex digits) of input files' and folders' contents by input name
    (:func:`inparsx.cachekey.content_fingerprint`); ``""`` without inputs."""
    if not inputs:
        return ""
    contents = {name: content_fingerprint(Path(path), Path("."), {}, {}) for name, path in sorted(inputs.items())}
    return hashlib.sha256(json.dumps(contents, sort_keys=True).encode()).hexdigest()[:16]


def _show_stored_table(folder: Path) -> None:
    """Print the results table a finished evaluate stage saved (``table.txt``), so a rerun still shows it."""
    table = folder / TABLE.file
    if table.is_file():
        out.print(table.read_text().rstrip(), markup=False, highlight=False)


def inputs_ready(ctx: StageContext) -> None:
    """Check that what the stage reads will load, before its folder is touched: the collection (downloaded now
    if need be, :meth:`~inparsx.datasets.base.Dataset.prepare`), every earlier stage's artifact the stage
    requires in this run (:attr:`inparsx.stages.StageSpec.reads`, as :data:`STAGE_READS` holds them:
    :meth:`inparsx.stages.Input.needed`), and every model its components and its own options name
    (:func:`inparsx.preflight.check_stage_models`: resolved without loading; ``@stage`` outputs present).

    Raises:
        InparsxError: something the stage needs is missing, with what and where (a missing artifact: its name,
            its file and the stage that writes it); the folder is untouched.
    """
    from inparsx.preflight import check_stage_models
    from inparsx.preflight.check import stage_models

    ctx.dataset.prepare()
    for read in STAGE_READS.get(ctx.stage, ()):
        needed = as_input(read).needed(ctx)
        if needed is not None:
            ctx.path_of(*needed)
    check_stage_models(ctx.stage, stage_models(ctx.components, ctx.settings), ctx.resolve_model, _say)


def _run_stage(ctx: StageContext, fresh: bool, prepared: Callable[[], None] | None = None) -> None:
    """Check the stage's inputs (:func:`inputs_ready`), then clear (another fingerprint or cache key in the
    started marker, or ``fresh``) and mark the stage folder, call ``prepared()`` when given (the one-off
    runner's barrier), run the stage and write its done marker (the key and the hashes of what it read)."""
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
    write_json(folder / STARTED_MARKER, {"fingerprint": ctx.fingerprint, "key": ctx.cache_key, HASHES: ctx.hashes})
    console.rule(
        f"[bold]{ctx.stage}[/bold] ({', '.join(c.name for c in ctx.components)})"
        + (" [yellow]resuming[/yellow]" if resuming else "")
    )
    quiet_library_bars()
    if prepared is not None:
        prepared()
    began = time.perf_counter()
    _call_runner(ctx)
    seconds = time.perf_counter() - began
    write_json(
        folder / DONE_MARKER,
        {
            "fingerprint": ctx.fingerprint,
            "seconds": round(seconds, 3),
            "use": [c.name for c in ctx.components],
            "key": ctx.cache_key,
            HASHES: ctx.hashes,
        },
    )
    console.print(f"[green]✓[/green] {ctx.stage}: done in {seconds:.1f} s")


def _holds_work(folder: Path) -> bool:
    """Whether an earlier attempt left anything in ``folder`` to resume from: a non-empty file other than the
    markers (so the header says "resuming" only when something is resumed, not after a failure at start-up)."""
    return any(
        path.is_file() and path.name not in (STARTED_MARKER, DONE_MARKER) and path.stat().st_size > 0
        for path in folder.rglob("*")
    )


def _call_runner(ctx: StageContext) -> None:
    """Import the stage's runner (:data:`STAGE_RUNNERS`) and call it with ``ctx``."""
    pkgutil.resolve_name(STAGE_RUNNERS[ctx.stage])(ctx)
