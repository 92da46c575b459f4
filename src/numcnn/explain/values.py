"""The arrays of one layer for one sample, by numcnn's own kernels (``--values``, ``--html``).

Given a conv or pooling plan and integer-valued inputs (so every sum can be checked by hand),
each ``*_values`` function returns the named arrays the seed draws: ``X_pad``, ``Y``, ``gY``,
``G`` (gY with s-1 zeros inserted), ``P`` (G padded k_eff-1-p before, k_eff-1-p+r after),
``W_T`` (the flipped, channel-swapped kernel), ``gX`` both ways and ``gW`` both ways. Every
output and gradient comes from :mod:`numcnn.ops`; this module only rearranges (pads, inserts,
flips), which is what the seed's pictures show. A new layer kind adds one function to ``VALUES``.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from .. import ops
from ..ops.shapes import ConvGeometry, PoolGeometry, pair
from ..ops.transpose import ConvTransposeGeometry
from .plan import ExplainError, LayerPlan

#: Largest sample (C*H*W elements) the values are computed and shown for.
MAX_ELEMENTS = 4096
#: Largest channel count shown (grids per array).
MAX_CHANNELS = 8
#: A size as layers hold it and the kernels take it: an int or an (h, w) sequence.
Size = int | Sequence[int]


def sample_inputs(plan: LayerPlan, seed: int = 0) -> dict[str, np.ndarray]:
    """Small integer inputs for one sample: ``x`` (and ``w``, ``b`` for a conv) and ``gy``.

    Max pooling gets distinct values (no ties, so each window has one clear maximum).
    """
    rng = np.random.default_rng(seed)
    shape = (1,) + tuple(plan.in_shape[1:])
    if plan.kind == "maxpool2d":
        x = rng.permutation(math.prod(shape)).reshape(shape) + 1.0
    else:
        x = rng.integers(0, 10, shape).astype(np.float64)
    out = {"x": x, "gy": rng.integers(1, 5, (1,) + tuple(plan.out_shape[1:])).astype(np.float64)}
    if plan.kind in ("conv2d", "convtranspose2d"):
        w_shape = tuple(plan.module().weight.shape)
        out["w"] = rng.integers(-1, 3, w_shape).astype(np.float64)
        if getattr(plan.layer, "bias", None) is not None:
            out["b"] = rng.integers(-1, 2, (plan.out_shape[1],)).astype(np.float64)
    return out


def check_small(plan: LayerPlan, what: str) -> None:
    """Refuse samples too large to show value by value (one clear message)."""
    if len(plan.in_shape) != 4 or plan.kind not in VALUES:
        kinds = ", ".join(sorted(VALUES))
        raise ExplainError(f"{what} shows the values of one layer of kind {kinds}; "
                           f"got {plan.label or plan.kind} on input {plan.in_shape}")
    mode = getattr(plan.layer, "padding_mode", "zeros")
    if mode != "zeros":  # the values shown are those of zero padding
        raise ExplainError(f"{what} shows zero-padded convolutions only; got "
                           f"padding_mode={mode!r} in {plan.label or plan.kind} (explain it "
                           f"without {what} for its shapes and costs)")
    C, H, W = plan.in_shape[1:]
    channels = max(C, plan.out_shape[1])
    largest = max(C * H * W, math.prod(plan.out_shape[1:]))     # a transposed conv grows
    if largest > MAX_ELEMENTS or channels > MAX_CHANNELS:
        out = "x".join(map(str, plan.out_shape[1:]))
        raise ExplainError(f"{what} is for small samples (C*H*W of input and output <= "
                           f"{MAX_ELEMENTS}, at most {MAX_CHANNELS} channels); got input "
                           f"{C}x{H}x{W} and output {out}")


def insert_zeros(gy: np.ndarray, s: tuple[int, int]) -> np.ndarray:
    """G: ``s-1`` zeros between neighbours of gY. Size per axis s(out-1)+1."""
    N, C, Ho, Wo = gy.shape
    G = np.zeros((N, C, s[0] * (Ho - 1) + 1, s[1] * (Wo - 1) + 1), dtype=gy.dtype)
    G[:, :, ::s[0], ::s[1]] = gy
    return G


def pad_or_crop(a: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """Zero-pad the last two axes (a negative amount crops: windows lying in the padding)."""
    a = np.pad(a, [(0, 0), (0, 0), (max(top, 0), max(bottom, 0)),
                   (max(left, 0), max(right, 0))])
    H, W = a.shape[-2:]
    return a[..., max(-top, 0):H - max(-bottom, 0), max(-left, 0):W - max(-right, 0)]


def flip_swap(w: np.ndarray, groups: int) -> np.ndarray:
    """``W_T[γ·Cg + c', q', u, v] = W[γ·Qg + q', c', kh-1-u, kw-1-v]``, (C_in, C_out/g, kh, kw)."""
    C_out, Cg, kh, kw = w.shape
    Qg = C_out // groups
    flipped = w[:, :, ::-1, ::-1].reshape(groups, Qg, Cg, kh, kw)
    return np.ascontiguousarray(flipped.transpose(0, 2, 1, 3, 4).reshape(groups * Cg, Qg, kh, kw))


def inserted_pads(geo: ConvGeometry) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of P: k_eff-1-p before, k_eff-1-p+r after (math.md 5.1)."""
    return (geo.keh - 1 - geo.pad_h[0], geo.keh - 1 - geo.pad_h[1] + geo.rh,
            geo.kew - 1 - geo.pad_w[0], geo.kew - 1 - geo.pad_w[1] + geo.rw)


