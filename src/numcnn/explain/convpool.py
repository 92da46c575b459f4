"""Plans for Conv2d, AvgPool2d, MaxPool2d and AdaptiveAvgPool2d   (docs/math.md §2–§8).

Each planner reads the layer's PyTorch-named attributes, validates them with the same
:mod:`numcnn.ops.shapes` helpers the kernels use, and lists every tensor of the forward pass,
the GEMM/col2im backward and the seed's inserted-gradient backward with its shape.
"""
from __future__ import annotations

import math

from ..ops.shapes import conv_geometry, conv_padding, pair, pool_geometry, pool_output_size
from .plan import (
    BACKWARD_IM2COL,
    BACKWARD_SEED,
    ExplainError,
    LayerPlan,
    TensorRow,
    conv_size_text,
    per_axis,
    pool_size_text,
    unread_count,
)


def _require_4d(in_shape, what: str) -> None:
    if len(in_shape) != 4:
        raise ExplainError(f"{what} expects a 4-D input (N, C, H, W), got {tuple(in_shape)}")


def _conv_arithmetic(layer, in_shape, w_shape) -> list[str]:
    """Output-size arithmetic per axis, computed before validation so errors can show it."""
    _, _, H, W = in_shape
    kh, kw = w_shape[2:]
    s = pair(layer.stride, "stride", "conv2d", minimum=1)
    d = pair(layer.dilation, "dilation", "conv2d", minimum=1)
    pads = conv_padding(layer.padding, (kh, kw), s, d)
    texts = []
    for size, k, st, pad, dil in zip((H, W), (kh, kw), s, pads, d):
        out = (size + pad[0] + pad[1] - dil * (k - 1) - 1) // st + 1
        texts.append(conv_size_text(size, k, st, pad, dil, out))
    return per_axis(*texts)


