"""The main table: each case's time for numcnn and PyTorch, ratio, GFLOP/s, load."""
from __future__ import annotations

import platform
from functools import partial
from types import ModuleType
from typing import Any

import numpy as np

from bench import numcnn_cases
from bench.cases import (
    CONV_CASES,
    LENET_BATCHES,
    LENET_CONV_CASES,
    POOL_CASES,
    TRANSPOSE_CASE,
    lenet_step_name,
)
from bench.machine import blas_info, blas_threads, gemm_peak_gflops
from bench.timing import LOADED, Maker, Timer

Row = dict[str, Any]

HEADER = (f"{'case':<52} {'numcnn ms':>9} {'torch ms':>9} {'ratio':>6} {'GFLOP/s':>7} "
          f"{'peak':>6} {'load':>5}")

#: Cases whose input has more pixels than this (the ResNet stem) take seconds per block: they
#: get a quarter of the timed runs.
BIG_INPUT_PIXELS = 200_000


def format_row(row: Row) -> str:
    torch_ms = f"{row['torch_ms']:9.2f}" if row.get("torch_ms") else "        -"
    ratio = f"{row['ratio']:6.2f}" if row.get("ratio") else "     -"
    gf = f"{row['gflops']:7.1f}" if row.get("gflops") else "      -"
    share = f"{100 * row['peak_share']:5.0f}%" if row.get("peak_share") else "     -"
    load = f"{row['load']:5.2f}" if row.get("load") is not None else "    -"
    mark = "  loaded" if row.get("loaded") else ""
    return f"{row['case']:<52} {row['numcnn_ms']:9.2f} {torch_ms} {ratio} {gf} {share} {load}{mark}"


def torch_cases(threads: int) -> ModuleType | None:
    """:mod:`bench.torch_cases` with PyTorch given ``threads`` threads; None without PyTorch."""
    try:
        from bench import torch_cases as module
    except ImportError:
        return None
    module.set_threads(threads)
    return module


class SpeedTable:
    """Measures and prints the rows, numcnn first, then PyTorch where it takes part."""

    def __init__(self, timer: Timer, peak_gflops: float, torch: ModuleType | None):
        self.timer = timer
        self.peak_gflops = peak_gflops
        self.libraries = [numcnn_cases] + ([torch] if torch is not None else [])
        self.rows: list[Row] = []

    def measure(self, name: str, flops: float, reps: int, runner: str, *args: Any) -> Row:
        """One row: each library's ``runner`` (the maker of that name in
        :mod:`bench.numcnn_cases` and :mod:`bench.torch_cases`) on ``args``."""
        makers: list[Maker] = [partial(getattr(library, runner), *args)
                               for library in self.libraries]
        load_before = self.timer.load()
        timings = self.timer.alternate(makers, reps)
        loads = [x for x in (load_before, self.timer.load()) if x is not None]
        load = max(loads) if loads else None
        nc_t = timings[0]
        th_t = timings[1] if len(timings) > 1 else None
        row: Row = {"case": name, "load": load, "loaded": load is not None and load > LOADED,
                    "numcnn_ms": nc_t.median_ms, "numcnn_best_ms": nc_t.best_ms,
                    "torch_ms": th_t.median_ms if th_t else None,
                    "torch_best_ms": th_t.best_ms if th_t else None,
                    "ratio": nc_t.median_ms / th_t.median_ms if th_t else None}
        if flops:
            row["gflops"] = flops / (nc_t.median_ms * 1e-3) / 1e9
            row["peak_share"] = row["gflops"] / self.peak_gflops
        self.rows.append(row)
        print(format_row(row), flush=True)
        return row


def run_cases(timer: Timer, repeat: int, quick: bool, with_torch: bool) -> dict[str, Any]:
    """Every case of the table (``quick``: the LeNet convs, the pools and the steps)."""
    peak = gemm_peak_gflops(timer)
    threads = blas_threads()
    torch_lib = torch_cases(threads) if with_torch else None
    table = SpeedTable(timer, peak, torch_lib)
    for name, conv in LENET_CONV_CASES if quick else CONV_CASES:
        reps = max(3, repeat // (4 if conv.N * conv.H * conv.H > BIG_INPUT_PIXELS else 1))
        for backward, suffix, flops in ((False, " fwd", conv.flops()),
                                        (True, " fwd+bwd", 3 * conv.flops())):
            table.measure(name + suffix, flops, reps, "conv", conv, backward)
    if not quick:
        name, conv = TRANSPOSE_CASE
        table.measure(name + " fwd+bwd", 3 * conv.transpose_flops(), max(3, repeat // 4),
                      "conv_transpose", conv, True)
    for name, kind in POOL_CASES:
        for backward, suffix in ((False, " fwd"), (True, " fwd+bwd")):
            table.measure(name + suffix, 0, repeat, "pool", kind, backward)
    for batch in LENET_BATCHES:
        row = table.measure(lenet_step_name(batch), 0, repeat, "lenet_step", batch)
        row["numcnn_images_per_second"] = batch / (row["numcnn_ms"] * 1e-3)
        if row["torch_ms"]:
            row["torch_images_per_second"] = batch / (row["torch_ms"] * 1e-3)
    return {"machine": platform.platform(), "blas": blas_info(), "blas_threads": threads,
            "gemm_peak_gflops": peak, "torch": torch_lib.VERSION if torch_lib else None,
            "numpy": np.__version__, "rows": table.rows}
