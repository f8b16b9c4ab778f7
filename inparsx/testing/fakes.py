"""Deterministic stand-ins for neural components, for tests of the stages around them.

:class:`ChecksumReranker` scores a pair by a checksum of its text: the same pair always gets the same score,
different pairs get unrelated ones, no model is loaded, and a crash can be injected to test resumption.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

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


class ScriptedEngine:
    """A vLLM engine stand-in with the interface of :class:`inparsx.generate.vllm_engine.LocalEngine`
    (``start``, ``pending``, ``submit``, ``step``, ``close``), for tests of the ``vllm`` generator without vLLM.

    Each request finishes at the next :meth:`step` with ``params["n"]`` sequences of ``params["max_tokens"]``
    tokens taken from its prompt at offsets chosen by a checksum of the prompt, the sampling parameters and
    the sequence's index, each token's log-probability a checksum in (-8, 0]; ``finish_reason`` is
    ``length``. Requests are kept in ``requests`` (every instance's, in ``ScriptedEngine.submitted``) and the
    configs started in ``ScriptedEngine.started``, so a test sees what reached the engine.
    """

    submitted: ClassVar[list[Any]] = []
    started: ClassVar[list[Any]] = []
    replicas = 1

    def __init__(self, config: Any = None):
        self.config = config
        self.requests: list[Any] = []
        self._waiting: list[Any] = []

    def start(self) -> ScriptedEngine:
        ScriptedEngine.started.append(self.config)
        return self

    @property
    def pending(self) -> int:
        return len(self._waiting)

    def submit(self, requests: Sequence[Any]) -> None:
        self.requests += requests
        ScriptedEngine.submitted += requests
        self._waiting += requests

    def step(self) -> list[tuple[str, list[Any]]]:
        from inparsx.generate.vllm_engine import Completion

        done = []
        for request in self._waiting:
            params = sorted((k, repr(v)) for k, v in request.params.items() if k != "max_tokens")
            completions = []
            for j in range(request.params.get("n", 1)):
                base = zlib.crc32(f"{request.prompt}|{params}|{j}".encode())
                ids = [
                    request.prompt[(base + 7 * t) % len(request.prompt)] for t in range(request.params["max_tokens"])
                ]
                log_probs = [-(zlib.crc32(f"{base}:{t}".encode()) % 8000) / 1000 for t in range(len(ids))]
                completions.append(Completion(ids, log_probs, "length", None))
            done.append((request.key, completions))
        self._waiting = []
        return done

    def close(self) -> None:
        self._waiting = []
