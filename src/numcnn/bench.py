"""Side-by-side speed of numcnn and PyTorch CPU: ``numcnn bench`` and ``bench/run.py``.

Each case runs for numcnn and, when installed, for PyTorch (``torch.set_num_threads`` equal to
NumPy's BLAS threads) in the same process, both used the ordinary way: no allocator or thread
setting is made for either. Libraries are timed in separate blocks, never call by call
interleaved (on a small machine both libraries' worker threads keep spinning after a call and
would steal the cores from each other), and the blocks alternate A B A B. Each block warms up,
repeats, and gives its median; each library's figure is its **fastest block**, far less
sensitive to a shared machine's load than a median over blocks. The load average is printed
with every row, and a row measured above :data:`LOADED` is marked as such. GFLOP/s are given
against this machine's float32 GEMM peak measured in the same run with one large ``np.matmul``.

Then, each in its own small table: the peak extra memory of each conv case's forward+backward
for both libraries (measured in a fresh process per library and case, see :func:`memory_probe`),
numcnn against MyGrad (another autograd library on NumPy alone) on the LeNet convs, and the
wall time of one full MNIST epoch of ``numcnn train``. ``--memory-budget`` caps numcnn's im2col
buffer everywhere numcnn runs, to show what less memory costs in time.

NumPy's OpenBLAS is slowed by ``OPENBLAS_CORETYPE``/``OPENBLAS_L2_SIZE`` where those are set:
run benchmarks with both unset (``make bench`` does).
"""
from __future__ import annotations

import contextlib
import gc
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial

import numpy as np


@dataclass
class Timing:
    median_ms: float
    best_ms: float


#: Timed runs go on for at least this long per block, so that a millisecond case is a median
#: of hundreds of runs rather than of a few that one hiccup of a shared machine can move.
MIN_BLOCK_SECONDS = 0.5

#: A row measured while the 1-minute load average exceeded this is marked "loaded": other
#: processes then slow PyTorch's threads more than numcnn and flatter the ratio.
LOADED = 1.5

#: Warm-up time per block. After the pause between blocks the cores of a virtual machine come
#: back slowly: the first tens of milliseconds of calls measured up to 1.5x slower here.
WARMUP_SECONDS = 0.25


def time_block(fn, repeat: int, warmup: int = 2, min_seconds: float = 0.0,
               warmup_seconds: float | None = None) -> Timing:
    """Median and best wall time of ``fn()`` over ``repeat`` runs, after at least ``warmup``
    runs and at least ``warmup_seconds`` (default :data:`WARMUP_SECONDS`) of running it."""
    warmup_seconds = WARMUP_SECONDS if warmup_seconds is None else warmup_seconds
    start = time.perf_counter()
    done = 0
    while done < warmup or time.perf_counter() - start < warmup_seconds:
        fn()
        done += 1
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
#: A decoder layer: name, N, C_in, C_out, H, k, stride, padding (output 28x28).
TRANSPOSE_CASE = ("conv_transpose N64 64->32 14x14 k4 s2 p1 (decoder)", 64, 64, 32, 14, 4, 2, 1)


def conv_flops(N, C_in, C_out, H, k, s, p) -> float:
    Ho = (H + 2 * p - k) // s + 1
    return 2.0 * N * C_out * Ho * Ho * C_in * k * k


def conv_output_shape(N, C_in, C_out, H, k, s, p) -> tuple[int, int, int, int]:
    Ho = (H + 2 * p - k) // s + 1
    return (N, C_out, Ho, Ho)


