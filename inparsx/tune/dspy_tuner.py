"""``dspy``: compile the ``dspy`` generator's program with a DSPy optimiser, against a label-free metric.

InPars+ ran ``dspy.ChainOfThought`` with no optimiser; here the program is compiled by an optimiser named in
the recipe: ``BootstrapFewShot`` (demonstrations the program writes and the metric accepts; Khattab et al.,
2023), ``MIPROv2`` (instructions and demonstrations searched with Optuna; Opsahl-Ong et al., 2024) or
``COPRO`` (coordinate ascent over instructions). The metric is the judge's score of the predicted query
against its source document (:mod:`inparsx.tune.judge`: a pretrained reranker, BM25 consistency, or both).
Examples are the judged (query, document) pairs of the train split (``split``): the document is the input,
the query a label that ``BootstrapFewShot`` may use as a labelled demo; the evaluated split is never seen.
The compiled program is saved as ``tune/program.json``, which ``[generate] use = "dspy"`` loads with
``program = "@tune"``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from inparsx.artifacts import PROGRAM
from inparsx.errors import InparsxError
from inparsx.generate.dspy_generator import DSPyGenerator, DSPyOptions, truncate_words
from inparsx.records import SyntheticQuery
from inparsx.tune.base import Tuner
from inparsx.tune.judge import Judge, JudgedOptions, judge_models

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.models import ModelRef

OPTIMIZERS = ("BootstrapFewShot", "MIPROv2", "COPRO")


class DSPyTunerOptions(DSPyOptions, JudgedOptions):
    """``[tune] use = "dspy"``: the ``dspy`` generator's options (``model``, ``api_base``, ``module``...;
    ``num_docs`` is the number of train-split examples drawn), ``judge`` (the metric: the ``[tune.judge]`` table,
    :class:`~inparsx.tune.judge.JudgeOptions`), and:
    ``optimizer`` (``BootstrapFewShot`` | ``MIPROv2`` | ``COPRO``), ``optimizer_options`` (keyword arguments
    of its constructor, e.g. ``{max_bootstrapped_demos = 4}``, ``{auto = "light"}``, ``{breadth = 4,
    depth = 2}``), ``compile_options`` (of its ``compile``), ``split`` (where examples come from),
    ``demo_threshold`` (the judge score a bootstrapped demonstration needs: DSPy keeps a trace as a demo when
    the metric is true, and any non-zero score is, so without it every trace was kept)."""

    optimizer: Literal["BootstrapFewShot", "MIPROv2", "COPRO"] = "BootstrapFewShot"
    demo_threshold: float | None = Field(
        None,
        description=(
            "the judge score a program's own trace needs to become a demonstration while the optimiser bootstraps "
            "(BootstrapFewShot, MIPROv2); None: 0 for judge.by = 'reranker' (a logit: P(relevant) >= 0.5), 0.5 for "
            "'consistency' (the source document ranked first or second by BM25) and 'mix'"
        ),
    )
    optimizer_options: dict[str, Any] = Field(default_factory=dict)
    compile_options: dict[str, Any] = Field(default_factory=dict)
    split: str = "train"
    num_docs: int = Field(50, ge=1)


class DSPyTuner(Tuner):
    """Compiles the document -> query program with a DSPy optimiser (see the module docstring)."""

    name: ClassVar[str] = "dspy"
    Options: ClassVar[type[DSPyTunerOptions]] = DSPyTunerOptions
    output: ClassVar[str] = PROGRAM

    def models(self) -> list[ModelRef]:
        """The program's language model (as the ``dspy`` generator loads it; none with ``api_base``) and the
        judge's reranker model."""
        opts = self.options
        generator = DSPyGenerator(DSPyOptions(**{k: getattr(opts, k) for k in DSPyOptions.model_fields}))
        return [*generator.models(), *judge_models(opts.judge)]

    def tune(self, ctx: ComponentContext) -> Path:
        """Compile and save ``tune/program.json``.

        Raises:
            InparsxError: ``split`` has no judged pairs, or is the evaluated split.
        """
        import dspy

        opts = self.options
        examples = train_examples(ctx, opts.split, opts.num_docs, opts.max_doc_words)
        generator = DSPyGenerator(DSPyOptions(**{k: getattr(opts, k) for k in DSPyOptions.model_fields}))
        judge = Judge(opts.judge, ctx)
        optimizer = getattr(dspy, opts.optimizer)(
            metric=judge_metric(judge, demo_threshold(opts)), **opts.optimizer_options
        )
        ctx.log(
            f"dspy: compiling a {opts.module} with {opts.optimizer} on {len(examples)} {opts.split} "
            f"examples, metric: the judge by {opts.judge.by}"
        )
        try:
            with dspy.context(lm=generator.lm(ctx)):
                compiled = optimizer.compile(generator.program(ctx), trainset=examples, **opts.compile_options)
        finally:
            judge.close()
        return save_program(compiled, ctx.dir / PROGRAM)


