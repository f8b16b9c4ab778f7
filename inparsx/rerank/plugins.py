"""Built-in components of the rerank stage, registered through the `inparsx` entry points.

Nothing heavy is imported here: each reranker imports torch/transformers inside its methods.
"""

import inparsx
from inparsx.rerank.bi_encoder import BiEncoderReranker
from inparsx.rerank.cross_encoder import CrossEncoderReranker
from inparsx.rerank.monot5 import MonoT5Reranker


@inparsx.hookimpl
def register_rerankers(register):
    register(CrossEncoderReranker)
    register(MonoT5Reranker)
    register(BiEncoderReranker)


@inparsx.hookimpl
def register_commands(app):
    from inparsx.rerank.command import rerank

    app.command("rerank")(rerank)
