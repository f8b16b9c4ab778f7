"""Plugin discovery: a pluggy manager over the ``inparsx`` entry-point group, and the component registry.

Built-in components register through the project's own entry points exactly as third-party packages do,
so ``inparsx plugins`` lists both the same way. Nothing heavy is imported here: a component module may
import torch only inside its methods.
"""

from __future__ import annotations

import difflib
import importlib.metadata
import pkgutil
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, cast

import pluggy
from pydantic import BaseModel, ConfigDict, ValidationError, ValidationInfo

from inparsx import hookspecs
from inparsx.errors import PluginError
from inparsx.stages import COMPONENT_KINDS, shared_option_keys

if TYPE_CHECKING:
    from inparsx.models import ModelRef

KINDS: dict[str, str] = {kind.name: kind.hook for kind in COMPONENT_KINDS}
"""Component kind -> the hook that registers it (from :data:`inparsx.stages.COMPONENT_KINDS`)."""

BASES: dict[str, str] = {kind.name: kind.base for kind in COMPONENT_KINDS}
"""Component kind -> ``module:class`` of the base class (the contract) every component of that kind extends."""


def base_class(kind: str) -> type:
    """The base class of ``kind`` (imported on first use; base modules import nothing heavy)."""
    return cast(type, pkgutil.resolve_name(BASES[kind]))


class Options(BaseModel):
    """Base of every component's options model: unknown keys are errors, values are validated on assignment.

    ``legacy_keys``: keys of an old spelling that the model still reads (and folds into its fields with a
    deprecation warning, :func:`inparsx.specs.fold_legacy`), so that a multi-use stage routes them to it."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
    legacy_keys: ClassVar[tuple[str, ...]] = ()


class StageOptions(Options):
    """Base of a stage's own options (those :data:`inparsx.recipe.STAGE_OPTIONS` names, e.g. the rerank
    stage's ``model`` and ``depth``), which the stage reads rather than its component."""

    def models(self, components: list[Component]) -> list[ModelRef]:
        """The models the stage loads into its ``components`` (e.g. the rerank stage's ``model`` and
        ``zero_shot_model``), for the pre-flight check; default: none (see :meth:`Component.models`)."""
        return []


_Options = Options  # the base class, for annotations inside classes whose ``Options`` attribute shadows it


class Component:
    """The contract every registered component follows: a unique ``name``, an ``Options`` model, ``cls(options)``."""

    name: ClassVar[str] = ""
    Options: ClassVar[type[_Options]] = _Options
    options: Any
    """The validated options: an instance of this class's ``Options``. Typed ``Any`` because no annotation can
    name "the ``Options`` of the subclass"; a component may narrow it with ``options: Options`` in its body."""

    def __init__(self, options: _Options | None = None) -> None:
        self.options = options if options is not None else self.Options()

    def models(self) -> list[ModelRef]:
        """Every model this component will load, with its dtype, quantization and use
        (:class:`inparsx.models.ModelRef`), for the pre-flight check (``inparsx validate --check``, and
        ``inparsx run`` before its first stage), which resolves them and sizes their memory without loading
        any weights. Default: none. A component that loads a model declares it here, so that a missing or
        gated model, or one too large for the machine, stops the run before any stage."""
        return []


@dataclass(frozen=True)
class Entry:
    """One registered component and where it comes from."""

    kind: str
    name: str
    cls: type[Any]
    package: str
    version: str


