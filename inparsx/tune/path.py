"""``path``: search the instruction that heads the generator's prompt by the nDCG@10 it finally buys.

PATH (Prompts as Auto-optimized Training Hyperparameters; arXiv 2406.11706) scores a candidate instruction
by training a small reranker on the synthetic queries that instruction produces and measuring its nDCG@10
on about 10 gold-labelled queries. Here that metric is the whole inner pipeline run at small scale through
the stages' own code, as a sub-run (:func:`inparsx.subrun.run_stages`, the recipe runner without a report):
retrieve -> generate (the ``hf`` generator, or ``vllm`` with ``generator.use = "vllm"``, the candidate as its
``instruction``, heading the few-shot prompt) -> filter -> triples -> train -> rerank -> evaluate, on a dataset
view whose evaluated split is ``n_gold`` queries drawn from the train split (and removed from it); the tune
stage's own view already hides the outer evaluated split. The inner stage tables (``generator``, ``retrieve``,
``filter``, ``triples``, ``train``, ``rerank``) are typed options (:class:`~inparsx.subrun.InnerStage`),
validated with the recipe: a problem in one names the file, the line and the key (``tune.train.max_steps``).

Candidates are proposed COPRO-style (DSPy's ``BasicGenerateInstruction`` and
``GenerateInstructionGivenAttempts`` signatures) by an LM: ``breadth`` proposals from the best instruction so
far, then ``rounds - 1`` more rounds that see every scored attempt. With ``proposer_format = "dspy"`` the
signatures run through DSPy's adapters (structured fields, for an LM that follows them); with ``"plain"``
the same signature instructions and inputs go to the LM as one chat message and the first line of its reply
is the proposal, for a model too small to keep DSPy's field format (SmolLM2-135M answered every structured
request with unparsable text, so ``"dspy"`` proposed nothing). The ``seed_instructions`` (default: none,
i.e. the published prompt, and a generic one) are scored first. Every candidate's inner run lives in
``tune/candidates/<sha>/`` and its score in ``tune/scores.json``, the proposals of each round in
``tune/proposals.json``, so a killed search resumes where it stopped. A candidate whose inner run has no
usable data (a ``DataError``, e.g. queries for which BM25 finds no negative) scores 0, with the reason in
``tune/failures.json``; when every candidate fails the search stops with that error. The best instruction is written to
``tune/instruction.txt`` (``instruction = "@tune"`` in ``[generate]``) and every candidate with its score
to ``tune/path.json``.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator
from rich.markup import escape

from inparsx.artifacts import INSTRUCTION
from inparsx.errors import DataError, InparsxError
from inparsx.io import atomic_write, write_json
from inparsx.plugins import Options, registry_from
from inparsx.progress import console, out
from inparsx.subrun import InnerStage, StageOf, check_inner_stages, inner_stage, run_stages, sub_recipe
from inparsx.tune.base import Tuner

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.datasets.base import Dataset
    from inparsx.models import ModelRef

GOLD_SPLIT = "path-gold"
"""The inner runs' evaluated split: ``n_gold`` queries of the train split."""

DEFAULT_SEEDS = ["", "Write a search query that the document answers."]

PLAIN_REPLY = "Reply with the new instruction only, on one line."
"""Closes a ``proposer_format = "plain"`` request."""

LABEL = re.compile(r"^(?:(?:new|improved|proposed|better|revised)\s+)?instructions?(?:\s*#?\d+)?\s*:\s*", re.IGNORECASE)
"""A label a chat model may put before its proposal (``Improved instruction: ...``)."""


InnerGenerate = Annotated[InnerStage, StageOf("generate", default_use="hf", eval_split=GOLD_SPLIT)]
InnerRetrieve = Annotated[InnerStage, StageOf("retrieve", eval_split=GOLD_SPLIT)]
InnerFilter = Annotated[InnerStage, StageOf("filter", eval_split=GOLD_SPLIT)]
InnerTriples = Annotated[InnerStage, StageOf("triples", eval_split=GOLD_SPLIT)]
InnerTrain = Annotated[InnerStage, StageOf("train", eval_split=GOLD_SPLIT)]
InnerRerank = Annotated[InnerStage, StageOf("rerank", eval_split=GOLD_SPLIT)]
"""PATH's inner stage options: stage tables validated against the inner runs' evaluated split."""


