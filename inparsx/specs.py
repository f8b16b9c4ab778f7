"""Typed component specs: "a component of kind K with its options", as one option of another component.

A component that builds another one (the triples teacher, the tuners' judge reranker, the filters' rerankers,
retrievers and trainer) declares a field of a spec type (:class:`inparsx.rerank.spec.RerankerSpec`, which sits
beside the reranker contract, :class:`RetrieverSpec`, :class:`TrainerSpec`, :class:`MinerSpec`) instead of a pair of
untyped ``name``/``name_options`` keys. In TOML a spec is a
sub-table whose ``use`` names the registered component and whose other keys are that component's options,
as a stage table puts its component's options next to ``use``::

    [triples.teacher]
    use = "cross-encoder"
    model = "cross-encoder/ms-marco-MiniLM-L-6-v2"
    max_length = 128

A spec validates itself against the registry found in pydantic's validation context (``{"registry": ...}``,
what :func:`inparsx.recipe.validate_recipe` and :meth:`inparsx.plugins.Registry.build` pass; the process-wide
registry otherwise), so a wrong name or option fails when the recipe loads, with file, line and key
(``triples.teacher.max_length``). It is built with :meth:`inparsx.context.ComponentContext.build` from the
registry that validated the recipe (:meth:`ComponentSpec.build` for any other registry).

Old spellings (``teacher``/``teacher_model``/``teacher_options``...) are folded into a spec by
:func:`fold_legacy`, with one :class:`RecipeDeprecationWarning` naming the new spelling.
"""

from __future__ import annotations

import difflib
import warnings
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo, model_serializer, model_validator
from pydantic_core import PydanticCustomError

from inparsx.errors import PluginError
from inparsx.plugins import Registry, registry_from

SPEC_ERROR = "component_spec"
"""The pydantic error type of a spec's problem; its context holds ``key`` (dotted, relative to the spec's own
table; ``""``: the table itself) and ``reason``, which :mod:`inparsx.recipe` reports with file and line."""


class RecipeDeprecationWarning(FutureWarning):
    """An old spelling of a recipe key, still accepted; the message names the new one.

    Args:
        message: one line: what is old and what to write instead.
        key: the old key, dotted and relative to the options model that warned (e.g. ``teacher_model``), so
            that :func:`inparsx.recipe.validate_recipe` can re-emit the warning with the file and line.
    """

    def __init__(self, message: str, key: str = ""):
        super().__init__(message)
        self.key = key


