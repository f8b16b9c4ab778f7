"""Opening a retriever ready to search a collection: the service the retrieve stage, ``bm25-negatives``, the
``consistency`` filter and the tuners' judge share. It depends on no stage, so every stage may import it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from inparsx.datasets import Dataset
from inparsx.plugins import Registry, get_registry
from inparsx.retrieve.base import Retriever

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.specs import RetrieverSpec


def open_retriever(
    name: str, options: Mapping[str, Any] | None, dataset: Dataset, registry: Registry | None = None
) -> Retriever:
    """A retriever ready to ``search`` ``dataset``: built from ``registry`` (default: the process-wide one)
    and indexed (a cached index is reused).

    Args:
        name: a registered retriever (``bm25``, ``bm25s``, or a plugin's).
        options: that retriever's options (its ``Options`` model's keys), e.g. ``{"fields": "multifield"}``.
        dataset: the collection to search.
        registry: where ``name`` is looked up.

    Raises:
        PluginError: an unknown retriever name (the available ones are listed).
        pydantic.ValidationError: options the retriever's ``Options`` model rejects.
    """
    retriever = (registry if registry is not None else get_registry()).build("retrievers", name, dict(options or {}))
    retriever.index(dataset)
    return retriever


def open_spec(spec: RetrieverSpec, ctx: ComponentContext) -> Retriever:
    """The retriever ``spec`` names, built from ``ctx``'s registry (:meth:`ComponentContext.build`) and indexed
    over ``ctx.dataset`` (errors as :func:`open_retriever`)."""
    retriever: Retriever = ctx.build(spec)
    retriever.index(ctx.dataset)
    return retriever
