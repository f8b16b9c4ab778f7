"""Built-in components of the generate stage, registered through the `inparsx` entry points."""

import inparsx


@inparsx.hookimpl
def register_generators(register):
    from inparsx.generate.dspy_generator import DSPyGenerator
    from inparsx.generate.hf import HFGenerator
    from inparsx.generate.ict import ICTGenerator
    from inparsx.generate.qrels import QrelsGenerator
    from inparsx.generate.vllm_generator import VLLMGenerator

    register(HFGenerator)
    register(ICTGenerator)
    register(DSPyGenerator)
    register(QrelsGenerator)
    register(VLLMGenerator)


@inparsx.hookimpl
def register_commands(app):
    from inparsx.generate.cli import generate

    app.command("generate")(generate)
