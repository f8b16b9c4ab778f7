"""Fake stages for the sweep tests: components that only carry options, and stage runners that record every call
and write small deterministic outputs (the evaluate runner writes ``metrics.json`` and ``per_query.json`` whose
scores follow from the run's options and seed), so a sweep of many runs takes a second.

``install()`` puts them in place in this process; ``python tests/sweep_fakes.py ARGS`` runs the ``inparsx`` CLI
with them (for tests that kill a real process). Environment: ``SWEEP_CALLS``, a file each stage call appends
``<stage> <run dir>`` to; ``SWEEP_BLOCK``, a substring of a run directory whose train stage writes
``<run dir>/train/blocked`` and then waits to be killed.
"""

from __future__ import annotations

import json
import os
import sys
import time
import types

from inparsx import pipeline
from inparsx.artifacts import Artifact
from inparsx.generate.base import Generator
from inparsx.plugins import Component, Options, Registry, get_plugin_manager, set_registry
from inparsx.retrieve.base import Retriever
from inparsx.stages import Input
from inparsx.testing.plugins import plugin_module
from inparsx.train.base import Trainer

QUERIES = [str(q) for q in range(1, 21)]


class Echo(Component):
    name = "echo"

    class Options(Options):
        value: int = 1


def _kind(base):
    return type(f"Echo{base.__name__}", (Echo, base), {"Options": Echo.Options})


def _record(stage: str, ctx) -> None:
    calls = os.environ.get("SWEEP_CALLS")
    if calls:
        with open(calls, "a") as handle:
            handle.write(f"{stage} {ctx.run_dir}\n")


def _value(ctx, stage: str) -> int:
    return ctx.recipe.stages[stage].components[0][1].value if stage in ctx.recipe.stages else 0


def retrieve(ctx) -> None:
    _record("retrieve", ctx)
    (ctx.dir / "run.txt").write_text(f"bm25 {_value(ctx, 'retrieve')} seed {ctx.seed}\n")


def generate(ctx) -> None:
    _record("generate", ctx)
    (ctx.dir / "queries.txt").write_text(f"queries {_value(ctx, 'generate')} seed {ctx.seed}\n")


def train(ctx) -> None:
    _record("train", ctx)
    block = os.environ.get("SWEEP_BLOCK")
    if block and block in str(ctx.run_dir):
        (ctx.dir / "blocked").write_text("waiting to be killed\n")
        while True:
            time.sleep(0.1)
    (ctx.dir / "model.txt").write_text(f"model {_value(ctx, 'generate')} {_value(ctx, 'train')} seed {ctx.seed}\n")


def scores(generate_value: int, train_value: int, seed: int) -> dict[str, dict[str, float]]:
    """Per-query nDCG@10 of the fake runs: ``retrieve`` fixed, ``rerank`` raised by the train value (and a
    little by the generate value), with a per-seed wobble."""
    first = {q: 0.3 + 0.02 * (int(q) % 7) for q in QUERIES}
    reranked = {
        q: first[q]
        + 0.05 * train_value
        + 0.01 * generate_value
        + 0.004 * seed * ((int(q) % 3) - 1)
        + 0.003 * train_value * ((int(q) * 7) % 5 - 2)
        for q in QUERIES
    }
    return {"retrieve": first, "rerank": reranked}


def evaluate(ctx) -> None:
    _record("evaluate", ctx)
    per_run = scores(_value(ctx, "generate"), _value(ctx, "train"), ctx.recipe.info.seed)
    per_query = {run: {"ndcg@10": values, "mrr@10": values} for run, values in per_run.items()}
    means = {run: {metric: sum(v.values()) / len(v) for metric, v in by.items()} for run, by in per_query.items()}
    (ctx.dir / "metrics.json").write_text(json.dumps(means))
    (ctx.dir / "per_query.json").write_text(json.dumps(per_query))
    (ctx.run_dir / "report.html").write_text("<html></html>\n")


RUNNERS = {"retrieve": retrieve, "generate": generate, "train": train, "evaluate": evaluate}

FAKE_RUN = Artifact("fake-run", "retrieve", "run.txt", "the fake BM25 run")
FAKE_QUERIES = Artifact("fake-queries", "generate", "queries.txt", "the fake queries")
FAKE_MODEL = Artifact("fake-model", "train", "model.txt", "the fake model")
READS = {
    "retrieve": (),
    "generate": (),
    "train": (Input((FAKE_QUERIES,), required=False),),
    "evaluate": tuple(Input((read,), required=False) for read in (FAKE_RUN, FAKE_QUERIES, FAKE_MODEL)),
}
"""What the fake runners read (their cache keys cover it, as the real stages' cover their declared reads; none is
required, since the fakes open no earlier stage's file)."""

_READS: dict = {}


def install() -> None:
    """The fake runners in :data:`inparsx.pipeline.STAGE_RUNNERS` and the echo components in the registry."""
    module = types.ModuleType("sweep_fake_runners")
    for stage, runner in RUNNERS.items():
        setattr(module, stage, runner)
        pipeline.STAGE_RUNNERS[stage] = f"sweep_fake_runners:{stage}"
        _READS[stage] = pipeline.STAGE_READS[stage]
        pipeline.STAGE_READS[stage] = READS[stage]
    sys.modules["sweep_fake_runners"] = module
    pm = get_plugin_manager()
    pm.register(
        plugin_module(
            "sweep-echo", retrievers=[_kind(Retriever)], generators=[_kind(Generator)], trainers=[_kind(Trainer)]
        ),
        name="sweep-echo",
    )
    set_registry(Registry(pm))


def uninstall() -> None:
    for stage in RUNNERS:
        pipeline.STAGE_RUNNERS[stage] = f"inparsx.{stage}.stage:run_stage"
        if stage in _READS:
            pipeline.STAGE_READS[stage] = _READS.pop(stage)
    set_registry(None)


RECIPE = """[recipe]
name = "fake"
seed = 1
[dataset]
name = "{data}"
[retrieve]
use = "echo"
[generate]
use = "echo"
[train]
use = "echo"
[evaluate]
use = "ranx"
metrics = ["ndcg@10", "mrr@10"]
"""


if __name__ == "__main__":
    install()
    from inparsx.cli.main import main

    sys.argv = ["inparsx", *sys.argv[1:]]
    main()
