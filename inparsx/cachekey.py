"""What decides whether a stage's folder holds its computation: the stage's fingerprint and its cache key.

A stage's **fingerprint** (:func:`stage_fingerprint`) hashes what the recipe says of the stage alone: its filled
options, the dataset (name, evaluated split, corpus fingerprint, the evaluated sample), its seed, and the tag of
``[estimate]``'s held-out documents for a training-side stage. It does not chain the stages before it: a
``[retrieve]`` option does not change the fingerprint of ``tune``.

A stage's **cache key** (:func:`stage_cache_key`) is the fingerprint plus the **content fingerprints of the
artifacts the stage reads** (:attr:`inparsx.stages.StageSpec.reads`, :data:`STAGE_READS`, :func:`stage_inputs`): the
bytes of each file, and of each
file of a folder (a trained model) with its relative name, so a hand-edited ``generate/queries.jsonl`` re-runs
the filter stage, a retrained model re-runs the rerank stage, and a stage whose inputs did not change (a
re-run stage that wrote the same bytes) is skipped. Since a stage's inputs exist only once the earlier stages
ran, the runner computes each key just before it decides to skip or run the stage. Equal keys mean equal
outputs: the runner skips a finished folder with its key, a shared stage store (:mod:`inparsx.store`) keys its
entries by it, and components key the caches they keep in their folder by it
(:attr:`inparsx.context.ComponentContext.cache_key`).

Hashing is streamed in 1 MiB blocks, and each file's hash is cached by ``(path, size, mtime_ns)`` in the reading
stage's markers (:data:`HASHES`), so an unchanged 400 MB model is not read again on every run.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from inparsx.artifacts import TRAINED_MODEL, TUNED_INSTRUCTION, TUNED_MODEL, TUNED_PROGRAM, Artifact
from inparsx.io import storage_errors
from inparsx.stages import STAGE_SPECS, Read, as_input

STAGE_READS: dict[str, tuple[Read, ...]] = {spec.name: spec.reads for spec in STAGE_SPECS}
"""Stage -> the earlier stages' artifacts its runner and components read (:attr:`inparsx.stages.StageSpec.reads`,
see :data:`~inparsx.stages.Read`). A model or program an option names with ``@stage`` is read too
(:data:`REFERABLE`). The key of a stage covers exactly these."""

OPTIONS_READ: dict[str, tuple[str, ...]] = {spec.name: spec.options_read for spec in STAGE_SPECS if spec.options_read}
"""Stage -> the other stages whose options it reads (:attr:`inparsx.stages.StageSpec.options_read`: the estimate
reranks as ``[rerank]`` says and tests as ``[evaluate]`` says): their fingerprints, and the ``@stage`` values of
their options, enter its key."""

REFERABLE: tuple[Artifact, ...] = (TUNED_MODEL, TUNED_PROGRAM, TUNED_INSTRUCTION, TRAINED_MODEL)
"""What an option value ``"@<stage>"`` may resolve to (``model = "@train"``, ``program = "@tune"``): the key
covers those of that stage; a stage none of them belongs to counts with its whole folder."""

HELD_OUT_STAGES = ("tune", "generate", "triples", "train")
"""The stages whose dataset is the collection without ``[estimate]``'s held-out documents (the training
side): no held-out document is ever sampled for generation, mined as a negative or trained on."""

DONE_MARKER = ".inparsx-done.json"
"""A finished stage folder's completion marker: ``{"fingerprint", "key", "hashes", "seconds", ...}``."""
STARTED_MARKER = ".inparsx-started.json"
"""A stage folder's marker written before the stage runs: ``{"fingerprint", "key", "hashes"}``; a folder whose
marker carries another key is cleared before the stage runs again."""
MARKERS = (DONE_MARKER, STARTED_MARKER)

HASHES = "hashes"
"""The key of a marker holding the content hashes of the files the stage read: ``{path: [size, mtime_ns,
sha256]}`` (paths relative to the run directory where they lie in it)."""

ABSENT = "absent"
"""The content fingerprint of a path that does not exist."""