class PathOptions(Options):
    """``[tune] use = "path"``.

    ``generator``: the inner runs' ``[generate]`` table (``model`` required; ``instruction`` is the candidate,
    ``num_docs`` the option below; ``use``: ``"hf"``, the default, or ``"vllm"``, whose engine then starts once
    for the whole search). ``num_docs``: documents the inner runs generate for. ``n_gold``: train-split queries
    the inner runs evaluate on (PATH: about 10); ``gold_split``: where they come from. ``metric``: the inner
    runs' measure (a ranx name) of their ``rerank`` run. Inner stage tables, as in a recipe and validated as
    one is (file, line and key in errors): ``retrieve``, ``filter`` (optional), ``triples``, ``train``
    (required), ``rerank`` (default: the reranker named like the trainer, on ``@train``, depth 100). Search:
    ``seed_instructions``, ``breadth`` proposals per round, ``rounds`` rounds (formerly ``depth``, still
    accepted with a warning); the proposer LM: ``proposer_model`` (default the generator's model),
    ``proposer_api_base``, ``proposer_temperature``, ``proposer_max_new_tokens``, ``proposer_format``
    (``dspy``: DSPy's adapters; ``plain``: one chat message, the first line of the reply).
    """

    generator: InnerGenerate
    num_docs: int = Field(100, ge=1)
    n_gold: int = Field(10, ge=1)
    gold_split: str = "train"
    metric: str = "ndcg@10"
    retrieve: InnerRetrieve = Field({"use": "bm25", "k": 100}, validate_default=True)
    filter: InnerFilter | None = None
    triples: InnerTriples = Field({"use": "bm25-negatives"}, validate_default=True)
    train: InnerTrain
    rerank: InnerRerank | None = Field(
        None, description="default: the reranker named like the trainer, on @train, depth 100"
    )
    seed_instructions: list[str] = Field(default_factory=lambda: list(DEFAULT_SEEDS), min_length=1)
    breadth: int = Field(2, ge=0)
    rounds: int = Field(1, ge=0)
    proposer_model: str | None = None
    proposer_api_base: str | None = None
    proposer_temperature: float = Field(1.0, ge=0)
    proposer_max_new_tokens: int = Field(128, ge=1)
    proposer_format: Literal["dspy", "plain"] = "dspy"

    @model_validator(mode="before")
    @classmethod
    def _given(cls, data: Any) -> Any:
        """Accept the old spelling ``depth`` (search rounds) as ``rounds``, with a one-line FutureWarning; an
        absent (or empty) ``rerank`` is the reranker named like the trainer, on ``@train``, depth 100."""
        if not isinstance(data, dict):
            return data
        if "depth" in data:
            if "rounds" in data:
                raise ValueError("rounds: give rounds only (depth is its old spelling)")
            warnings.warn(
                "[tune] path: depth is now spelled rounds (search rounds); rename it", FutureWarning, stacklevel=2
            )
            data = {("rounds" if key == "depth" else key): value for key, value in data.items()}
        train = data.get("train")
        if data.get("rerank") in (None, {}) and isinstance(train, (dict, InnerStage)):
            use = train.use if isinstance(train, InnerStage) else train.get("use", "cross-encoder")
            data = {**data, "rerank": {"use": use, "model": "@train", "depth": 100}}
        return data

    @field_validator("generator", mode="before")
    @classmethod
    def _candidate_keys(cls, value: Any) -> Any:
        if isinstance(value, dict) and ("instruction" in value or "num_docs" in value):
            raise ValueError("instruction and num_docs are set by the tuner (the candidate, num_docs)")
        return value

    @field_validator("filter", mode="before")
    @classmethod
    def _no_filter(cls, value: Any) -> Any:
        return None if value == {} else value  # the old default: no inner filter

    @model_validator(mode="after")
    def _check_inner(self, info: ValidationInfo) -> PathOptions:
        from inparsx.generate.prompted import DecodingOptions

        if not isinstance(self.generator.options, DecodingOptions):
            raise ValueError(f"generator: use = {self.generator.use!r} has no instruction to search; use hf or vllm")
        try:
            self.evaluate_stage(registry_from(info))
        except InparsxError as exc:
            raise ValueError(f"metric: {exc}") from None
        check_inner_stages(
            {
                "retrieve": self.retrieve,
                "generator": self.generator,
                "triples": self.triples,
                "train": self.train,
                **({"rerank": self.rerank} if self.rerank is not None else {}),
                **({"filter": self.filter} if self.filter is not None else {}),
            }
        )
        return self

    def evaluate_stage(self, registry: Any = None) -> InnerStage:
        """The inner runs' evaluate stage: ranx with :attr:`metric`.

        Raises:
            InparsxError: an invalid metric name.
        """
        return inner_stage("evaluate", {"use": "ranx", "metrics": [self.metric]}, registry, GOLD_SPLIT)

    def inner_stages(self, instruction: str) -> list[InnerStage]:
        """The stages of one candidate's inner run, in pipeline order: the generator with ``instruction`` and
        ``num_docs``, and the evaluate stage of :attr:`metric`."""
        generator = self.generator.with_options(instruction=instruction, num_docs=self.num_docs)
        stages = [self.retrieve, generator, self.filter, self.triples, self.train, self.rerank, self.evaluate_stage()]
        return [stage for stage in stages if stage is not None]


