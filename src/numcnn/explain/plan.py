"""What ``explain`` knows about one layer: shapes, arithmetic, costs and backward tensors.

A :class:`LayerPlan` is computed from the layer's attributes and its input shape alone, with the
same geometry helpers (:mod:`numcnn.ops.shapes`) the kernels use; :mod:`.trace` later compares
every shape it lists with the arrays the code really produces.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from ..ops.shapes import ConvGeometry, PoolGeometry
from ..ops.transpose import ConvTransposeGeometry

if TYPE_CHECKING:
    from ..nn import Module

Shape = tuple[int, ...]
#: Every size of a windowed layer, as the kernels compute them (``LayerPlan.geometry``; None
#: for the other layers).
Geometry = ConvGeometry | PoolGeometry | ConvTransposeGeometry
GeometryT = TypeVar("GeometryT", ConvGeometry, PoolGeometry, ConvTransposeGeometry)


class ExplainError(ValueError):
    """A configuration that cannot run, with the reason written out (exit code 2 in the CLI)."""


#: Most bytes ``explain`` allocates for what it builds or runs (weights, a traced pass, a probe
#: run). Printing shapes needs no arrays, so any size can be explained without ``--trace``.
MAX_RUN_BYTES = 2 * 2**30


def check_bytes(what: str, nbytes: int, hint: str = "") -> None:
    """Refuse, before allocating, anything above :data:`MAX_RUN_BYTES` (one clear line)."""
    if nbytes > MAX_RUN_BYTES:
        raise ExplainError(f"{what} would need {human_bytes(nbytes)} ({nbytes:,} bytes); explain "
                           f"allocates at most {human_bytes(MAX_RUN_BYTES)}" + (f": {hint}"
                                                                              if hint else ""))


@dataclass(frozen=True)
class TensorRow:
    """One tensor of a layer's forward or backward pass.

    ``key`` names the array the trace compares against; ``meaning`` says how the tensor (or its
    gradient) is formed and which axes it sums over.
    """

    name: str
    shape: Shape
    meaning: str
    key: str = ""
    section: str = ""


#: Section headings of the conv's tensors: the two ways of computing the same backward.
BACKWARD_IM2COL = "backward, im2col/col2im form (what the GEMM kernels run)"
BACKWARD_SEED = "backward, the seed's form (zero-inserted gY, flipped kernel, R = P ⋆ X)"


@dataclass
class LayerPlan:
    """Everything ``explain`` prints about one layer (one row of the summary table)."""

    index: int
    name: str
    kind: str
    label: str
    in_shape: Shape
    out_shape: Shape
    arithmetic: list[str] = field(default_factory=list)
    params: int = 0
    flops_fwd: int | None = 0
    flops_bwd: int | None = 0
    axis_rows: list[tuple[str, int, int]] = field(default_factory=list)
    tensors: list[TensorRow] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    geometry: Geometry | None = None
    unread: tuple[int, int] | None = None
    layer: Module | None = None

    def act_bytes(self, itemsize: int) -> int:
        """Bytes of this layer's output (its activation) at the planned batch."""
        return math.prod(self.out_shape) * itemsize

    def geometry_as(self, kind: type[GeometryT]) -> GeometryT:
        """The geometry, checked to be a ``kind``: the stages and values of one layer kind
        read their own sizes, so another kind (or none) here is a bug in the caller."""
        if not isinstance(self.geometry, kind):
            raise TypeError(f"{self.label or self.kind}: expected a {kind.__name__}, the plan "
                            f"has {type(self.geometry).__name__}")
        return self.geometry

    def module(self) -> Module:
        """The layer this plan explains; None is only for rows that are no layer (a reshape
        or an activation called in ``forward``), which have no values to compute."""
        if self.layer is None:
            raise TypeError(f"{self.label or self.kind}: the plan has no layer")
        return self.layer

    def shapes(self) -> dict[str, Shape]:
        """``{key: shape}`` of every tensor the trace can check."""
        return {t.key: t.shape for t in self.tensors if t.key}


# --- arithmetic written out with the actual numbers -------------------------------------------

