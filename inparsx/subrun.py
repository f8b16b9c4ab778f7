"""Sub-runs: a tuner's inner pipeline, declared as typed stage tables and run by the recipe runner itself.

A tuner that scores its candidates by running pipeline stages (PATH: generate -> triples -> train -> rerank ->
evaluate per candidate instruction, :mod:`inparsx.tune.path`) declares each inner stage as an option of type
:class:`InnerStage`, marked with the stage it is::

    class MyOptions(Options):
        train: Annotated[InnerStage, StageOf("train")]
        retrieve: Annotated[InnerStage, StageOf("retrieve")] = Field({"use": "bm25s", "k": 100},
                                                                      validate_default=True)

A recipe gives such an option as a table (``[tune] train = { use = "cross-encoder", base_model = "..." }`` or a
``[tune.train]`` sub-table), validated once, with the recipe, exactly as a ``[train]`` table is (its plugin,
its stage options, its ``seed``), against the registry that validates the recipe: a problem is one line
naming the file, the line and the key (``tune.train.max_steps``). The value is an :class:`InnerStage` (the
validated :class:`~inparsx.recipe.StageConfig`), which writes itself back as the filled table in the saved
recipe and in the tune stage's fingerprint.

:func:`run_stages` runs inner stages in a folder through :func:`inparsx.pipeline.run_recipe` (one folder per
stage, fingerprints, resumption: an interrupted candidate resumes where it stopped, a finished one is not run
again), without the pre-flight check and without ``report.html``, and returns the evaluate stage's metrics as
values (:class:`SubRunResult`), so a tuner never reads evaluate's files.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import GetCoreSchemaHandler, ValidationError, ValidationInfo
from pydantic_core import InitErrorDetails, PydanticCustomError, core_schema

from inparsx.artifacts import METRICS
from inparsx.errors import InparsxError
from inparsx.plugins import Options, Registry, eval_split_from, get_registry, registry_from
from inparsx.recipe import (
    KEYED_ERROR,
    STAGES,
    DatasetConfig,
    Recipe,
    RecipeInfo,
    StageConfig,
    check_stages,
    validate_stage,
)

if TYPE_CHECKING:
    from inparsx.datasets.base import Dataset


@dataclass(frozen=True)
class InnerStage(Mapping[str, Any]):
    """One validated inner stage: what a tuner's stage-table option becomes (see the module docstring). It
    reads as its filled table (:meth:`table`), ``stage["use"]``, ``stage["base_model"]``, for code that read
    the untyped tables before.

    Attributes:
        config: the stage, its components with their validated options, its own options and seed, as a
            recipe's stage table gives them.
    """

    config: StageConfig

    @property
    def stage(self) -> str:
        """The pipeline stage (``"train"``)."""
        return self.config.stage

    @property
    def use(self) -> str:
        """The (first) component's name (``"cross-encoder"``)."""
        return self.config.use[0]

    @property
    def options(self) -> Options:
        """The (first) component's validated options."""
        return self.config.components[0][1]

    def table(self) -> dict[str, Any]:
        """The stage table with every default written in (:meth:`~inparsx.recipe.StageConfig.filled`): how the
        option is saved in the filled recipe and hashed into the tuner stage's fingerprint."""
        return self.config.filled()

    def __getitem__(self, key: str) -> Any:
        return self.table()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.table())

    def __len__(self) -> int:
        return len(self.table())

    def with_options(self, registry: Registry | None = None, **updates: Any) -> InnerStage:
        """This stage with some options replaced (e.g. a candidate's ``instruction``), validated again.

        Raises:
            InparsxError: the new values are invalid (one line per problem, keys named ``<stage>.<key>``).
        """
        return inner_stage(self.stage, {**self.table(), **updates}, registry)


def inner_stage(
    stage: str, table: Mapping[str, Any], registry: Registry | None = None, eval_split: str | None = None
) -> InnerStage:
    """Validate a stage table built in code (e.g. the evaluate stage a tuner adds) as a recipe's is.

    Args:
        stage: a pipeline stage (:data:`inparsx.recipe.STAGES`).
        table: its table: ``use`` and options.
        registry: where ``use`` is looked up (default: the process-wide registry).
        eval_split: the split the inner run evaluates, for options that refuse it.

    Raises:
        InparsxError: an unknown stage, or an invalid table (one line per problem, ``<stage>.<key>: reason``).
    """
    if stage not in STAGES:
        raise InparsxError(f"inner stage {stage!r}: not a stage; expected one of: {', '.join(STAGES)}")
    config, problems = validate_stage(stage, dict(table), registry or get_registry(), eval_split)
    if config is None:
        raise InparsxError("\n".join(f"{key}: {reason}" for key, reason in problems))
    return InnerStage(config)


