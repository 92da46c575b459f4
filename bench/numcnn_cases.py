"""numcnn's side of every case: runners built the way a user calls numcnn.

Inputs and the upstream gradient are built when the runner is made, outside the runner, so
that neither the timing nor the memory probe counts them.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np

import numcnn as nc
import numcnn.functional as F
from bench.cases import POOL_INPUT_SHAPE, POOL_OUTPUT_SHAPE, Conv
from bench.timing import Runner
from numcnn.models import lenet5
from numcnn.ops import engine


def _layer(op: str, conv: Conv, backward: bool) -> Runner:
    """``numcnn.functional.<op>(x, w, b, stride, padding)`` on the input of ``conv``."""
    w_shape, y_shape = conv.shapes(op)
    fn = getattr(F, op)
    rng = np.random.default_rng(0)
    x = nc.tensor(rng.standard_normal((conv.N, conv.C_in, conv.H, conv.H), dtype=np.float32),
                  requires_grad=backward)
    w = nc.tensor(rng.standard_normal(w_shape, dtype=np.float32) * 0.1, requires_grad=backward)
    b = nc.tensor(np.zeros(y_shape[1], np.float32), requires_grad=backward)
    gy = np.ones(y_shape, np.float32) if backward else None

    def run() -> None:
        y = fn(x, w, b, stride=conv.stride, padding=conv.padding)
        if backward:
            x.grad = w.grad = b.grad = None
            y.backward(gy)

    return run


def conv(case: Conv, backward: bool) -> Runner:
    """conv2d of (N, C_in, H, H) with a (C_out, C_in, k, k) kernel."""
    return _layer("conv2d", case, backward)


def conv_transpose(case: Conv, backward: bool) -> Runner:
    """conv_transpose2d of (N, C_in, H, H) with a (C_in, C_out, k, k) kernel."""
    return _layer("conv_transpose2d", case, backward)


def pool(kind: str, backward: bool) -> Runner:
    """avg_pool2d or max_pool2d with a 2x2 window."""
    x = nc.tensor(np.random.default_rng(0).standard_normal(POOL_INPUT_SHAPE, dtype=np.float32),
                  requires_grad=backward)
    fn = F.avg_pool2d if kind == "avg" else F.max_pool2d
    gy = np.ones(POOL_OUTPUT_SHAPE, np.float32) if backward else None

    def run() -> None:
        y = fn(x, 2)
        if backward:
            x.grad = None
            y.backward(gy)

    return run


def lenet_step(batch: int) -> Runner:
    """One SGD step (momentum 0.9) of LeNet-5 on a batch of 32x32 images."""
    nc.manual_seed(0)
    model = lenet5()
    opt = nc.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    rng = np.random.default_rng(0)
    x = nc.tensor(rng.standard_normal((batch, 1, 32, 32), dtype=np.float32))
    y = rng.integers(0, 10, batch)

    def run() -> None:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return run


@contextlib.contextmanager
def cols_budget(mib: float | None) -> Iterator[None]:
    """Set ``numcnn.ops.engine.COLS_BUDGET_BYTES`` (the cap on one im2col buffer; bigger batches
    run in chunks) to ``mib`` MiB for the block, and restore it after; ``None`` changes nothing.
    """
    if mib is None:
        yield
        return
    old = engine.COLS_BUDGET_BYTES
    engine.COLS_BUDGET_BYTES = max(1, int(mib * 2**20))
    try:
        yield
    finally:
        engine.COLS_BUDGET_BYTES = old
