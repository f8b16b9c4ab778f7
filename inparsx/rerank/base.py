"""The reranker contract: score (query, document) pairs with a neural model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from inparsx.plugins import Component, Options, Registry, check_options

STAGE_FIELDS = ("depth", "interpolate", "fusion", "rrf_k", "zero_shot_model", "first_stage")
"""Fields of :class:`RerankerOptions` that configure the rerank stage (which run is reranked, how deep, how it
is fused, a second model), not how a pair is scored: a component that only scores pairs never reads them."""


class RerankerOptions(Options):
    """Options every reranker has.

    Model: ``model``: hub id, local folder or ``@train`` (the train stage's output). ``batch_size``: pairs per
    forward pass (the cross-encoder and monoT5 sort pairs by length first, so batches are padded little).
    ``max_length``: tokens per pair (``None``: 512, or the model's limit when lower). ``dtype``: ``auto`` picks
    bf16 on hardware with native bf16 (a CUDA GPU of compute capability 8+, a CPU with AVX512-BF16 or AMX),
    else fp32. ``device``: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``, ``cuda:1``...

    Stage: ``depth``: first-stage documents per query that are rescored; the rest stay below them in their
    first-stage order. ``interpolate``: ``alpha`` of ``alpha * minmax(rerank) + (1 - alpha) * minmax(first
    stage)`` per query. ``fusion = "rrf"``: reciprocal rank fusion of the two rankings (Cormack et al., SIGIR
    2009; constant ``rrf_k``, default 60). The stage's final run ``rerank`` (``rerank/run.trec``) is the
    interpolated run when ``interpolate`` is set, else the RRF run when ``fusion`` is set, else the model
    alone; the other forms are written as ``rerank/runs/rerank-alone.trec`` and ``rerank-rrf.trec``.
    ``zero_shot_model``: a second model (e.g. the untrained base checkpoint) reranked the same way into
    ``rerank/runs/zeroshot.trec`` (and ``zeroshot-alone``/``zeroshot-rrf``), so that one table compares BM25,
    the zero-shot model and the trained one, with a paired test of trained against zero-shot in each form.
    ``compare_models``: more models reranked the same way, by run name, e.g. ``{ict = "runs/ict/train/model"}``
    gives ``rerank/runs/ict.trec`` (and ``ict-alone``...), for a table against other trained models.
    ``first_stage``: the stage whose ``run.trec`` is reranked.
    """

    model: str
    depth: int = Field(1000, ge=1)
    batch_size: int = Field(32, ge=1)
    max_length: int | None = Field(None, ge=8)
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    device: str = "auto"
    interpolate: float | None = Field(None, ge=0.0, le=1.0)
    fusion: Literal["rrf"] | None = None
    rrf_k: int = Field(60, ge=0)
    zero_shot_model: str | None = None
    compare_models: dict[str, str] = Field(default_factory=dict)
    first_stage: str = "retrieve"

    @model_validator(mode="after")
    def _check_device(self) -> "RerankerOptions":
        """Reject a device that is none of ``auto``, ``cpu``, ``cuda``, ``cuda:<n>``, ``mps``."""
        base, _, index = self.device.partition(":")
        if base not in ("auto", "cpu", "cuda", "mps") or (index and not (base == "cuda" and index.isdigit())):
            raise ValueError(f"device {self.device!r}: expected auto, cpu, cuda, cuda:<n> or mps")
        return self

    @model_validator(mode="after")
    def _check_compare_models(self) -> "RerankerOptions":
        """Run names of ``compare_models``: lower-case words joined by ``-`` or ``_``, not a name the stage
        already writes (``rerank``, ``zeroshot`` and their forms), not ending in a form suffix."""
        import re

        for name in self.compare_models:
            if not re.fullmatch(r"[a-z0-9]+(?:[-_][a-z0-9]+)*", name):
                raise ValueError(f"compare_models: run name {name!r} must be lower-case letters, digits, - or _")
            if name.split("-")[0] in ("rerank", "zeroshot") or name.endswith(("-alone", "-rrf")):
                raise ValueError(f"compare_models: run name {name!r} clashes with the stage's own runs")
        return self


class Reranker(Component):
    """Scores pairs; ``load`` must be called (with a resolved model path or id) before ``score``.

    ``use_corpus(key)`` is optional: it tells the reranker which collection its documents come from (a corpus
    fingerprint), so that per-document work can be cached (the bi-encoder caches document embeddings).

    Optional attributes, set by ``load`` (``None`` before it, and for a reranker without them): ``model`` and
    ``tokenizer`` (what the default :meth:`unload` drops), ``device`` and ``dtype`` (what the model runs on
    and in, e.g. ``torch.device("cpu")`` and ``torch.float32``; the rerank stage writes them to its summary).
    """

    Options: ClassVar[type[RerankerOptions]] = RerankerOptions
    model: Any = None
    tokenizer: Any = None
    device: Any = None
    dtype: Any = None

    def load(self, model: str) -> None:
        """Load the model (``model`` already resolved: a hub id or a local folder)."""
        raise NotImplementedError

    def score(self, queries: Sequence[str], documents: Sequence[str]) -> list[float]:
        """Relevance score of each pair ``(queries[i], documents[i])``; higher = more relevant."""
        raise NotImplementedError

    def use_corpus(self, key: str) -> None:
        """Declare the collection the documents come from (default: ignored)."""

    def unload(self) -> None:
        """Free the model (default: drop ``model`` and ``tokenizer``); ``load`` may be called again. A reranker
        holding its model elsewhere overrides this."""
        self.model = None
        self.tokenizer = None


def check_scorer_options(name: str, options: dict, own: dict[str, str], what: str = "reranker_options",
                         user: str = "filter", registry: Registry | None = None) -> None:
    """Validate ``reranker`` and ``reranker_options`` of a component that uses the reranker only to score pairs
    (the ``reranker`` and ``consistency`` filters, the tuners' judge) when the recipe loads.

    Args:
        name: the reranker's registered name.
        options: the ``reranker_options`` given.
        own: keys the component sets itself -> its option to use instead (e.g. ``{"model": "model"}``).
        what: the option that holds ``options``, named in messages (the judge's is ``judge_options``).
        user: what kind of component scores, named in messages (``filter``, ``judge``).
        registry: where ``name`` is looked up (see :func:`inparsx.plugins.check_options`).

    Raises:
        ValueError: a key of ``own`` (it would be replaced by the component's own option), a key of
            :data:`STAGE_FIELDS` (it would be ignored), an unknown reranker, or options it rejects.
    """
    for key in options:
        if key in own:
            raise ValueError(f"{what}.{key} would be replaced by the {user}'s own option "
                             f"`{own[key]}`: set {own[key]} instead")
        if key in STAGE_FIELDS:
            raise ValueError(f"{what}.{key} configures the rerank stage; a {user} only scores "
                             "(query, document) pairs, so it would be ignored: remove it")
    check_options("rerankers", name, {"model": "x", **options}, what, registry)
