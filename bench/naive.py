"""The reference loops against the vectorized kernels, and what the loops would cost per epoch."""
from __future__ import annotations

from typing import Any

import numpy as np

import numcnn.ops
import numcnn.reference
from bench.timing import Timer

#: Multiply-adds of LeNet-5's two conv layers in one MNIST epoch: conv1 forward and gW
#: (its input needs no gradient), conv2 forward, gX and gW, for 60,000 images.
LENET_EPOCH_CONV_MACS = 60_000 * (2 * 6 * 28 * 28 * 1 * 5 * 5 + 3 * 16 * 10 * 10 * 6 * 5 * 5)

#: The small conv both sides run: (1, 4, 16, 16) with 8 kernels of 3x3, float64.
X_SHAPE, W_SHAPE, Y_SHAPE = (1, 4, 16, 16), (8, 4, 3, 3), (1, 8, 14, 14)
#: Its multiply-adds: forward, gX and gW are one pass each over the same products.
MACS = 3 * int(np.prod(Y_SHAPE)) * W_SHAPE[1] * W_SHAPE[2] * W_SHAPE[3]


def naive_speedup(timer: Timer) -> dict[str, Any]:
    """The reference loops against the vectorized kernel on one small conv (forward+backward)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal(X_SHAPE)
    w = rng.standard_normal(W_SHAPE)
    gy = rng.standard_normal(Y_SHAPE)

    def naive() -> None:
        numcnn.reference.conv2d(x, w)
        numcnn.reference.conv2d_backward(x, w, gy)

    def fast() -> None:
        numcnn.ops.conv2d_forward(x, w)
        numcnn.ops.conv2d_input(x.shape, w, gy)
        numcnn.ops.conv2d_weight(x, w.shape, gy)

    t_naive = timer.block(naive, 3, warmup=0, warmup_seconds=0)
    t_fast = timer.block(fast, 20)
    epoch_hours = t_naive.median_ms * 1e-3 / MACS * LENET_EPOCH_CONV_MACS / 3600
    return {"case": "conv 1x4x16x16 -> 8 k3 fwd+bwd, float64", "naive_ms": t_naive.median_ms,
            "vectorized_ms": t_fast.median_ms, "speedup": t_naive.median_ms / t_fast.median_ms,
            "naive_ns_per_multiply_add": t_naive.median_ms * 1e6 / MACS,
            "naive_lenet_epoch_conv_hours": epoch_hours}


def format_naive(result: dict[str, Any]) -> str:
    return (f"naive loops vs vectorized ({result['case']}): {result['naive_ms']:.1f} ms vs "
            f"{result['vectorized_ms']:.3f} ms, {result['speedup']:.0f}x; at "
            f"{result['naive_ns_per_multiply_add']:.0f} ns per multiply-add the loops would "
            f"spend about {result['naive_lenet_epoch_conv_hours']:.0f} h on the conv layers "
            "of one LeNet-5 epoch")