def plan_conv(index: int, name: str, layer, in_shape) -> LayerPlan:
    """Conv2d: ``Y = W ⋆ X + b`` with stride, padding, dilation and groups (math.md §3–§5)."""
    _require_4d(in_shape, "Conv2d")
    w_shape = tuple(layer.weight.shape)
    has_bias = getattr(layer, "bias", None) is not None
    arithmetic: list[str] = []
    try:
        arithmetic = _conv_arithmetic(layer, in_shape, w_shape)
        geo = conv_geometry(tuple(in_shape), w_shape, layer.stride, layer.padding,
                            layer.dilation, layer.groups)
    except (ValueError, TypeError) as err:
        raise ExplainError("; ".join([str(err)] + arithmetic)) from None
    N, C_in, H, W = geo.input_shape
    C_out, g, kh, kw = geo.C_out, geo.groups, geo.kh, geo.kw
    Cg, Qg, Ho, Wo = C_in // g, C_out // g, geo.Ho, geo.Wo
    K, L = Cg * kh * kw, Ho * Wo
    Gh, Gw = geo.sh * (Ho - 1) + 1, geo.sw * (Wo - 1) + 1
    top, left = geo.keh - 1 - geo.pad_h[0], geo.kew - 1 - geo.pad_w[0]
    bottom, right = geo.keh - 1 - geo.pad_h[1] + geo.rh, geo.kew - 1 - geo.pad_w[1] + geo.rw
    unread = (unread_count(H, kh, geo.sh, geo.pad_h[0], geo.dh, Ho),
              unread_count(W, kw, geo.sw, geo.pad_w[0], geo.dw, Wo))
    gemm = 2 * N * C_out * L * K
    bias_flops = N * C_out * L if has_bias else 0
    plan = LayerPlan(index, name, "conv2d", "", tuple(in_shape), geo.output_shape, arithmetic,
                     params=math.prod(w_shape) + (C_out if has_bias else 0),
                     flops_fwd=gemm + bias_flops, flops_bwd=2 * gemm + bias_flops,
                     geometry=geo, unread=unread, layer=layer)
    plan.axis_rows = [
        ("out = (H+2p-k)/s+1, rounded down", Ho, Wo),
        ("k_eff = d(k-1)+1 (k when d=1)", geo.keh, geo.kew),
        ("general: floor((H+2p-k_eff)/s)+1", Ho, Wo),
        ("padded input H+2p", geo.Hp, geo.Wp),
        ("remainder r = (H+2p-k_eff) mod s", geo.rh, geo.rw),
        ("input rows/cols read by no window", *unread),
        ("zero-inserted gY G = s(out-1)+1", Gh, Gw),
        ("inserted pad before = k_eff-1-p", top, left),
        ("inserted pad after  = k_eff-1-p+r", bottom, right),
        ("padded inserted gY P = H+k_eff-1", H + geo.keh - 1, W + geo.kew - 1),
    ]
    fwd, gemm_bwd, seed_bwd = "forward", BACKWARD_IM2COL, BACKWARD_SEED
    rows = [
        TensorRow("X", (N, C_in, H, W), "input", "x", fwd),
        TensorRow("W", w_shape, "weight", "w", fwd),
    ]
    if has_bias:
        rows.append(TensorRow("b", (C_out,), "bias", "b", fwd))
    rows += [
        TensorRow("X_pad", (N, C_in, geo.Hp, geo.Wp),
                  f"X zero-padded {geo.pad_h[0]}/{geo.pad_h[1]} rows, "
                  f"{geo.pad_w[0]}/{geo.pad_w[1]} cols (before/after)", "x_pad", fwd),
        TensorRow("im2col", (N, C_in, kh, kw, Ho, Wo),
                  "im2col: cols[n,c,u,v,o_h,o_w] = X_pad[n,c,s_h*o_h+d_h*u,s_w*o_w+d_w*v]",
                  "cols6", fwd),
        TensorRow("cols", (N, g, K, L),
                  "im2col as the GEMM operand (N, g, K=C_in/g*kh*kw, L=H_out*W_out)", "cols", fwd),
        TensorRow("Y", (N, C_out, Ho, Wo),
                  "W (g, C_out/g, K) @ cols: sums over K = (c', u, v), + b", "y", fwd),
        TensorRow("gY", (N, C_out, Ho, Wo), "given; shape of Y", "gy", gemm_bwd),
    ]
    if has_bias:
        rows.append(TensorRow("gb", (C_out,), "gY summed over n, o_h, o_w = axes (0, 2, 3)", "gb",
                              gemm_bwd))
    rows += [
        TensorRow("gW", w_shape, "gY @ cols^T per group: sums over n and L = (o_h, o_w)", "gw",
                  gemm_bwd),
        TensorRow("dcols", (N, g, K, L),
                  "W^T @ gY per group: sums over q within the group (C_out/g)", "dcols", gemm_bwd),
        TensorRow("gX_pad", (N, C_in, geo.Hp, geo.Wp),
                  "col2im(dcols): scatter-add of kh*kw strided slices (overlaps add)", "gx_pad",
                  gemm_bwd),
        TensorRow("gX", (N, C_in, H, W),
                  "gX_pad cropped: sums over all (o, u) with s*o + d*u - p = i", "gx", gemm_bwd),
        TensorRow("G", (N, C_out, Gh, Gw),
                  "zero-inserted gY: s-1 zeros between neighbours", "G", seed_bwd),
        TensorRow("P", (N, C_out, H + geo.keh - 1, W + geo.kew - 1),
                  f"G padded {top} top/{bottom} bottom, {left} left/{right} right"
                  + (" (r adds after)" if geo.rh or geo.rw else ""), "P", seed_bwd),
        TensorRow("W_T", (C_in, Qg, kh, kw), "flip(W, (2,3)), C_out<->C_in per group", "W_T",
                  seed_bwd),
        TensorRow("gX_ins", (N, C_in, H, W),
                  "= gX: P correlated with W_T (stride 1, dilation d, groups g)", "gx_ins",
                  seed_bwd),
        TensorRow("R", (N, C_out, C_in, geo.keh, geo.kew),
                  "R = P ⋆ X: X slides over P, per (n, q, c); size |P|-H+1 = k_eff", "R", seed_bwd),
        TensorRow("gW_rot", w_shape,
                  "= gW: rot180(R) summed over n, own group's channels, every d-th entry",
                  "gw_rot", seed_bwd),
    ]
    plan.tensors = rows
    plan.notes = [
        (f"GEMM per group (g={g}): [M=N*H_out*W_out={N * L}] x [K=C_in/g*kh*kw={K}] x "
         f"[C_out/g={Qg}], run as {N * g} batched ({Qg}x{K})@({K}x{L}) products; "
         f"FLOPs fwd = gW = gX = {gemm}"),
        (f"im2col buffer N*C_in*kh*kw*H_out*W_out = {N * C_in * kh * kw * L} floats; "
         f"inserted-grad gX im2col N*C_out*kh*kw*H*W = {N * C_out * kh * kw * H * W} floats"),
    ]
    return plan


def _pool_kind(layer) -> str:
    return "avgpool2d" if "Avg" in type(layer).__name__ else "maxpool2d"