class ComponentSpec(BaseModel):
    """A registered component of kind :attr:`kind` (``use``) and the options it is built with (``options``).

    Written inline (TOML sub-table or inline table): ``{use = "bm25", fields = "multifield"}``, or as the
    name alone (``retriever = "bm25s"``: no options); the keys of
    :attr:`OWN` (e.g. a reranker's ``model``) are the spec's own fields, every other key an option of
    ``use``'s ``Options`` model. In Python, ``RetrieverSpec(use="bm25", options={"k1": 0.9})`` or
    ``RetrieverSpec.model_validate({"use": "bm25", "k1": 0.9})``. Dumped back inline (``options`` as given,
    not filled with defaults).

    Raises (when validated):
        pydantic.ValidationError: of type :data:`SPEC_ERROR`: ``use`` missing or not registered in the
            validation context's registry, a key :meth:`refused` names, or options the component rejects
            (the first problem, with its key; a count of the others).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ClassVar[str] = ""
    """The component kind (``rerankers``, ``retrievers``, ``trainers``...)."""
    OWN: ClassVar[tuple[str, ...]] = ()
    """Keys the spec itself holds, besides ``use`` (not options of the component)."""

    use: str
    options: dict[str, Any] = {}

    @classmethod
    def refused(cls) -> dict[str, str]:
        """Option keys this spec refuses -> why (default: none): keys the component using the spec sets
        itself, or that would be ignored."""
        return {}

    @classmethod
    def refusal(cls, taken: list[str]) -> tuple[str, str]:
        """The error for the refused keys ``taken`` (in the order given): ``(key, reason)``, the key dotted and
        relative to the spec's table (``""``: the table itself). Default: the first key and its reason."""
        return taken[0], cls.refused()[taken[0]]

    @classmethod
    def supplied(cls) -> dict[str, Any]:
        """Options the component that uses the spec sets itself when it builds it (a tuner sets a generator's
        ``model``), with the values validation fills in for them; they are refused in the table (see
        :meth:`refused`). Default: none."""
        return {}

    @classmethod
    def accepts(cls, component: type) -> str | None:
        """Why the registered ``component`` (the class ``use`` names) cannot serve here, or ``None`` (default:
        every component of :attr:`kind` can); the reason, which names ``use``, is reported on the table."""
        return None

    @model_validator(mode="before")
    @classmethod
    def _inline(cls, data: Any) -> Any:
        """``{use, <own keys>, <options>...}`` -> ``{use, <own keys>, options}``; the structured form
        (``use``, own keys and ``options`` only, ``options`` a table) passes as is."""
        if isinstance(data, str):
            data = {"use": data}
        if not isinstance(data, dict):
            raise PydanticCustomError(
                SPEC_ERROR,
                "{reason}",
                {
                    "key": "",
                    "reason": "must be a table with use = "
                    f'"<a registered {cls.kind[:-1]}>" and its options (got {data!r})',
                },
            )
        if "use" not in data and cls.model_fields["use"].is_required():
            raise PydanticCustomError(
                SPEC_ERROR,
                "{key}: {reason}",
                {"key": "use", "reason": f"required key is missing: the {cls.kind[:-1]} to use"},
            )
        if set(data) <= {"use", "options", *cls.OWN} and isinstance(data.get("options", {}), dict):
            return data
        own = {key: value for key, value in data.items() if key == "use" or key in cls.OWN}
        return {**own, "options": {key: value for key, value in data.items() if key not in own}}

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> ComponentSpec:
        registry = registry_from(info)
        try:
            cls = registry.get(self.kind, self.use)
        except PluginError as exc:
            raise PydanticCustomError(SPEC_ERROR, "{key}: {reason}", {"key": "use", "reason": str(exc)}) from None
        unfit = self.accepts(cls)
        if unfit is not None:
            raise PydanticCustomError(SPEC_ERROR, "{reason}", {"key": "", "reason": unfit})
        refused = self.refused()
        taken = [key for key in self.options if key in refused]
        if taken:
            key, why = self.refusal(taken)
            raise PydanticCustomError(SPEC_ERROR, "{key}: {reason}" if key else "{reason}", {"key": key, "reason": why})
        try:
            cls.Options.model_validate({**self.supplied(), **self.options}, context=info.context)
        except ValidationError as exc:
            problems = [
                spec_problem(err, [*self.OWN, "use", *cls.Options.model_fields], self.use) for err in exc.errors()
            ]
            key, reason = problems[0]
            more = f" (and {len(problems) - 1} more problem(s) in this table)" if len(problems) > 1 else ""
            raise PydanticCustomError(SPEC_ERROR, "{key}: {reason}", {"key": key, "reason": reason + more}) from None
        return self

    @model_serializer(mode="plain")
    def _dump(self) -> dict[str, Any]:
        own = {key: getattr(self, key) for key in self.OWN if getattr(self, key) is not None}
        use = (
            {"use": self.use} if "use" in self.model_fields_set or type(self).model_fields["use"].is_required() else {}
        )
        return {**use, **own, **self.options}

    def __getitem__(self, key: str) -> Any:
        """A key of the table as written (``spec["use"]``, an own key or an option), as the dict a spec replaced
        answered it (``[tune] generator`` of ``cpo`` was one).

        Raises:
            KeyError: the table has no such key.
        """
        return {"use": self.use, **self._dump()}[key]

    def with_options(self, **changes: Any) -> Any:
        """A copy whose options are these with ``changes`` over them (not validated again: what a component
        that uses the spec builds with, e.g. a tuner adding the keys it :meth:`supplied`)."""
        return self.model_copy(update={"options": {**self.options, **changes}})

    def build(self, registry: Registry) -> Any:
        """The component, built from ``registry`` with its validated options (not loaded: a reranker still
        needs ``load``, a retriever ``index``).

        Raises:
            PluginError: ``use`` is not in ``registry``.
            pydantic.ValidationError: options its ``Options`` model rejects (e.g. a key :meth:`supplied` says
                its user sets, and did not: see :meth:`with_options`).
        """
        cls = registry.get(self.kind, self.use)
        return cls(cls.Options.model_validate(self.options, context={"registry": registry}))