def inner_recipe(options: PathOptions, instruction: str, seed: int) -> dict[str, Any]:
    """The filled recipe of one candidate's inner run (what its ``recipe.toml`` holds), as TOML-ready data."""
    return candidate_recipe(options, instruction, seed).filled()


def candidate_recipe(options: PathOptions, instruction: str, seed: int) -> Any:
    """The :class:`~inparsx.recipe.Recipe` of one candidate's inner run (:func:`inparsx.subrun.sub_recipe`)."""
    return sub_recipe(options.inner_stages(instruction), **candidate_run(seed))


def candidate_run(seed: int) -> dict[str, Any]:
    """The inner run's names, evaluated split and seed (part of the inner stages' fingerprints)."""
    return {"eval_split": GOLD_SPLIT, "seed": seed, "name": "path-candidate", "dataset_name": "path-view"}


def first_line(reply: str) -> str:
    """The first non-empty line of ``reply``, stripped of markdown marks, quotes and a leading label."""
    for line in reply.splitlines():
        line = LABEL.sub("", line.replace("**", "").strip().strip("#>`- ").strip()).strip().strip("\"'`").strip()
        if line:
            return line
    return ""


def gold_view(dataset: Dataset, split: str, n_gold: int, seed: int, hidden: str) -> Dataset:
    """``dataset`` with ``n_gold`` queries of ``split`` (drawn with the seed) moved to :data:`GOLD_SPLIT`.

    Raises:
        InparsxError: ``split`` has fewer than ``n_gold`` judged queries.
    """
    from inparsx.datasets.base import WithoutSplit

    qrels, queries = dataset.qrels(split), dataset.queries(split)
    judged = sorted(qid for qid, docs in qrels.items() if qid in queries and any(r > 0 for r in docs.values()))
    if len(judged) < n_gold:
        raise InparsxError(f"path: split {split!r} has {len(judged)} judged queries, fewer than n_gold = {n_gold}")
    gold = random.Random(f"{seed}:path-gold").sample(judged, n_gold)
    return WithoutSplit(
        dataset,
        hidden,
        extra={GOLD_SPLIT: ({q: queries[q] for q in gold}, {q: qrels[q] for q in gold})},
        drop={split: set(gold)},
    )


