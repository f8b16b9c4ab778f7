"""The index cache: one folder per (corpus fingerprint, index layout) under ``cache_home()/indexes/``.

An index is built into a fresh temporary folder next to its final place and renamed only once it is complete
(with its ``inparsx-index.json`` metadata written last), so a crash or Ctrl-C never leaves a half-built index
under the final name. Leftover temporary folders are never read; those of dead processes are removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inparsx.artifacts import cache_home
from inparsx.io import follow_umask, write_json
from inparsx.progress import console

METADATA = "inparsx-index.json"
"""Written last into a complete index folder; an index folder without it is not used."""

_TMP = re.compile(r"^\.(?P<key>.+)\.tmp-(?P<pid>\d+)-")


def index_dir(key: str) -> Path:
    """The final folder of the index named ``key`` (``cache_home()/indexes/<key>``)."""
    return cache_home() / "indexes" / key


def index_key(kind: str, fingerprint: str, **layout: Any) -> str:
    """A readable, file-name-safe cache key: ``lucene-flat-<fingerprint>``, ``bm25s-k1=0.9-b=0.4-...-<fp>``."""
    parts = [kind, *(f"{k}={v}" if not isinstance(v, str) else v for k, v in layout.items()), fingerprint]
    return re.sub(r"[^A-Za-z0-9.=_+-]", "_", "-".join(str(p) for p in parts))


def load_metadata(folder: Path) -> dict[str, Any] | None:
    """The metadata of a complete index folder, or ``None`` when the folder is missing or incomplete."""
    try:
        return json.loads((folder / METADATA).read_text())
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def building(key: str) -> Iterator[Path]:
    """Yield an empty temporary folder to build index ``key`` in; rename it to :func:`index_dir` on success.

    The caller writes the index files; this writes the metadata (``built_at``) and renames. On an exception
    the temporary folder is removed. If another process finished the same index first, its copy is kept
    and this one is discarded.
    """
    final = index_dir(key)
    final.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_builds(final.parent, key)
    tmp = Path(tempfile.mkdtemp(prefix=f".{key}.tmp-{os.getpid()}-", dir=final.parent))
    follow_umask(tmp)  # mkdtemp makes it 0700; the published index follows the umask like any output
    try:
        yield tmp
        metadata = load_metadata(tmp) or {}
        write_json(tmp / METADATA, {**metadata, "key": key, "built_at": time.strftime("%Y-%m-%dT%H:%M:%S")})
        _publish(tmp, final)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _publish(tmp: Path, final: Path) -> None:
    if final.exists() and load_metadata(final) is None:
        console.print(f"[yellow]removing an incomplete index at {final}[/yellow]")
        shutil.rmtree(final, ignore_errors=True)
    try:
        os.rename(tmp, final)
    except OSError:
        if load_metadata(final) is None:  # not a concurrent complete build: a real failure
            raise


def remove_stale_builds(parent: Path, key: str) -> list[Path]:
    """Remove temporary build folders of ``key`` whose process is gone; returns the removed folders."""
    removed = []
    for path in parent.glob(f".{key}.tmp-*"):
        match = _TMP.match(path.name)
        if match and match.group("key") == key and not _alive(int(match.group("pid"))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
