"""This process's place in a run and the device it computes on: the one module that reads ``WORLD_SIZE``,
``RANK`` and ``LOCAL_RANK`` and asks torch which accelerators are there.

**Place in a run.** ``accelerate launch`` and torchrun start one process per device and tell each its place
through ``WORLD_SIZE`` (processes), ``RANK`` (this one, from 0) and ``LOCAL_RANK`` (this one on its machine):
the environment accelerate's ``PartialState`` reads too (and, for a multi-CPU run, writes). A single process
(none of them set) learns that without importing torch or accelerate. Once accelerate has set up a run of
several processes in this process (a Hugging Face ``Trainer``, or :func:`process_state` here), its
``PartialState`` answers instead. A barrier (:func:`wait_for_processes`) and a contiguous split of work
(:func:`split_between_processes`) are accelerate's, set up on first use: every process must reach them.

**Device.** :func:`resolve_device` turns a ``device`` option (``auto``, ``cpu``, ``cuda``, ``cuda:<n>``,
``mps``) into a ``torch.device``; ``auto`` is :func:`process_device`: accelerate's device where it has set up
the run, else this process's GPU (``cuda:<LOCAL_RANK>`` under data parallelism, ``cuda`` alone), else Apple's
``mps``, else ``cpu`` (the order of accelerate's ``PartialState.default_device`` for these three).

**Precision** is not decided here: the one ``auto`` rule lives in :mod:`inparsx.precision`
(:func:`~inparsx.precision.resolve_precision`, :func:`~inparsx.precision.resolve_dtype`), which takes the
device chosen here. torch and accelerate are imported inside the functions.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from inparsx.errors import InparsxError

if TYPE_CHECKING:
    import torch

T = TypeVar("T")


@dataclass(frozen=True)
class GPU:
    """A CUDA GPU this process sees: its ``index`` (as torch numbers it, after ``CUDA_VISIBLE_DEVICES``), its
    ``name`` and its memory (``total_memory``, bytes)."""

    index: int
    name: str
    total_memory: int


def _env_int(name: str, default: int, least: int) -> int:
    """``int(os.environ[name])``, ``default`` when unset or empty.

    Raises:
        InparsxError: a value that is not a whole number of at least ``least`` (one line naming the variable).
    """
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value)
    except ValueError:
        number = least - 1
    if number < least:
        raise InparsxError(
            f"environment variable {name} = {value!r}: expected a whole number >= {least} "
            "(accelerate launch and torchrun set it)"
        )
    return number


def _set_up_state() -> Any:
    """accelerate's ``PartialState`` when this process already set up a run of several processes with it, else
    ``None``. Imports nothing: without ``accelerate.state`` in ``sys.modules`` nothing was set up."""
    module = sys.modules.get("accelerate.state")
    if module is None or not module.PartialState._shared_state:  # the Borg's shared dict: empty until set up
        return None
    state = module.PartialState()
    return state if state.num_processes > 1 else None


def world_size() -> int:
    """How many processes this run has: accelerate's count where it set up the run, else ``WORLD_SIZE``
    (``accelerate launch``/torchrun), else 1.

    Raises:
        InparsxError: ``WORLD_SIZE`` set to something other than a whole number >= 1.
    """
    state = _set_up_state()
    return int(state.num_processes) if state is not None else _env_int("WORLD_SIZE", 1, 1)


def rank() -> int:
    """This process's index in the run, from 0: accelerate's ``process_index`` where it set up the run, else
    ``RANK``, else 0.

    Raises:
        InparsxError: ``RANK`` set to something other than a whole number >= 0.
    """
    state = _set_up_state()
    return int(state.process_index) if state is not None else _env_int("RANK", 0, 0)


def local_rank() -> int:
    """This process's index on its machine, from 0 (which of the machine's GPUs it drives): accelerate's
    ``local_process_index`` where it set up the run, else ``LOCAL_RANK``, else 0.

    Raises:
        InparsxError: ``LOCAL_RANK`` set to something other than a whole number >= 0.
    """
    state = _set_up_state()
    return int(state.local_process_index) if state is not None else _env_int("LOCAL_RANK", 0, 0)


def is_distributed() -> bool:
    """Whether this process is one of several (:func:`world_size` > 1)."""
    return world_size() > 1


def is_main_process() -> bool:
    """``False`` in a process other than the first of ``accelerate launch``/torchrun: the main process alone
    prepares run folders, writes shared files and prints (accelerate's ``is_main_process`` where it set up
    the run, else ``RANK`` == 0)."""
    state = _set_up_state()
    return bool(state.is_main_process) if state is not None else rank() == 0


def process_state() -> Any:
    """accelerate's ``PartialState`` of this run of several processes, set up on first use (it joins the
    process group: every process of the run must call it, the ``gloo`` backend on CPUs, ``nccl`` on GPUs);
    ``None`` in a single process, without importing accelerate."""
    state = _set_up_state()
    if state is not None:
        return state
    if _env_int("WORLD_SIZE", 1, 1) <= 1:
        return None
    from accelerate import PartialState

    return PartialState(cpu=not cuda_available())


def wait_for_processes() -> None:
    """A barrier across the processes of ``accelerate launch``/torchrun (accelerate's
    ``PartialState.wait_for_everyone``); nothing in a single process."""
    state = process_state()
    if state is not None:
        state.wait_for_everyone()


def split_between_processes(items: Sequence[T]) -> list[T]:
    """This process's contiguous share of ``items`` (accelerate's ``PartialState.split_between_processes``: the
    first processes take one more when the count does not divide); all of them in a single process."""
    state = process_state()
    if state is None:
        return list(items)
    with state.split_between_processes(list(items)) as part:
        return list(part)


def cuda_available() -> bool:
    """Whether torch sees a usable CUDA GPU (``torch.cuda.is_available()``)."""
    import torch

    return bool(torch.cuda.is_available())


def mps_available() -> bool:
    """Whether torch can compute on Apple's Metal GPU (``torch.backends.mps.is_available()``)."""
    import torch

    return bool(torch.backends.mps.is_available())


