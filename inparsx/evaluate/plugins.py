"""Built-in components of the evaluate stage, registered through the `inparsx` entry points."""

import inparsx
from inparsx.evaluate.ranx_evaluator import RanxEvaluator


@inparsx.hookimpl
def register_evaluators(register):
    register(RanxEvaluator)


@inparsx.hookimpl
def register_commands(app):
    from inparsx.evaluate.cli import eval_command

    app.command("eval")(eval_command)
