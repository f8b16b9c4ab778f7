"""The spec of a reranker that only scores (query, document) pairs: the triples teacher, the tuners' judge and
the filters' rerankers name theirs with it (:mod:`inparsx.specs`). It lives beside the reranker contract because
it refuses the rerank stage's own keys (:class:`~inparsx.rerank.options.RerankStageOptions`)."""

from __future__ import annotations

from typing import ClassVar

from inparsx.rerank.options import RerankStageOptions
from inparsx.specs import ComponentSpec


class RerankerSpec(ComponentSpec):
    """A reranker that only scores (query, document) pairs (the triples teacher, the judge, the filters'
    rerankers), and ``model``, the checkpoint it loads (hub id, folder or ``@stage``; ``None`` where the
    component using it supplies one, e.g. the ``consistency`` filter's self-trained model). The rerank
    stage's own keys (``depth``, ``interpolate``...) are refused: they would be ignored."""

    kind: ClassVar[str] = "rerankers"
    OWN: ClassVar[tuple[str, ...]] = ("model",)
    model: str | None = None

    @classmethod
    def refused(cls) -> dict[str, str]:
        return {
            key: "configures the rerank stage; here the reranker only scores (query, document) pairs, so it "
            "would be ignored: remove it"
            for key in RerankStageOptions.model_fields
            if key != "model"
        }
