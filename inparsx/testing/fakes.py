"""Deterministic stand-ins for neural components, for tests of the stages around them.

:class:`ChecksumReranker` scores a pair by a checksum of its text: the same pair always gets the same score,
different pairs get unrelated ones, no model is loaded, and a crash can be injected to test resumption.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import ClassVar

from inparsx.rerank.base import Reranker, RerankerOptions


class ChecksumReranker(Reranker):
    """A reranker named ``checksum`` whose score of ``(query, document)`` is ``crc32("<model>|<query>|<doc>")
    / 2**32`` (in [0, 1)), ``<model>`` being the last part of the loaded model path (so ``@train`` and a hub id
    score differently).

    Class attributes shared by every instance: ``scored``, the number of pairs scored since the last
    :meth:`reset`; ``crash_on_call``, when set to ``n``, makes the ``n``-th ``score`` call after a ``load``
    raise ``KeyboardInterrupt`` (an interrupted run, for resumption tests).
    """

    name: ClassVar[str] = "checksum"
    Options: ClassVar[type[RerankerOptions]] = RerankerOptions
    scored: ClassVar[int] = 0
    crash_on_call: ClassVar[int | None] = None

    @classmethod
    def reset(cls) -> None:
        """Zero the pair count and remove any injected crash."""
        cls.scored, cls.crash_on_call = 0, None

    def model_ref(self, model: str, option: str = "model", role: str = "reranker") -> None:
        """Nothing to resolve or size: the model's name is all it reads."""
        return None

    def load(self, model: str) -> None:
        """Remember the model's name; nothing is loaded."""
        self.model, self.calls = Path(model).name, 0

    def score(self, queries: Sequence[str], documents: Sequence[str]) -> list[float]:
        """The checksum score of each pair.

        Raises:
            KeyboardInterrupt: on the ``crash_on_call``-th call since ``load``.
        """
        self.calls += 1
        if self.crash_on_call == self.calls:
            raise KeyboardInterrupt
        ChecksumReranker.scored += len(queries)
        return [checksum_score(self.model, q, d) for q, d in zip(queries, documents)]


def checksum_score(model: str, query: str, document: str) -> float:
    """The score :class:`ChecksumReranker` gives ``(query, document)`` when loaded with ``model``."""
    return zlib.crc32(f"{model}|{query}|{document}".encode()) / 2**32
