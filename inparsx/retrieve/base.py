"""The retriever contract: first-stage retrieval over a dataset's corpus (also used to mine negatives)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from inparsx.datasets import Dataset
from inparsx.plugins import Component, Options, check_options
from inparsx.records import Run


class RetrieverOptions(Options):
    """Options every retriever has. ``k``: depth of the run written by the retrieve stage (documents per query)."""

    k: int = Field(1000, ge=1)


class Retriever(Component):
    """A first-stage retriever. Call ``index(dataset)`` once (builds or reuses a cached index), then ``search``."""

    Options: ClassVar[type[RetrieverOptions]] = RetrieverOptions

    def index(self, dataset: Dataset) -> None:
        """Build the index of ``dataset``'s corpus, or load it from the cache keyed by the corpus fingerprint."""
        raise NotImplementedError

    def search(self, queries: Mapping[str, str], k: int) -> Run:
        """Top ``k`` documents for each query: ``{qid: text}`` -> ``{qid: {docid: score}}``."""
        raise NotImplementedError


def check_retriever(name: str, options: dict) -> None:
    """Validate ``retriever`` and ``retriever_options`` of a component that searches with a retriever of its own
    (``bm25-negatives``, the ``consistency`` filter) when the recipe loads.

    ``k`` is refused: such a component searches as deep as its own ``depth`` option says, so ``k`` would be
    ignored.

    Raises:
        ValueError: ``k`` given, an unknown retriever, or options it rejects.
    """
    if "k" in options:
        raise ValueError(f"retriever_options.k = {options['k']!r} would be ignored: the search depth here is the "
                         "`depth` option; set depth instead")
    check_options("retrievers", name, options, "retriever_options")