class Registry:
    """Every component, by kind and name, collected from the plugin hooks.

    Raises:
        PluginError: on a duplicate name within a kind, a class without ``name``/``Options``, a class that
            does not extend its kind's base class (:data:`BASES`), or one whose ``Options`` declare a key of the
            own options of a stage it can run in (:func:`inparsx.stages.shared_option_keys`; named: package,
            kind, component, key and stage).
    """

    def __init__(self, pm: pluggy.PluginManager) -> None:
        self.pm = pm
        self.entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self.failures: dict[str, str] = dict(getattr(pm, "inparsx_failures", {}))
        dists: dict[str, tuple[str, str]] = getattr(pm, "inparsx_dists", {})
        for kind, hook_name in KINDS.items():
            for impl in getattr(pm.hook, hook_name).get_hookimpls():
                name = pm.get_name(impl.plugin) or "?"
                package, version = dists.get(name, (name, "?"))
                impl.function(register=self._registrar(kind, package, version))

    def _registrar(self, kind: str, package: str, version: str) -> Callable[[type], None]:
        def register(cls: type) -> None:
            name = getattr(cls, "name", "")
            if not name or not isinstance(getattr(cls, "Options", None), type):
                raise PluginError(f"{package}: {cls!r} registered as {kind} needs a `name` and an `Options` model")
            base = base_class(kind)
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise PluginError(
                    f"{package}: {cls!r} registered as {kind} does not extend "
                    f"{base.__module__}.{base.__name__}, the contract of {kind}"
                )
            for stage, key in shared_option_keys(kind, cast(Any, cls).Options):
                raise PluginError(
                    f"{package}: {kind} {name!r} declares option {key!r}, which the {stage} stage's own "
                    f"options declare too, so a [{stage}] {key} could mean either: rename it"
                )
            if name in self.entries[kind]:
                other = self.entries[kind][name]
                raise PluginError(f"{kind} {name!r} is registered twice ({other.package} and {package})")
            self.entries[kind][name] = Entry(kind, name, cls, package, version)

        return register

    def names(self, kind: str) -> list[str]:
        """Sorted names of the components of ``kind``."""
        return sorted(self.entries[kind])

    def get(self, kind: str, name: str) -> type[Any]:
        """The class registered as ``name`` in ``kind``.

        Raises:
            PluginError: unknown name; the message lists the available names and the nearest match.
        """
        try:
            return self.entries[kind][name].cls
        except KeyError:
            raise PluginError(unknown_name_message(kind, name, self.names(kind))) from None

    def build(self, kind: str, name: str, options: dict[str, Any] | None = None) -> Any:
        """Instantiate component ``name`` with validated ``options`` (pydantic ``ValidationError`` on bad ones);
        components named inside ``options`` are looked up in this registry."""
        cls = self.get(kind, name)
        return cls(cls.Options.model_validate(options or {}, context={"registry": self}))


def registry_from(info: ValidationInfo | None) -> Registry:
    """The registry a pydantic validator checks nested component names against: the one in the validation
    context ``{"registry": ...}`` (what :func:`inparsx.recipe.validate_recipe`, :meth:`Registry.build` and
    :func:`check_options` pass), else the process-wide :func:`get_registry`.

    Use it in an options model whose values name other components::

        @model_validator(mode="after")
        def _check(self, info: ValidationInfo):
            check_options("rerankers", self.reranker, self.reranker_options, "reranker_options", registry_from(info))
            return self
    """
    context = info.context if info is not None else None
    registry = context.get("registry") if isinstance(context, dict) else None
    return registry if registry is not None else get_registry()


def eval_split_from(info: ValidationInfo | None) -> str | None:
    """The evaluated split (``[dataset] eval_split``) of the recipe being validated, from the validation context
    :func:`inparsx.recipe.validate_recipe` passes; ``None`` outside a recipe (e.g. :meth:`Registry.build`).

    An option that names a split to learn from uses it to refuse the evaluated one when the recipe loads::

        @field_validator("split")
        @classmethod
        def _not_evaluated(cls, split, info: ValidationInfo):
            if split == eval_split_from(info):
                raise ValueError(f"{split!r} is the evaluated split")
            return split
    """
    context = info.context if info is not None else None
    split = context.get("eval_split") if isinstance(context, dict) else None
    return split if isinstance(split, str) else None