class StageOf:
    """The ``Annotated`` marker that makes an :class:`InnerStage` option validate a stage table:
    ``Annotated[InnerStage, StageOf("train")]``.

    Args:
        stage: the pipeline stage the table is.
        default_use: the component when the table names none (beyond the stage's own default, e.g. ``"hf"``
            for PATH's generator).
        eval_split: the split the inner runs evaluate, when options that name a split must refuse it (default:
            the recipe's ``[dataset] eval_split``).
    """

    def __init__(self, stage: str, default_use: str | None = None, eval_split: str | None = None):
        if stage not in STAGES:
            raise ValueError(f"StageOf({stage!r}): not a stage; expected one of: {', '.join(STAGES)}")
        self.stage, self.default_use, self.eval_split = stage, default_use, eval_split

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.with_info_plain_validator_function(
            self._validate,
            serialization=core_schema.plain_serializer_function_ser_schema(_table),
            metadata={"inparsx_stage": self.stage},
        )

    def __get_pydantic_json_schema__(self, schema: Any, handler: Any) -> dict[str, Any]:
        return {"type": "object", "description": f"a [{self.stage}] stage table"}

    def _validate(self, value: Any, info: ValidationInfo) -> InnerStage:
        """A table -> an :class:`InnerStage`; its problems become keyed errors at their location inside the
        option (:data:`~inparsx.recipe.KEYED_ERROR`), which the recipe loader reports with file and line."""
        if isinstance(value, InnerStage):
            if value.stage != self.stage:
                raise ValueError(f"a [{value.stage}] stage where a [{self.stage}] stage is expected")
            return value
        if not isinstance(value, dict):
            raise ValueError(f"must be a table (a [{self.stage}] stage: use = ... and its options)")
        table = {"use": self.default_use, **value} if self.default_use and "use" not in value else value
        split = self.eval_split or eval_split_from(info)
        config, problems = validate_stage(self.stage, table, registry_from(info), split)
        if config is None:
            raise keyed_errors(
                type(self).__name__,
                [(key.split(".", 1)[1] if "." in key else "", reason) for key, reason in problems],
                value,
            )
        return InnerStage(config)


def _table(value: InnerStage) -> dict[str, Any]:
    return value.table()


def keyed_errors(title: str, problems: list[tuple[str, str]], value: Any = None) -> ValidationError:
    """A pydantic ``ValidationError`` whose errors are worded for recipe keys: each ``(dotted key, reason)``
    sits at the key's location (``""``: where the validator runs), and the recipe loader reports it as it
    is, with file and line (:data:`~inparsx.recipe.KEYED_ERROR`). Raise it from a validator of an options
    model, e.g. after :func:`check_inner_stages`."""
    details = [
        InitErrorDetails(
            type=PydanticCustomError(KEYED_ERROR, "{reason}", {"reason": reason}),
            loc=tuple(key.split(".")) if key else (),
            input=value,
        )
        for key, reason in problems
    ]
    return ValidationError.from_exception_data(title, details)


def check_inner_stages(options: Mapping[str, InnerStage]) -> None:
    """The checks a recipe makes across its stages, made across a tuner's inner stages: ``@stage`` values
    that name an inner stage run earlier (e.g. ``rerank.model = "@train"``), and options of two stages that
    contradict each other (``train.num_negatives`` against ``triples.n_negatives``...). Call it from a
    ``model_validator(mode="after")`` of the tuner's options.

    Args:
        options: the tuner's option name -> its inner stage (``{"train": ..., "rerank": ...}``); errors name
            the option (``tune.<option>.<key>``).

    Raises:
        ValidationError: keyed errors (:func:`keyed_errors`) at the options' keys.
    """
    named = {inner.stage: name for name, inner in options.items()}
    problems = check_stages({inner.stage: inner.config for inner in options.values()})
    if problems:
        located = []
        for key, reason in problems:
            stage, _, rest = key.partition(".")
            located.append((".".join(part for part in (named.get(stage, stage), rest) if part), reason))
        raise keyed_errors("inner stages", located)