def read_marker(path: Path) -> dict[str, Any]:
    """The contents of a marker file (:data:`DONE_MARKER`, :data:`STARTED_MARKER`), ``{}`` when it is missing,
    unreadable or not JSON: a folder without a valid marker counts as not finished (or not started)."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def stage_fingerprint(recipe: Any, stage: str, previous: str = "", dataset_fingerprint: str = "") -> str:
    """sha256 (16 hex digits) of the stage's filled options, the dataset and the stage's seed.

    The dataset part is its name, the evaluated split and ``dataset_fingerprint`` (the corpus fingerprint, plus
    :func:`holdout_tag` in a run), plus ``eval_queries`` and its seed when a sample is evaluated. The seed is the
    stage's own (``[stage] seed``) when pinned, else the recipe's
    (:meth:`~inparsx.recipe.Recipe.stage_seed`): the pinned key is not part of the options, so pinning the
    recipe's own value keeps the fingerprint. ``previous`` is hashed too (``""`` in a run: the stages before
    this one enter its cache key through what it reads, :func:`stage_cache_key`).
    """
    config = recipe.dataset
    sample = [config.eval_queries, config.sample_seed] if config.eval_queries is not None else []
    options = recipe.filled().get(stage)
    if isinstance(options, dict):
        options = {key: value for key, value in options.items() if key != "seed"}
    payload = json.dumps(
        {
            "stage": stage,
            "options": options,
            "seed": recipe.stage_seed(stage),
            "dataset": [config.name, config.eval_split, dataset_fingerprint, *sample],
            "previous": previous,
        },
        sort_keys=True,
    )
    return _short(payload)


def stage_fingerprints(recipe: Any, corpus: str, stages: list[str] | None = None) -> dict[str, str]:
    """The fingerprint of every stage of ``recipe`` (or of ``stages``), as :func:`inparsx.pipeline.run_recipe`
    computes it (:func:`stage_fingerprint`, the held-out tag included): what the recipe says of each stage,
    without its inputs. The sweep compares them with a run's markers to tell a run made with other settings.

    Args:
        recipe: a validated recipe.
        corpus: the collection's fingerprint (``Dataset.fingerprint()``).
        stages: the stages to cover (default: all of the recipe's).
    """
    return {
        stage: stage_fingerprint(recipe, stage, "", corpus + holdout_tag(recipe, stage))
        for stage in (stages if stages is not None else list(recipe.stages))
    }


def planned_keys(recipe: Any, corpus: str, order: Iterable[str]) -> dict[str, str]:
    """What tells the computations of ``recipe``'s stages apart before any ran (a sweep's plan of what its
    store will share): each stage's fingerprint with the planned keys of the stages it reads
    (:func:`stage_inputs`), on the premise that equal keys give equal outputs. Not the runner's key, which
    hashes the inputs' contents once they exist.

    Args:
        recipe: a validated recipe.
        corpus: the collection's fingerprint.
        order: the pipeline order of stage names.
    """
    order = list(order)
    prints = stage_fingerprints(recipe, corpus)
    found: dict[str, str] = {}
    for stage in sorted(recipe.stages, key=lambda name: order.index(name) if name in order else len(order)):
        upstream = {owner for owner, _ in stage_inputs(recipe, stage, order)} & found.keys()
        options = {other: prints[other] for other in OPTIONS_READ.get(stage, ()) if other in prints}
        found[stage] = _short(
            json.dumps(
                {
                    "fingerprint": prints[stage],
                    "options": options,
                    "after": {name: found[name] for name in sorted(upstream)},
                },
                sort_keys=True,
            )
        )
    return found


def holdout_tag(recipe: Any, stage: str) -> str:
    """What ``[estimate]``'s held-out documents add to the dataset part of a training-side stage
    (:data:`HELD_OUT_STAGES`): their count, and their seed when it is not the stage's own; ``""`` otherwise.
    (Later stages follow through the content of what they read.)"""
    if "estimate" not in recipe.stages or stage not in HELD_OUT_STAGES:
        return ""
    seed, count = recipe.stage_seed("estimate"), recipe.stages["estimate"].settings.docs
    return f"+holdout{count}" + ("" if seed == recipe.stage_seed(stage) else f"s{seed}")


def references(recipe: Any, stage: str) -> list[str]:
    """The stages that ``"@<stage>"`` values of ``stage``'s own and its components' options name, and those of
    the stages whose options it reads (:data:`OPTIONS_READ`), sorted. Only a table's own values count (PATH's
    inner recipe names its own inner stages)."""
    found: set[str] = set()
    for name in (stage, *OPTIONS_READ.get(stage, ())):
        config = recipe.stages.get(name)
        if config is None:
            continue
        own = [config.settings] if config.settings is not None else []
        for options in [*own, *(options for _, options in config.components)]:
            found.update(value[1:] for _, value in options if isinstance(value, str) and value.startswith("@"))
    return sorted(found)


def stage_inputs(recipe: Any, stage: str, order: Iterable[str]) -> list[tuple[str, str]]:
    """What ``stage`` reads under ``recipe``, as ``(owner stage, file)`` pairs in a stable order: its
    :data:`STAGE_READS` resolved against the recipe's stages before it (``order``: the pipeline order), and
    what its ``@stage`` values name (:func:`references`, :data:`REFERABLE`; ``""`` as the file: the whole
    folder)."""
    order = list(order)
    earlier = [s for s in order[: order.index(stage)] if s in recipe.stages] if stage in order else []
    found: list[tuple[str, str]] = []
    for read in STAGE_READS.get(stage, ()):
        chosen = as_input(read).chosen(recipe.stages)
        if chosen is None:
            continue
        owners = earlier if chosen.stage is None else [chosen.stage]
        found.extend((owner, chosen.file) for owner in owners)
    for target in references(recipe, stage):
        files = [a.file for a in REFERABLE if a.stage == target]
        found.extend((target, file) for file in files or [""])
    return list(dict.fromkeys(found))


def stage_cache_key(
    fingerprint: str,
    inputs: dict[str, Path],
    run_dir: Path,
    cache: dict[str, Any],
    options_read: dict[str, str] | None = None,
) -> tuple[str, dict[str, Any]]:
    """The key a stage is skipped, stored and cached by: sha256 (16 hex digits) of its ``fingerprint``, the
    fingerprints of the stages whose options it reads (``options_read``) and the :func:`content_fingerprint`
    of each of its ``inputs`` (``{"<stage>/<file>": path}``, :func:`stage_inputs`; a missing one counts as
    :data:`ABSENT`).

    Args:
        fingerprint: the stage's :func:`stage_fingerprint`.
        inputs: what it reads, by name.
        run_dir: the run directory (the hashes' paths are relative to it where they lie in it).
        cache: the :data:`HASHES` of the stage's markers, ``{path: [size, mtime_ns, sha256]}``.
        options_read: stage -> fingerprint, for :data:`OPTIONS_READ`.

    Returns:
        ``(key, hashes)``: the key, and the hashes of the files read this time (for the markers).
    """
    hashes: dict[str, Any] = {}
    contents = {name: content_fingerprint(Path(path), run_dir, cache, hashes) for name, path in sorted(inputs.items())}
    payload = json.dumps(
        {"fingerprint": fingerprint, "options": options_read or {}, "inputs": contents}, sort_keys=True
    )
    return _short(payload), hashes


def content_fingerprint(path: Path, run_dir: Path, cache: dict[str, Any], hashes: dict[str, Any]) -> str:
    """sha256 (16 hex digits) of a file's bytes, or of a folder's files (relative names, sizes and contents;
    the runner's markers left out); :data:`ABSENT` when ``path`` does not exist. A file whose size and
    modification time (ns) match its entry in ``cache`` is not read again; every file hashed is added to
    ``hashes``.

    Raises:
        StorageError: a file cannot be read (permission denied...).
    """
    if path.is_file():
        return _file_hash(path, run_dir, cache, hashes)[:16]
    if not path.is_dir():
        return ABSENT
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file() and p.name not in MARKERS):
        rel = item.relative_to(path).as_posix()
        digest.update(f"{rel} {item.stat().st_size} {_file_hash(item, run_dir, cache, hashes)}\n".encode())
    return digest.hexdigest()[:16]


def _file_hash(path: Path, run_dir: Path, cache: dict[str, Any], hashes: dict[str, Any]) -> str:
    """The sha256 of ``path``'s bytes, from ``cache`` when its size and mtime (ns) match, else streamed."""
    name = _cache_name(path, run_dir)
    with storage_errors(path):
        stat = path.stat()
        entry = cache.get(name)
        if isinstance(entry, list) and len(entry) == 3 and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
            digest = str(entry[2])
        else:
            sha = hashlib.sha256()
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    sha.update(block)
            digest = sha.hexdigest()
    hashes[name] = [stat.st_size, stat.st_mtime_ns, digest]
    return digest


def _cache_name(path: Path, run_dir: Path) -> str:
    try:
        return Path(os.path.abspath(path)).relative_to(os.path.abspath(run_dir)).as_posix()
    except ValueError:
        return os.path.abspath(path)


def _short(payload: str) -> str:
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
