"""The hooks a plugin may implement (pluggy project ``inparsx``, entry-point group ``inparsx``).

Each ``register_<kind>`` hook receives a ``register(cls)`` callback. ``cls`` is a component class with a
unique ``name`` and a nested pydantic ``Options`` model; the host builds it as ``cls(options)``. The pattern
follows simonw/llm: the host owns the collection, plugins never touch a global registry. The kinds, their hooks
and base classes are declared in :data:`inparsx.stages.COMPONENT_KINDS` (``tests/test_stages.py`` checks that
every kind has its hook here).

The hooks are written out rather than generated from ``COMPONENT_KINDS`` on purpose: this module is what a
plugin author reads (and what pluggy, type checkers and editors see) to learn which hooks exist and what each
receives, and a hook made in a loop would show none of that. A new kind therefore takes one line in
``COMPONENT_KINDS`` and one hook here; the test fails until both are there.
"""

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import typer

hookspec = pluggy.HookspecMarker("inparsx")

Register = Callable[[type], None]
"""The callback each hook receives: ``register(cls)`` adds component class ``cls`` to the host's registry."""


@hookspec
def register_datasets(register: Register) -> None:
    """Register dataset loaders (a name scheme such as ``beir`` or ``irds``)."""


@hookspec
def register_retrievers(register: Register) -> None:
    """Register first-stage retrievers (the ``retrieve`` stage; also used to mine negatives)."""


@hookspec
def register_tuners(register: Register) -> None:
    """Register generator tuners (the ``tune`` stage: CPO fine-tuning, DSPy prompt optimisation)."""


@hookspec
def register_generators(register: Register) -> None:
    """Register synthetic-query generators (the ``generate`` stage)."""


@hookspec
def register_filters(register: Register) -> None:
    """Register synthetic-query filters (the ``filter`` stage)."""


@hookspec
def register_miners(register: Register) -> None:
    """Register negative miners that build training triples (the ``triples`` stage)."""


@hookspec
def register_trainers(register: Register) -> None:
    """Register reranker trainers (the ``train`` stage)."""


@hookspec
def register_rerankers(register: Register) -> None:
    """Register rerankers (the ``rerank`` stage)."""


@hookspec
def register_evaluators(register: Register) -> None:
    """Register evaluators (the ``evaluate`` stage)."""


@hookspec
def register_commands(app: "typer.Typer") -> None:
    """Add commands to the Typer ``app`` of the ``inparsx`` CLI."""
