"""This machine: NumPy's BLAS, its threads and its float32 GEMM peak."""
from __future__ import annotations

import os
from typing import Any

import numpy as np

from bench.timing import Timer


def _blas_pools() -> list[dict[str, Any]] | None:
    """threadpoolctl's BLAS thread pools; None where threadpoolctl is not installed."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    return [i for i in threadpool_info() if i.get("user_api") == "blas"]


def blas_info() -> str:
    pools = _blas_pools()
    if pools is None:
        return "unknown (pip install threadpoolctl)"
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"threads={i.get('num_threads')}" for i in pools) or "none found"


def blas_threads() -> int:
    """NumPy's BLAS threads (the cores, where threadpoolctl cannot tell)."""
    pools = _blas_pools()
    if pools:
        return int(pools[0]["num_threads"])
    return os.cpu_count() or 1


def gemm_peak_gflops(timer: Timer, n: int = 2048, repeat: int = 5) -> float:
    """float32 GEMM throughput of this machine through NumPy's BLAS."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.T.copy()
    t = timer.block(lambda: a @ b, repeat, warmup=1)
    return 2 * n**3 / (t.best_ms * 1e-3) / 1e9
