"""A persistent, incremental cache of document embeddings, per model and per corpus.

Layout: ``cache_home()/embeddings/<model key>/<corpus key>/part-*.npz``, each shard holding ``keys`` (the
sha1 of each document's text, so an edited document is never served a stale vector) and ``vectors``
(float32, one row per key). New embeddings are appended as a new shard written under a temporary name and
renamed when complete, so a crash loses nothing already cached and two processes never clash.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from inparsx.artifacts import cache_home

_counter = itertools.count()
MAX_SHARDS = 64
"""More shards than this are merged into one when the cache is opened."""


def text_key(text: str) -> str:
    """The cache key of a document text: its sha1 in hex (40 characters)."""
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def model_cache_key(model: str, settings: dict[str, Any]) -> str:
    """A file-name-safe key naming a model's exact weights and the settings that change its embeddings.

    A local folder is identified by its absolute path plus the names, sizes and modification times of its
    files (changed weights -> new key, without hashing gigabytes); a hub id by the id plus the commit of its
    locally cached snapshot, when there is one. ``settings`` (max length, dtype...) are hashed in too.
    """
    path = Path(model)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
        identity = [str(path.resolve())] + [
            f"{p.relative_to(path)}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files
        ]
    else:
        identity = [model, _hub_revision(model)]
    digest = hashlib.sha256(repr((identity, sorted(settings.items()))).encode()).hexdigest()[:16]
    return f"{re.sub(r'[^A-Za-z0-9._-]', '_', path.name or model)[-60:]}-{digest}"


def _hub_revision(model: str) -> str:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(model, local_files_only=True)).name
    except Exception:  # noqa: BLE001 - not cached locally or not a hub id: the id alone is the key
        return ""


class EmbeddingCache:
    """Document vectors by text key, backed by shards in ``folder`` (see the module docstring); with
    ``folder=None``, kept in memory only."""

    def __init__(self, folder: str | Path | None):
        self.folder = Path(folder) if folder is not None else None
        self._table: dict[str, Any] | None = None
        self.hits = 0
        self.misses = 0

    @classmethod
    def for_model(cls, model_key: str, corpus_key: str) -> EmbeddingCache:
        """The cache of ``model_key`` over corpus ``corpus_key`` under ``cache_home()/embeddings``."""
        return cls(cache_home() / "embeddings" / model_key / corpus_key)

    def _load(self) -> dict[str, Any]:
        import numpy as np

        if self._table is None:
            self._table = {}
            shards = sorted(self.folder.glob("part-*.npz")) if self.folder else []
            for shard in shards:
                try:
                    with np.load(shard) as data:
                        self._table.update(zip(data["keys"].tolist(), data["vectors"]))
                except FileNotFoundError:  # merged away by another process meanwhile: its vectors are elsewhere
                    continue
            if len(shards) > MAX_SHARDS:
                self._compact(shards)
        return self._table

    def _compact(self, shards: list[Path]) -> None:
        """Merge every vector into one new shard, then remove the old shards (written first, so nothing is lost)."""
        keys = list(self._table or {})
        self._write(keys, [self._table[k] for k in keys])  # type: ignore[index]
        for shard in shards:
            shard.unlink(missing_ok=True)

    def __len__(self) -> int:
        return len(self._load())

    def missing(self, keys: Iterable[str]) -> list[str]:
        """The keys (deduplicated, in first-seen order) that have no cached vector."""
        table = self._load()
        return [k for k in dict.fromkeys(keys) if k not in table]

    def get(self, keys: Sequence[str]):
        """A float32 matrix (len(keys), dim) of cached vectors; every key must be present (``missing`` first).

        Raises:
            KeyError: a key with no cached vector.
        """
        import numpy as np

        table = self._load()
        return np.stack([table[k] for k in keys]).astype(np.float32, copy=False)

    def add(self, keys: Sequence[str], vectors) -> None:
        """Store ``vectors`` (n, dim) for ``keys`` (n) as a new shard, written atomically."""
        import numpy as np

        vectors = np.asarray(vectors, dtype=np.float32)
        self._load().update(zip(keys, vectors))
        if not len(keys) or self.folder is None:
            return
        self._write(list(keys), vectors)

    def _write(self, keys: list[str], vectors) -> None:
        import numpy as np

        assert self.folder is not None
        self.folder.mkdir(parents=True, exist_ok=True)
        name = f"part-{time.time_ns()}-{os.getpid()}-{next(_counter)}.npz"
        tmp = self.folder / f".{name}.tmp"
        with open(tmp, "wb") as handle:
            np.savez(handle, keys=np.array(keys), vectors=np.asarray(vectors, dtype=np.float32))
        os.replace(tmp, self.folder / name)
