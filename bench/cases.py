"""The cases every library runs: conv layers, pools and their arithmetic."""
from __future__ import annotations

from typing import NamedTuple


class Conv(NamedTuple):
    """A conv layer on a batch of square images: (N, C_in, H, H) in, C_out kernels of k x k."""
    N: int
    C_in: int
    C_out: int
    H: int
    k: int
    stride: int
    padding: int

    def output_shape(self) -> tuple[int, int, int, int]:
        """conv2d's output shape."""
        size = (self.H + 2 * self.padding - self.k) // self.stride + 1
        return (self.N, self.C_out, size, size)

    def transpose_output_shape(self) -> tuple[int, int, int, int]:
        """conv_transpose2d's output shape (PyTorch's rule, no output padding)."""
        size = (self.H - 1) * self.stride - 2 * self.padding + self.k
        return (self.N, self.C_out, size, size)

    def shapes(self, op: str) -> tuple[tuple[int, int, int, int], tuple[int, int, int, int]]:
        """``(weight shape, output shape)`` of ``op``, "conv2d" or "conv_transpose2d"."""
        if op == "conv2d":
            return (self.C_out, self.C_in, self.k, self.k), self.output_shape()
        return (self.C_in, self.C_out, self.k, self.k), self.transpose_output_shape()

    def flops(self) -> float:
        """Floating-point operations of the conv2d forward: one multiply-add per output pixel,
        output channel and kernel tap."""
        _, _, size, _ = self.output_shape()
        return 2.0 * self.N * self.C_out * size * size * self.C_in * self.k * self.k

    def transpose_flops(self) -> float:
        """Those of conv_transpose2d's forward: one product per input pixel and kernel tap."""
        return 2.0 * self.N * self.C_in * self.H * self.H * self.C_out * self.k * self.k


class ConvCase(NamedTuple):
    name: str
    conv: Conv


class PoolCase(NamedTuple):
    name: str
    kind: str  # "avg" or "max"


CONV_CASES = [
    ConvCase("conv N64 1->6 32x32 k5 (LeNet conv1)", Conv(64, 1, 6, 32, 5, 1, 0)),
    ConvCase("conv N64 6->16 14x14 k5 (LeNet conv2)", Conv(64, 6, 16, 14, 5, 1, 0)),
    ConvCase("conv N64 32->64 28x28 k3 p1", Conv(64, 32, 64, 28, 3, 1, 1)),
    ConvCase("conv N64 64->128 28x28 k3 s2 p1", Conv(64, 64, 128, 28, 3, 2, 1)),
    ConvCase("conv N32 3->64 224x224 k7 s2 p3 (ResNet stem)", Conv(32, 3, 64, 224, 7, 2, 3)),
]
#: The two LeNet conv layers: the cases of ``--quick`` and of the MyGrad comparison.
LENET_CONV_CASES = CONV_CASES[:2]
#: The four cases whose fwd+bwd time ratios make the geometric-mean and worst-case targets.
TARGET_CONV_CASES = CONV_CASES[:4]
RESNET_STEM_CASE = CONV_CASES[4]
#: The case of the peak-memory target.
MEMORY_TARGET_CASE = CONV_CASES[2]

#: Pools of (64, 64, 28, 28) with a 2x2 window.
POOL_CASES = [PoolCase("avg_pool N64 C64 28x28 k2", "avg"),
              PoolCase("max_pool N64 C64 28x28 k2", "max")]
POOL_INPUT_SHAPE = (64, 64, 28, 28)
POOL_OUTPUT_SHAPE = (64, 64, 14, 14)

#: A decoder layer (output 28x28).
TRANSPOSE_CASE = ConvCase("conv_transpose N64 64->32 14x14 k4 s2 p1 (decoder)",
                          Conv(64, 64, 32, 14, 4, 2, 1))

#: The batches of the LeNet-5 training-step rows.
LENET_BATCHES = (64, 256)


def lenet_step_name(batch: int) -> str:
    return f"LeNet-5 train step batch {batch}"
