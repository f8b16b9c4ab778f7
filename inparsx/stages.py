"""One declaration per pipeline stage: :class:`StageSpec` (name, component kind and base class, runner, the
stage's own options, multi-use, default component, the artifacts it reads and writes), in pipeline order.

Every table the recipe loader, the plugin registry and the runner read is derived from :data:`STAGE_SPECS` and
:data:`COMPONENT_KINDS`: ``inparsx.recipe.STAGES``, ``MULTI_USE_STAGES``, ``DEFAULT_USE`` and ``STAGE_OPTIONS``,
``inparsx.plugins.KINDS`` and ``BASES``, ``inparsx.pipeline.STAGE_RUNNERS``, and ``inparsx.cachekey.STAGE_READS``
and ``OPTIONS_READ`` (what a stage's cache key covers, and which inputs ``inparsx.pipeline.inputs_ready`` requires
before a stage runs: :class:`Input`). The hooks of :mod:`inparsx.hookspecs` are one per
component kind (``tests/test_stages.py`` checks they match). This module imports no stage code: runners,
base classes and options models are ``"module:attr"`` strings, resolved on use.
"""

from __future__ import annotations

import pkgutil
from dataclasses import dataclass
from typing import Any, Protocol

from inparsx.artifacts import (
    CHECK,
    COMPARISON,
    ESTIMATE_COMPARISON,
    ESTIMATE_METRICS,
    ESTIMATE_NOTES,
    ESTIMATE_PER_QUERY,
    ESTIMATE_QUERIES,
    ESTIMATE_TABLE,
    EXCLUDED,
    EXTRA_RUNS,
    FILTER_DECISIONS,
    GENERATION_STATS,
    HELDOUT_QUERIES,
    KEPT_HELDOUT,
    KEPT_QUERIES,
    METRICS,
    NOTES,
    PER_QUERY,
    QUERY_EVAL,
    RUN,
    SUMMARY,
    SYNTHETIC_QUERIES,
    TABLE,
    TRAINED_MODEL,
    TRAINING_INFO,
    TRIPLES,
    TUNE_TRAINING,
    TUNED_INSTRUCTION,
    TUNED_MODEL,
    TUNED_PROGRAM,
    Artifact,
)
from inparsx.errors import InparsxError


class Predicate(Protocol):
    """A question about a stage's run, asked of its :class:`~inparsx.pipeline.StageContext` (:attr:`Input.required`)."""

    def __call__(self, ctx: Any, /) -> bool: ...


class WhoseStage(Protocol):
    """The stage whose artifact a stage reads, from its :class:`~inparsx.pipeline.StageContext` (:attr:`Input.of`)."""

    def __call__(self, ctx: Any, /) -> str: ...


@dataclass(frozen=True)
class Input:
    """One input of a stage: an earlier stage's artifact (or alternatives), and when the stage cannot run without
    it. The runner checks every required input before it touches the stage's folder
    (:func:`inparsx.pipeline.inputs_ready`; PyTerrier's ``pt.validate`` is the model: a missing input is an error
    that names the artifact, its file and the stage that writes it); the stage's cache key covers every input,
    required or not (:func:`inparsx.cachekey.stage_inputs`).

    Attributes:
        choices: the artifact, or alternatives in order of preference: the one read is the first whose stage is in
            the recipe (the filter's kept queries, else the generated ones), or, for the check, the last when none
            is. An artifact any stage writes (a run) stands for that of every earlier stage.
        required: ``True`` (the stage fails without it), ``False`` (read where present: the evaluate stage's runs
            and notes), or a predicate on the :class:`~inparsx.pipeline.StageContext` that says whether it is
            required in this run (the rerank stage reads a run only on a collection with labels).
        of: for an artifact any stage writes, ``of(ctx)`` is the stage whose one is required (the rerank stage's
            ``first_stage``).

    Raises:
        ValueError: a required artifact any stage writes without ``of`` (whose would be required is unsaid).
    """

    choices: tuple[Artifact, ...]
    required: bool | Predicate = True
    of: WhoseStage | None = None

    def __post_init__(self) -> None:
        if self.required is not False and self.of is None and any(a.stage is None for a in self.choices):
            names = ", ".join(a.name for a in self.choices if a.stage is None)
            raise ValueError(f"input {names}: written by any stage; say whose is required (of=...) or required=False")

    def chosen(self, stages: Any) -> Artifact | None:
        """The alternative read under a recipe whose stage names are ``stages``: the first written by any stage or
        by one of ``stages``; ``None`` when none is (nothing there to read)."""
        return next((a for a in self.choices if a.stage is None or a.stage in stages), None)

    def needed(self, ctx: Any) -> tuple[Artifact, str | None] | None:
        """``(artifact, stage)`` that the stage of ``ctx`` (a :class:`~inparsx.pipeline.StageContext`) cannot run
        without, as ``ctx.path_of`` takes them (``stage`` only for an artifact any stage writes); ``None`` when
        this input is not required there."""
        if not (self.required(ctx) if callable(self.required) else self.required):
            return None
        artifact = self.chosen(ctx.recipe.stages) or self.choices[-1]
        if artifact.stage is None:
            return (artifact, self.of(ctx)) if self.of is not None else None
        return artifact, None


