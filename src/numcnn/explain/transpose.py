"""ConvTranspose2d for ``numcnn explain``: shapes, size arithmetic, backward tensors, trace.

A transposed convolution is the input gradient of the conv K with the same weight (docs/math.md
§11), so its plan lists the tensors of that gradient in both forms: the GEMM form (``dcols =
Wᵀ X`` per group, then col2im) and the seed's form (X with s−1 zeros inserted, padded
``k_eff−1−p`` before and ``k_eff−1−p+r`` after, correlated with the flipped, channel-swapped
kernel). Its backward is K itself: ``gX = conv2d(gY, W)`` on the columns of gY, and ``gW`` the
conv weight gradient with gY as the input.

The trace (:func:`transpose_extras`) rebuilds each listed intermediate with NumPy and the public
conv kernels, and checks that both forms give the layer's real output and that
``<K gY, X> = <gY, Y − b>`` (the adjoint identity).
"""
from __future__ import annotations

import math

import numpy as np

from ..ops import conv2d_forward, conv2d_weight
from ..ops.transpose import conv_transpose_geometry, conv_transpose_output_size
from .plan import ExplainError, LayerPlan, TensorRow, per_axis


def _size_text(size, k, s, p, d, r, out) -> str:
    """``(7-1)*2 - 2*1 + 1*(4-1) + 0 + 1 = 14``."""
    return f"({size}-1)*{s} - 2*{p} + {d}*({k}-1) + {r} + 1 = {out}"


