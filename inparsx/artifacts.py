"""What the stages hand each other, declared once: named artifacts, each with the stage that writes it, its file
name in that stage's folder, and a reader where one exists.

Stage and component code never names another stage's file by a string: it asks its context for the path of an
artifact (:meth:`inparsx.context.ComponentContext.path_of`, :meth:`inparsx.pipeline.StageContext.path_of`) or
for its contents (``read``), and a missing input is an error that names the artifact, the file and the stage
that writes it (PyTerrier's declared column vocabulary, checked by ``pt.validate``, is the model). The runner,
the report and the sweep read the same declarations. This module imports no stage, component or runner, so any
of them (and any third-party plugin) may import it; ``tests/test_artifacts.py`` fails when stage or component
code names another stage's file by a literal.

Also here, for the same reason (importable without the runner): :func:`cache_home`, and the file names that
every stage may write into its own folder (:data:`EXCLUDED_QIDS`, :data:`RUN_NOTES`, a run).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inparsx.errors import DataError, InparsxError

if TYPE_CHECKING:
    from inparsx.records import SyntheticQuery
    from inparsx.triples.base import Triple

MODEL = "model"
"""The folder an ``@stage`` model option resolves to by default (``train/model``, ``tune/model``)."""
PROGRAM = "program.json"
"""``tune/program.json``: a compiled DSPy program, what ``program = "@tune"`` resolves to."""
INSTRUCTION = "instruction.txt"
"""``tune/instruction.txt``: an optimised instruction, what ``instruction = "@tune"`` resolves to."""
EXCLUDED_QIDS = "excluded_qids.txt"
"""Query ids a stage used (e.g. as few-shot examples) that evaluation must drop, one per line; any stage may
write one into its folder."""
RUN_NOTES = "runs.json"
"""A stage's notes on the runs it wrote: ``{"runs": {name: description}, "pairs": [{"run", "against",
"question"}]}``; the evaluate stage prints the descriptions and tests each pair (e.g. trained vs zero-shot)."""
RUN_FILE = "run.trec"
"""A stage's final ranking, a TREC run named after the stage (its other runs go to ``runs/<name>.trec``)."""
RUNS_FOLDER = "runs"
"""The folder of a stage's other runs, ``<stage>/runs/<name>.trec``, each named after its file."""


def cache_home() -> Path:
    """Where indexes and embeddings are cached: ``$INPARSX_CACHE`` or ``~/.cache/inparsx``."""
    return Path(os.environ.get("INPARSX_CACHE") or Path.home() / ".cache" / "inparsx")


def read_synthetic_queries(path: str | Path) -> list[SyntheticQuery]:
    """Every record of a synthetic-queries JSON-lines file (:class:`~inparsx.records.SyntheticQuery` per
    line, as the generate and filter stages write them), in file order.

    Raises:
        DataError: an invalid line, a record without ``doc_id`` or ``query``, or a repeated ``query_id``
            (file and line named).
    """
    from inparsx.io import read_jsonl
    from inparsx.records import SyntheticQuery

    records: list[SyntheticQuery] = []
    first_line: dict[str, int] = {}
    for number, obj in read_jsonl(path):
        try:
            record = SyntheticQuery.from_dict(obj)
        except (KeyError, TypeError) as exc:
            raise DataError(path, f"not a synthetic query record ({exc} missing or invalid)", number) from None
        if record.query_id in first_line:
            raise DataError(path, f"query_id {record.query_id!r} repeats line {first_line[record.query_id]}", number)
        first_line[record.query_id] = number
        records.append(record)
    return records


def triple_to_dict(triple: Triple) -> dict[str, Any]:
    """A JSON-ready dict of a triple, one line of :data:`TRIPLES` (tuples become lists); the teacher scores
    (``pos_score``, ``neg_scores``) only when it has them."""
    record = dataclasses.asdict(triple)
    if triple.pos_score is None:  # no teacher: the file keeps the plain (query, positive, negatives) layout
        del record["pos_score"], record["neg_scores"]
    return record


