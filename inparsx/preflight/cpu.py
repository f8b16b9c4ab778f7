"""This CPU's matrix-product rate, measured for the pre-flight check's generation-time estimate.

A transformer's forward pass costs about ``2 x parameters`` floating-point operations per token (Kaplan et al.,
2020, "Scaling laws for neural language models", section 2.1), almost all of them in matrix products; on a CPU
the rate of a large ``torch.matmul`` in the model's dtype is therefore an upper bound on generation speed (and
the time it gives a lower bound: small-batch decoding is limited by memory bandwidth, not arithmetic). The
rate differs by machine and dtype (an AVX2-only CPU ran bf16 products about 50x slower than fp32, one with
AVX512-BF16 about 2x faster), so it is measured here, never assumed.
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

SIDE = 1024
"""The measured product is ``SIDE x SIDE`` by ``SIDE x SIDE`` (``2 * SIDE**3`` operations; ~20 ms at 100
GFLOP/s)."""
REPEATS = 5
"""Products timed after one warm-up; the median counts (what the CPU gives now, with whatever else runs)."""


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), else ``platform.processor()``."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def matmul_rate(dtype: str) -> dict[str, Any]:
    """The median rate of :data:`REPEATS` ``torch.matmul`` products of :data:`SIDE`-square matrices in ``dtype``
    (``fp32`` or ``bf16``) on this CPU with torch's threads, measured now (a fraction of a second; measured
    each time, since what the CPU gives depends on what else runs on it): ``{"gflops", "dtype", "threads",
    "cpu"}``."""
    import torch

    gflops = _measure(getattr(torch, {"fp32": "float32", "bf16": "bfloat16"}[dtype]))
    return {"gflops": round(gflops, 1), "dtype": dtype, "threads": torch.get_num_threads(), "cpu": cpu_name()}


def _measure(dtype: Any) -> float:
    import torch

    generator = torch.Generator().manual_seed(0)
    a = torch.randn(SIDE, SIDE, generator=generator).to(dtype)
    b = torch.randn(SIDE, SIDE, generator=generator).to(dtype)
    torch.matmul(a, b)
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        torch.matmul(a, b)
        times.append(time.perf_counter() - began)
    return 2 * SIDE**3 / sorted(times)[len(times) // 2] / 1e9