def seed_weight_grad(P: np.ndarray, x: np.ndarray,
                     geo: ConvGeometry) -> tuple[np.ndarray, np.ndarray]:
    """The seed's gW (math.md 5.3): ``R[n, q, c] = P[n, q] ⋆ X[n, c]`` (X slides over P), then
    ``gW[q, c'] = Σ_n rot180(R[n, q, γ(q)·Cg + c'])[::d_h, ::d_w]``. Returns (R, gW).

    R is computed by the conv kernel: per sample, the channels of X act as C_in kernels of one
    channel sliding over the C_out channels of P. Shapes (N, C_out, C_in, k_eff_h, k_eff_w), W's.
    """
    R = np.stack([ops.conv2d_forward(Pn[:, None], xn[:, None], None, 1, 0, 1, 1)
                  for Pn, xn in zip(P, x)])
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    q = np.arange(geo.C_out)[:, None]
    own = R[:, q, (q // Qg) * Cg + np.arange(Cg)].sum(axis=0)         # (C_out, Cg, ke_h, ke_w)
    return R, np.ascontiguousarray(own[:, :, ::-1, ::-1][:, :, ::geo.dh, ::geo.dw])


def conv_values(plan: LayerPlan, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Every array of the conv forward, its im2col backward and the seed's inserted backward."""
    geo = plan.geometry_as(ConvGeometry)
    x, w, gy, b = inputs["x"], inputs["w"], inputs["gy"], inputs.get("b")
    s, d, g = (geo.sh, geo.sw), (geo.dh, geo.dw), geo.groups
    pad = (geo.pad_h, geo.pad_w)
    layer = plan.module()
    args = (layer.stride, layer.padding, layer.dilation, layer.groups)
    top, bottom, left, right = inserted_pads(geo)
    G = insert_zeros(gy, s)
    P = pad_or_crop(G, top, bottom, left, right)
    W_T = flip_swap(w, g)
    R, gW_rot = seed_weight_grad(P, x, geo)
    out = {
        "X": x, "W": w,
        "X_pad": np.pad(x, [(0, 0), (0, 0), pad[0], pad[1]]),
        "Y": ops.conv2d_forward(x, w, b, *args),
        "gY": gy,
        "gW": ops.conv2d_weight(x, w.shape, gy, *args),
        "gX": ops.conv2d_input(x.shape, w, gy, *args, method="gemm"),
        "G": G, "P": P, "W_T": W_T,
        "gX_ins": ops.conv2d_forward(P, W_T, None, 1, 0, d, g),
        "R": R[0], "gW_rot": gW_rot,
    }
    if b is not None:
        out["b"], out["gb"] = b, ops.conv2d_bias(gy)
    return out


def _pool_args(plan: LayerPlan) -> tuple[tuple[int, int], Size, Size, bool]:
    """``(kernel, stride, padding, ceil_mode)`` as the pooling kernels take them."""
    layer = plan.module()
    k = pair(layer.kernel_size, "kernel_size", plan.kind)
    stride = layer.stride if layer.stride not in (None, ()) else k
    return k, stride, layer.padding, bool(getattr(layer, "ceil_mode", False))


def _pool_pad(x: np.ndarray, geo: PoolGeometry, value: float) -> np.ndarray:
    """p before, p + the ceil-mode overhang after, filled with ``value``."""
    return np.pad(x, [(0, 0), (0, 0), (geo.ph, geo.ph + geo.eh), (geo.pw, geo.pw + geo.ew)],
                  constant_values=value)


def avg_values(plan: LayerPlan, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Average pooling: Y, gX, and D (each window's divisor), all from the kernels."""
    geo, layer = plan.geometry_as(PoolGeometry), plan.module()
    x, gy = inputs["x"], inputs["gy"]
    k, s, p, ceil = _pool_args(plan)
    kw = {"ceil_mode": ceil,
          "count_include_pad": bool(getattr(layer, "count_include_pad", True)),
          "divisor_override": getattr(layer, "divisor_override", None)}
    # D from the backward: a one-hot gY on window o spreads 1/D[o] to each cell of the window.
    L = geo.Ho * geo.Wo
    spread = ops.avg_pool2d_backward(np.eye(L).reshape(L, 1, geo.Ho, geo.Wo),
                                     (L, 1, geo.H, geo.W), k, s, p, **kw)
    share = spread.reshape(L, -1).max(axis=1)
    D = np.where(share > 0, 1.0 / np.where(share > 0, share, 1.0), 0.0).reshape(geo.Ho, geo.Wo)
    return {
        "X": x, "X_pad": _pool_pad(x, geo, 0.0),
        "Y": ops.avg_pool2d_forward(x, k, s, p, **kw),
        "D": np.round(D, 9),
        "gY": gy,
        "gX": ops.avg_pool2d_backward(gy, x.shape, k, s, p, **kw),
    }


def max_values(plan: LayerPlan, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Max pooling: Y, the argmax tap of each window, and gX (gY routed to the argmax)."""
    geo, layer = plan.geometry_as(PoolGeometry), plan.module()
    x, gy = inputs["x"], inputs["gy"]
    k, s, p, ceil = _pool_args(plan)
    d = getattr(layer, "dilation", 1)
    y, argmax = ops.max_pool2d_forward(x, k, s, p, d, ceil)
    return {
        "X": x, "X_pad": _pool_pad(x, geo, -np.inf),
        "Y": y, "argmax": argmax,
        "gY": gy,
        "gX": ops.max_pool2d_backward(gy, argmax, x.shape, k, s, p, d, ceil),
    }


def transpose_values(plan: LayerPlan, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """ConvTranspose2d: Y by the kernel, the scatter's ``Y_pad``, the seed's inserted form
    (``G``, ``P``, ``W_T``, ``Y_ins``), and gX, gW, gb; every sum by :mod:`numcnn.ops`."""
    geo, layer = plan.geometry_as(ConvTransposeGeometry), plan.module()
    x, w, gy, b = inputs["x"], inputs["w"], inputs["gy"], inputs.get("b")
    s, p, r, d, g = geo.stride, geo.padding, geo.output_padding, geo.dilation, geo.groups
    args = (s, p, r, g, d)
    # K (the conv whose input gradient this layer is) maps Ho back to H + r//s rows: when
    # s <= r < d, X is zero-extended to that size first (ops/transpose.py).
    Hk, Wk = geo.H + r[0] // s[0], geo.W + r[1] // s[1]
    x_ext = np.pad(x, [(0, 0), (0, 0), (0, Hk - geo.H), (0, Wk - geo.W)])
    (_, top, left), (_, bottom, right) = plan.axis_rows[5], plan.axis_rows[6]
    G = insert_zeros(x_ext, s)
    P = pad_or_crop(G, top, bottom, left, right)
    W_T = flip_swap(w, g)                  # W is K's weight (C_in = K's C_out, C_out/g, kh, kw)
    ypad = ops.conv_transpose2d_forward(x, w, None, s, 0, r, g, d)     # before the crop by p
    out = {
        "X": x, "W": w, "Y_pad": ypad,
        "Y": ops.conv_transpose2d_forward(x, w, b, *args),
        "G": G, "P": P, "W_T": W_T,
        "Y_ins": ops.conv2d_forward(P, W_T, None, 1, 0, d, g),
        "gY": gy,
        "gY_pad": np.pad(gy, [(0, 0), (0, 0), (p[0], p[0]), (p[1], p[1])]),
        "gX": ops.conv_transpose2d_input(x.shape, w, gy, *args),
        "gW": ops.conv_transpose2d_weight(x, w.shape, gy, *args),
    }
    if getattr(layer, "bias", None) is not None and b is not None:
        out["b"], out["gb"] = b, ops.conv_transpose2d_bias(gy)
    return out


#: plan.kind -> function(plan, inputs) -> {name: array}. A new layer kind is one entry here and
#: one in :data:`numcnn.explain.page.STAGES`.
VALUES = {"conv2d": conv_values, "avgpool2d": avg_values, "maxpool2d": max_values,
          "convtranspose2d": transpose_values}

#: What ``--values`` prints, in the seed's order, per kind.
PRINTED = {
    "conv2d": ("X_pad", "W", "Y", "gY", "G", "P", "W_T", "gX", "gX_ins", "gW", "gW_rot"),
    "avgpool2d": ("X_pad", "Y", "D", "gY", "gX"),
    "maxpool2d": ("X_pad", "Y", "argmax", "gY", "gX"),
    "convtranspose2d": ("X", "W", "Y_pad", "Y", "G", "P", "W_T", "Y_ins", "gY", "gX", "gW"),
}

CAPTIONS = {
    "X": "input", "X_pad": "input, zero-padded", "W": "weight (C_out, C_in/g, kh, kw)",
    "Y": "output",
    "gY": "upstream gradient (given)", "G": "zero-inserted gY: s-1 zeros between neighbours",
    "P": "G padded k_eff-1-p before, k_eff-1-p+r after", "W_T": "W flipped 180 degrees, "
    "C_out <-> C_in per group", "gX": "input gradient, im2col/col2im form (numcnn's kernel)",
    "gX_ins": "input gradient, the seed's form: P correlated with W_T",
    "gW": "weight gradient: gY correlated with X_pad", "gW_rot": "weight gradient, the seed's "
    "form: rot180(R), R = P correlated with X", "D": "divisor of each window",
    "argmax": "tap u*kw+v of each window's maximum", "R": "R = P correlated with X",
}

#: The pools' own wording where it differs from the conv's.
POOL_CAPTIONS = {**CAPTIONS, "X_pad": "input, padded (0 for avg, -inf for max)",
                 "X": "input", "gX": "input gradient (numcnn's kernel)"}


#: ConvTranspose2d's wording: X plays gY's part in the inserted form.
TRANSPOSE_CAPTIONS = {
    **CAPTIONS, "X": "input", "W": "weight (C_in, C_out/g, kh, kw): the layout of the conv K "
    "from C_out to C_in channels", "Y_pad": "output before the crop by p: each input cell "
    "stamps X·W here, s apart; overlaps add", "Y": "output: Y_pad cropped by p, + b",
    "G": "zero-inserted X: s-1 zeros between neighbours",
    "P": "G padded k_eff-1-p before, k_eff-1-p+r after", "W_T": "W flipped 180 degrees, "
    "C_in <-> C_out per group (the conv2d weight that runs the inserted form)",
    "Y_ins": "Y - b the seed's way: P correlated with W_T", "gY": "upstream gradient (given)",
    "gY_pad": "gY zero-padded by p", "gX": "input gradient: conv2d(gY, W), a plain conv",
    "gW": "weight gradient: X correlated with gY_pad",
}

#: plan.kind -> the captions of its arrays.
CAPTIONS_OF = {"conv2d": CAPTIONS, "avgpool2d": POOL_CAPTIONS, "maxpool2d": POOL_CAPTIONS,
               "convtranspose2d": TRANSPOSE_CAPTIONS}


def layer_values(plan: LayerPlan, inputs: dict[str, np.ndarray] | None = None,
                 seed: int = 0) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """``(inputs, {name: array})`` for one sample of the layer ``plan`` explains."""
    inputs = sample_inputs(plan, seed) if inputs is None else inputs
    return inputs, VALUES[plan.kind](plan, inputs)


def _number(v: float) -> str:
    if not np.isfinite(v):
        return "-inf" if v < 0 else "inf"
    return f"{v:.4g}" if v != int(v) else str(int(v))


def grid_text(a: np.ndarray) -> list[str]:
    """A 2-D array as right-aligned columns."""
    cells = [[_number(float(v)) for v in row] for row in np.atleast_2d(a)]
    width = max(len(c) for row in cells for c in row)
    return [" ".join(c.rjust(width) for c in row) for row in cells]


def values_text(plan: LayerPlan, arrays: dict[str, np.ndarray],
                source: str = "small random integers, seed 0") -> str:
    """The arrays of ``PRINTED`` for sample 0, one block per channel (per (q, c') for kernels)."""
    out = [f"values of one sample (inputs: {source}; every result from numcnn's kernels)"]
    for name in PRINTED[plan.kind]:
        a = arrays[name]
        a = a[0] if a.ndim == 4 and name not in ("W", "W_T", "gW", "gW_rot") else a
        captions = CAPTIONS_OF[plan.kind]
        out.append(f"{name} {tuple(arrays[name].shape)}: {captions[name]}")
        if a.ndim == 2:
            out += ["    " + line for line in grid_text(a)]
            continue
        for index in np.ndindex(*a.shape[:-2]):
            out.append(f"  [{', '.join(map(str, index))}]")
            out += ["    " + line for line in grid_text(a[index])]
    if "b" in arrays:
        out.append(f"b {tuple(arrays['b'].shape)}: {' '.join(_number(v) for v in arrays['b'])}"
                   f"; gb = gY summed over (n, o_h, o_w): "
                   f"{' '.join(_number(v) for v in arrays['gb'])}")
    return "\n".join(out)