Read = Artifact | tuple[Artifact, ...] | Input
"""One entry of what a stage reads (:attr:`StageSpec.reads`): an :class:`Input`, or its short forms: an artifact
(a required input; one any stage writes, such as a run, is that of every earlier stage, none required), or a
tuple of alternatives (required; see :attr:`Input.choices`). :func:`as_input` reads each as an :class:`Input`."""


def as_input(read: Read) -> Input:
    """``read`` as an :class:`Input` (see :data:`Read`)."""
    if isinstance(read, Input):
        return read
    choices = read if isinstance(read, tuple) else (read,)
    return Input(choices, required=all(a.stage is not None for a in choices))


def labelled(ctx: Any) -> bool:
    """Whether the run's collection has relevance labels (the rerank stage reranks a run only then)."""
    return bool(ctx.dataset.has_labels())


def holding_out(ctx: Any) -> bool:
    """Whether ``[estimate]`` holds documents out of training (the filter stage then filters their queries too)."""
    return ctx.holdout is not None


def first_stage(ctx: Any) -> str:
    """The stage whose run the rerank stage reranks (``[rerank] first_stage``)."""
    return str(ctx.settings.first_stage)


@dataclass(frozen=True)
class ComponentKind:
    """A kind of component plugins register (``retrievers``, ``generators``...).

    Attributes:
        name: the kind's name, as ``inparsx plugins`` lists it.
        hook: the pluggy hook that registers it (:mod:`inparsx.hookspecs`).
        base: ``"module:class"`` of the base class (the contract) every component of the kind extends.
    """

    name: str
    hook: str
    base: str

    def base_class(self) -> type:
        """The base class, imported on first use (base modules import nothing heavy)."""
        return pkgutil.resolve_name(self.base)


DATASETS = ComponentKind("datasets", "register_datasets", "inparsx.datasets.base:DatasetLoader")
RETRIEVERS = ComponentKind("retrievers", "register_retrievers", "inparsx.retrieve.base:Retriever")
TUNERS = ComponentKind("tuners", "register_tuners", "inparsx.tune.base:Tuner")
GENERATORS = ComponentKind("generators", "register_generators", "inparsx.generate.base:Generator")
FILTERS = ComponentKind("filters", "register_filters", "inparsx.filter.base:Filter")
MINERS = ComponentKind("miners", "register_miners", "inparsx.triples.base:Miner")
TRAINERS = ComponentKind("trainers", "register_trainers", "inparsx.train.base:Trainer")
RERANKERS = ComponentKind("rerankers", "register_rerankers", "inparsx.rerank.base:Reranker")
EVALUATORS = ComponentKind("evaluators", "register_evaluators", "inparsx.evaluate.base:Evaluator")

COMPONENT_KINDS: tuple[ComponentKind, ...] = (
    DATASETS,
    RETRIEVERS,
    TUNERS,
    GENERATORS,
    FILTERS,
    MINERS,
    TRAINERS,
    RERANKERS,
    EVALUATORS,
)
"""Every component kind, datasets (which no stage runs) included."""


@dataclass(frozen=True)
class StageSpec:
    """Everything that defines a pipeline stage.

    Attributes:
        name: the stage's name, its recipe table and its folder in a run directory.
        kind: the kind of component that implements it (``estimate``'s is the retriever of its held-out
            synthetic queries).
        runner: ``"module:function"`` that runs it with a :class:`~inparsx.pipeline.StageContext`.
        options: ``"module:class"`` of the options the stage itself reads (not its component, e.g.
            ``[rerank]``'s ``depth``), or ``None``. A key both this model and a component of the stage's kind
            declare is an error when the component registers (:func:`shared_option_keys`).
        multi_use: whether ``use`` takes a list (the filters, which run in order).
        default_use: the component used when the table gives no ``use``, or ``None`` (then ``use`` is required).
        reads: the earlier stages' artifacts it reads, each an :class:`Input` or its short form (:data:`Read`),
            with whether the stage needs it (checked before its folder is touched); a model or program an option
            names with ``@stage`` is read too. The stage's cache key covers their contents
            (:mod:`inparsx.cachekey`).
        writes: the artifacts it writes into its folder.
        options_read: the other stages whose options it reads (their fingerprints enter its key).
    """

    name: str
    kind: ComponentKind
    runner: str
    options: str | None = None
    multi_use: bool = False
    default_use: str | None = None
    reads: tuple[Read, ...] = ()
    writes: tuple[Artifact, ...] = ()
    options_read: tuple[str, ...] = ()

    @property
    def base(self) -> str:
        """``"module:class"`` of the base class its components extend."""
        return self.kind.base

    def options_model(self) -> Any:
        """The stage's own options model (a :class:`~inparsx.plugins.StageOptions`), or ``None``."""
        return pkgutil.resolve_name(self.options) if self.options else None

    def run(self, ctx: Any) -> None:
        """Import the runner and call it with ``ctx``."""
        pkgutil.resolve_name(self.runner)(ctx)