def plan_conv_transpose(index: int, name: str, layer, in_shape) -> LayerPlan:
    """ConvTranspose2d: ``Y = Kᵀ X + b``, K the conv2d with the same weight (math.md §11)."""
    if len(in_shape) != 4:
        raise ExplainError(f"ConvTranspose2d expects a 4-D input (N, C, H, W), got "
                           f"{tuple(in_shape)}")
    w_shape = tuple(layer.weight.shape)
    s, p, r, d = layer.stride, layer.padding, layer.output_padding, layer.dilation
    kh, kw = w_shape[2:]
    arithmetic = per_axis(*(_size_text(n, k, si, pi, di, ri,
                                       conv_transpose_output_size(n, k, si, pi, di, ri))
                            for n, k, si, pi, di, ri in zip(in_shape[2:], (kh, kw), s, p, d, r)))
    try:
        geo = conv_transpose_geometry(tuple(in_shape), w_shape, s, p, r, layer.groups, d)
    except (ValueError, TypeError) as err:
        raise ExplainError("; ".join([str(err)] + arithmetic)) from None
    N, C_in, H, W = geo.input_shape
    C_out, g, Ho, Wo = geo.C_out, geo.groups, geo.Ho, geo.Wo
    Qg, Cg = C_out // g, C_in // g
    keh, kew = d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1
    Hk, Wk = H + r[0] // s[0], W + r[1] // s[1]          # rows K maps (Ho, Wo) back to
    K, L = Qg * kh * kw, Hk * Wk
    has_bias = getattr(layer, "bias", None) is not None
    gemm = 2 * N * C_in * H * W * K
    bias_flops = N * C_out * Ho * Wo if has_bias else 0
    plan = LayerPlan(index, name, "convtranspose2d", "", tuple(in_shape), geo.output_shape,
                     arithmetic, params=math.prod(w_shape) + (C_out if has_bias else 0),
                     flops_fwd=gemm + bias_flops, flops_bwd=2 * gemm + bias_flops,
                     geometry=geo, layer=layer)
    Gh, Gw = s[0] * (Hk - 1) + 1, s[1] * (Wk - 1) + 1
    top, left = keh - 1 - p[0], kew - 1 - p[1]
    bottom, right = Ho + keh - 1 - top - Gh, Wo + kew - 1 - left - Gw
    plan.axis_rows = [
        ("k_eff = d(k-1)+1", keh, kew),
        ("out = (H-1)s - 2p + k_eff + r", Ho, Wo),
        ("padded output out+2p (col2im grid)", Ho + 2 * p[0], Wo + 2 * p[1]),
        ("rows K maps out back to: H + floor(r/s)", Hk, Wk),
        ("dilated X = s(H-1)+1", Gh, Gw),
        ("inserted pad before = k_eff-1-p", top, left),
        ("inserted pad after = k_eff-1-p+r", bottom, right),
        ("inserted X = out+k_eff-1", Ho + keh - 1, Wo + kew - 1),
    ]
    rows = [TensorRow("X", (N, C_in, H, W), "input", "x"),
            TensorRow("W", w_shape, "weight (C_in, C_out/g, kh, kw): conv K's layout", "w")]
    if has_bias:
        rows.append(TensorRow("b", (C_out,), "bias", "b"))
    rows += [
        TensorRow("dcols", (N, g, K, L),
                  "W^T @ X per group: sums over c' (C_in/g); X zero-extended to K's size",
                  "dcols"),
        TensorRow("Y_pad", (N, C_out, Ho + 2 * p[0], Wo + 2 * p[1]),
                  "col2im(dcols): each input pixel stamps its kernel (overlaps add)", "y_pad"),
        TensorRow("Y", (N, C_out, Ho, Wo), f"Y_pad cropped by p = {p}, + b", "y"),
        TensorRow("G", (N, C_in, Gh, Gw), "seed form: X with s-1 zeros between neighbours",
                  "G"),
        TensorRow("P", (N, C_in, Ho + keh - 1, Wo + kew - 1),
                  f"G padded {top} top/{bottom} bottom, {left} left/{right} right", "P"),
        TensorRow("W_T", (C_out, Cg, kh, kw), "flip(W, (2,3)), C_in<->C_out per group", "W_T"),
        TensorRow("Y_ins", (N, C_out, Ho, Wo),
                  "= Y - b: P correlated with W_T (stride 1, dilation d, groups g)", "y_ins"),
        TensorRow("gY", (N, C_out, Ho, Wo), "given; shape of Y", "gy"),
    ]
    if has_bias:
        rows.append(TensorRow("gb", (C_out,), "gY summed over n, o_h, o_w = axes (0, 2, 3)",
                              "gb"))
    rows += [
        TensorRow("cols", (N, g, K, L), "im2col of gY for K (the conv of the backward)",
                  "cols"),
        TensorRow("gX", (N, C_in, H, W),
                  "conv2d(gY, W) = W @ cols per group: sums over K = (o', u, v)", "gx"),
        TensorRow("gW", w_shape,
                  "conv2d weight gradient, gY as input: X @ cols^T, sums over n and (i, j)",
                  "gw"),
    ]
    plan.tensors = rows
    plan.notes = [
        (f"GEMM per group (g={g}): [M=N*H*W={N * H * W}] x [K=C_out/g*kh*kw={K}] x "
         f"[C_in/g={Cg}]; FLOPs fwd = gX = gW = {gemm} (the conv K's, with roles exchanged)"),
        "forward = the input gradient of conv2d(., W); backward gX = that conv2d itself",
    ]
    return plan


# --- trace ------------------------------------------------------------------------------------

def _close(a, b) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=1e-9 * (1 + np.abs(b).max()))


