"""Side-by-side speed of numcnn and PyTorch CPU: ``numcnn bench`` and ``bench/run.py``.

Each case runs for numcnn and, when installed, for PyTorch (``torch.set_num_threads`` equal to
NumPy's BLAS threads) in the same process. Libraries are timed in separate blocks, never call by
call interleaved: on a small machine both libraries' worker threads keep spinning after a call
and would steal the cores from each other. Each block warms up, repeats, and reports the median
and the best. GFLOP/s are given against this machine's float32 GEMM peak measured in the same run
with one large ``np.matmul``.

NumPy's OpenBLAS is slowed by ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` where those are set:
run benchmarks with both unset (``make bench`` does).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from dataclasses import dataclass
from functools import partial

import numpy as np


@dataclass
class Timing:
    median_ms: float
    best_ms: float


def time_block(fn, repeat: int, warmup: int = 2, min_seconds: float = 0.0) -> Timing:
    """Median and best wall time of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while len(times) < repeat or time.perf_counter() - start < min_seconds:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Timing(1e3 * statistics.median(times), 1e3 * min(times))


def gemm_peak_gflops(n: int = 2048, repeat: int = 5) -> float:
    """float32 GEMM throughput of this machine through NumPy's BLAS."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = a.T.copy()
    t = time_block(lambda: a @ b, repeat, warmup=1)
    return 2 * n**3 / (t.best_ms * 1e-3) / 1e9


def blas_info() -> str:
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (pip install threadpoolctl)"
    infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    return "; ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"threads={i.get('num_threads')}" for i in infos) or "none found"


def blas_threads() -> int:
    try:
        from threadpoolctl import threadpool_info
        infos = [i for i in threadpool_info() if i.get("user_api") == "blas"]
        if infos:
            return int(infos[0]["num_threads"])
    except ImportError:
        pass
    return os.cpu_count() or 1


# --- cases ------------------------------------------------------------------------------------

CONV_CASES = [
    # name, N, C_in, C_out, H, k, stride, padding
    ("conv N64 1->6 32x32 k5 (LeNet conv1)", 64, 1, 6, 32, 5, 1, 0),
    ("conv N64 6->16 14x14 k5 (LeNet conv2)", 64, 6, 16, 14, 5, 1, 0),
    ("conv N64 32->64 28x28 k3 p1", 64, 32, 64, 28, 3, 1, 1),
    ("conv N64 64->128 28x28 k3 s2 p1", 64, 64, 128, 28, 3, 2, 1),
    ("conv N32 3->64 224x224 k7 s2 p3 (ResNet stem)", 32, 3, 64, 224, 7, 2, 3),
]
POOL_CASES = [("avg_pool N64 C64 28x28 k2", "avg"), ("max_pool N64 C64 28x28 k2", "max")]


def conv_flops(N, C_in, C_out, H, k, s, p) -> float:
    Ho = (H + 2 * p - k) // s + 1
    return 2.0 * N * C_out * Ho * Ho * C_in * k * k


def numcnn_conv(N, C_in, C_out, H, k, s, p, backward: bool):
    import numcnn as nc
    import numcnn.functional as F

    rng = np.random.default_rng(0)
    x = nc.tensor(rng.standard_normal((N, C_in, H, H), dtype=np.float32), requires_grad=backward)
    w = nc.tensor(rng.standard_normal((C_out, C_in, k, k), dtype=np.float32) * 0.1,
                  requires_grad=backward)
    b = nc.tensor(np.zeros(C_out, np.float32), requires_grad=backward)
    gy = None

    def run():
        nonlocal gy
        y = F.conv2d(x, w, b, stride=s, padding=p)
        if backward:
            if gy is None:
                gy = np.ones(y.shape, np.float32)
            x.grad = w.grad = b.grad = None
            y.backward(gy)

    return run


def torch_conv(N, C_in, C_out, H, k, s, p, backward: bool):
    import torch

    x = torch.randn(N, C_in, H, H, requires_grad=backward)
    w = (torch.randn(C_out, C_in, k, k) * 0.1).requires_grad_(backward)
    b = torch.zeros(C_out, requires_grad=backward)
    gy = None

    def run():
        nonlocal gy
        if backward:
            y = torch.nn.functional.conv2d(x, w, b, stride=s, padding=p)
            if gy is None:
                gy = torch.ones_like(y)
            x.grad = w.grad = b.grad = None
            y.backward(gy)
        else:
            with torch.no_grad():
                torch.nn.functional.conv2d(x, w, b, stride=s, padding=p)

    return run


def numcnn_pool(kind, backward):
    import numcnn as nc
    import numcnn.functional as F

    x = nc.tensor(np.random.default_rng(0).standard_normal((64, 64, 28, 28), dtype=np.float32),
                  requires_grad=backward)
    fn = F.avg_pool2d if kind == "avg" else F.max_pool2d
    gy = np.ones((64, 64, 14, 14), np.float32)

    def run():
        y = fn(x, 2)
        if backward:
            x.grad = None
            y.backward(gy)

    return run


def torch_pool(kind, backward):
    import torch

    x = torch.randn(64, 64, 28, 28, requires_grad=backward)
    fn = torch.nn.functional.avg_pool2d if kind == "avg" else torch.nn.functional.max_pool2d
    gy = torch.ones(64, 64, 14, 14)

    def run():
        if backward:
            y = fn(x, 2)
            x.grad = None
            y.backward(gy)
        else:
            with torch.no_grad():
                fn(x, 2)

    return run


def numcnn_lenet_step(batch):
    import numcnn as nc
    import numcnn.functional as F
    from numcnn.models import lenet5

    nc.manual_seed(0)
    model = lenet5()
    opt = nc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = nc.tensor(rng.standard_normal((batch, 1, 32, 32), dtype=np.float32))
    y = rng.integers(0, 10, batch)

    def run():
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return run


def torch_lenet_step(batch):
    import torch
    from torch import nn

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84),
        nn.Tanh(), nn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 32, 32)
    y = torch.randint(0, 10, (batch,))

    def run():
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return run


def run_cases(repeat: int, quick: bool, with_torch: bool, pause: float = 0.3):
    rows = []
    peak = gemm_peak_gflops()
    threads = blas_threads()
    torch_mod = None
    if with_torch:
        try:
            import torch as torch_mod
            torch_mod.set_num_threads(threads)
        except ImportError:
            torch_mod = None

    def measure(name, flops, make_nc, make_torch, reps):
        nc_t = time_block(make_nc(), reps)
        time.sleep(pause)
        th_t = time_block(make_torch(), reps) if torch_mod is not None else None
        time.sleep(pause)
        row = {"case": name, "numcnn_ms": nc_t.median_ms, "numcnn_best_ms": nc_t.best_ms,
               "torch_ms": th_t.median_ms if th_t else None,
               "torch_best_ms": th_t.best_ms if th_t else None,
               "ratio": nc_t.median_ms / th_t.median_ms if th_t else None}
        if flops:
            row["gflops"] = flops / (nc_t.median_ms * 1e-3) / 1e9
            row["peak_share"] = row["gflops"] / peak
        rows.append(row)
        print(format_row(row), flush=True)

    conv_cases = CONV_CASES[:2] if quick else CONV_CASES
    for name, *cfg in conv_cases:
        flops = conv_flops(*cfg)
        reps = max(3, repeat // (4 if cfg[0] * cfg[3] * cfg[3] > 200_000 else 1))
        measure(name + " fwd", flops, partial(numcnn_conv, *cfg, False),
                partial(torch_conv, *cfg, False), reps)
        measure(name + " fwd+bwd", 3 * flops, partial(numcnn_conv, *cfg, True),
                partial(torch_conv, *cfg, True), reps)
    for name, kind in POOL_CASES:
        measure(name + " fwd", 0, partial(numcnn_pool, kind, False), partial(torch_pool, kind, False), repeat)
        measure(name + " fwd+bwd", 0, partial(numcnn_pool, kind, True), partial(torch_pool, kind, True), repeat)
    for batch in (64, 256):
        measure(f"LeNet-5 train step batch {batch}", 0, partial(numcnn_lenet_step, batch),
                partial(torch_lenet_step, batch), repeat)
        rows[-1]["numcnn_images_per_second"] = batch / (rows[-1]["numcnn_ms"] * 1e-3)
        if rows[-1]["torch_ms"]:
            rows[-1]["torch_images_per_second"] = batch / (rows[-1]["torch_ms"] * 1e-3)
    return {"machine": platform.platform(), "blas": blas_info(), "blas_threads": threads,
            "gemm_peak_gflops": peak, "torch": getattr(torch_mod, "__version__", None),
            "numpy": np.__version__, "rows": rows}


def format_row(row) -> str:
    torch_ms = f"{row['torch_ms']:9.2f}" if row.get("torch_ms") else "        -"
    ratio = f"{row['ratio']:6.2f}" if row.get("ratio") else "     -"
    gf = f"{row['gflops']:7.1f}" if row.get("gflops") else "      -"
    share = f"{100 * row['peak_share']:5.0f}%" if row.get("peak_share") else "     -"
    return f"{row['case']:<52} {row['numcnn_ms']:9.2f} {torch_ms} {ratio} {gf} {share}"


def naive_speedup() -> dict:
    """The reference loops against the vectorized kernel on one small conv (forward+backward)."""
    from . import reference
    from .ops import conv

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 16, 16))
    w = rng.standard_normal((8, 4, 3, 3))
    gy = rng.standard_normal((1, 8, 14, 14))

    def naive():
        reference.conv2d(x, w)
        reference.conv2d_backward(x, w, gy)

    def fast():
        conv.conv2d_forward(x, w)
        conv.conv2d_input(x.shape, w, gy)
        conv.conv2d_weight(x, w.shape, gy)

    t_naive = time_block(naive, 3, warmup=0)
    t_fast = time_block(fast, 20)
    return {"case": "conv 1x4x16x16 -> 8 k3 fwd+bwd, float64", "naive_ms": t_naive.median_ms,
            "vectorized_ms": t_fast.median_ms, "speedup": t_naive.median_ms / t_fast.median_ms}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


def add_arguments(p) -> None:
    p.add_argument("--repeat", type=int, default=15, help="timed runs per case (median reported)")
    p.add_argument("--quick", action="store_true", help="only the LeNet conv cases, pools and steps")
    p.add_argument("--no-torch", action="store_true", help="skip PyTorch")
    p.add_argument("--naive", action="store_true", help="only: reference loops vs vectorized kernel")
    p.add_argument("--json", default=None, help="also write the results to this JSON file")


def add_bench_parser(sub) -> None:
    p = sub.add_parser("bench", help="time numcnn against PyTorch CPU (and the naive loops)")
    add_arguments(p)
    p.set_defaults(func=run)


def run(args) -> int:
    from .heap import keep_freed_memory

    keep_freed_memory()  # both libraries then reuse freed buffers instead of faulting in pages
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        print("note: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set and slow NumPy's BLAS; "
              "unset both for this command (make bench does)")
    if args.naive:
        result = naive_speedup()
        print(f"{result['case']}: naive loops {result['naive_ms']:.1f} ms, vectorized "
              f"{result['vectorized_ms']:.3f} ms, speedup {result['speedup']:.0f}x")
    else:
        print(f"{'case':<52} {'numcnn ms':>9} {'torch ms':>9} {'ratio':>6} {'GFLOP/s':>7} {'peak':>6}")
        result = run_cases(args.repeat, args.quick, not args.no_torch)
        result["naive"] = naive_speedup()
        print(f"GEMM peak {result['gemm_peak_gflops']:.1f} GFLOP/s; BLAS: {result['blas']}")
        n = result["naive"]
        print(f"naive loops vs vectorized ({n['case']}): {n['speedup']:.0f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0