class PathTuner(Tuner):
    """Searches the generator's instruction by the inner pipeline's nDCG@10 (see the module docstring)."""

    name: ClassVar[str] = "path"
    Options: ClassVar[type[PathOptions]] = PathOptions
    output: ClassVar[str] = INSTRUCTION

    def tune(self, ctx: ComponentContext) -> Path:
        """Score the seeds, then ``rounds`` rounds of ``breadth`` proposals; save the best instruction.

        Raises:
            InparsxError: the gold split is too small, or an inner run fails.
        """
        opts = self.options
        view = gold_view(ctx.dataset, opts.gold_split, opts.n_gold, ctx.seed, ctx.eval_split)
        scores = self.load_scores(ctx)
        failures = ctx.dir / "failures.json"
        self.failures: dict[str, str] = json.loads(failures.read_text()) if failures.is_file() else {}
        from inparsx.generate.vllm_engine import keep_engines

        with keep_engines():  # a vllm generator's engine serves every candidate's inner run
            for instruction in dict.fromkeys(opts.seed_instructions):
                self.score(instruction, view, ctx, scores)
            for round_ in range(opts.rounds):
                for instruction in self.proposals(round_, scores, ctx):
                    self.score(instruction, view, ctx, scores)
        if len(self.failures) == len(scores):
            raise InparsxError(
                f"path: the inner run failed for every candidate; the first: {next(iter(self.failures.values()))}"
            )
        best = max(scores, key=lambda text: scores[text])  # dicts keep insertion order: ties go to the first
        with atomic_write(ctx.dir / INSTRUCTION) as handle:
            handle.write(best + "\n")
        write_json(
            ctx.dir / "path.json",
            {
                "metric": opts.metric,
                "n_gold": opts.n_gold,
                "best": best,
                "candidates": [
                    {"instruction": t, "score": s, "failed": self.failures.get(t)} for t, s in scores.items()
                ],
            },
        )
        self.show(scores, best)
        return ctx.dir / INSTRUCTION

    def score(self, instruction: str, view: Dataset, ctx: ComponentContext, scores: dict[str, float]) -> float:
        """The inner run's metric for ``instruction``: its ``rerank`` run's :attr:`~PathOptions.metric` on the
        gold queries, from a sub-run in ``tune/candidates/<sha>/`` (cached in ``tune/scores.json``; an
        interrupted inner run resumes from its stage markers)."""
        if instruction in scores:
            ctx.log(f"path: cached {self.options.metric} {scores[instruction]:.4f}  {instruction!r}")
            return scores[instruction]
        console.rule(escape(f"path: candidate {len(scores) + 1}: {instruction!r}"))
        stages = self.options.inner_stages(instruction)
        folder = ctx.dir / "candidates" / hashlib.sha256(instruction.encode()).hexdigest()[:12]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / INSTRUCTION).write_text(instruction + "\n", encoding="utf-8")
        try:
            result = run_stages(stages, folder, view, **candidate_run(ctx.seed))
        except DataError as exc:  # e.g. queries so poor that BM25 finds no negative: no training data at all
            console.print(f"[yellow]path: the candidate's inner run failed, scored 0: {escape(str(exc))}[/yellow]")
            self.failures[instruction] = str(exc)
            value = 0.0
        else:
            value = result.metric("rerank", self.options.metric)
        scores[instruction] = value
        write_json(ctx.dir / "scores.json", scores)
        write_json(ctx.dir / "failures.json", self.failures)
        ctx.log(f"path: {self.options.metric} {value:.4f}  {instruction!r}")
        return value

    @staticmethod
    def load_scores(ctx: ComponentContext) -> dict[str, float]:
        """The scores of an earlier (interrupted) search, ``{instruction: score}``."""
        path = ctx.dir / "scores.json"
        return json.loads(path.read_text()) if path.is_file() else {}

    def proposals(self, round_: int, scores: dict[str, float], ctx: ComponentContext) -> list[str]:
        """The ``breadth`` new instructions of round ``round_``, proposed once and kept in ``proposals.json``."""
        path = ctx.dir / "proposals.json"
        rounds = json.loads(path.read_text()) if path.is_file() else {}
        if str(round_) not in rounds:
            rounds[str(round_)] = self.propose(round_, scores, ctx)
            write_json(path, rounds)
        return rounds[str(round_)]

    def propose(self, round_: int, scores: dict[str, float], ctx: ComponentContext) -> list[str]:
        """Ask the proposer LM for ``breadth`` instructions (COPRO's signatures): from the best one in round 0,
        from every scored attempt (worst to best, as COPRO shows them) afterwards. Empty, unparsable and
        repeated proposals are dropped."""
        import dspy
        from dspy.teleprompt.copro_optimizer import BasicGenerateInstruction, GenerateInstructionGivenAttempts

        ranked = sorted(scores.items(), key=lambda item: item[1])
        inputs: dict[str, Any]  # the signature's input field -> its value
        if round_ == 0:
            signature, inputs = BasicGenerateInstruction, {"basic_instruction": ranked[-1][0] or DEFAULT_SEEDS[1]}
        else:
            attempts = [
                f"Instruction #{i + 1}: {text}\nResulting score #{i + 1}: {value:.4f}"
                for i, (text, value) in enumerate(ranked)
            ]
            signature, inputs = GenerateInstructionGivenAttempts, {"attempted_instructions": attempts}
        ask = self.ask_plain if self.options.proposer_format == "plain" else self.ask_dspy
        proposed: list[str] = []
        lm = self.proposer(ctx)
        with dspy.context(lm=lm):
            for _ in range(self.options.breadth):
                text = ask(lm, signature, inputs)
                ctx.log(f"path: proposed {text!r}" if text else "path: a proposal could not be parsed, dropped")
                if text and text not in scores and text not in proposed:
                    proposed.append(text)
        console.print(f"path: round {round_ + 1}: {len(proposed)} new instructions proposed")
        return proposed

    @staticmethod
    def ask_dspy(lm: Any, signature: Any, inputs: dict[str, Any]) -> str:
        """One proposal through DSPy's adapters (``""`` when the reply cannot be parsed)."""
        import dspy
        from dspy.utils.exceptions import AdapterParseError

        try:
            return str(dspy.Predict(signature)(**inputs).proposed_instruction).strip()
        except AdapterParseError:
            return ""

    @staticmethod
    def ask_plain(lm: Any, signature: Any, inputs: dict[str, Any]) -> str:
        """One proposal from a plain chat message: the signature's instructions, its inputs, :data:`PLAIN_REPLY`;
        the first non-empty line of the reply, without quotes, markdown or an ``Instruction:`` label."""
        lines = [" ".join(signature.instructions.split()), ""]
        for name, value in inputs.items():
            title = signature.input_fields[name].json_schema_extra.get("prefix", name).rstrip(":")
            lines += [f"{title}:", *(value if isinstance(value, list) else [value]), ""]
        reply = lm("\n".join([*lines, PLAIN_REPLY]))[0]
        return first_line(reply if isinstance(reply, str) else reply.get("text", ""))

    def proposer(self, ctx: ComponentContext) -> Any:
        """The proposer ``dspy.LM`` (the ``dspy`` generator's LM construction)."""
        return self.proposer_generator().lm(ctx)

    def proposer_generator(self) -> Any:
        """The ``dspy`` generator whose LM proposes instructions (``proposer_model``, default the generator's)."""
        from inparsx.generate.dspy_generator import DSPyGenerator, DSPyOptions

        opts = self.options
        generator = opts.generator.table()
        return DSPyGenerator(
            DSPyOptions(
                model=opts.proposer_model or generator["model"],
                num_docs=1,
                api_base=opts.proposer_api_base,
                temperature=opts.proposer_temperature,
                max_new_tokens=opts.proposer_max_new_tokens,
                dtype=generator.get("dtype", "auto"),
            )
        )

    def models(self) -> list[ModelRef]:
        """The inner runs' generator (``generator.model``, ``num_docs`` documents a candidate), the proposer
        (none with ``proposer_api_base``) and every model of the inner stages (their own ``@train`` excepted:
        each inner run makes it), for the pre-flight check."""
        from dataclasses import replace

        from inparsx.preflight import recipe_models

        opts = self.options
        inner = candidate_recipe(opts, "check", 1)
        refs = [
            replace(ref, option=f"generator.{ref.option}") for stage, ref in recipe_models(inner, stages=["generate"])
        ]
        refs += [replace(ref, option="proposer_model", role="proposer") for ref in self.proposer_generator().models()]
        refs += [
            replace(ref, option=f"{stage}.{ref.option}", role=f"inner {ref.role}")
            for stage, ref in recipe_models(inner)
            if stage != "generate" and not ref.model.startswith("@")
        ]
        return refs

    def show(self, scores: dict[str, float], best: str) -> None:
        """Every candidate and its score as a table, the chosen one marked."""
        from rich.table import Table

        table = Table(title=f"path: {len(scores)} instructions by inner {self.options.metric}")
        table.add_column(self.options.metric, justify="right")
        table.add_column("instruction")
        for text, value in sorted(scores.items(), key=lambda item: -item[1]):
            table.add_row(
                f"{value:.4f}", escape(("* " if text == best else "  ") + (text or "(none: the published prompt)"))
            )
        out.print(table)
