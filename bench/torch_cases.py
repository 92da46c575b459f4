"""PyTorch's side of every case: the same calls as :mod:`bench.numcnn_cases`, made the way a
PyTorch user makes them (forward-only cases under ``torch.no_grad()``).

Imported only when PyTorch takes part, so that a run without it never loads it.
"""
from __future__ import annotations

import torch
from torch import nn

from bench.cases import POOL_INPUT_SHAPE, POOL_OUTPUT_SHAPE, Conv
from bench.timing import Runner

VERSION = torch.__version__


def _layer(op: str, conv: Conv, backward: bool) -> Runner:
    """``torch.nn.functional.<op>(x, w, b, stride, padding)`` on the input of ``conv``."""
    w_shape, y_shape = conv.shapes(op)
    fn = getattr(torch.nn.functional, op)
    x = torch.randn(conv.N, conv.C_in, conv.H, conv.H, requires_grad=backward)
    w = (torch.randn(*w_shape) * 0.1).requires_grad_(backward)
    b = torch.zeros(y_shape[1], requires_grad=backward)
    gy = torch.ones(y_shape) if backward else None

    def run() -> None:
        if backward:
            y = fn(x, w, b, stride=conv.stride, padding=conv.padding)
            x.grad = w.grad = b.grad = None
            y.backward(gy)
        else:
            with torch.no_grad():
                fn(x, w, b, stride=conv.stride, padding=conv.padding)

    return run


def conv(case: Conv, backward: bool) -> Runner:
    """conv2d of (N, C_in, H, H) with a (C_out, C_in, k, k) kernel."""
    return _layer("conv2d", case, backward)


def conv_transpose(case: Conv, backward: bool) -> Runner:
    """conv_transpose2d of (N, C_in, H, H) with a (C_in, C_out, k, k) kernel."""
    return _layer("conv_transpose2d", case, backward)


def pool(kind: str, backward: bool) -> Runner:
    """avg_pool2d or max_pool2d with a 2x2 window."""
    x = torch.randn(*POOL_INPUT_SHAPE, requires_grad=backward)
    fn = torch.nn.functional.avg_pool2d if kind == "avg" else torch.nn.functional.max_pool2d
    gy = torch.ones(*POOL_OUTPUT_SHAPE)

    def run() -> None:
        if backward:
            y = fn(x, 2)
            x.grad = None
            y.backward(gy)
        else:
            with torch.no_grad():
                fn(x, 2)

    return run


def lenet_step(batch: int) -> Runner:
    """One SGD step (momentum 0.9) of the same LeNet-5 on a batch of 32x32 images."""
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5), nn.Tanh(), nn.AvgPool2d(2), nn.Conv2d(6, 16, 5), nn.Tanh(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(400, 120), nn.Tanh(), nn.Linear(120, 84),
        nn.Tanh(), nn.Linear(84, 10))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(batch, 1, 32, 32)
    y = torch.randint(0, 10, (batch,))

    def run() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    return run


def set_threads(threads: int) -> None:
    """Give PyTorch ``threads`` threads (NumPy's BLAS threads, for the same cores)."""
    torch.set_num_threads(threads)