def plan_pool(index: int, name: str, layer, in_shape) -> LayerPlan:
    """AvgPool2d / MaxPool2d: windows of the ceil-mode extended padded input (math.md §2, §6)."""
    kind = _pool_kind(layer)
    op = "avg_pool2d" if kind == "avgpool2d" else "max_pool2d"
    _require_4d(in_shape, type(layer).__name__)
    config = layer.get_config()
    dilation = config.get("dilation", 1)           # AvgPool2d has none
    ceil_mode = config["ceil_mode"]
    arithmetic: list[str] = []
    try:
        k = pair(config["kernel_size"], "kernel_size", op, minimum=1)
        s = k if config["stride"] in (None, ()) else pair(config["stride"], "stride", op,
                                                          minimum=1)
        p = pair(config["padding"], "padding", op, minimum=0)
        d = pair(dilation, "dilation", op, minimum=1)
        outs = [pool_output_size(n, *a, ceil_mode) for n, a in zip(in_shape[2:], zip(k, s, p, d))]
        arithmetic = per_axis(*(pool_size_text(n, *a, ceil_mode, o) for n, a, o in
                                zip(in_shape[2:], zip(k, s, p, d), outs)))
        geo = pool_geometry(tuple(in_shape), k, s, p, d, ceil_mode, op)
    except (ValueError, TypeError) as err:
        raise ExplainError("; ".join([str(err)] + arithmetic)) from None
    N, C, H, W = in_shape
    Ho, Wo, kh, kw = geo.Ho, geo.Wo, geo.kh, geo.kw
    windows = N * C * Ho * Wo
    unread = (unread_count(H, kh, geo.sh, geo.ph, geo.dh, Ho),
              unread_count(W, kw, geo.sw, geo.pw, geo.dw, Wo))
    if kind == "avgpool2d":
        fwd, bwd = windows * kh * kw, windows * (kh * kw + 1)
    else:
        fwd, bwd = windows * (kh * kw - 1), windows * kh * kw
    plan = LayerPlan(index, name, kind, "", tuple(in_shape), geo.output_shape, arithmetic,
                     flops_fwd=fwd, flops_bwd=bwd, geometry=geo, unread=unread, layer=layer)
    plan.axis_rows = [
        ("k_eff = d(k-1)+1", geo.dh * (kh - 1) + 1, geo.dw * (kw - 1) + 1),
        ("padded input H+2p", H + 2 * geo.ph, W + 2 * geo.pw),
        (f"out ({'ceil mode, PyTorch rule' if ceil_mode else 'floor mode'})", Ho, Wo),
        ("extra pad after (ceil_mode overhang)", geo.eh, geo.ew),
        ("input rows/cols read by no window", *unread),
    ]
    fill = "0" if kind == "avgpool2d" else "-inf"
    rows = [
        TensorRow("X", (N, C, H, W), "input", "x"),
        TensorRow("X_pad", (N, C, geo.Hp, geo.Wp),
                  f"padded with {fill}: p before, p + overhang after", "x_pad"),
        TensorRow("tap", (N, C, Ho, Wo),
                  f"one of the kh*kw = {kh * kw} strided slices of X_pad (no im2col copy)", "tap"),
        TensorRow("Y", (N, C, Ho, Wo), "sum of the taps / D" if fill == "0" else
                  "running max over the taps", "y"),
    ]
    if kind == "avgpool2d":
        cip = config["count_include_pad"]
        rows.append(TensorRow("D", (Ho, Wo), f"divisor per window, count_include_pad={cip}", "D"))
        grad = "gY/D added to every tap of its window: sums over the windows containing (i, j)"
    else:
        rows.append(TensorRow("argmax", (N, C, Ho, Wo),
                              "int64 tap u*kw+v of the first maximum (PyTorch's tie rule)",
                              "argmax"))
        grad = "gY routed to the argmax tap: sums over the windows whose argmax is (i, j)"
    rows += [TensorRow("gY", (N, C, Ho, Wo), "given; shape of Y", "gy"),
             TensorRow("gX", (N, C, H, W), grad + "; cropped", "gx")]
    plan.tensors = rows
    return plan


def _bins(size: int, out: int) -> list[int]:
    return [-(-(o + 1) * size // out) - (o * size) // out for o in range(out)]


def plan_adaptive(index: int, name: str, layer, in_shape) -> LayerPlan:
    """AdaptiveAvgPool2d: bin o averages rows floor(o*H/O) .. ceil((o+1)*H/O) - 1."""
    _require_4d(in_shape, "AdaptiveAvgPool2d")
    N, C, H, W = in_shape
    size = layer.output_size
    if isinstance(size, (tuple, list)):
        size = tuple(n if o is None else o for n, o in zip((H, W), size))
    try:
        Oh, Ow = pair(size, "output_size", "adaptive_avg_pool2d", minimum=1)
    except (ValueError, TypeError) as err:
        raise ExplainError(str(err)) from None
    bh, bw = _bins(H, Oh), _bins(W, Ow)
    texts = [f"{n} -> {o} bins [floor(o*{n}/{o}), ceil((o+1)*{n}/{o})) of lengths "
             f"{sorted(set(b))}" for n, o, b in ((H, Oh, bh), (W, Ow, bw))]
    area = sum(bh) * sum(bw)
    plan = LayerPlan(index, name, "adaptiveavgpool2d", "", tuple(in_shape), (N, C, Oh, Ow),
                     per_axis(*texts), flops_fwd=N * C * area, flops_bwd=N * C * (area + Oh * Ow),
                     layer=layer)
    plan.tensors = [
        TensorRow("X", (N, C, H, W), "input", "x"),
        TensorRow("A_h", (Oh, H), "bin membership of the rows", "A_h"),
        TensorRow("A_w", (Ow, W), "bin membership of the columns", "A_w"),
        TensorRow("Y", (N, C, Oh, Ow), "A_h X A_w^T / bin area", "y"),
        TensorRow("gY", (N, C, Oh, Ow), "given; shape of Y", "gy"),
        TensorRow("gX", (N, C, H, W), "A_h^T (gY / area) A_w: sums over the bins containing (i, j)",
                  "gx"),
    ]
    return plan