def read_qids(path: str | Path) -> set[str]:
    """The query ids of an :data:`EXCLUDED_QIDS` file: one per line, blank lines skipped."""
    return {line.strip() for line in Path(path).read_text().splitlines() if line.strip()}


def read_json(path: str | Path) -> Any:
    """A JSON file's contents.

    Raises:
        InparsxError: the file is not valid JSON (path named).
    """
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InparsxError(f"{path}: not valid JSON ({exc})") from None


def read_trec(path: str | Path) -> Any:
    """A TREC run, ``{qid: {docid: score}}`` (:func:`inparsx.io.read_trec_run`)."""
    from inparsx.io import read_trec_run

    return read_trec_run(path)


@dataclass(frozen=True)
class Artifact:
    """An output a stage writes and later stages (or the report) read.

    Attributes:
        name: the artifact's name, unique among :data:`ARTIFACTS` (named in errors).
        stage: the stage that writes it; ``None`` for a file any stage may write into its own folder (a run,
            run notes, excluded query ids): a reader then says which stage's it wants.
        file: its file or folder name, relative to the stage's folder.
        description: what it holds, in a phrase (named in errors and docs).
        reader: ``reader(path) -> contents``, or ``None`` for an artifact read by path only (a model folder,
            triples handed to a trainer).
    """

    name: str
    stage: str | None
    file: str
    description: str
    reader: Callable[[Path], Any] | None = None

    def of(self, stage: str | None = None) -> tuple[str, str]:
        """``(stage, file)``: ``stage`` for an artifact any stage writes, else its own stage.

        Raises:
            InparsxError: no stage given for an artifact any stage writes, or another stage than its own.
        """
        if self.stage is None:
            if stage is None:
                raise InparsxError(f"artifact {self.name!r} ({self.file}) is written by any stage: say whose")
            return stage, self.file
        if stage is not None and stage != self.stage:
            raise InparsxError(f"artifact {self.name!r} is written by stage {self.stage!r}, not {stage!r}")
        return self.stage, self.file

    def in_folder(self, run_dir: str | Path, stage: str | None = None) -> Path:
        """Its path in the run directory ``run_dir``: ``run_dir/<stage>/<file>`` (see :meth:`of`)."""
        owner, file = self.of(stage)
        return Path(run_dir) / owner / file

    def read(self, path: str | Path) -> Any:
        """The contents of ``path`` through :attr:`reader`.

        Raises:
            InparsxError: the artifact has no reader (it is read by path).
        """
        if self.reader is None:
            raise InparsxError(f"artifact {self.name!r} ({self.file}) has no reader: use its path")
        return self.reader(Path(path))