def cuda_gpus() -> list[GPU]:
    """The CUDA GPUs this process sees, by torch's index (empty without CUDA)."""
    import torch

    if not cuda_available():
        return []
    return [
        GPU(i, torch.cuda.get_device_name(i), int(torch.cuda.get_device_properties(i).total_memory))
        for i in range(torch.cuda.device_count())
    ]


def process_device() -> torch.device:
    """The device this process computes on when a ``device`` option says ``auto``: accelerate's device where it
    set up the run; else a GPU (``cuda:<local rank>`` in a run of several processes, ``cuda`` alone); else
    ``cpu`` in a run of several processes; else ``mps`` where available; else ``cpu`` (always plain ``cpu``, never
    accelerate's ``cpu:0``). Sets nothing up."""
    import torch

    state = _set_up_state()
    if state is not None:  # accelerate names a CPU process's device cpu:0; one CPU has no index to give
        device: torch.device = state.device
        return torch.device("cpu") if device.type == "cpu" else device
    several = is_distributed()
    if cuda_available():
        return torch.device("cuda", local_rank()) if several else torch.device("cuda")
    if not several and mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def check_device_option(option: str) -> str:
    """``option`` when it is a ``device`` value (``auto``, ``cpu``, ``cuda``, ``cuda:<n>``, ``mps``), for
    options' validators; imports nothing, so a recipe validates without torch.

    Raises:
        ValueError: anything else (``device 'gpu': expected auto, cpu, cuda, cuda:<n> or mps``).
    """
    base, _, index = option.partition(":")
    if base not in ("auto", "cpu", "cuda", "mps") or (index and not (base == "cuda" and index.isdigit())):
        raise ValueError(f"device {option!r}: expected auto, cpu, cuda, cuda:<n> or mps")
    return option


def resolve_device(option: str, key: str = "device") -> torch.device:
    """A ``torch.device`` for a ``device`` option (``auto``, ``cpu``, ``cuda``, ``cuda:<n>``, ``mps``); ``auto``
    is :func:`process_device`.

    Raises:
        InparsxError: a value that is none of those, or a GPU asked for that this machine does not have
            (``key``, e.g. ``rerank.device``, is named).
    """
    import torch

    try:
        check_device_option(option)
    except ValueError as exc:
        raise InparsxError(f"{key}: {exc}") from None
    if option == "auto":
        return process_device()
    base, _, index = option.partition(":")
    if base == "cuda":
        if not cuda_available():
            raise InparsxError(f"{key} = {option!r}: no CUDA GPU is available here; use 'cpu' or 'auto'")
        count = torch.cuda.device_count()
        if index and int(index) >= count:
            raise InparsxError(f"{key} = {option!r}: this machine has {count} CUDA GPU(s), cuda:0 to cuda:{count - 1}")
    if base == "mps" and not mps_available():
        raise InparsxError(f"{key} = {option!r}: Apple's MPS is not available here; use 'cpu' or 'auto'")
    return torch.device(option)
