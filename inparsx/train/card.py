"""The model card (``README.md`` in the model folder) and ``inparsx_training.json`` written beside a model.

The card follows the Hugging Face model-card layout (YAML metadata, then prose): it names the recipe, the
training data (number of triples, source file, negatives per query), the base model and every
hyper-parameter, and the device and precision it trained in (resolved, never ``auto``), so a model found on disk
says how it was made.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inparsx.io import atomic_write, write_json
from inparsx.plugins import distribution_version

if TYPE_CHECKING:
    from inparsx.context import ComponentContext
    from inparsx.train.common import HFTrainer
    from inparsx.triples.base import Triple

CARD = "README.md"
INFO = "inparsx_training.json"


def training_info(
    trainer: HFTrainer,
    triples: Sequence[Triple],
    path: Path,
    base_model: str,
    seed: int,
    metrics: dict[str, Any],
    ctx: ComponentContext | None,
) -> dict[str, Any]:
    """Everything the card states, as a JSON-ready dict."""
    from inparsx.precision import ran_with
    from inparsx.train.common import resolve_training_precision, training_device

    negatives = [len(t.neg_texts) for t in triples]
    option = trainer.options.precision
    ran = ran_with(training_device(), option, resolve_training_precision(option))
    return {
        "trainer": trainer.name,
        "recipe": ctx.run_name or None if ctx is not None else None,
        "dataset": ctx.dataset.name or None if ctx is not None else None,
        "base_model": trainer.options.base_model,
        "base_model_resolved": base_model,
        "triples_file": str(path.resolve()),
        "num_triples": len(triples),
        "num_queries": len({t.query for t in triples}),
        "num_positive_docs": len({t.pos_id for t in triples}),
        "negatives_per_query_available": min(negatives) if negatives else 0,
        "seed": seed,
        **ran,
        "options": {**trainer.options.model_dump(mode="json"), "precision": ran["precision"]},
        "metrics": {k: v for k, v in metrics.items() if k != "loss_history"},
        "loss_history": metrics.get("loss_history", []),
        "inparsx_version": distribution_version("inparsx"),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def write_model_card(
    output_dir: Path,
    trainer: HFTrainer,
    triples: Sequence[Triple],
    path: Path,
    base_model: str,
    seed: int,
    metrics: dict[str, Any],
    ctx: ComponentContext | None,
) -> Path:
    """Write ``README.md`` and ``inparsx_training.json`` into ``output_dir``; returns the card's path."""
    info = training_info(trainer, triples, path, base_model, seed, metrics, ctx)
    write_json(output_dir / INFO, info)
    with atomic_write(output_dir / CARD) as handle:
        handle.write(render_card(info, trainer.citation, trainer.usage))
    return output_dir / CARD


def render_card(info: dict[str, Any], citation: str = "", usage: str = "") -> str:
    """The card's Markdown text from :func:`training_info`'s dict."""
    options = info["options"]
    rows = "\n".join(f"| `{key}` | `{value}` |" for key, value in options.items())
    source = f"recipe `{info['recipe']}` on `{info['dataset']}`" if info["recipe"] else "`inparsx train`"
    metrics = info["metrics"]
    lines = [
        "---",
        "library_name: " + ("transformers" if info["trainer"] == "monot5" else "sentence-transformers"),
        f"base_model: {info['base_model']}",
        "tags: [inparsx, reranking, information-retrieval, synthetic-data, " + info["trainer"] + "]",
        "---",
        "",
        f"# {info['trainer']} reranker trained by inparsx",
        "",
        f"A `{info['trainer']}` model fine-tuned from `{info['base_model']}` on synthetic training triples "
        f"(no human labels), made by {source}.",
        "",
        "## Training data",
        "",
        f"- triples: {info['num_triples']} from `{info['triples_file']}`",
        f"- distinct queries: {info['num_queries']}; distinct positive documents: {info['num_positive_docs']}",
        f"- hard negatives used per query: {metrics.get('negatives_per_query', options.get('num_negatives'))} "
        f"(at least {info['negatives_per_query_available']} available in every triple)",
        "",
        "## Training",
        "",
        f"- base model: `{info['base_model']}` (loaded from `{info['base_model_resolved']}`)",
        f"- seed: {info['seed']}; optimiser steps: {metrics.get('global_step')}; "
        f"train loss: {_fmt(metrics.get('train_loss'))}; runtime: {_fmt(metrics.get('train_runtime'))} s",
        f"- device and precision: {info.get('device')}, {info.get('precision')} ({info.get('precision_reason')})",
        *([f"- warning: {metrics['loss_flat']}"] if metrics.get("loss_flat") else []),
        f"- parameters trained: {metrics.get('trainable_parameters'):,} of {metrics.get('parameters'):,}",
        f"- resumed from: {metrics.get('resumed_from') or 'no checkpoint (fresh run)'}",
        "",
        "| option | value |",
        "|---|---|",
        rows,
        "",
        "## Usage",
        "",
        usage.strip(),
        "",
        f"Made with inparsx {info['inparsx_version']} on {info['created']}.",
    ]
    if citation:
        lines += ["", "## Method", "", citation.strip()]
    return "\n".join(lines) + "\n"


def _fmt(value: Any) -> str:
    return f"{value:.4f}" if isinstance(value, float) else str(value)
