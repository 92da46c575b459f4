"""The peak extra memory of one conv forward+backward, measured in THIS process.

Timings in one process are fine, but memory is not: a library that frees and reallocates the
same buffers looks free on its second call, and the first library run would leave heap behind
for the second. So each (library, case) runs in its own fresh process (started by
:func:`bench.memory.memory_probe`, which runs :func:`main` here) that builds the inputs and the
upstream gradient, reads its resident size, resets the kernel's peak counter and makes ONE
forward+backward call on them (the first one: no freed blocks of its size exist yet to hide
its allocations; only a batch-1 call has run, see :func:`measure_peak_memory`).
Extra memory = peak resident size during the call - resident size before.
"""
from __future__ import annotations

import argparse
import gc
import json
import sys
from collections.abc import Sequence
from typing import Any

from bench.cases import Conv
from bench.numcnn_cases import cols_budget

METHOD_HWM = "VmHWM"
METHOD_MAXRSS = "ru_maxrss (lower bound)"
LIBRARIES = ("numcnn", "torch")


def _status_kib(field: str) -> int | None:
    """A ``Vm*`` line of /proc/self/status in KiB; None where there is no /proc."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def _maxrss_kib() -> int:
    """Peak resident size of this process since it started (bytes on macOS, KiB elsewhere)."""
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // 1024 if sys.platform == "darwin" else peak


def _reset_peak() -> bool:
    """Reset VmHWM to the current resident size (Linux >= 4.0); False where not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return _status_kib("VmHWM") is not None


def measure_peak_memory(library: str, conv: Conv, budget_mib: float | None = None,
                        threads: int | None = None, warmup_batch: int = 1) -> dict[str, Any]:
    """Extra resident MiB of the first conv forward+backward of ``library`` in this process.

    Meant for a fresh process. Before it, one call on a batch of ``warmup_batch`` (0: none) pays
    what a process pays once and not per call: PyTorch faults in tens of MiB of its library's
    code and starts its threads on its first conv. That call frees at most 1/N of the case's
    buffers, too little to hide the measured call's allocations. Where /proc/self/clear_refs
    cannot be written, the peak is the process's ``ru_maxrss`` and the baseline its peak before
    the call: a lower bound, since the call's peak only shows where it exceeds the imports' peak.
    """
    if library == "numcnn":
        from bench.numcnn_cases import conv as make
    elif library == "torch":
        from bench import torch_cases

        if threads:
            torch_cases.set_threads(threads)
        make = torch_cases.conv
    else:
        raise ValueError(f"unknown library {library!r}; choose one of {', '.join(LIBRARIES)}")
    with cols_budget(budget_mib if library == "numcnn" else None):
        if warmup_batch:  # loads code pages, thread pools, BLAS buffers: once per process
            make(conv._replace(N=warmup_batch), True)()
        run = make(conv, True)  # inputs and gy exist before the baseline is read
        gc.collect()
        before = _status_kib("VmRSS")
        if before is not None and _reset_peak():
            method = METHOD_HWM
            run()
            peak = _status_kib("VmHWM")
        else:
            method = METHOD_MAXRSS
            before = _maxrss_kib()
            run()
            peak = _maxrss_kib()
        budget = None
        if library == "numcnn":
            from numcnn.ops import engine

            budget = engine.COLS_BUDGET_BYTES
    if peak is None:  # /proc/self/status went away between two reads
        raise RuntimeError("the peak resident size could not be read")
    return {"library": library, "extra_mib": (peak - before) / 1024, "before_mib": before / 1024,
            "peak_mib": peak / 1024, "method": method, "cols_budget_bytes": budget,
            "warmup_batch": warmup_batch}


def main(argv: Sequence[str]) -> int:
    """The fresh process's side of :func:`bench.memory.memory_probe`: prints one JSON line."""
    p = argparse.ArgumentParser(prog="bench memory probe")
    p.add_argument("library", choices=LIBRARIES)
    p.add_argument("conv", type=int, nargs=len(Conv._fields), help=" ".join(Conv._fields))
    p.add_argument("--budget", type=float, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--warmup-batch", type=int, default=1)
    args = p.parse_args(argv)
    print(json.dumps(measure_peak_memory(args.library, Conv(*args.conv), args.budget,
                                         args.threads, args.warmup_batch)))
    return 0
