"""Fake stages for the runner's tests: ``echo``, one component registered as a retriever, a generator and an
evaluator, whose stages each write ``out.txt`` (the ``value`` option) and append their name to ``CALLS``.

``fake_stages(monkeypatch, module_name, reads)`` puts the runners in place for retrieve, generate and evaluate
(``reads``: what the fake evaluate stage reads) and returns the registry context to enter."""

from __future__ import annotations

import sys
import types
from typing import Any

from inparsx import pipeline
from inparsx.evaluate.base import Evaluator
from inparsx.generate.base import Generator
from inparsx.plugins import Component, Options
from inparsx.retrieve.base import Retriever
from inparsx.testing.plugins import plugin_module, registered

CALLS: list[str] = []
"""The stages the fake runners ran, in order (cleared by :func:`fake_stages`)."""

RECIPE = """[recipe]
name = "p"
[dataset]
name = "{data}"
[retrieve]
use = "echo"
[generate]
use = "echo"
[evaluate]
use = "echo"
"""
"""A recipe of the three fake stages; ``{data}`` is the collection."""


class Echo(Component):
    name = "echo"

    class Options(Options):
        value: int = 1
        fail: bool = False


def echo_kind(base: type) -> type:
    """Echo as a component of ``base``'s kind (registration checks the base class)."""
    return type(f"Echo{base.__name__}", (Echo, base), {"Options": Echo.Options})


def _runner(stage: str):
    def run_stage(ctx):
        CALLS.append(stage)
        (ctx.dir / "out.txt").write_text(str(ctx.component.options.value))
        if ctx.component.options.fail:
            raise RuntimeError("boom")

    return run_stage


def fake_stages(monkeypatch: Any, module_name: str, reads: tuple) -> Any:
    """Route retrieve, generate and evaluate to the echo runners (module ``module_name``), make the evaluate
    stage read ``reads``, clear :data:`CALLS`; returns ``registered(...)`` with the echo plugin, to enter."""
    module = types.ModuleType(module_name)
    for stage in ("retrieve", "generate", "evaluate"):
        setattr(module, stage, _runner(stage))
        monkeypatch.setitem(pipeline.STAGE_RUNNERS, stage, f"{module_name}:{stage}")
    monkeypatch.setitem(pipeline.STAGE_READS, "evaluate", reads)
    monkeypatch.setitem(sys.modules, module_name, module)
    CALLS.clear()
    return registered(
        plugin_module(
            "echo",
            retrievers=[echo_kind(Retriever)],
            generators=[echo_kind(Generator)],
            evaluators=[echo_kind(Evaluator)],
        )
    )