def spec_problem(err: Any, known: list[str], name: str) -> tuple[str, str]:
    """One pydantic error of a component's options as (dotted key, reason), for a spec's error: an unknown key
    lists the known ones (and the nearest), a nested spec's error keeps its own key."""
    loc = [str(part) for part in err["loc"]]
    if err["type"] == SPEC_ERROR:
        inner = err.get("ctx", {})
        return ".".join(p for p in (*loc, inner.get("key", "")) if p), str(inner.get("reason", err["msg"]))
    key = ".".join(loc)
    if err["type"] == "extra_forbidden":
        close = difflib.get_close_matches(loc[-1], known, n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        return key, f"unknown key of {name!r}; expected one of: {', '.join(known)}{hint}"
    if err["type"] == "missing":
        return key, "required key is missing"
    return key, f"{err['msg'].removeprefix('Value error, ')} (got {err.get('input')!r})"


class RetrieverSpec(ComponentSpec):
    """A retriever that a component searches with (``bm25-negatives``, the ``consistency`` filter, the judge):
    ``k`` is refused, the search depth being that component's ``depth`` option."""

    kind: ClassVar[str] = "retrievers"

    @classmethod
    def refused(cls) -> dict[str, str]:
        return {
            "k": "would be ignored: the search depth here is the `depth` option of the component that "
            "searches; set depth instead"
        }


def default_retriever() -> RetrieverSpec:
    """``{use = "bm25"}`` (Lucene), the retriever a component searches with unless told otherwise (a field's
    ``default_factory``; built without validation, so no registry is read at import)."""
    return RetrieverSpec.model_construct(use="bm25", options={})


class TrainerSpec(ComponentSpec):
    """A trainer that a component trains a model with (the ``consistency`` filter's ``by = "self"``)."""

    kind: ClassVar[str] = "trainers"


class MinerSpec(ComponentSpec):
    """A miner that a component mines triples with (the ``consistency`` filter's ``by = "self"``)."""

    kind: ClassVar[str] = "miners"


def fold_legacy(
    data: Any,
    target: str,
    spec: dict[str, str],
    where: str,
    defaults: dict[str, Any] | None = None,
    keep: tuple[str, ...] = (),
    lone_is_old: bool = False,
) -> Any:
    """Fold the old flat spelling of a spec into the spec's table, with one :class:`RecipeDeprecationWarning`.

    For a ``mode="before"`` validator of the options model that declares the spec ``target``. Nothing changes
    when no old key is given (``target`` given as a table is the new spelling).

    Args:
        data: the options as given.
        target: the spec's field (e.g. ``teacher``).
        spec: old key -> what it becomes in the spec's table: ``"use"``, an own key (``"model"``), an option
            key, or ``"*"`` for a table of options merged in (e.g. ``teacher_options``). When ``target`` is
            itself an old key (``teacher = "cross-encoder"``), it is old only when its value is a string and
            another old key is given (alone, it is the spec's short form ``{use = "cross-encoder"}``).
        where: the new spelling, for the message (e.g. ``[triples.teacher]``).
        defaults: keys of the spec's table that the old spelling implied (e.g. the old default reranker).
        keep: old keys that stay where they are too (read by the model itself as well).
        lone_is_old: ``target = "name"`` alone is the old spelling too (where ``defaults`` complete it, e.g. the
            ``reranker`` filter's default model), not the short form.

    Returns:
        ``data`` with the old keys replaced by ``target``'s table (``None`` values of old keys are dropped;
        when none but ``None`` values were given, no table is made). A ``target`` table given too is kept, the
        old keys' values written over it.
    """
    if not isinstance(data, dict):
        return data
    old = [key for key in spec if key in data and key != target]
    if lone_is_old and target in spec and isinstance(data.get(target), str) and not old:
        old = [target]
    elif not old:
        return data  # the new spelling, or a lone ``target = "name"`` (a spec's short form)
    if target in spec and isinstance(data.get(target), str) and target not in old:
        old.insert(0, target)
    data = dict(data)
    table: dict[str, Any] = dict(defaults or {})
    if isinstance(data.get(target), dict):  # the new spelling too (a --set of an old key over a new table)
        table.update(data[target])
        given = True
    else:
        given = False
    for key in old:
        value = data[key] if key in keep else data.pop(key)
        if value is None:
            continue
        given = True
        if spec[key] == "*":
            table.update(value if isinstance(value, dict) else {key: value})
        else:
            table[spec[key]] = value
    warnings.warn(
        RecipeDeprecationWarning(
            f'{", ".join(old)}: the old spelling of {where}; write a {where} table instead (use = "<name>" and '
            "the component's options next to it)",
            old[-1],
        ),
        stacklevel=2,
    )
    if given:
        data[target] = table
    return data