def check_options(kind: str, name: str, options: dict[str, Any], what: str, registry: Registry | None = None) -> None:
    """Validate a component named inside another component's options (e.g. a filter's ``reranker`` and its
    ``reranker_options``) when the recipe loads, so a typo fails before any model runs.

    Args:
        kind: the component kind (``rerankers``, ``retrievers``, ``trainers``...).
        name: the registered name.
        options: the options given for it.
        what: the option that holds ``options``, named in messages.
        registry: where ``name`` is looked up (default: the process-wide registry); pass
            :func:`registry_from` of the validator's ``info``. Its own nested names are checked against it too.

    Raises:
        ValueError: an unknown name (available names listed), or options its ``Options`` model rejects.
    """
    registry = registry if registry is not None else get_registry()
    try:
        registry.get(kind, name).Options.model_validate(options, context={"registry": registry})
    except PluginError as exc:
        raise ValueError(str(exc)) from None
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{what} for {name!r}: {problems}") from None


def unknown_name_message(kind: str, name: str, available: list[str]) -> str:
    """``unknown <kind> 'x'; available: a, b; did you mean 'y'?``"""
    singular = kind[:-1] if kind.endswith("s") else kind
    message = f"unknown {singular} {name!r}; available: {', '.join(available) or '(none)'}"
    close = difflib.get_close_matches(name, available, n=1, cutoff=0.5)
    return message + (f"; did you mean {close[0]!r}?" if close else "")


def get_plugin_manager(load_entrypoints: bool = True) -> pluggy.PluginManager:
    """A fresh plugin manager with the hookspecs added and the ``inparsx`` entry points loaded.

    An entry point that fails to import is skipped with a warning naming it and its package (kept in
    ``pm.inparsx_failures``), so one broken plugin does not take the whole CLI down.

    Raises:
        PluginError: a hook implementation with a misspelt name (pluggy's ``check_pending``).
    """
    pm = pluggy.PluginManager("inparsx")
    pm.add_hookspecs(hookspecs)
    pm.inparsx_dists, pm.inparsx_failures = {}, {}  # type: ignore[attr-defined]
    if load_entrypoints:
        _load_entrypoints(pm)
    try:
        pm.check_pending()
    except pluggy.PluginValidationError as exc:
        raise PluginError(str(exc)) from exc
    return pm


def _load_entrypoints(pm: pluggy.PluginManager) -> None:
    """Register every entry point of group ``inparsx``, one by one, remembering each one's distribution."""
    failures: dict[str, str] = pm.inparsx_failures  # type: ignore[attr-defined]
    dists: dict[str, tuple[str, str]] = pm.inparsx_dists  # type: ignore[attr-defined]
    for entry in importlib.metadata.entry_points(group="inparsx"):
        if pm.get_plugin(entry.name) is not None or pm.is_blocked(entry.name):
            continue
        package = entry.dist.metadata["Name"] if entry.dist else "?"
        version = entry.dist.version if entry.dist else "?"
        try:
            plugin = entry.load()
        except Exception as exc:  # a broken third-party plugin must not break the CLI
            failures[entry.name] = f"{package} {version}: {type(exc).__name__}: {exc}"
            warnings.warn(f"inparsx plugin {entry.name!r} ({package} {version}) failed to load: {exc}", stacklevel=2)
            continue
        pm.register(plugin, name=entry.name)
        dists[entry.name] = (package, version)


_REGISTRY: Registry | None = None


def get_registry(refresh: bool = False) -> Registry:
    """The process-wide registry (built once from the entry points); ``refresh`` rebuilds it."""
    global _REGISTRY
    if _REGISTRY is None or refresh:
        _REGISTRY = Registry(get_plugin_manager())
    return _REGISTRY


def set_registry(registry: Registry | None) -> None:
    """Replace the process-wide registry (tests use a manager with extra plugins registered by hand)."""
    global _REGISTRY
    _REGISTRY = registry


def distribution_version(name: str) -> str:
    """Installed version of a distribution, or ``?``."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "?"