def _cols(a: np.ndarray, geo, kh, kw) -> np.ndarray:
    """im2col of ``a`` (N, C_out, Ho, Wo) for K: (N, g, C_out/g·kh·kw, H'·W')."""
    (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
    N, C = a.shape[:2]
    Hk, Wk = geo.H + geo.output_padding[0] // sh, geo.W + geo.output_padding[1] // sw
    a = np.pad(a, [(0, 0), (0, 0), (ph, ph), (pw, pw)])
    taps = [a[:, :, dh * u:dh * u + sh * (Hk - 1) + 1:sh, dw * v:dw * v + sw * (Wk - 1) + 1:sw]
            for u in range(kh) for v in range(kw)]
    cols = np.stack(taps, axis=2).reshape(N, C, kh, kw, Hk, Wk)           # (N, C, kh, kw, H', W')
    return cols.reshape(N, geo.groups, -1, Hk * Wk)


def transpose_extras(plan, x, gy, got, res, where) -> None:
    """Materialize every listed intermediate and cross-check both forward forms and gW."""
    geo, w = plan.geometry, got["w"]
    (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
    N, g, kh, kw = geo.N, geo.groups, geo.kh, geo.kw
    Cg, Qg = geo.C_in // g, geo.C_out // g
    Hk, Wk = geo.H + geo.output_padding[0] // sh, geo.W + geo.output_padding[1] // sw
    x_ext = np.pad(x, [(0, 0), (0, 0), (0, Hk - geo.H), (0, Wk - geo.W)])
    dcols = np.matmul(w.reshape(g, Cg, -1).transpose(0, 2, 1),             # (g, K, C_in/g)
                      x_ext.reshape(N, g, Cg, Hk * Wk))                     # (N, g, K, L)
    got["dcols"] = dcols
    y_pad = np.zeros((N, geo.C_out, geo.Ho + 2 * ph, geo.Wo + 2 * pw))
    taps = dcols.reshape(N, geo.C_out, kh, kw, Hk, Wk)
    for u in range(kh):                                   # col2im: a loop over kernel taps
        for v in range(kw):
            y_pad[:, :, dh * u:dh * u + sh * (Hk - 1) + 1:sh,
                  dw * v:dw * v + sw * (Wk - 1) + 1:sw] += taps[:, :, u, v]
    got["y_pad"] = y_pad
    bias = got.get("b")
    b4 = 0.0 if bias is None else bias.reshape(1, -1, 1, 1)
    y = got["y"]
    res.value(where, "col2im(W^T X) cropped + b == the layer's Y",
              _close(y_pad[:, :, ph:ph + geo.Ho, pw:pw + geo.Wo] + b4, y))
    G = np.zeros((N, geo.C_in, sh * (Hk - 1) + 1, sw * (Wk - 1) + 1))
    G[:, :, ::sh, ::sw] = x_ext
    got["G"] = G
    (_, top, left), (_, bottom, right) = plan.axis_rows[5], plan.axis_rows[6]
    P = np.pad(G, [(0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))])
    H_P, W_P = P.shape[2:]                                # crop where a pad amount is negative
    P = P[:, :, max(-top, 0):H_P - max(-bottom, 0), max(-left, 0):W_P - max(-right, 0)]
    got["P"] = P
    W_T = np.flip(w, axis=(2, 3)).reshape(g, Cg, Qg, kh, kw).transpose(0, 2, 1, 3, 4) \
        .reshape(geo.C_out, Cg, kh, kw)
    got["W_T"] = W_T
    got["y_ins"] = conv2d_forward(np.ascontiguousarray(P), np.ascontiguousarray(W_T), None, 1, 0,
                                  (dh, dw), g)
    res.value(where, "inserted X correlated with W_T, + b == the layer's Y",
              _close(got["y_ins"] + b4, y))
    got["cols"] = _cols(gy, geo, kh, kw)
    kgy = conv2d_forward(gy, w, None, geo.stride, geo.padding, geo.dilation, g)
    res.value(where, "adjoint identity <conv2d(gY, W), X> == <gY, Y - b>",
              bool(np.isclose(np.vdot(kgy[:, :, :geo.H, :geo.W], x), np.vdot(gy, y - b4),
                              rtol=1e-9, atol=1e-9)))
    res.value(where, "conv2d(gY, W) == autograd gX", _close(kgy[:, :, :geo.H, :geo.W], got["gx"]))
    res.value(where, "conv2d weight gradient (gY as input, X as output gradient) == autograd gW",
              _close(conv2d_weight(gy, w.shape, x_ext, geo.stride, geo.padding, geo.dilation, g),
                     got["gw"]))