def _numcnn_layer(op: str, x_shape, w_shape, y_shape, s, p, backward: bool):
    """A numcnn call of ``numcnn.functional.<op>(x, w, b, stride=s, padding=p)``; inputs and the
    upstream gradient are built here, outside ``run``, so that neither the timing nor the memory
    probe counts them."""
    import numcnn as nc
    import numcnn.functional as F

    fn = getattr(F, op)
    rng = np.random.default_rng(0)
    x = nc.tensor(rng.standard_normal(x_shape, dtype=np.float32), requires_grad=backward)
    w = nc.tensor(rng.standard_normal(w_shape, dtype=np.float32) * 0.1, requires_grad=backward)
    b = nc.tensor(np.zeros(y_shape[1], np.float32), requires_grad=backward)
    gy = np.ones(y_shape, np.float32) if backward else None

    def run():
        y = fn(x, w, b, stride=s, padding=p)
        if backward:
            x.grad = w.grad = b.grad = None
            y.backward(gy)

    return run


def _torch_layer(op: str, x_shape, w_shape, y_shape, s, p, backward: bool):
    """The same call of ``torch.nn.functional.<op>``."""
    import torch

    fn = getattr(torch.nn.functional, op)
    x = torch.randn(*x_shape, requires_grad=backward)
    w = (torch.randn(*w_shape) * 0.1).requires_grad_(backward)
    b = torch.zeros(y_shape[1], requires_grad=backward)
    gy = torch.ones(y_shape) if backward else None

    def run():
        if backward:
            y = fn(x, w, b, stride=s, padding=p)
            x.grad = w.grad = b.grad = None
            y.backward(gy)
        else:
            with torch.no_grad():
                fn(x, w, b, stride=s, padding=p)

    return run


def numcnn_conv(N, C_in, C_out, H, k, s, p, backward: bool):
    """conv2d of (N, C_in, H, H) with a (C_out, C_in, k, k) kernel in numcnn."""
    return _numcnn_layer("conv2d", (N, C_in, H, H), (C_out, C_in, k, k),
                         conv_output_shape(N, C_in, C_out, H, k, s, p), s, p, backward)


def torch_conv(N, C_in, C_out, H, k, s, p, backward: bool):
    """The same conv2d in PyTorch."""
    return _torch_layer("conv2d", (N, C_in, H, H), (C_out, C_in, k, k),
                        conv_output_shape(N, C_in, C_out, H, k, s, p), s, p, backward)


def _transpose_output_shape(N, C_in, C_out, H, k, s, p) -> tuple[int, int, int, int]:
    Ho = (H - 1) * s - 2 * p + k
    return (N, C_out, Ho, Ho)


def numcnn_conv_transpose(N, C_in, C_out, H, k, s, p, backward: bool):
    """conv_transpose2d of (N, C_in, H, H) with a (C_in, C_out, k, k) kernel in numcnn."""
    return _numcnn_layer("conv_transpose2d", (N, C_in, H, H), (C_in, C_out, k, k),
                         _transpose_output_shape(N, C_in, C_out, H, k, s, p), s, p, backward)


def torch_conv_transpose(N, C_in, C_out, H, k, s, p, backward: bool):
    """The same conv_transpose2d in PyTorch."""
    return _torch_layer("conv_transpose2d", (N, C_in, H, H), (C_in, C_out, k, k),
                        _transpose_output_shape(N, C_in, C_out, H, k, s, p), s, p, backward)


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


def alternate_blocks(makers: list, reps: int, rounds: int, pause: float) -> list[Timing | None]:
    """Time each library's runner in its own block, ``rounds`` times in turn (A B A B ...), and
    combine per library: the fastest block median (``median_ms``) and the best single run. On a
    shared machine the load drifts over seconds; alternating blocks exposes both libraries to the
    same drift, and the fastest block is the one least disturbed by it. ``None`` makers give
    ``None``."""
    medians: list[list[float]] = [[] for _ in makers]
    bests: list[list[float]] = [[] for _ in makers]
    for _ in range(rounds):
        for i, make in enumerate(makers):
            if make is None:
                continue
            t = time_block(make(), reps, min_seconds=MIN_BLOCK_SECONDS)
            medians[i].append(t.median_ms)
            bests[i].append(t.best_ms)
            time.sleep(pause)
    return [Timing(min(m), min(b)) if m else None for m, b in zip(medians, bests)]


