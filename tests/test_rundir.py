"""Trusting the run directory: one run at a time (a second exits 2 naming the holder), a killed run's lock does
not block, unique temporary names, and OS failures (permission denied, disk full, a missing folder, a path that
is a file) as one line with exit code 2 and nothing finished lost."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from inparsx import io as inparsx_io
from inparsx.cli.main import main
from inparsx.io import ResumableJsonl, atomic_write, write_json
from inparsx.lock import HOLDER_FILE
from inparsx.pipeline import DONE_MARKER, STARTED_MARKER

# A run whose retrieve stage waits for a "go" file: a run that is still going when the test needs it to be.
# With FULL_DISK=<folder>, every file written atomically in that folder fails with ENOSPC, as on a full disk.
SLOW_RUN = textwrap.dedent("""\
    import errno, os, sys, time, types
    from pathlib import Path
    from inparsx import io, pipeline
    from inparsx.io import write_json
    from inparsx.evaluate.base import Evaluator
    from inparsx.plugins import Options
    from inparsx.retrieve.base import Retriever
    from inparsx.testing.plugins import plugin_module, registered

    class Wait(Retriever):
        name = "wait"
        class Options(Options):
            go: str = ""

    class WaitEvaluator(Evaluator):
        name = "wait"
        Options = Wait.Options

    def run_stage(ctx):
        go = Path(ctx.component.options.go)
        while ctx.component.options.go and not go.exists():
            time.sleep(0.02)
        write_json(ctx.dir / "out.json", {"stage": ctx.stage, "pid": __import__("os").getpid()})

    class FullDisk:
        def __init__(self, handle):
            self.handle = handle
        def __getattr__(self, name):
            return getattr(self.handle, name)
        def __enter__(self):
            return self
        def __exit__(self, *exc):
            self.handle.close()
        def write(self, text):
            raise OSError(errno.ENOSPC, "No space left on device")

    def fdopen(fd, *args, real=os.fdopen, **kwargs):
        handle = real(fd, *args, **kwargs)
        full = os.environ.get("FULL_DISK")
        return FullDisk(handle) if full and full in os.readlink(f"/proc/self/fd/{fd}") else handle

    io.os.fdopen = fdopen
    runners = types.ModuleType("slow_runners")
    runners.run_stage = run_stage
    sys.modules["slow_runners"] = runners
    for stage in ("retrieve", "evaluate"):
        pipeline.STAGE_RUNNERS[stage] = "slow_runners:run_stage"
    with registered(plugin_module("slow", retrievers=[Wait], evaluators=[WaitEvaluator])):
        from inparsx.cli.main import main
        sys.argv = ["inparsx", *sys.argv[1:]]
        main()
    """)


@pytest.fixture()
def slow_run(tmp_path: Path, scifact_small: Path):
    """``(start, run_dir, go)``: ``start()`` launches the slow run in a new process; creating ``go`` lets it finish."""
    script, recipe, run_dir, go = tmp_path / "slow.py", tmp_path / "r.toml", tmp_path / "run", tmp_path / "go"
    script.write_text(SLOW_RUN)
    recipe.write_text(
        f'[recipe]\nname = "slow"\n[dataset]\nname = "{scifact_small}"\n'
        f'[retrieve]\nuse = "wait"\ngo = "{go}"\n[evaluate]\nuse = "wait"\n'
    )

    started: list[subprocess.Popen] = []

    def start(**extra_env: str) -> subprocess.Popen:
        started.append(
            subprocess.Popen(
                [sys.executable, str(script), "run", str(recipe), "--run-dir", str(run_dir)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                env={**os.environ, "INPARSX_NO_PROGRESS": "1", **extra_env},
            )
        )
        return started[-1]

    yield start, run_dir, go
    for process in started:  # a failed test leaves no run waiting for its go file
        process.kill()
        process.wait()


def wait_for(condition, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_a_second_run_on_the_same_folder_exits_2_naming_the_holder(slow_run):
    start, run_dir, go = slow_run
    first = start()
    wait_for(lambda: (run_dir / HOLDER_FILE).exists(), first)
    began = time.monotonic()
    second = start()
    out, err = second.communicate(timeout=60)
    assert second.returncode == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert f"pid {first.pid}" in lines[0] and " since " in lines[0] and "--run-dir" in lines[0], lines[0]
    assert time.monotonic() - began < 30 and first.poll() is None  # refused at once; the first goes on
    go.touch()
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    for stage in ("retrieve", "evaluate"):
        assert json.loads((run_dir / stage / "out.json").read_text()) == {"stage": stage, "pid": first.pid}
        assert (run_dir / stage / DONE_MARKER).is_file()
    assert 'name = "slow"' in (run_dir / "recipe.toml").read_text()
    assert not list(run_dir.rglob("*.tmp")) and not (run_dir / HOLDER_FILE).exists()


def test_a_killed_runs_lock_does_not_block_the_next_run(slow_run):
    start, run_dir, go = slow_run
    killed = start()
    wait_for(lambda: (run_dir / "retrieve" / STARTED_MARKER).exists(), killed)
    killed.kill()  # SIGKILL: no clean-up at all; the lock file and the holder note stay behind
    killed.wait()
    assert (run_dir / HOLDER_FILE).exists()
    go.touch()
    rerun = start()
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    assert "resuming" not in err  # killed before retrieve wrote anything: nothing to resume
    assert json.loads((run_dir / "evaluate" / "out.json").read_text())["pid"] == rerun.pid


def test_atomic_write_gives_every_writer_its_own_temporary_name(tmp_path: Path):
    target = tmp_path / "recipe.toml"
    seen: list[list[str]] = []
    errors: list[BaseException] = []
    opened, listed = threading.Barrier(8), threading.Barrier(8)

    def writer(i: int) -> None:
        try:
            with atomic_write(target) as handle:
                opened.wait(timeout=10)  # all eight temporary files exist at once
                seen.append(sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")))
                listed.wait(timeout=10)
                handle.write(f"writer {i}\n" * 1000)
        except BaseException as exc:  # noqa: BLE001 -- reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert all(len(names) == 8 and names == seen[0] for names in seen)
    assert all(name.startswith(".recipe.toml.") for name in seen[0])
    lines = target.read_text().splitlines()
    assert len(lines) == 1000 and len(set(lines)) == 1  # one writer's complete file, never a mixture
    assert [p.name for p in tmp_path.iterdir()] == ["recipe.toml"]
    assert oct(target.stat().st_mode & 0o777) == oct(0o666 & ~inparsx_io._UMASK)


# OS failures, through the real CLI entry point (the tests run as root here, so the OS errors are simulated).

RECIPE = '[recipe]\nname = "os"\n[dataset]\nname = "{data}"\n[retrieve]\nuse = "bm25s"\n[evaluate]\nuse = "ranx"\n'


def run_main(monkeypatch, capsys, *args: str) -> tuple[int, list[str]]:
    monkeypatch.setattr(sys, "argv", ["inparsx", *args])
    with pytest.raises(SystemExit) as info:
        main()
    return info.value.code, [line for line in capsys.readouterr().err.splitlines() if line.strip()]


def one_error(lines: list[str]) -> str:
    """The single error line, which must be the last line printed (progress lines may come before it)."""
    errors = [line for line in lines if line.startswith("error")]
    assert errors == lines[-1:] and not any("Traceback" in line for line in lines), lines
    return errors[0]


@pytest.fixture()
def recipe(tmp_path: Path, scifact_small: Path) -> Path:
    path = tmp_path / "os.toml"
    path.write_text(RECIPE.format(data=scifact_small))
    return path


def test_disk_full_is_one_line_and_finished_stages_are_kept(slow_run):
    start, run_dir, go = slow_run
    go.touch()
    full = start(FULL_DISK=str(run_dir / "evaluate"))
    out, err = full.communicate(timeout=60)
    lines = err.strip().splitlines()
    assert full.returncode == 2 and one_error(lines).startswith(f"error: {run_dir / 'evaluate'}")
    assert lines[-1].endswith("no space left on device; free some space and run again (finished work is kept)")
    assert (run_dir / "retrieve" / DONE_MARKER).is_file() and (run_dir / "retrieve" / "out.json").is_file()
    assert not (run_dir / "evaluate" / DONE_MARKER).exists() and not list(run_dir.rglob("*.tmp"))
    rerun = start()  # space freed: the rerun keeps what was done
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0 and "retrieve: already done" in err, err
    assert (run_dir / "evaluate" / DONE_MARKER).is_file()


def test_disk_full_while_appending_keeps_the_records_already_written(monkeypatch, tmp_path):
    store = ResumableJsonl(tmp_path / "queries.jsonl")
    store.append([{"i": 0}, {"i": 1}])
    monkeypatch.setattr(store._handle, "write", lambda text: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full")))
    with pytest.raises(inparsx_io.StorageError, match="queries.jsonl.partial: no space left on device"):
        store.append([{"i": 2}])
    store.close()
    assert ResumableJsonl(tmp_path / "queries.jsonl").existing() == [{"i": 0}, {"i": 1}]


def test_permission_denied_is_one_line(monkeypatch, capsys, tmp_path, recipe):
    def refuse(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(Path(dir) / "x.tmp"))

    monkeypatch.setattr(inparsx_io.tempfile, "mkstemp", refuse)
    code, lines = run_main(monkeypatch, capsys, "run", str(recipe), "--run-dir", str(tmp_path / "run"))
    assert code == 2 and lines == [f"error: {tmp_path / 'run' / HOLDER_FILE}: permission denied"]


def test_run_dir_that_is_a_file_is_one_line(monkeypatch, capsys, tmp_path, recipe):
    afile = tmp_path / "results.txt"
    afile.write_text("not a folder")
    code, lines = run_main(monkeypatch, capsys, "run", str(recipe), "--run-dir", str(afile))
    assert code == 2 and lines == [f"error: {afile}: is a file, not a folder"]
    code, lines = run_main(monkeypatch, capsys, "run", str(recipe), "--run-dir", str(afile / "run"))
    assert code == 2 and len(lines) == 1 and lines[0].startswith(f"error: {afile / 'run'}: ") and "a file" in lines[0]
    assert afile.read_text() == "not a folder"


def test_stage_folder_that_is_a_file_is_one_line(monkeypatch, capsys, tmp_path, recipe):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "retrieve").write_text("in the way")
    code, lines = run_main(monkeypatch, capsys, "run", str(recipe), "--run-dir", str(run_dir))
    assert code == 2 and one_error(lines).startswith(f"error: {run_dir / 'retrieve'}: ")


@pytest.mark.parametrize(
    "args", [["report", "{missing}"], ["check", "{missing}"], ["report", "{tmp}", "--out", "{file}/r.html"]]
)
def test_missing_folders_are_one_line(monkeypatch, capsys, tmp_path, args):
    (tmp_path / "recipe.toml").write_text('[recipe]\nname = "x"\n')
    (tmp_path / "afile").write_text("")
    values = {"missing": tmp_path / "nowhere", "tmp": tmp_path, "file": tmp_path / "afile"}
    code, lines = run_main(monkeypatch, capsys, *[a.format(**values) for a in args])
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
    assert str(values["file"] if "--out" in args else values["missing"]) in lines[0]


def test_write_json_names_the_path_on_failure(tmp_path):
    (tmp_path / "afile").write_text("")
    with pytest.raises(inparsx_io.StorageError) as info:
        write_json(tmp_path / "afile" / "x.json", {})
    assert str(tmp_path / "afile") in str(info.value) and "file" in info.value.reason
