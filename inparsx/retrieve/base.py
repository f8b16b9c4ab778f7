"""The retriever contract: first-stage retrieval over a dataset's corpus (also used to mine negatives)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from pydantic import Field

from inparsx.datasets import Dataset
from inparsx.plugins import Component, Options, Registry, check_options
from inparsx.records import Run


class RetrieverOptions(Options):
    """Options every retriever has. ``k``: depth of the run written by the retrieve stage (documents per query)."""

    k: int = Field(1000, ge=1)


class Retriever(Component):
    """A first-stage retriever. Call ``index(dataset)`` once (builds or reuses a cached index), then ``search``.

    Optional part of the contract: :attr:`index_info`, metadata of the index (the retrieve stage writes it to
    ``retrieve/summary.json``); ``{}`` unless the retriever sets it in ``index``.
    """

    Options: ClassVar[type[RetrieverOptions]] = RetrieverOptions
    _index_info: dict[str, Any] | None = None

    @property
    def index_info(self) -> dict[str, Any]:
        """JSON-ready metadata of the index opened by ``index`` (e.g. documents indexed, build time); ``{}`` by
        default and before ``index``."""
        return dict(self._index_info or {})

    @index_info.setter
    def index_info(self, value: Mapping[str, Any]) -> None:
        self._index_info = dict(value)

    def index(self, dataset: Dataset) -> None:
        """Build the index of ``dataset``'s corpus, or load it from the cache keyed by the corpus fingerprint."""
        raise NotImplementedError

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        """Top ``k`` documents for each query: ``{qid: text}`` -> ``{qid: {docid: score}}``, every qid asked
        present (``{}`` when nothing matches), at most ``k`` documents of the corpus each, finite float scores,
        the same run for the same index and queries (:class:`inparsx.testing.contracts.RetrieverContract`).

        Raises:
            InparsxError: :meth:`index` was not called first.
        """
        raise NotImplementedError


def check_retriever(name: str, options: dict[str, Any], registry: Registry | None = None) -> None:
    """Validate ``retriever`` and ``retriever_options`` of a component that searches with a retriever of its own
    (``bm25-negatives``, the ``consistency`` filter) when the recipe loads.

    The check of an untyped name/options pair, kept for plugins; the built-in components declare a
    :class:`inparsx.specs.RetrieverSpec` instead, which checks itself.

    ``k`` is refused: such a component searches as deep as its own ``depth`` option says, so ``k`` would be
    ignored.

    ``registry``: where ``name`` is looked up (see :func:`inparsx.plugins.check_options`).

    Raises:
        ValueError: ``k`` given, an unknown retriever, or options it rejects.
    """
    if "k" in options:
        raise ValueError(
            f"retriever_options.k = {options['k']!r} would be ignored: the search depth here is the "
            "`depth` option; set depth instead"
        )
    check_options("retrievers", name, options, "retriever_options", registry)