def train_examples(ctx: ComponentContext, split: str, count: int, max_words: int) -> list[Any]:
    """Up to ``count`` ``dspy.Example(document, query, doc_id)`` (inputs: ``document``) drawn with the seed
    from the judged pairs of ``split``.

    Raises:
        InparsxError: no judged pair in ``split``.
    """
    import dspy

    from inparsx.generate.fewshot import judged_pairs

    pairs = judged_pairs(ctx.dataset, split)
    if not pairs:
        raise InparsxError(f"dspy: split {split!r} has no judged (query, document) pair to compile on")
    pairs = random.Random(f"{ctx.seed}:dspy").sample(pairs, min(count, len(pairs)))
    return [
        dspy.Example(document=truncate_words(p.document, max_words), query=p.query, doc_id=p.doc_id).with_inputs(
            "document"
        )
        for p in pairs
    ]


DEMO_THRESHOLDS = {"reranker": 0.0, "consistency": 0.5, "mix": 0.5}
"""The default :attr:`DSPyTunerOptions.demo_threshold` of each judge."""

FIELD_MARKERS = ("[[ ##", "## ]]", "[## ", " ##]", "## completed ##")
"""Pieces of DSPy's adapter format (``[[ ## query ## ]]``, ``[[ ## completed ## ]]``): a predicted query that
holds one is the model echoing the format, not a query."""


def demo_threshold(options: DSPyTunerOptions) -> float:
    """``options.demo_threshold``, else the judge's default (:data:`DEMO_THRESHOLDS`)."""
    if options.demo_threshold is not None:
        return options.demo_threshold
    return DEMO_THRESHOLDS[options.judge.by]


def judge_metric(judge: Judge, threshold: float) -> Any:
    """A DSPy metric ``(example, prediction, trace=None)``: the judge's score of the predicted query against the
    example's source document (0 for an empty query, one on several lines, or one holding DSPy's field
    markers). While an optimiser bootstraps (``trace`` given) it answers whether the trace may become a
    demonstration: ``score >= threshold`` (DSPy's convention: a bool with a trace, a number without)."""

    def metric(example: Any, prediction: Any, trace: Any = None) -> float | bool:
        query = str(getattr(prediction, "query", "") or "").strip()
        if not query or "\n" in query or any(marker in query for marker in FIELD_MARKERS):
            return False if trace is not None else 0.0
        record = SyntheticQuery(query_id="metric", doc_id=example.doc_id, query=query)
        score = judge.score([record]).get("metric")
        if score is None:
            return False if trace is not None else 0.0
        return score >= threshold if trace is not None else score

    return metric


def save_program(program: Any, path: Path) -> Path:
    """``program.save`` (DSPy's JSON state) to a unique temporary name beside ``path``, renamed when complete."""
    import os
    import tempfile

    from inparsx.io import follow_umask

    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp.json", dir=path.parent)
    os.close(handle)
    try:
        program.save(name)
        follow_umask(name)  # mkstemp makes it 0600; every other output follows the umask
        os.replace(name, path)
    finally:
        Path(name).unlink(missing_ok=True)
    return path
