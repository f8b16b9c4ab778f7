"""The spec of a generator that another component builds (:mod:`inparsx.specs`): the ``cpo`` tuner's
``[tune.generator]``, which samples candidate queries from the model the tuner trains. It lives beside the
generator contract because what it accepts is a contract of the generators: their options extend
:class:`~inparsx.generate.prompted.DecodingOptions` (a ``model`` loaded by the generator itself, and the decoding
options), as those of ``hf`` and ``vllm`` do."""

from __future__ import annotations

from typing import Any, ClassVar

from inparsx.specs import ComponentSpec


class GeneratorSpec(ComponentSpec):
    """A generator that a component generates queries with: ``use`` and the generator's options."""

    kind: ClassVar[str] = "generators"


class ModelGeneratorSpec(GeneratorSpec):
    """A generator that loads a model itself (its options extend
    :class:`~inparsx.generate.prompted.DecodingOptions`: ``hf``, ``vllm``), for a component that supplies the
    model and the decoding: the keys of :attr:`SUPPLIED` are refused in the table, all named in one error, and
    given when the component builds it (:meth:`~inparsx.specs.ComponentSpec.with_options`). ``use`` defaults to
    ``hf`` (and is written back only when given, so a table without it keeps its fingerprint).

    A subclass says who supplies what: :attr:`SUPPLIER` (e.g. ``"the tuner"``) and :attr:`SUPPLIED`.
    """

    SUPPLIER: ClassVar[str] = "the component that uses it"
    """Who sets the :attr:`SUPPLIED` keys, in error messages."""
    SUPPLIED: ClassVar[dict[str, tuple[Any, str]]] = {}
    """Key -> (the value validation fills in, where the supplier takes it from), e.g. ``"model": ("m",
    "base_model")``."""

    use: str = "hf"

    @classmethod
    def supplied(cls) -> dict[str, Any]:
        return {key: value for key, (value, _) in cls.SUPPLIED.items()}

    @classmethod
    def refused(cls) -> dict[str, str]:
        return {key: f"set by {cls.SUPPLIER} from {source}" for key, (_, source) in cls.SUPPLIED.items()}

    @classmethod
    def refusal(cls, taken: list[str]) -> tuple[str, str]:
        sources = ", ".join(f"{key}: {cls.SUPPLIED[key][1]}" for key in taken)
        return "", f"{', '.join(taken)} are set by {cls.SUPPLIER} ({sources}); remove them from this table"

    @classmethod
    def accepts(cls, component: type) -> str | None:
        from inparsx.generate.prompted import DecodingOptions

        if issubclass(component.Options, DecodingOptions):  # type: ignore[attr-defined]
            return None
        return (
            f"use = {component.name!r}: a generator that loads no model of its own (its options are not "  # type: ignore[attr-defined]
            "DecodingOptions); use one that loads a model and decodes from it, such as hf or vllm"
        )