def conv_size_text(size: int, k: int, s: int, pad: tuple[int, int], d: int, out: int) -> str:
    r"""The seed's ``(H + 2p - k)/s + 1`` first, then the dilated general form, with numbers.

    >>> print(conv_size_text(28, 3, 2, (1, 1), 1, 14).replace("; ", ";\n"))
    (28 + 2*1 - 3)/2 + 1 = 14 (rounded down);
    general: floor((28 + 2*1 - 1*(3-1) - 1) / 2) + 1 = 14
    """
    padded = f"2*{pad[0]}" if pad[0] == pad[1] else f"{pad[0]} + {pad[1]}"
    k_eff = d * (k - 1) + 1
    seed = f"({size} + {padded} - {k_eff})/{s} + 1 = {out} (rounded down)"
    if d > 1:
        seed += f" with k_eff = d(k-1)+1 = {k_eff}"
    return f"{seed}; general: floor(({size} + {padded} - {d}*({k}-1) - 1) / {s}) + 1 = {out}"


def pool_size_text(size: int, k: int, s: int, p: int, d: int, ceil_mode: bool, out: int) -> str:
    """The pooling output size, with PyTorch's ceil-mode correction spelled out when it fires."""
    num = f"{size} + 2*{p} - {d}*({k}-1) - 1"
    if not ceil_mode:
        k_eff = d * (k - 1) + 1
        return (f"({size} + 2*{p} - {k_eff})/{s} + 1 = {out} (rounded down); "
                f"general: floor(({num}) / {s}) + 1 = {out}")
    raw = -(-(size + 2 * p - d * (k - 1) - 1) // s) + 1
    text = f"ceil(({num}) / {s}) + 1 = {raw}"
    if raw != out:
        text += (f"; the last window would start at ({raw}-1)*{s} = {(raw - 1) * s} >= "
                 f"{size} + {p} (past input and left padding), so {out}")
    return text


def per_axis(h_text: str, w_text: str) -> list[str]:
    """One line when both axes do the same arithmetic, else one line per axis."""
    if h_text == w_text:
        return [f"H, W: {h_text}"]
    return [f"H: {h_text}", f"W: {w_text}"]


def unread_count(size: int, k: int, s: int, p_before: int, d: int, out: int) -> int:
    """Input rows that no window reads: no (o, u) with s*o + d*u - p = i (math.md §3.3).

    Counted arithmetically, in O(k log k) whatever the size: tap u reads the progression
    d*u - p + s*o, o < out. Taps whose offsets agree modulo s read the same residue class, where
    each is an interval of o-indices; the union of those intervals, clipped to [0, size), is
    what is read.
    """
    if size <= 0 or out <= 0:
        return max(size, 0)
    by_residue: dict[int, list[tuple[int, int]]] = {}
    for u in range(k):
        start = d * u - p_before
        residue, t0 = start % s, start // s          # start = residue + s * t0
        by_residue.setdefault(residue, []).append((t0, t0 + out - 1))
    read = 0
    for residue, intervals in by_residue.items():
        hi = (size - 1 - residue) // s                 # rows residue + s*t, 0 <= t <= hi
        end = -1                                       # last t counted so far
        for a, b in sorted(intervals):
            a, b = max(a, end + 1), min(b, hi)
            if a <= b:
                read += b - a + 1
                end = b
    return size - read


def shape_text(shape: Shape) -> str:
    return str(tuple(shape))


def human(n: int | None) -> str:
    """An exact count below 10 000, else 3 significant digits with a K/M/G/T suffix."""
    if n is None:
        return "?"
    if abs(n) < 10_000:
        return str(n)
    for factor, suffix in ((10**12, "T"), (10**9, "G"), (10**6, "M"), (10**3, "K")):
        if abs(n) >= factor:
            return f"{n / factor:.3g}{suffix}"
    return str(n)


def human_bytes(n: int) -> str:
    """Bytes in B, KiB, MiB or GiB with 3 significant digits."""
    for factor, suffix in ((2**50, "PiB"), (2**40, "TiB"), (2**30, "GiB"), (2**20, "MiB"),
                           (2**10, "KiB")):
        if n >= factor:
            return f"{n / factor:.3g} {suffix}"
    return f"{n} B"
