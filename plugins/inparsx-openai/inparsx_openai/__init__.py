"""inparsx-openai: synthetic queries from any OpenAI-compatible server (vLLM, llama.cpp, Ollama, hosted APIs).

Registered through the ``inparsx`` entry-point group as generator ``openai``.
"""

import inparsx

__version__ = "0.1.0"


@inparsx.hookimpl
def register_generators(register):
    from inparsx_openai.generator import OpenAIGenerator

    register(OpenAIGenerator)
