"""Built-in components of the filter stage, registered through the `inparsx` entry points.

Nothing heavy is imported here: the model-based filters import torch/transformers inside their methods.
"""

import inparsx
from inparsx.filter.consistency import ConsistencyFilter
from inparsx.filter.reranker_filter import RerankerFilter
from inparsx.filter.rules import CopiedFilter, LengthFilter, ScoresFilter


@inparsx.hookimpl
def register_filters(register):
    register(LengthFilter)
    register(CopiedFilter)
    register(ScoresFilter)
    register(RerankerFilter)
    register(ConsistencyFilter)


@inparsx.hookimpl
def register_commands(app):
    from inparsx.filter.command import filter_command

    app.command("filter")(filter_command)
