"""The hooks a plugin may implement (pluggy project ``inparsx``, entry-point group ``inparsx``).

Each ``register_<kind>`` hook receives a ``register(cls)`` callback. ``cls`` is a component class with a
unique ``name`` and a nested pydantic ``Options`` model; the host builds it as ``cls(options)``. The pattern
follows simonw/llm: the host owns the collection, plugins never touch a global registry. The kinds, their hooks
and base classes are declared in :data:`inparsx.stages.COMPONENT_KINDS` (``tests/test_stages.py`` checks that
every kind has its hook here).
"""

import pluggy

hookspec = pluggy.HookspecMarker("inparsx")


@hookspec
def register_datasets(register):
    """Register dataset loaders (a name scheme such as ``beir`` or ``irds``)."""


@hookspec
def register_retrievers(register):
    """Register first-stage retrievers (the ``retrieve`` stage; also used to mine negatives)."""


@hookspec
def register_tuners(register):
    """Register generator tuners (the ``tune`` stage: CPO fine-tuning, DSPy prompt optimisation)."""


@hookspec
def register_generators(register):
    """Register synthetic-query generators (the ``generate`` stage)."""


@hookspec
def register_filters(register):
    """Register synthetic-query filters (the ``filter`` stage)."""


@hookspec
def register_miners(register):
    """Register negative miners that build training triples (the ``triples`` stage)."""


@hookspec
def register_trainers(register):
    """Register reranker trainers (the ``train`` stage)."""


@hookspec
def register_rerankers(register):
    """Register rerankers (the ``rerank`` stage)."""


@hookspec
def register_evaluators(register):
    """Register evaluators (the ``evaluate`` stage)."""


@hookspec
def register_commands(app):
    """Add commands to the Typer ``app`` of the ``inparsx`` CLI."""
