"""inparsx: synthetic-query training data and neural rerankers with no human labels.

Reproduces InPars v1/v2, Promptagator, InPars-light, InPars+ and PATH as declarative TOML recipes.
The package import is deliberately light: torch, transformers, pyserini and dspy are imported inside
the components that need them, so ``inparsx --help`` and ``inparsx plugins`` answer quickly.
"""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("inparsx")
"""Decorator for plugin hook implementations: ``@inparsx.hookimpl``."""

__all__ = ["__version__", "hookimpl"]
