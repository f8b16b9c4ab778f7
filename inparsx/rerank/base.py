"""The reranker contract: score (query, document) pairs with a neural model."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field, model_validator

from inparsx.devices import check_device_option, resolve_device
from inparsx.errors import InparsxError
from inparsx.plugins import Component, Options, Registry, check_options
from inparsx.precision import AUTO_DESCRIPTION, resolve_precision

if TYPE_CHECKING:
    from inparsx.models import ModelRef


class RerankerOptions(Options):
    """Options every reranker has: how it scores pairs. The model it loads and the rerank stage's keys
    (``depth``, ``interpolate``...) are the stage's (:class:`~inparsx.rerank.options.RerankStageOptions`).

    ``batch_size``: pairs per forward pass (the cross-encoder and monoT5 sort pairs by length first, so batches
    are padded little). ``max_length``: tokens per pair (``None``: 512, or the model's limit when lower).
    ``dtype``: ``auto`` is the one rule of ``inparsx.precision`` that the trainers follow too: bf16 where the
    device computes it natively (a CUDA GPU of compute capability 8.0 or later, a CPU with AVX512-BF16 or AMX),
    fp16 on an older CUDA GPU, fp32 elsewhere. ``device``: ``auto`` (CUDA when available, else CPU), ``cpu``, ``cuda``,
    ``cuda:1``...
    """

    batch_size: int = Field(32, ge=1)
    max_length: int | None = Field(None, ge=8)
    dtype: Literal["auto", "fp32", "bf16", "fp16"] = Field("auto", description=AUTO_DESCRIPTION)
    device: str = "auto"

    @model_validator(mode="after")
    def _check_device(self) -> RerankerOptions:
        """Reject a device that is none of ``auto``, ``cpu``, ``cuda``, ``cuda:<n>``, ``mps``
        (:func:`inparsx.devices.check_device_option`)."""
        check_device_option(self.device)
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

    def model_ref(self, model: str, option: str = "model", role: str = "reranker") -> ModelRef | None:
        """How this reranker loads ``model`` (named by ``option`` of whoever gives it: the rerank stage, a
        filter, a judge, a teacher), for the pre-flight check: in its ``dtype`` on its ``device``, for
        inference (``auto`` declared as what it resolves to on this machine,
        :func:`inparsx.precision.resolve_dtype`). A reranker that loads more, or otherwise, overrides
        this; one that loads nothing (a scorer served elsewhere, a test double) returns ``None``."""
        from inparsx.models import ModelRef

        return ModelRef(option, model, role, dtype=self._declared_dtype(), device=self.options.device)

    def _declared_dtype(self) -> str:
        """``dtype``, with ``auto`` resolved as loading resolves it here (bf16 where native, else fp32)."""
        dtype: str = self.options.dtype
        if dtype != "auto":
            return dtype
        try:
            return resolve_precision("auto", resolve_device(self.options.device))
        except InparsxError:  # a device this machine lacks: the stage says so when it loads
            return "auto"

    def use_corpus(self, key: str) -> None:
        """Declare the collection the documents come from (default: ignored)."""

    def unload(self) -> None:
        """Free the model (default: drop ``model`` and ``tokenizer``); ``load`` may be called again. A reranker
        holding its model elsewhere overrides this."""
        self.model = None
        self.tokenizer = None


def check_scorer_options(
    name: str,
    options: dict[str, Any],
    own: dict[str, str],
    what: str = "reranker_options",
    user: str = "filter",
    registry: Registry | None = None,
) -> None:
    """Validate ``reranker`` and ``reranker_options`` of a component that uses the reranker only to score pairs
    (the ``reranker`` and ``consistency`` filters, the tuners' judge, the triples teacher) when the recipe loads.

    The check of an untyped name/options pair, kept for plugins; the built-in components declare a typed spec
    instead (:class:`inparsx.rerank.spec.RerankerSpec`, :class:`inparsx.specs.RetrieverSpec`), which checks itself.

    Args:
        name: the reranker's registered name.
        options: the ``reranker_options`` given (the reranker's own ``Options`` keys).
        own: keys the component sets itself -> its option to use instead (e.g. ``{"model": "model"}``).
        what: the option that holds ``options``, named in messages (the judge's is ``judge_options``).
        user: what kind of component scores, named in messages (``filter``, ``judge``).
        registry: where ``name`` is looked up (see :func:`inparsx.plugins.check_options`).

    Raises:
        ValueError: a key of ``own`` (it would be replaced by the component's own option), a key of the rerank
            stage (:class:`~inparsx.rerank.options.RerankStageOptions`: it would be ignored), an unknown
            reranker, or options it rejects.
    """
    from inparsx.rerank.options import RerankStageOptions

    for key in options:
        if key in own:
            raise ValueError(
                f"{what}.{key} would be replaced by the {user}'s own option `{own[key]}`: set {own[key]} instead"
            )
        if key in RerankStageOptions.model_fields:
            raise ValueError(
                f"{what}.{key} configures the rerank stage; a {user} only scores "
                "(query, document) pairs, so it would be ignored: remove it"
            )
    check_options("rerankers", name, options, what, registry)


def scorer_model_ref(name: str, options: dict[str, Any], model: str, option: str, role: str) -> list[ModelRef]:
    """``model`` scored by reranker ``name`` with ``options`` (its ``reranker_options``, ``judge_options`` or
    ``teacher_options``), named by ``option`` of the component that scores with it (a filter, a judge, a
    teacher): :meth:`Reranker.model_ref` of that reranker, as a list (empty when it loads nothing)."""
    from inparsx.plugins import get_registry

    ref = get_registry().build("rerankers", name, options).model_ref(model, option, role)
    return [ref] if ref is not None else []
