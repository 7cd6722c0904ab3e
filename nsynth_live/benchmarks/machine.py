"""What a benchmark ran on: the CPU's name, its SIMD level, cores and library versions."""

from __future__ import annotations

import os
import platform
import sys
from typing import Any

SIMD_LEVELS = ("avx512f", "avx2", "avx", "sse4_2", "neon", "asimd")
"""Highest first: the level reported is the first of these the CPU has."""


def _cpuinfo() -> tuple[str | None, set[str]]:
    """(model name, flags) from /proc/cpuinfo; (None, empty) where there is none (macOS, Windows)."""
    try:
        with open("/proc/cpuinfo") as f:
            lines = f.read().splitlines()
    except OSError:
        return None, set()
    name = next((ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")), None)
    flags = next((ln.split(":", 1)[1].split() for ln in lines if ln.startswith(("flags", "Features"))), [])
    return name, set(flags)


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo, else what :mod:`platform` knows)."""
    name, _ = _cpuinfo()
    return name or platform.processor() or platform.machine()


def simd_level() -> str:
    """The widest vector instruction set this CPU has: ``avx512f``, ``avx2``, ``avx``, ... .

    From /proc/cpuinfo's flags; elsewhere from numpy's runtime CPU feature table.
    """
    _, flags = _cpuinfo()
    if not flags:
        try:
            from numpy._core._multiarray_umath import __cpu_features__ as features
        except ImportError:  # numpy < 2
            from numpy.core._multiarray_umath import __cpu_features__ as features
        flags = {k.lower() for k, v in features.items() if v}
        flags |= {"sse4_2"} if "sse42" in flags else set()
    return next((level for level in SIMD_LEVELS if level in flags), "none")


def cpu_label() -> str:
    """``"<cpu name>, <simd level>"``: the line a table is printed under."""
    return f"{cpu_name()}, {simd_level()}"


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on (the ``machine`` entry of every report)."""
    import numpy as np

    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "simd": simd_level(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if "torch" in sys.modules:
        torch = sys.modules["torch"]
        info.update(torch=torch.__version__, torch_threads=torch.get_num_threads())
    return info