RUN = Artifact("run", None, RUN_FILE, "a TREC run, the stage's final ranking", read_trec)
NOTES = Artifact("run-notes", None, RUN_NOTES, "descriptions of a stage's runs and the pairs to test", read_json)
EXCLUDED = Artifact("excluded-qids", None, EXCLUDED_QIDS, "query ids evaluation must drop", read_qids)
EXTRA_RUNS = Artifact("extra-runs", None, RUNS_FOLDER, "a stage's other runs, runs/<name>.trec")
SUMMARY = Artifact("summary", None, "summary.json", "a stage's summary of what it did (counts, seconds)", read_json)
CHECK = Artifact("collection-check", "retrieve", "check.json", "the check of the collection", read_json)
TUNED_MODEL = Artifact("tuned-model", "tune", MODEL, "a fine-tuned generator (save_pretrained)")
TUNED_PROGRAM = Artifact("tuned-program", "tune", PROGRAM, "a compiled DSPy program")
QUERY_EVAL = Artifact(
    "query-eval", "tune", "query_eval.json", "a tuned generator's judge means before and after tuning", read_json
)
TUNED_INSTRUCTION = Artifact(
    "tuned-instruction",
    "tune",
    INSTRUCTION,
    "an optimised instruction",
    lambda path: path.read_text(encoding="utf-8").strip(),
)
GENERATION_STATS = Artifact(
    "generation-stats",
    "generate",
    "queries.stats.json",
    "counts, rates and the device and precision of the generation",
    read_json,
)
TUNE_TRAINING = Artifact(
    "tune-training",
    "tune",
    "training.json",
    "the tuner's options, logged losses and the device and precision it trained with",
    read_json,
)
SYNTHETIC_QUERIES = Artifact(
    "synthetic-queries", "generate", "queries.jsonl", "the synthetic queries", read_synthetic_queries
)
HELDOUT_QUERIES = Artifact(
    "heldout-queries",
    "generate",
    "heldout.jsonl",
    "synthetic queries of the documents [estimate] holds out",
    read_synthetic_queries,
)
KEPT_QUERIES = Artifact(
    "kept-queries", "filter", "queries.jsonl", "the synthetic queries the filters kept", read_synthetic_queries
)
KEPT_HELDOUT = Artifact(
    "kept-heldout-queries",
    "filter",
    "heldout.jsonl",
    "the held-out documents' synthetic queries the filters kept",
    read_synthetic_queries,
)
FILTER_DECISIONS = Artifact(
    "filter-decisions",
    "filter",
    "decisions.jsonl",
    "one decision per synthetic query (kept, the filter that dropped it, why, scores)",
)
TRIPLES = Artifact("triples", "triples", "triples.jsonl", "training triples (query, positive, negatives)")
TRAINED_MODEL = Artifact("trained-model", "train", MODEL, "the trained reranker (save_pretrained)")
TRAINING_INFO = Artifact(
    "training-info",
    "train",
    f"{MODEL}/inparsx_training.json",
    "how the model was trained (options, steps, losses)",
    read_json,
)
METRICS = Artifact("metrics", "evaluate", "metrics.json", "mean metrics per run, {run: {metric: value}}", read_json)
PER_QUERY = Artifact("per-query", "evaluate", "per_query.json", "per-query metrics of every run", read_json)
COMPARISON = Artifact("comparison", "evaluate", "comparison.json", "paired tests between runs", read_json)
TABLE = Artifact(
    "table", "evaluate", "table.txt", "the printed results table", lambda path: path.read_text(encoding="utf-8")
)
ESTIMATE_METRICS = Artifact(
    "estimate-metrics", "estimate", "metrics.json", "the label-free estimate's metrics", read_json
)
ESTIMATE_COMPARISON = Artifact(
    "estimate-comparison", "estimate", "comparison.json", "the label-free estimate's paired tests", read_json
)
ESTIMATE_PER_QUERY = Artifact(
    "estimate-per-query", "estimate", "per_query.json", "per-query metrics of the estimate's runs", read_json
)
ESTIMATE_NOTES = Artifact("estimate-notes", "estimate", "notes.json", "descriptions of the estimate's runs", read_json)
ESTIMATE_TABLE = Artifact(
    "estimate-table",
    "estimate",
    "table.txt",
    "the estimate's printed table",
    lambda path: path.read_text(encoding="utf-8"),
)
ESTIMATE_QUERIES = Artifact(
    "estimate-queries", "estimate", "queries.jsonl", "the held-out synthetic queries, BEIR queries.jsonl layout"
)

ARTIFACTS: tuple[Artifact, ...] = tuple(value for value in list(globals().values()) if isinstance(value, Artifact))
"""Every declared artifact, in declaration order."""


def artifact(name: str) -> Artifact:
    """The declared artifact called ``name``.

    Raises:
        KeyError: no artifact has that name.
    """
    for item in ARTIFACTS:
        if item.name == name:
            return item
    raise KeyError(f"no artifact {name!r}; declared: {', '.join(a.name for a in ARTIFACTS)}")


def stage_queries(stages: Any, heldout: bool = False) -> Artifact:
    """The synthetic queries the stages after ``filter`` read: :data:`KEPT_QUERIES` when ``stages`` (the
    recipe's stage names) hold ``filter``, else :data:`SYNTHETIC_QUERIES`; their held-out counterparts with
    ``heldout``."""
    if "filter" in stages:
        return KEPT_HELDOUT if heldout else KEPT_QUERIES
    return HELDOUT_QUERIES if heldout else SYNTHETIC_QUERIES
