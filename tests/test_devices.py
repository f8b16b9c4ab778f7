"""inparsx.devices: this process's place in a run (world size, rank, local rank, main process, barrier, split)
and its device, from a monkeypatched environment (no real second process); and a scan that fails when code
outside it reads ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` or asks torch for CUDA or MPS itself."""

from __future__ import annotations

import ast
import contextlib
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch

from inparsx import devices
from inparsx.errors import InparsxError

ROOT = Path(__file__).resolve().parent.parent
PLACE = ("WORLD_SIZE", "RANK", "LOCAL_RANK")


@pytest.fixture
def single(monkeypatch):
    """A plain single process: none of the launcher's variables, no GPU, no MPS."""
    for name in PLACE:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    monkeypatch.setattr(devices, "_set_up_state", lambda: None)
    return monkeypatch


@pytest.fixture
def second_of_two(single):
    """The second process of two, as torchrun and ``accelerate launch`` describe it."""
    single.setenv("WORLD_SIZE", "2")
    single.setenv("RANK", "1")
    single.setenv("LOCAL_RANK", "1")
    return single


class FakeState:
    """accelerate's ``PartialState`` as this module uses it: counts, indices, device, barrier, split."""

    def __init__(self, processes: int = 3, index: int = 2, local: int = 0, device: str = "cpu", cpu: bool = False):
        self.num_processes, self.process_index, self.local_process_index = processes, index, local
        self.is_main_process = index == 0
        self.device = torch.device(device)
        self.cpu = cpu
        self.barriers = 0

    def wait_for_everyone(self) -> None:
        self.barriers += 1

    @contextlib.contextmanager
    def split_between_processes(self, items):
        share = -(-len(items) // self.num_processes)
        yield items[self.process_index * share : (self.process_index + 1) * share]


def test_a_single_process(single):
    assert (devices.world_size(), devices.rank(), devices.local_rank()) == (1, 0, 0)
    assert devices.is_main_process() and not devices.is_distributed()
    assert devices.process_state() is None
    devices.wait_for_processes()  # nothing to wait for
    assert devices.split_between_processes(("a", "b", "c")) == ["a", "b", "c"]


def test_the_second_of_two_processes_from_the_environment(second_of_two):
    assert (devices.world_size(), devices.rank(), devices.local_rank()) == (2, 1, 1)
    assert devices.is_distributed() and not devices.is_main_process()


def test_the_single_process_path_imports_neither_torch_nor_accelerate():
    code = (
        "import os, sys\n"
        "for name in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK'): os.environ.pop(name, None)\n"
        "from inparsx import devices, pipeline\n"
        "assert devices.world_size() == 1 and devices.rank() == 0 and pipeline.is_main_process()\n"
        "pipeline.wait_for_processes(); devices.split_between_processes([1, 2])\n"
        "print(sorted(m for m in ('torch', 'accelerate') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == "[]"


def test_a_run_of_several_processes_sets_up_accelerate_for_the_barrier_and_the_split(second_of_two):
    import accelerate

    made: list[FakeState] = []

    def partial_state(cpu: bool = False) -> FakeState:
        made.append(FakeState(processes=2, index=1, cpu=cpu))
        return made[-1]

    second_of_two.setattr(accelerate, "PartialState", partial_state)
    devices.wait_for_processes()
    assert made[-1].barriers == 1 and made[-1].cpu  # no GPU here: accelerate is told to stay on the CPU
    assert devices.split_between_processes(["a", "b", "c"]) == ["c"]  # the second process's share


def test_accelerate_answers_once_it_has_set_up_the_run(second_of_two):
    state = FakeState(processes=3, index=2, local=0, device="cpu:0")  # as accelerate names a CPU process's device
    second_of_two.setattr(devices, "_set_up_state", lambda: state)
    assert (devices.world_size(), devices.rank(), devices.local_rank()) == (3, 2, 0)  # not the environment's 2, 1, 1
    assert not devices.is_main_process() and devices.process_state() is state
    devices.wait_for_processes()
    assert state.barriers == 1
    assert str(devices.process_device()) == "cpu"
    state.device = torch.device("cuda", 2)
    assert devices.process_device() == torch.device("cuda", 2)


def test_set_up_state_reads_accelerate_only_when_it_is_imported_and_set_up(monkeypatch):
    class Unset:
        _shared_state: dict = {}

    class Single(FakeState):
        _shared_state = {"num_processes": 1}

        def __init__(self) -> None:
            super().__init__(processes=1, index=0)

    class Several(FakeState):
        _shared_state = {"num_processes": 4}

        def __init__(self) -> None:
            super().__init__(processes=4, index=3)

    monkeypatch.delitem(sys.modules, "accelerate.state", raising=False)
    assert devices._set_up_state() is None
    for cls, expected in ((Unset, None), (Single, None), (Several, 3)):
        monkeypatch.setitem(sys.modules, "accelerate.state", types.SimpleNamespace(PartialState=cls))
        state = devices._set_up_state()
        assert (state.process_index if state is not None else None) == expected, cls


@pytest.mark.parametrize(
    ("name", "value"), [("WORLD_SIZE", "two"), ("WORLD_SIZE", "0"), ("RANK", "-1"), ("LOCAL_RANK", "1.5")]
)
def test_a_bad_launcher_variable_is_one_line_naming_it(single, name, value):
    single.setenv(name, value)
    with pytest.raises(InparsxError, match=rf"^environment variable {name} = '{value}': expected a whole number"):
        {"WORLD_SIZE": devices.world_size, "RANK": devices.rank, "LOCAL_RANK": devices.local_rank}[name]()


def test_auto_is_this_processs_device(single):
    assert devices.process_device() == torch.device("cpu")
    single.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.resolve_device("auto") == torch.device("mps")
    single.setattr(torch.cuda, "is_available", lambda: True)
    assert str(devices.resolve_device("auto")) == "cuda"  # one process: the current GPU, named as before


def test_auto_under_data_parallelism_is_the_local_ranks_gpu(second_of_two):
    second_of_two.setattr(torch.backends.mps, "is_available", lambda: True)
    assert devices.process_device() == torch.device("cpu")  # several processes do not share one MPS device
    second_of_two.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.process_device() == torch.device("cuda", 1)


def test_explicit_devices_and_the_errors(single):
    assert devices.resolve_device("cpu") == torch.device("cpu")
    with pytest.raises(InparsxError, match=r"^rerank.device: device 'gpu': expected auto, cpu, cuda, cuda:<n> or mps$"):
        devices.resolve_device("gpu", "rerank.device")
    with pytest.raises(InparsxError, match="device = 'cuda:0': no CUDA GPU is available here"):
        devices.resolve_device("cuda:0")
    with pytest.raises(InparsxError, match="'mps': Apple's MPS is not available here"):
        devices.resolve_device("mps")
    single.setattr(torch.cuda, "is_available", lambda: True)
    single.setattr(torch.cuda, "device_count", lambda: 2)
    assert devices.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(InparsxError, match="'cuda:2': this machine has 2 CUDA GPU"):
        devices.resolve_device("cuda:2")


@pytest.mark.parametrize("value", ["gpu", "cuda:x", "cpu:0", "mps:1", ""])
def test_check_device_option_refuses_what_no_torch_device_is(value):
    with pytest.raises(ValueError, match="expected auto, cpu, cuda, cuda:<n> or mps"):
        devices.check_device_option(value)


def test_no_gpus_without_cuda(single):
    assert devices.cuda_gpus() == []


def test_the_old_names_stay_importable():
    from inparsx import pipeline, precision
    from inparsx.rerank import hardware
    from inparsx.train.common import training_device

    assert pipeline.is_main_process is devices.is_main_process
    assert pipeline.wait_for_processes is devices.wait_for_processes
    assert hardware.resolve_device is devices.resolve_device
    assert hardware.resolve_dtype is precision.resolve_dtype and hardware.native_bf16 is precision.native_bf16
    assert hardware.DTYPES == precision.NAMES
    assert training_device().type in ("cpu", "cuda", "mps")


# the scan: the process's place and the accelerators are asked here only

OWNERS = {"inparsx/devices.py"}
"""Modules that may read the launcher's variables and ask torch for CUDA or MPS."""


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                found.add(id(body[0].value))
    return found


def own_device_reads(relative: str, text: str) -> list[str]:
    """``relative:line: ...`` for each read that belongs to :mod:`inparsx.devices`: a ``"WORLD_SIZE"``,
    ``"RANK"`` or ``"LOCAL_RANK"`` string (an environment key; docstrings aside) and any
    ``<x>.cuda.is_available`` / ``<x>.mps.is_available`` (called or not)."""
    tree = ast.parse(text)
    docstrings = _docstrings(tree)
    hits = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in PLACE and id(node) not in docstrings:
            hits.append(f"{relative}:{node.lineno}: reads {node.value} (use inparsx.devices)")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "is_available"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr in ("cuda", "mps")
        ):
            hits.append(f"{relative}:{node.lineno}: asks torch.{node.value.attr}.is_available (use inparsx.devices)")
    return hits


def test_no_code_outside_devices_reads_the_launchers_variables_or_asks_for_cuda():
    found = sorted((ROOT / "inparsx").rglob("*.py")) + sorted((ROOT / "plugins").rglob("*.py"))
    hits = [
        hit
        for path in found
        if (relative := path.relative_to(ROOT).as_posix()) not in OWNERS and "tests" not in Path(relative).parts
        for hit in own_device_reads(relative, path.read_text(encoding="utf-8"))
    ]
    assert len(found) > 50 and not hits, "\n".join(hits)


def test_the_scan_finds_each_kind_of_read():
    code = (
        '"""Mentions WORLD_SIZE in a docstring: fine."""\n'
        "import os, torch\n"
        'a = int(os.environ.get("WORLD_SIZE", "1"))\n'
        'b = os.environ["RANK"]\n'
        'c = os.getenv("LOCAL_RANK")\n'
        "d = torch.cuda.is_available()\n"
        "e = torch.backends.mps.is_available\n"
        'f = os.environ.get("CUDA_VISIBLE_DEVICES")  # not the process\'s place: fine\n'
    )
    hits = own_device_reads("inparsx/probe.py", code)
    assert sorted(int(hit.split(":")[1]) for hit in hits) == [3, 4, 5, 6, 7], hits
