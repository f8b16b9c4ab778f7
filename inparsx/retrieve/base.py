"""The retriever contract: first-stage retrieval over a dataset's corpus (also used to mine negatives)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

from pydantic import Field

from inparsx.datasets import Dataset
from inparsx.plugins import Component, Options
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