def load_average() -> float | None:
    """The 1-minute load average (None where the platform has none)."""
    try:
        return os.getloadavg()[0]
    except (AttributeError, OSError):
        return None


def run_cases(repeat: int, quick: bool, with_torch: bool, pause: float = 0.3, rounds: int = 3):
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
        load_before = load_average()
        nc_t, th_t = alternate_blocks([make_nc, make_torch if torch_mod is not None else None],
                                      reps, rounds, pause)
        load = max(filter(None, [load_before, load_average()]), default=None)
        row = {"case": name, "load": load, "loaded": load is not None and load > LOADED,
               "numcnn_ms": nc_t.median_ms, "numcnn_best_ms": nc_t.best_ms,
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
    if not quick:
        name, *cfg = TRANSPOSE_CASE
        N, C_in, C_out, H, k, *_ = cfg
        flops = 2.0 * N * C_in * H * H * C_out * k * k                  # one product per input pixel
        measure(name + " fwd+bwd", 3 * flops, partial(numcnn_conv_transpose, *cfg, True),
                partial(torch_conv_transpose, *cfg, True), max(3, repeat // 4))
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
    load = f"{row['load']:5.2f}" if row.get("load") is not None else "    -"
    mark = "  loaded" if row.get("loaded") else ""
    return f"{row['case']:<52} {row['numcnn_ms']:9.2f} {torch_ms} {ratio} {gf} {share} {load}{mark}"


def naive_speedup() -> dict:
    """The reference loops against the vectorized kernel on one small conv (forward+backward)."""
    from . import reference
    from .ops import engine

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 4, 16, 16))
    w = rng.standard_normal((8, 4, 3, 3))
    gy = rng.standard_normal((1, 8, 14, 14))

    def naive():
        reference.conv2d(x, w)
        reference.conv2d_backward(x, w, gy)

    def fast():
        engine.conv2d_forward(x, w)
        engine.conv2d_input(x.shape, w, gy)
        engine.conv2d_weight(x, w.shape, gy)

    t_naive = time_block(naive, 3, warmup=0, warmup_seconds=0)
    t_fast = time_block(fast, 20)
    # extrapolate by multiply-adds: forward, gX and gW are one pass each over the same products
    macs = 3 * 1 * 8 * 14 * 14 * 4 * 3 * 3
    epoch_hours = t_naive.median_ms * 1e-3 / macs * LENET_EPOCH_CONV_MACS / 3600
    return {"case": "conv 1x4x16x16 -> 8 k3 fwd+bwd, float64", "naive_ms": t_naive.median_ms,
            "vectorized_ms": t_fast.median_ms, "speedup": t_naive.median_ms / t_fast.median_ms,
            "naive_ns_per_multiply_add": t_naive.median_ms * 1e6 / macs,
            "naive_lenet_epoch_conv_hours": epoch_hours}


#: Multiply-adds of LeNet-5's two conv layers in one MNIST epoch: conv1 forward and gW
#: (its input needs no gradient), conv2 forward, gX and gW, for 60,000 images.
LENET_EPOCH_CONV_MACS = 60_000 * (2 * 6 * 28 * 28 * 1 * 5 * 5 + 3 * 16 * 10 * 10 * 6 * 5 * 5)


def format_naive(result: dict) -> str:
    return (f"naive loops vs vectorized ({result['case']}): {result['naive_ms']:.1f} ms vs "
            f"{result['vectorized_ms']:.3f} ms, {result['speedup']:.0f}x; at "
            f"{result['naive_ns_per_multiply_add']:.0f} ns per multiply-add the loops would "
            f"spend about {result['naive_lenet_epoch_conv_hours']:.0f} h on the conv layers "
            "of one LeNet-5 epoch")


# --- peak memory ------------------------------------------------------------------------------
#
# Timings in one process are fine, but memory is not: a library that frees and reallocates the
# same buffers looks free on its second call, and the first library run would leave heap behind
# for the second. So each (library, case) runs in its own fresh process that builds the inputs
# and the upstream gradient, reads its resident size, resets the kernel's peak counter and makes
# ONE forward+backward call on them (the first one: no freed blocks of its size exist yet to hide
# its allocations; only a batch-1 call has run, see measure_peak_memory).
# Extra memory = peak resident size during the call - resident size before.

_PROBE_CODE = ("import sys; from numcnn.bench import memory_probe_main; "
               "sys.exit(memory_probe_main(sys.argv[1:]))")
METHOD_HWM = "VmHWM"
METHOD_MAXRSS = "ru_maxrss (lower bound)"


@contextlib.contextmanager
def cols_budget(mib: float | None):
    """Set ``numcnn.ops.engine.COLS_BUDGET_BYTES`` (the cap on one im2col buffer; bigger batches
    run in chunks) to ``mib`` MiB for the block, and restore it after; ``None`` changes nothing.
    """
    if mib is None:
        yield
        return
    from .ops import engine

    old = engine.COLS_BUDGET_BYTES
    engine.COLS_BUDGET_BYTES = max(1, int(mib * 2**20))
    try:
        yield
    finally:
        engine.COLS_BUDGET_BYTES = old


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


def measure_peak_memory(library: str, cfg, budget_mib: float | None = None,
                        threads: int | None = None, warmup_batch: int = 1) -> dict:
    """Extra resident MiB of the first conv forward+backward of ``library`` in THIS process.

    Meant for a fresh process (see :func:`memory_probe`). Before it, one call on a batch of
    ``warmup_batch`` (0: none) pays what a process pays once and not per call: PyTorch faults in
    tens of MiB of its library's code and starts its threads on its first conv. That call frees
    at most 1/N of the case's buffers, too little to hide the measured call's allocations.
    Where /proc/self/clear_refs cannot be written, the peak is the process's ``ru_maxrss`` and
    the baseline its peak before the call: a lower bound, since the call's peak only shows
    where it exceeds the imports' peak.
    """
    if library == "numcnn":
        make = numcnn_conv
    elif library == "torch":
        import torch

        if threads:
            torch.set_num_threads(threads)
        make = torch_conv
    else:
        raise ValueError(f"unknown library {library!r}; choose numcnn or torch")
    with cols_budget(budget_mib if library == "numcnn" else None):
        if warmup_batch:  # loads code pages, thread pools, BLAS buffers: once per process
            make(warmup_batch, *cfg[1:], True)()
        run = make(*cfg, True)  # inputs and gy exist before the baseline is read
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
            from .ops import engine

            budget = engine.COLS_BUDGET_BYTES
    return {"library": library, "extra_mib": (peak - before) / 1024, "before_mib": before / 1024,
            "peak_mib": peak / 1024, "method": method, "cols_budget_bytes": budget,
            "warmup_batch": warmup_batch}


def memory_probe_main(argv) -> int:
    """The fresh process's side of :func:`memory_probe`: prints one JSON line."""
    import argparse

    p = argparse.ArgumentParser(prog="numcnn.bench memory probe")
    p.add_argument("library")
    p.add_argument("cfg", type=int, nargs=7, help="N C_in C_out H k stride padding")
    p.add_argument("--budget", type=float, default=None)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--warmup-batch", type=int, default=1)
    args = p.parse_args(argv)
    print(json.dumps(measure_peak_memory(args.library, args.cfg, args.budget, args.threads,
                                         args.warmup_batch)))
    return 0


def memory_probe(library: str, cfg, budget_mib: float | None = None,
                 threads: int | None = None, warmup_batch: int = 1, timeout: float = 600) -> dict:
    """:func:`measure_peak_memory` of ``library`` on conv case ``cfg`` in a fresh interpreter."""
    cmd = [sys.executable, "-c", _PROBE_CODE, library, *map(str, cfg),
           "--warmup-batch", str(warmup_batch)]
    if budget_mib is not None:
        cmd += ["--budget", repr(float(budget_mib))]
    if threads:
        cmd += ["--threads", str(threads)]
    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if os.path.basename(src) == "src":  # a source checkout: import this numcnn, installed or not
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, env=env,
                          timeout=timeout)
    if proc.returncode != 0:
        tail = " ".join(proc.stderr.strip().splitlines()[-1:]) or f"exit {proc.returncode}"
        raise RuntimeError(f"memory probe {library} {list(cfg)} failed: {tail}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_memory(conv_cases, with_torch: bool, budget_mib: float | None = None) -> dict:
    """Peak extra memory of conv forward+backward, numcnn against PyTorch, one row per case."""
    threads = blas_threads()
    with_torch = with_torch and importlib.util.find_spec("torch") is not None
    rows = []
    for name, *cfg in conv_cases:
        row = {"case": name + " fwd+bwd", "numcnn_mib": None, "torch_mib": None, "ratio": None}
        try:
            nc = memory_probe("numcnn", cfg, budget_mib)
            row.update(numcnn_mib=nc["extra_mib"], method=nc["method"],
                       cols_budget_bytes=nc["cols_budget_bytes"])
            if with_torch:
                th = memory_probe("torch", cfg, threads=threads)
                row.update(torch_mib=th["extra_mib"])
                if th["method"] != nc["method"]:
                    row["method"] = f"numcnn {nc['method']}, torch {th['method']}"
                if th["extra_mib"] > 0:
                    row["ratio"] = nc["extra_mib"] / th["extra_mib"]
        except (RuntimeError, subprocess.TimeoutExpired, ValueError) as err:
            row["error"] = str(err)
        rows.append(row)
        print(format_memory_row(row), flush=True)
    return {"rows": rows, "cols_budget_mib": budget_mib, "torch_threads": threads,
            "protocol": "first fwd+bwd call in a fresh process per (library, case); "
                        "extra = peak resident size during the call - resident size before"}


def format_memory_row(row) -> str:
    def mib(v):
        return f"{v:10.1f}" if v is not None else "         -"

    ratio = f"{row['ratio']:6.2f}" if row.get("ratio") else "     -"
    tail = f"  {row['method']}" if row.get("method") else ""
    if row.get("error"):
        tail += f"  ({row['error']})"
    return f"{row['case']:<52} {mib(row.get('numcnn_mib'))} {mib(row.get('torch_mib'))} {ratio}{tail}"


# --- other pure-NumPy libraries ---------------------------------------------------------------

def mygrad_conv2d(x, w, b, stride: int, padding: int):
    """MyGrad's conv with the bias added after it (numcnn's conv2d adds the bias itself)."""
    from mygrad.nnet.layers import conv_nd

    return conv_nd(x, w, stride=stride, padding=padding) + b.reshape(1, -1, 1, 1)


def mygrad_conv(N, C_in, C_out, H, k, s, p):
    """The fwd+bwd conv case in MyGrad (float32, inputs and gy built outside ``run``)."""
    import mygrad as mg

    rng = np.random.default_rng(0)
    x = mg.tensor(rng.standard_normal((N, C_in, H, H), dtype=np.float32))
    w = mg.tensor(rng.standard_normal((C_out, C_in, k, k), dtype=np.float32) * 0.1)
    b = mg.tensor(np.zeros(C_out, np.float32))
    gy = np.ones(conv_output_shape(N, C_in, C_out, H, k, s, p), np.float32)

    def run():
        mygrad_conv2d(x, w, b, s, p).backward(gy)  # MyGrad replaces, not accumulates, grads

    return run


def run_other_libraries(repeat: int, pause: float = 0.3, rounds: int = 3) -> dict | None:
    """numcnn against MyGrad, another autograd library on NumPy alone, on the LeNet convs."""
    try:
        import mygrad
    except ImportError:
        print("\nmygrad is not installed (pip install 'numcnn[bench]'): skipping that comparison")
        return None
    print(f"\n{'fwd+bwd vs MyGrad ' + mygrad.__version__:<52} {'numcnn ms':>9} {'mygrad ms':>9} "
          f"{'numcnn speedup (x)':>18}")
    rows = []
    for name, *cfg in CONV_CASES[:2]:
        reps = max(3, repeat)
        nc_t, mg_t = alternate_blocks([partial(numcnn_conv, *cfg, True), partial(mygrad_conv, *cfg)],
                                      reps, rounds, pause)
        row = {"case": name + " fwd+bwd", "numcnn_ms": nc_t.median_ms,
               "numcnn_best_ms": nc_t.best_ms, "mygrad_ms": mg_t.median_ms,
               "mygrad_best_ms": mg_t.best_ms, "speedup": mg_t.median_ms / nc_t.median_ms}
        rows.append(row)
        print(f"{row['case']:<52} {row['numcnn_ms']:9.2f} {row['mygrad_ms']:9.2f} "
              f"{row['speedup']:18.2f}", flush=True)
    return {"mygrad": mygrad.__version__, "rows": rows}


# --- a full training epoch --------------------------------------------------------------------

def mnist_epoch(limit: int | None = None, data_dir: str | None = None) -> dict:
    """One epoch of ``numcnn train`` (LeNet-5 on MNIST, the training defaults, one epoch).

    Counts everything a user waits for per epoch that the per-step rows do not: data loading
    and normalization, shuffling, the optimizer and scheduler, the test pass and checkpoints.
    ``limit`` caps the train and test images (for tests); the files go to a temporary folder.
    """
    from .train import TrainConfig, fit

    with tempfile.TemporaryDirectory() as out:
        config = TrainConfig(epochs=1, out=out, data_dir=data_dir, limit=limit,
                             test_limit=limit, download=False, progress=False)
        start = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            row = fit(config, log=lambda line: None)
        total = time.perf_counter() - start
    return {"case": f"{config.model} {config.dataset} epoch, batch {config.batch_size}",
            "images": round(row["images_per_second"] * row["seconds"]),
            "train_seconds": row["seconds"], "images_per_second": row["images_per_second"],
            "total_seconds": total, "test_acc": row["test_acc"]}


def format_epoch_row(row) -> str:
    return (f"{row['case']:<52} {row['train_seconds']:.1f} s train pass, "
            f"{row['images_per_second']:.0f} img/s ({row['images']} images); "
            f"{row['total_seconds']:.1f} s with loading, test pass and checkpoints")


def main(argv=None) -> int:
    """``bench/run.py``: the benchmark with the flags of ``numcnn bench``."""
    from .cli.bench import main as bench_main  # the flags live with the other commands'

    return bench_main(argv)


def run_all(args) -> dict:
    """The timing table, then peak memory, other libraries, the MNIST epoch and the naive loops."""
    budget = args.memory_budget
    if budget is not None:
        print(f"numcnn im2col budget: {budget:g} MiB (numcnn.ops.engine.COLS_BUDGET_BYTES)")
    print(f"load average at start: {load_average()}; rows above {LOADED} are marked 'loaded'")
    print(f"{'case':<52} {'numcnn ms':>9} {'torch ms':>9} {'ratio':>6} {'GFLOP/s':>7} {'peak':>6} "
          f"{'load':>5}")
    with cols_budget(budget):
        result = run_cases(args.repeat, args.quick, not args.no_torch, rounds=args.rounds)
    print(f"GEMM peak {result['gemm_peak_gflops']:.1f} GFLOP/s; BLAS: {result['blas']}")
    result["memory"] = None
    if not args.no_memory:
        print(f"\n{'peak extra memory, float32':<52} {'numcnn MiB':>10} {'torch MiB':>10} "
              f"{'ratio':>6}  method")
        cases = CONV_CASES[:2] if args.quick else CONV_CASES
        result["memory"] = run_memory(cases, not args.no_torch, budget)
        print("(a fresh process per library and case: peak resident size during its first "
              "fwd+bwd minus the size before)")
    with cols_budget(budget):
        result["other_libraries"] = run_other_libraries(args.repeat, rounds=args.rounds)
    result["epoch"] = None
    if not (args.quick or args.no_epoch):
        try:
            with cols_budget(budget):
                result["epoch"] = mnist_epoch()
            print("\n" + format_epoch_row(result["epoch"]), flush=True)
        except FileNotFoundError as err:
            print(f"\nskipping the MNIST epoch: {' '.join(str(err).split())}")
    result["naive"] = naive_speedup()
    print(format_naive(result["naive"]))
    result["targets"] = target_rows(result)
    print(f"\ntargets (load average now {load_average()})")
    for row in result["targets"]:
        print(format_target_row(row))
    return result


# --- the targets -------------------------------------------------------------------------------

#: (target, limit, "min" or "max"): what the kernels aim at, quiet machine, float32, same run.
TARGETS = [
    ("LeNet-5 step B64: numcnn img/s / torch img/s", 0.75, "min"),
    ("LeNet-5 step B256: numcnn img/s / torch img/s", 0.6, "min"),
    ("conv fwd+bwd time ratio, geometric mean of the 4 cases", 1.4, "max"),
    ("conv fwd+bwd time ratio, worst of the 4 cases", 1.8, "max"),
    ("ResNet stem fwd+bwd time ratio", 1.0, "max"),
    ("peak extra memory conv 32->64 k3, numcnn / torch", 1.5, "max"),
    ("conv_transpose2d decoder layer fwd+bwd time ratio", 1.5, "max"),
]


def target_rows(result: dict) -> list[dict]:
    """The measured value of each of :data:`TARGETS` that this run covered."""
    rows = {row["case"]: row for row in result.get("rows", [])}
    values: list[float | None] = []
    for batch in (64, 256):
        row = rows.get(f"LeNet-5 train step batch {batch}")
        values.append(row["torch_ms"] / row["numcnn_ms"] if row and row.get("torch_ms") else None)
    ratios = [rows.get(name + " fwd+bwd", {}).get("ratio") for name, *_ in CONV_CASES[:4]]
    known = [r for r in ratios if r]
    values.append(float(np.exp(np.mean(np.log(known)))) if len(known) == 4 else None)
    values.append(max(known) if len(known) == 4 else None)
    values.append(rows.get(CONV_CASES[4][0] + " fwd+bwd", {}).get("ratio"))
    memory = (result.get("memory") or {}).get("rows", [])
    values.append(next((m.get("ratio") for m in memory if m["case"].startswith(CONV_CASES[2][0])),
                       None))
    values.append(rows.get(TRANSPOSE_CASE[0] + " fwd+bwd", {}).get("ratio"))
    loaded = any(row.get("loaded") for row in rows.values())
    return [{"target": name, "limit": limit, "value": value, "loaded": loaded,
             "met": None if value is None else (value >= limit if kind == "min" else value <= limit)}
            for (name, limit, kind), value in zip(TARGETS, values)]


def format_target_row(row) -> str:
    value = f"{row['value']:6.2f}" if row["value"] is not None else "     -"
    verdict = {True: "met", False: "NOT met", None: "not measured"}[row["met"]]
    bound = ">=" if row["target"].startswith("LeNet") else "<="
    mark = " (loaded host)" if row["loaded"] and row["value"] is not None else ""
    return f"{row['target']:<60} {value}  target {bound} {row['limit']:<4}  {verdict}{mark}"


def run(args) -> int:
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("OPENBLAS_L2_SIZE"):
        print("note: OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE are set and slow NumPy's BLAS; "
              "unset both for this command (make bench does)")
    if args.naive:
        result = naive_speedup()
        print(format_naive(result))
    else:
        result = run_all(args)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.json}")
    return 0
