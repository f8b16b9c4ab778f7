"""Registering components by hand in tests, through the same hooks as entry-point plugins."""

from __future__ import annotations

import contextlib
import types
from collections.abc import Iterator

import inparsx
from inparsx.plugins import KINDS, Registry, get_plugin_manager, set_registry


def plugin_module(name: str, **components: list[type]) -> types.ModuleType:
    """A plugin object whose hooks register ``components`` by kind: ``plugin_module("p", retrievers=[Cls])``.

    Raises:
        ValueError: an unknown kind.
    """
    module = types.ModuleType(name)
    for kind, classes in components.items():
        if kind not in KINDS:
            raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")

        def hook(register, _classes=tuple(classes)):
            for cls in _classes:
                register(cls)

        setattr(module, KINDS[kind], inparsx.hookimpl(hook))
    return module


@contextlib.contextmanager
def registered(*plugins: types.ModuleType) -> Iterator[Registry]:
    """Within the block, the process-wide registry holds the entry-point plugins plus ``plugins``."""
    with _registry_of(get_plugin_manager(), plugins) as registry:
        yield registry


@contextlib.contextmanager
def only(*plugins: types.ModuleType) -> Iterator[Registry]:
    """Within the block, the process-wide registry holds ``plugins`` alone (e.g. ``inparsx.retrieve.plugins``),
    without loading any entry point: tests of one stage that must not depend on the others."""
    with _registry_of(get_plugin_manager(load_entrypoints=False), plugins) as registry:
        yield registry


@contextlib.contextmanager
def _registry_of(pm, plugins: tuple[types.ModuleType, ...]) -> Iterator[Registry]:
    for plugin in plugins:
        pm.register(plugin, name=plugin.__name__)
    registry = Registry(pm)
    set_registry(registry)
    try:
        yield registry
    finally:
        set_registry(None)
