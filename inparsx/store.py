"""The shared stage store: finished stage folders kept by cache key, so that runs which compute the same stage
(the BM25 run of every variant of a sweep, one expensive generation for three training seeds) compute it once.

``inparsx run --store DIR`` (and ``inparsx sweep``, which passes its store to every run) consults the store
before a stage runs. The key of an entry is the stage and its cache key as the runner computes it just before
the stage (:func:`inparsx.cachekey.stage_cache_key`: its options and the contents of what it reads), so two
stages share an entry exactly when the runner would skip one given the other's folder. For each stage the
runner:

1. takes the entry's lock, ``DIR/.locks/<stage>-<key>.lock`` (an OS file lock through ``filelock``,
   released by the operating system when its process ends in any way), waiting while another process holds
   it: that process is computing the same stage, and says so in ``<lock>.json``;
2. if the entry ``DIR/<stage>-<key>/`` is finished (its completion marker holds the key),
   puts a copy of it in the run directory: files are hard links where the file system allows (no space
   used), else copies; the stage is not run;
3. otherwise runs the stage in the run directory as usual (a folder left by a killed run with the same
   key resumes) and publishes the finished folder: a linked copy under a temporary name, renamed to
   the entry.

An entry is never changed in place: files a stage writes are written under a temporary name and renamed
(:func:`inparsx.io.atomic_write`), which replaces a run's link and leaves the entry's file alone. A store can
be deleted at any time between runs: it holds copies only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from inparsx.cachekey import DONE_MARKER, read_marker
from inparsx.errors import StorageError
from inparsx.io import storage_errors, write_json
from inparsx.progress import console

LOCKS = ".locks"


class StageStore:
    """Finished stage folders by ``(stage, key)`` under ``root`` (see the module docstring).

    Args:
        root: the store's folder (created on first use); on a shared file system for runs on several machines.
    """

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def entry(self, stage: str, key: str) -> Path:
        """The folder of the entry ``(stage, key)``: ``<root>/<stage>-<key>``."""
        return self.root / f"{stage}-{key}"

    def ready(self, stage: str, key: str) -> bool:
        """Whether the entry is finished: its completion marker holds ``key``."""
        return read_marker(self.entry(stage, key) / DONE_MARKER).get("key") == key

    @contextlib.contextmanager
    def claim(self, stage: str, key: str, run_dir: Path | None = None) -> Iterator[None]:
        """Hold the entry's lock for the block, waiting (one line says for whom) while another process holds it.

        Raises:
            StorageError: the lock file cannot be created (permission denied, a path that is a file...).
        """
        from filelock import FileLock, Timeout

        from inparsx.lock import holder_note, read_holder_file

        path = self.root / LOCKS / f"{stage}-{key}.lock"
        note = path.with_name(path.name + ".json")
        with storage_errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(path, timeout=-1, thread_local=False)
        try:
            try:
                lock.acquire(timeout=0)
            except Timeout:
                holder = read_holder_file(note)
                who = f"pid {holder['pid']}" if "pid" in holder else "another process"
                where = f" for {holder['run_dir']}" if holder.get("run_dir") else ""
                console.print(
                    f"{stage}: waiting for {who}{where}, which is computing the same stage ({self.entry(stage, key)})",
                    markup=False,
                )
                lock.acquire()
        except OSError as exc:
            raise StorageError.from_os_error(exc, path) from exc
        try:
            write_json(note, {**holder_note(), "run_dir": str(run_dir) if run_dir is not None else ""})
            yield
        finally:
            note.unlink(missing_ok=True)
            lock.release()

    def take(self, stage: str, key: str, folder: Path) -> None:
        """Replace ``folder`` with a linked copy of the finished entry; its completion marker says where it came
        from (``"from_store"``). Hold :meth:`claim` around it.

        Raises:
            StorageError: the run directory cannot be written.
        """
        source = self.entry(stage, key)
        with storage_errors(folder):
            folder.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".taking", dir=folder.parent))
            try:
                shutil.rmtree(staging)
                link_tree(source, staging)
                if folder.exists():
                    shutil.rmtree(folder)
                os.rename(staging, folder)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        marker = read_marker(folder / DONE_MARKER)
        write_json(folder / DONE_MARKER, {**marker, "from_store": str(source)})

    def publish(self, stage: str, key: str, folder: Path) -> Path:
        """Make the finished ``folder`` the entry ``(stage, key)`` (a linked copy under a temporary name,
        renamed; an older entry is replaced). Hold :meth:`claim` around it. Returns the entry's folder.

        Raises:
            StorageError: the store cannot be written (the run's own folder is complete either way).
        """
        target = self.entry(stage, key)
        with storage_errors(self.root):
            self.root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=self.root))
            try:
                shutil.rmtree(staging)
                link_tree(folder, staging)
                if target.exists():
                    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=self.root))
                    os.rename(target, old / "entry")
                    shutil.rmtree(old)
                os.rename(staging, target)
            finally:
                shutil.rmtree(staging, ignore_errors=True)
        return target

    def entries(self) -> list[dict[str, Any]]:
        """Every finished entry: ``{"stage", "key", "path", "seconds"}`` (sorted by folder name)."""
        found = []
        for path in sorted(self.root.glob("*-*")) if self.root.is_dir() else []:
            stage, _, key = path.name.rpartition("-")
            marker = read_marker(path / DONE_MARKER)
            if path.is_dir() and marker.get("key") == key:
                found.append({"stage": stage, "key": key, "path": str(path), "seconds": marker.get("seconds")})
        return found


def link_tree(source: Path, target: Path) -> None:
    """Copy the folder ``source`` to ``target`` (which must not exist), each file a hard link to the original
    where the file system allows, else a copy (another device, a file system without links); symbolic links
    are copied as links."""
    shutil.copytree(source, target, symlinks=True, copy_function=_link_or_copy)


def _link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
