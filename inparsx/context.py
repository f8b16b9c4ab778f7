"""What a component sees: the narrow context every component method gets, never the runner's whole state.

A :class:`ComponentContext` holds the dataset, the seed, the evaluated split's name, the component's own work
folder, the folders of the earlier stages it may read (through :meth:`ComponentContext.read`,
:meth:`ComponentContext.path_of`, :meth:`ComponentContext.resolve_model` and :meth:`ComponentContext.output`),
the run's name (for provenance), and a logger and progress hook. It holds no
recipe and no run directory, so a plugin is built and tested without either
(:func:`inparsx.testing.component_context`), and what it may read is declared here rather than found by
reaching into the runner.

The pipeline builds one per stage with :meth:`inparsx.pipeline.StageContext.component_context`; the tune stage
gives its tuner a view of the dataset without the evaluated split
(:class:`~inparsx.datasets.base.WithoutSplit`) and no earlier stage's output.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from inparsx.artifacts import MODEL as MODEL  # declared there, importable here too (an explicit re-export)
from inparsx.artifacts import Artifact
from inparsx.errors import InparsxError

if TYPE_CHECKING:
    from inparsx.datasets.base import Dataset
    from inparsx.plugins import Registry
    from inparsx.specs import ComponentSpec


@dataclass(frozen=True)
class ComponentContext:
    """The context a component method runs in (``Generator.generate``, ``Filter.apply``, ``Miner.mine``,
    ``Trainer.train``, ``Tuner.tune``...).

    Attributes:
        dataset: the collection: documents, and the queries and qrels of each split it shows. A tuner's is a
            :class:`~inparsx.datasets.base.WithoutSplit` view that raises on the evaluated split.
        dir: the component's work folder (the stage's folder in a run, which the runner creates). A component
            writes its own files (caches, scores, models) here or below; the stage writes its output files.
        seed: the run's seed (the recipe's ``[recipe] seed``); derive every random choice from it.
        eval_split: the name of the split evaluated at the end (few-shot examples drawn from it are reported
            and removed from evaluation; a tuner only learns what is hidden).
        outputs: the earlier stages' folders this component may read, by stage name (``{"tune": run/tune}``);
            empty for the tune stage and outside a run.
        run_name: the run's name (the recipe's ``[recipe] name``), recorded for provenance, e.g. in a model
            card; ``""`` outside a recipe run.
        stage: the stage the component runs in (named in messages); ``""`` outside a run.
        cache_key: the key of this computation (:func:`inparsx.cachekey.stage_cache_key`: the stage's options,
            the dataset, the seed, and the contents of the earlier stages' artifacts the stage reads). A
            component keys every cache it keeps under :attr:`dir` (resumable scores, a trained adapter) by it,
            with what else identifies the entry, so a model retrained at the same path never gets the previous
            one's scores; ``""`` outside a run.
        registry: the components the recipe was validated with, which :meth:`build` builds specs from;
            ``None`` (outside a run): the process-wide registry (:func:`inparsx.plugins.get_registry`).
    """

    dataset: Dataset
    dir: Path
    seed: int = 1
    eval_split: str = "test"
    outputs: Mapping[str, Path] = field(default_factory=dict)
    run_name: str = ""
    stage: str = ""
    cache_key: str = ""
    registry: Registry | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "dir", Path(self.dir))
        object.__setattr__(self, "outputs", MappingProxyType({k: Path(v) for k, v in self.outputs.items()}))

    def output(self, stage: str, filename: str) -> Path:
        """The path of an earlier stage's output file, e.g. ``output("retrieve", "run.trec")``.

        Raises:
            InparsxError: ``stage`` is not one this component may read (see :attr:`outputs`), or the file does
                not exist (the stage is missing from the recipe or has not run).
        """
        if stage not in self.outputs:
            raise InparsxError(self._unreadable(stage))
        path = self.outputs[stage] / filename
        if not path.exists():
            raise missing_output(self.stage, stage, path)
        return path

    def path_of(self, artifact: Artifact, stage: str | None = None) -> Path:
        """The path of an earlier stage's artifact (:mod:`inparsx.artifacts`), e.g. ``path_of(RUN, "retrieve")``
        or ``path_of(TRAINED_MODEL)``; ``stage`` only for an artifact any stage writes (a run).

        Raises:
            InparsxError: the stage is not one this component may read, or the file does not exist (the
                message names the file, what it holds and the stage that writes it).
        """
        owner, file = artifact.of(stage)
        if owner not in self.outputs:
            raise InparsxError(self._unreadable(owner))
        path = self.outputs[owner] / file
        if not path.exists():
            raise missing_output(self.stage, owner, path, artifact)
        return path

    def read(self, artifact: Artifact, stage: str | None = None) -> Any:
        """The contents of an earlier stage's artifact, through its reader (see :meth:`path_of`).

        Raises:
            InparsxError: as :meth:`path_of`, or the artifact has no reader (read it by path).
            DataError: the file is malformed (file and line named).
        """
        return artifact.read(self.path_of(artifact, stage))

    def resolve_model(self, value: str, filename: str = MODEL) -> str:
        """A model option: ``@stage`` -> that earlier stage's output (``filename`` in its folder, e.g.
        ``@train`` -> ``<run>/train/model``); a hub id or a local path is returned as is.

        Raises:
            InparsxError: ``@stage`` that this component may not read, or whose output does not exist; the
                message says to give a hub id or a local folder instead.
        """
        if not value.startswith("@"):
            return value
        if value[1:] not in self.outputs:
            raise InparsxError(f"{value}: {self._unreadable(value[1:])}; give a hub id or a local folder")
        return str(self.output(value[1:], filename))

    def build(self, spec: ComponentSpec) -> Any:
        """The component ``spec`` names (:mod:`inparsx.specs`), built with its options from :attr:`registry`
        (the one that validated the recipe), not loaded: a reranker still needs ``load``, a retriever
        ``index`` (:mod:`inparsx.scoring`, :mod:`inparsx.retrieval` do both).

        Raises:
            PluginError: ``spec.use`` is not registered there.
            pydantic.ValidationError: options its ``Options`` model rejects.
        """
        from inparsx.plugins import get_registry

        return spec.build(self.registry if self.registry is not None else get_registry())

    def _unreadable(self, stage: str) -> str:
        where = f"stage {self.stage!r}" if self.stage else "this component"
        readable = (
            f"it reads {', '.join(self.outputs)}" if self.outputs else "no earlier stage's output is available to it"
        )
        return f"{where} cannot read the output of stage {stage!r} ({readable})"

    def log(self, message: str) -> None:
        """Print a progress message for the user (on stderr, with the pipeline's console; no rich markup)."""
        from inparsx.progress import console

        console.print(message, markup=False, soft_wrap=True)

    def progress(
        self, description: str, total: int | None, unit: str = "it"
    ) -> AbstractContextManager[tuple[Any, Any]]:
        """A progress bar with items/s and ETA: ``with ctx.progress("score", n, "pairs") as (bar, task):
        bar.advance(task, k)`` (see :func:`inparsx.progress.progress_task`)."""
        from inparsx.progress import progress_task

        return progress_task(description, total, unit)


def missing_output(stage: str, needed: str, path: Path, artifact: Artifact | None = None) -> InparsxError:
    """The error for stage ``stage`` needing ``path``, an output of stage ``needed`` that does not exist
    (``artifact``: the declared artifact it is, whose name and description the message gives).

    ``stage 'train' needs artifact 'triples', <run>/triples/triples.jsonl, the output of stage 'triples'
    (training triples (query, positive, negatives)): add [triples] to the recipe or run it first``.
    """
    who = f"stage {stage!r}" if stage else "this component"
    name = f"artifact {artifact.name!r}, " if artifact is not None else ""
    what = f" ({artifact.description})" if artifact is not None else ""
    return InparsxError(
        f"{who} needs {name}{path}, the output of stage {needed!r}{what}: add [{needed}] to the recipe or run it first"
    )