def _runner(stage: str) -> str:
    return f"inparsx.{stage}.stage:run_stage"


STAGE_SPECS: tuple[StageSpec, ...] = (
    StageSpec("retrieve", RETRIEVERS, _runner("retrieve"), writes=(RUN, CHECK)),
    StageSpec(
        "tune",
        TUNERS,
        _runner("tune"),
        writes=(TUNED_MODEL, TUNED_PROGRAM, TUNED_INSTRUCTION, QUERY_EVAL, TUNE_TRAINING, EXCLUDED),
    ),
    StageSpec(
        "generate",
        GENERATORS,
        _runner("generate"),
        writes=(SYNTHETIC_QUERIES, HELDOUT_QUERIES, GENERATION_STATS, EXCLUDED),
    ),
    StageSpec(
        "filter",
        FILTERS,
        _runner("filter"),
        multi_use=True,
        reads=(SYNTHETIC_QUERIES, Input((HELDOUT_QUERIES,), required=holding_out)),
        writes=(KEPT_QUERIES, KEPT_HELDOUT, FILTER_DECISIONS, SUMMARY),
    ),
    StageSpec("triples", MINERS, _runner("triples"), reads=((KEPT_QUERIES, SYNTHETIC_QUERIES),), writes=(TRIPLES,)),
    StageSpec("train", TRAINERS, _runner("train"), reads=(TRIPLES,), writes=(TRAINED_MODEL, TRAINING_INFO)),
    StageSpec(
        "rerank",
        RERANKERS,
        _runner("rerank"),
        options="inparsx.rerank.options:RerankStageOptions",
        reads=(Input((RUN,), required=labelled, of=first_stage),),
        writes=(RUN, EXTRA_RUNS, NOTES, SUMMARY),
    ),
    StageSpec(
        "estimate",
        RETRIEVERS,
        _runner("estimate"),
        options="inparsx.estimate.options:EstimateStageOptions",
        default_use="bm25",
        reads=((KEPT_HELDOUT, HELDOUT_QUERIES),),
        options_read=("rerank", "evaluate"),
        writes=(
            ESTIMATE_QUERIES,
            ESTIMATE_METRICS,
            ESTIMATE_COMPARISON,
            ESTIMATE_PER_QUERY,
            ESTIMATE_NOTES,
            ESTIMATE_TABLE,
            SUMMARY,
        ),
    ),
    StageSpec(
        "evaluate",
        EVALUATORS,
        _runner("evaluate"),
        default_use="ranx",
        reads=tuple(Input((read,), required=False) for read in (RUN, EXTRA_RUNS, NOTES, EXCLUDED, SUMMARY)),
        writes=(METRICS, PER_QUERY, COMPARISON, TABLE),
    ),
)
"""Every stage, in the pipeline's canonical order."""

SPECS: dict[str, StageSpec] = {spec.name: spec for spec in STAGE_SPECS}
"""Stage name -> its spec."""


def stage_spec(name: str) -> StageSpec:
    """The spec of stage ``name``.

    Raises:
        InparsxError: no such stage (the message lists them).
    """
    try:
        return SPECS[name]
    except KeyError:
        raise InparsxError(f"no stage {name!r}; the stages: {', '.join(SPECS)}") from None


def shared_option_keys(kind: str, options: Any) -> list[tuple[str, str]]:
    """``(stage, key)`` for every key of the options model ``options`` (a component of ``kind``) that the own
    options of a stage of that kind declare too: a recipe key such a stage could not route to one of them."""
    found: list[tuple[str, str]] = []
    for spec in STAGE_SPECS:
        model = spec.options_model() if spec.kind.name == kind else None
        if model is not None:
            found.extend((spec.name, key) for key in options.model_fields if key in model.model_fields)
    return found
