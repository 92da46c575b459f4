"""Argument normalization, output-size arithmetic and validation (SPEC-math §2.2, §5.1).

Every public op calls these helpers once, at its boundary; the kernels then work with plain
tuples. Errors name the argument, the value received and what was expected.

Dimension legend: N batch, C channels, H/W input size, kh/kw kernel, sh/sw stride,
ph/pw padding, dh/dw dilation, Ho/Wo output size.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from numbers import Integral

import numpy as np

Pair = tuple[int, int]
#: Padding of one axis as (before, after); a conv may pad asymmetrically (``'same'``, even k).
AxisPad = tuple[int, int]


def pair(value, name: str = "value", op: str = "op", minimum: int | None = None,
         single: bool = True) -> Pair:
    """Normalize an int, a 1-sequence (broadcast, as PyTorch) or a 2-sequence of ints to
    ``(h, w)``; ``single=False`` refuses 1-sequences (``adaptive_avg_pool2d``'s rule).

    >>> pair(3)
    (3, 3)
    >>> pair((2, 1))
    (2, 1)
    >>> pair([4])
    (4, 4)
    """
    def is_int(v) -> bool:
        return isinstance(v, Integral) and not isinstance(v, (bool, np.bool_))

    if is_int(value):
        out = (int(value), int(value))
    elif isinstance(value, (tuple, list)) and len(value) == 2 and all(map(is_int, value)):
        out = (int(value[0]), int(value[1]))
    elif single and isinstance(value, (tuple, list)) and len(value) == 1 and is_int(value[0]):
        out = (int(value[0]), int(value[0]))
    else:
        also = " (or a 1-tuple)" if single else ""
        raise TypeError(f"{op}: {name} must be an int or a pair of ints{also}, got {value!r}")
    if minimum is not None and min(out) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum} on both axes, got {value!r}")
    return out


def check_float_array(x, name: str, op: str) -> np.ndarray:
    """Return ``x`` as an ndarray, raising ``TypeError`` unless it has a floating dtype."""
    x = np.asarray(x)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(
            f"{op}: {name} must have a floating dtype (float32 or float64), got {x.dtype}"
        )
    return x


def check_float_arrays(op: str, **arrays) -> list[np.ndarray]:
    """Each of ``arrays`` (name=array) through :func:`check_float_array`, in order: the ndarray
    kernels refuse what torch refuses, a bool array (NumPy's matmul would sum it as a logical
    or), an int or an object one."""
    return [check_float_array(a, name, op) for name, a in arrays.items()]


def check_output_shape(a: np.ndarray, expected: tuple[int, ...], name: str, op: str) -> None:
    """Refuse a gradient (or argmax) ``a`` that does not have the forward's output shape: NumPy
    would broadcast a batch of one or a 1x1 map over the output, giving a silently wrong result."""
    if tuple(a.shape) != tuple(expected):
        raise ValueError(f"{op}: {name} must have the output's shape {tuple(expected)}, "
                         f"got {tuple(a.shape)}")


def check_bias(b, C_out: int, op: str) -> np.ndarray | None:
    """``b`` as a floating array, refused unless it is one number per output channel (one number
    would broadcast)."""
    if b is None:
        return None
    b = check_float_array(b, "bias", op)
    if tuple(b.shape) != (C_out,):
        raise ValueError(f"{op}: bias must have shape ({C_out},), got {tuple(b.shape)}")
    return b


def batched_shape(shape, name: str, op: str) -> tuple[int, int, int, int]:
    """``shape`` as the four sizes (N, C, H, W), refused unless it is four non-negative ints
    (the ndarray kernels take no unbatched input)."""
    shape = tuple(shape)
    if len(shape) != 4 or not all(isinstance(v, Integral) and not isinstance(v, bool)
                                  and int(v) >= 0 for v in shape):
        raise ValueError(f"{op}: {name} must be 4-D (N, C, H, W) with sizes >= 0, "
                         f"got shape {shape}")
    N, C, H, W = (int(v) for v in shape)
    return N, C, H, W


def check_input_rank(shape: tuple[int, ...], name: str, op: str) -> None:
    """Accept (N, C, H, W) or unbatched (C, H, W); reject everything else."""
    if len(shape) not in (3, 4):
        raise ValueError(
            f"{op}: {name} must be 4-D (N, C, H, W) or 3-D unbatched (C, H, W), "
            f"got shape {tuple(shape)}"
        )


def effective_kernel(k: int, d: int) -> int:
    """k_eff = d(k-1)+1, the extent one dilated kernel window covers."""
    return d * (k - 1) + 1


def conv_output_size(size: int, k: int, s: int, pad: AxisPad, d: int) -> int:
    """H_out = floor((H + p_before + p_after - d(k-1) - 1) / s) + 1   (SPEC §2.2)."""
    return (size + pad[0] + pad[1] - d * (k - 1) - 1) // s + 1


def conv_remainder(size: int, k: int, s: int, pad: AxisPad, d: int) -> int:
    """r = (H + 2p - k_eff) mod s: padded rows at the end that no window reads (SPEC §2.2)."""
    return (size + pad[0] + pad[1] - effective_kernel(k, d)) % s


@dataclass(frozen=True)
class ConvGeometry:
    """Every size of one conv2d call, computed once. Padding is (before, after) per axis."""

    N: int
    C_in: int
    H: int
    W: int
    C_out: int
    kh: int
    kw: int
    sh: int
    sw: int
    pad_h: AxisPad
    pad_w: AxisPad
    dh: int
    dw: int
    groups: int

    @cached_property
    def Ho(self) -> int:
        return conv_output_size(self.H, self.kh, self.sh, self.pad_h, self.dh)

    @cached_property
    def Wo(self) -> int:
        return conv_output_size(self.W, self.kw, self.sw, self.pad_w, self.dw)

    @cached_property
    def Hp(self) -> int:
        return self.H + self.pad_h[0] + self.pad_h[1]

    @cached_property
    def Wp(self) -> int:
        return self.W + self.pad_w[0] + self.pad_w[1]

    @cached_property
    def keh(self) -> int:
        return effective_kernel(self.kh, self.dh)

    @cached_property
    def kew(self) -> int:
        return effective_kernel(self.kw, self.dw)

    @cached_property
    def rh(self) -> int:
        return conv_remainder(self.H, self.kh, self.sh, self.pad_h, self.dh)

    @cached_property
    def rw(self) -> int:
        return conv_remainder(self.W, self.kw, self.sw, self.pad_w, self.dw)

    @cached_property
    def Hq(self) -> int:
        """Rows of one phase plane ``X_pad[a::s_h, b::s_w]``: ⌈Hp / s_h⌉."""
        return -(-self.Hp // self.sh)

    @cached_property
    def Wq(self) -> int:
        """Columns of one phase plane, the row width of the row grid: ⌈Wp / s_w⌉."""
        return -(-self.Wp // self.sw)

    @cached_property
    def T(self) -> int:
        """Row-grid positions t = o_h·Wq + o_w up to the last output: (Ho − 1)·Wq + Wo."""
        return (self.Ho - 1) * self.Wq + self.Wo

    @cached_property
    def input_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C_in, self.H, self.W)

    @cached_property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.C_out, self.C_in // self.groups, self.kh, self.kw)

    @cached_property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C_out, self.Ho, self.Wo)


def conv_padding(padding, kernel: Pair, stride: Pair, dilation: Pair, op: str = "conv2d"):
    """Normalize conv padding to ``((top, bottom), (left, right))``.

    Accepts an int, a pair, ``'valid'`` (no padding) or ``'same'`` (output size = input size,
    stride 1 only; an odd total pads one more after, as PyTorch does).
    """
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0), (0, 0)
        if padding == "same":
            if stride != (1, 1):
                raise ValueError(
                    f"{op}: padding='same' is not supported for strided convolutions "
                    f"(stride={stride}); use an explicit padding or stride=1"
                )
            pads = []
            for k, d in zip(kernel, dilation):
                total = d * (k - 1)
                pads.append((total // 2, total - total // 2))
            return tuple(pads[0]), tuple(pads[1])
        raise ValueError(f"{op}: padding must be an int, a pair, 'same' or 'valid', got {padding!r}")
    ph, pw = pair(padding, "padding", op, minimum=0)
    return (ph, ph), (pw, pw)


def conv_geometry(
    x_shape, w_shape, stride=1, padding=0, dilation=1, groups=1, op: str = "conv2d"
) -> ConvGeometry:
    """Validate a conv2d configuration and return its geometry (x is 4-D here)."""
    N, C_in, H, W = batched_shape(x_shape, "input", op)
    if len(w_shape) != 4:
        raise ValueError(
            f"{op}: weight must be 4-D (C_out, C_in/groups, kh, kw), got shape {tuple(w_shape)}"
        )
    C_out, C_in_g, kh, kw = w_shape
    if min(C_out, kh, kw) < 1:  # as PyTorch: no output channel or no kernel tap is an error
        raise ValueError(f"{op}: weight shape {tuple(w_shape)} has an empty axis; expected at "
                         "least 1 output channel and a kernel of at least 1x1")
    if not isinstance(groups, Integral) or isinstance(groups, bool) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    if C_in % groups:
        raise ValueError(f"{op}: groups={groups} must divide the input channels C_in={C_in}")
    if C_out % groups:
        raise ValueError(
            f"{op}: groups={groups} must divide the output channels C_out={C_out} "
            f"(weight shape {tuple(w_shape)})"
        )
    if C_in_g * groups != C_in:
        raise ValueError(
            f"{op}: input has {C_in} channels but weight expects {C_in_g * groups} "
            f"(weight shape {tuple(w_shape)}, groups={groups})"
        )
    if kh < 1 or kw < 1:
        raise ValueError(f"{op}: kernel size must be >= 1, got weight shape {tuple(w_shape)}")
    sh, sw = pair(stride, "stride", op, minimum=1)
    dh, dw = pair(dilation, "dilation", op, minimum=1)
    pad_h, pad_w = conv_padding(padding, (kh, kw), (sh, sw), (dh, dw), op)
    geo = ConvGeometry(N, C_in, H, W, C_out, kh, kw, sh, sw, pad_h, pad_w, dh, dw, int(groups))
    for axis, size, k, d, pad, out in (
        ("height", H, kh, dh, pad_h, geo.Ho),
        ("width", W, kw, dw, pad_w, geo.Wo),
    ):
        if out < 1:
            raise ValueError(fit_message(op, axis, size, k, d, pad, out))
    return geo


def fit_message(op: str, axis: str, size: int, k: int, d: int, pad: AxisPad, out: int) -> str:
    """Explain why a kernel does not fit, with the numbers and a way out."""
    keff = effective_kernel(k, d)
    kdesc = f"kernel {k}" if d == 1 else f"kernel {k} with dilation {d} (extent {keff})"
    need = math.ceil((keff - size) / 2)
    return (
        f"{op}: {kdesc} does not fit in the padded input {axis} {size} + {pad[0]} + {pad[1]}"
        f" = {size + pad[0] + pad[1]}: the output would have {out} "
        f"{'rows' if axis == 'height' else 'columns'}; use padding >= {need} or a smaller kernel"
    )


@dataclass(frozen=True)
class PoolGeometry:
    """Every size of one 2-D pooling call. ``eh, ew``: ceil-mode extra padding at the end."""

    N: int
    C: int
    H: int
    W: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    Ho: int
    Wo: int
    ceil_mode: bool

    @property
    def eh(self) -> int:
        return max(0, self.sh * (self.Ho - 1) + effective_kernel(self.kh, self.dh) - (self.H + 2 * self.ph))

    @property
    def ew(self) -> int:
        return max(0, self.sw * (self.Wo - 1) + effective_kernel(self.kw, self.dw) - (self.W + 2 * self.pw))

    @property
    def Hp(self) -> int:
        return self.H + 2 * self.ph + self.eh

    @property
    def Wp(self) -> int:
        return self.W + 2 * self.pw + self.ew

    @property
    def output_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.Ho, self.Wo)


def pool_output_size(size: int, k: int, s: int, p: int, d: int = 1, ceil_mode: bool = False) -> int:
    """H_out = floor((H + 2p - d(k-1) - 1 + (s-1 if ceil)) / s) + 1, then the ceil correction.

    In ceil mode the last window must start inside the input or the left padding:
    if (H_out - 1)·s >= H + p, drop it (SPEC §5.1, PyTorch's rule).
    """
    out = (size + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= size + p:
        out -= 1
    return out


def pool_geometry(
    x_shape, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False, op="pool2d"
) -> PoolGeometry:
    """Validate a pooling configuration and return its geometry (x is 4-D here)."""
    N, C, H, W = batched_shape(x_shape, "input", op)
    kh, kw = pair(kernel_size, "kernel_size", op, minimum=1)
    if stride is None or (isinstance(stride, (tuple, list)) and len(stride) == 0):
        sh, sw = kh, kw
    else:
        sh, sw = pair(stride, "stride", op, minimum=1)
    ph, pw = pair(padding, "padding", op, minimum=0)
    dh, dw = pair(dilation, "dilation", op, minimum=1)
    for name, p, k in (("height", ph, kh), ("width", pw, kw)):
        if 2 * p > k:   # PyTorch: pad <= k // 2, of the kernel itself even when dilated
            raise ValueError(
                f"{op}: padding {p} on the {name} axis is more than half the kernel size {k}; "
                f"pad should be at most {k // 2}"
            )
    Ho = pool_output_size(H, kh, sh, ph, dh, ceil_mode)
    Wo = pool_output_size(W, kw, sw, pw, dw, ceil_mode)
    for axis, size, k, d, p, out in (("height", H, kh, dh, ph, Ho), ("width", W, kw, dw, pw, Wo)):
        if out < 1:
            raise ValueError(fit_message(op, axis, size, k, d, (p, p), out))
    return PoolGeometry(N, C, H, W, kh, kw, sh, sw, ph, pw, dh, dw, Ho, Wo, bool(ceil_mode))