@dataclass(frozen=True)
class SubRunResult:
    """What :func:`run_stages` returns.

    Attributes:
        folder: the inner run's folder (one sub-folder per stage).
        metrics: the evaluate stage's mean metrics, ``{run name: {metric: value}}``; runs are named after
            their stage (``retrieve``, ``rerank``, and extra runs such as ``zeroshot``).
    """

    folder: Path
    metrics: dict[str, dict[str, float]]

    def metric(self, run: str, name: str) -> float:
        """The value of metric ``name`` (a ranx name, ``"ndcg@10"``) for run ``run`` (``"rerank"``).

        Raises:
            InparsxError: the inner run has no such run or metric (the available ones named).
        """
        if run not in self.metrics:
            raise InparsxError(f"sub-run {self.folder}: no run {run!r}; its runs: {', '.join(self.metrics)}")
        if name not in self.metrics[run]:
            raise InparsxError(
                f"sub-run {self.folder}: run {run!r} has no metric {name!r}; "
                f"its metrics: {', '.join(self.metrics[run])}"
            )
        return float(self.metrics[run][name])


def run_stages(
    stages: Iterable[InnerStage],
    folder: str | Path,
    dataset: Dataset,
    *,
    eval_split: str,
    seed: int,
    name: str = "subrun",
    dataset_name: str = "subrun-view",
    check: bool = False,
) -> SubRunResult:
    """Run inner stages in ``folder`` with the recipe runner (:func:`inparsx.pipeline.run_recipe`) and return
    their metrics.

    The stages run in pipeline order, as the stages of a recipe ``[recipe] name = name, seed = seed`` and
    ``[dataset] name = dataset_name, eval_split = eval_split`` would, on ``dataset``; an evaluate stage with
    its defaults is added when none is given. Finished stages are skipped and interrupted ones resume (the
    runner's markers in ``folder``); no ``report.html`` is written.

    Args:
        stages: the inner stages (at most one per stage), e.g. a tuner's :class:`InnerStage` options.
        folder: the inner run's folder (e.g. ``ctx.dir / "candidates" / <id>``).
        dataset: what the inner stages see, e.g. a view of the tuner's dataset whose ``eval_split`` holds
            gold queries of the train split (:func:`inparsx.tune.path.gold_view`).
        eval_split: the split the inner run evaluates.
        seed: the inner run's seed (a stage's own ``seed`` key still wins).
        name, dataset_name: the inner recipe's names (part of its stages' fingerprints).
        check: run the pre-flight check of the inner stages first (off: the outer run's check covers the
            tuner's models, :meth:`inparsx.plugins.Component.models`).

    Raises:
        InparsxError: two stages of the same kind, or as the stages raise it (``DataError`` for unusable
            data, e.g. no query for which BM25 finds a negative).
    """
    from inparsx.pipeline import run_recipe

    recipe = sub_recipe(stages, eval_split=eval_split, seed=seed, name=name, dataset_name=dataset_name)
    folder = Path(folder)
    run_recipe(recipe, folder, dataset=dataset, check=check, report=False)
    return SubRunResult(folder, METRICS.read(METRICS.in_folder(folder)))


def sub_recipe(
    stages: Iterable[InnerStage], *, eval_split: str, seed: int, name: str = "subrun", dataset_name: str = "subrun-view"
) -> Recipe:
    """The recipe :func:`run_stages` runs: ``stages`` in pipeline order, plus a default evaluate stage.

    Raises:
        InparsxError: two stages of the same kind.
    """
    given: dict[str, StageConfig] = {}
    for inner in stages:
        if inner.stage in given:
            raise InparsxError(f"sub-run: two [{inner.stage}] stages; give each stage once")
        given[inner.stage] = inner.config
    if "evaluate" not in given:
        given["evaluate"] = inner_stage("evaluate", {}).config
    ordered = {stage: given[stage] for stage in STAGES if stage in given}
    return Recipe(
        RecipeInfo(name=name, seed=seed),
        DatasetConfig(name=dataset_name, eval_split=eval_split),
        ordered,
        source=f"sub-run {name}",
    )
