"""``--trace``: run the model for real and compare every explained shape with the code's arrays.

The model is copied and cast to float64, one forward pass records what each leaf layer really
receives and returns, then each layer is run again on its recorded input with a random upstream
gradient. The intermediates are materialized with the kernels of :mod:`numcnn.ops` (``columns``,
``im2col``, ``col2im``, ``inserted_grad``, ``flip_swap``, the pooling pads, divisors and argmax),
and the gradients come from autograd. A few values are cross-checked too: both conv backward
forms agree, the inserted gradient is G padded exactly as explained, and the rows explained as
"read by no window" are exactly the rows the code's col2im never touches.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np

from ..autograd import Tensor
from ..ops import conv as _conv
from ..ops import pool as _pool
from ..ops.windows import col2im, crop2d, dilate2d, im2col, pad2d, tap_slices
from .hooks import watching
from .plan import LayerPlan, check_bytes
from .transpose import transpose_extras
from .values import seed_weight_grad
from .walk import plan_layers


class TraceError(AssertionError):
    """The explanation and the code disagree; the message lists every mismatch, and
    ``explanation`` holds the text that was checked (the CLI prints it before the mismatches)."""

    def __init__(self, message: str, explanation: str = "") -> None:
        super().__init__(message)
        self.explanation = explanation


@dataclass
class TraceResult:
    batch: int
    shapes: int = 0
    values: int = 0
    mismatches: list[str] = field(default_factory=list)

    def shape(self, where: str, name: str, explained, actual) -> None:
        self.shapes += 1
        got = None if actual is None else tuple(np.shape(actual))
        if got != tuple(explained):
            self.mismatches.append(f"{where} {name}: explained {tuple(explained)}, code {got}")

    def value(self, where: str, what: str, ok: bool) -> None:
        self.values += 1
        if not ok:
            self.mismatches.append(f"{where}: {what} does not hold")

    def summary(self) -> str:
        return (f"trace: {self.shapes} shapes checked, all match (batch {self.batch}, float64)\n"
                f"trace: {self.values} value cross-checks (both conv backward forms, the "
                f"inserted-grad padding, rows read by no window), all agree")


def _params(layer) -> list:
    if hasattr(layer, "parameters"):
        return list(layer.parameters())
    return [p for p in (getattr(layer, "weight", None), getattr(layer, "bias", None))
            if p is not None]


def _float64(model):
    model = copy.deepcopy(model)
    if hasattr(model, "to"):
        model.to(np.float64)
    else:
        for p in _params(model):
            p.data = p.data.astype(np.float64)
    return model


def _array(t) -> np.ndarray:
    t = t[0] if isinstance(t, tuple) else t
    return t.data if isinstance(t, Tensor) else np.asarray(t)


def _record(model, plans, x):
    """Run ``model(x)`` once, recording (layer, input array, output array) per leaf call."""
    calls = []

    def on_call(layer, inp):
        return lambda out: calls.append((layer, _array(inp), _array(out)))

    with watching([p.layer for p in plans if p.layer is not None], on_call):
        out = model(x)
    return out, calls


def _close(a, b) -> bool:
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=1e-9 * (1 + np.abs(b).max()))


def _axis(plan: LayerPlan, prefix: str) -> tuple[int, int]:
    return next((h, w) for label, h, w in plan.axis_rows if label.startswith(prefix))


def _covered_rows(geo, kh, kw, top, left, H, W) -> tuple[int, int]:
    """Rows / columns of the input that the code's col2im never writes to (coverage zero)."""
    cov = col2im(np.ones((1, 1, kh, kw, geo.Ho, geo.Wo)), geo.Hp, geo.Wp,
                 geo.sh, geo.sw, geo.dh, geo.dw)[0, 0]
    rows = cov[top:top + H, :].sum(axis=1)
    cols = cov[:, left:left + W].sum(axis=0)
    return int(np.sum(rows == 0)), int(np.sum(cols == 0))


def _pad_or_crop(a, top, bottom, left, right):
    """Zero-pad (or crop, for negative amounts) the last two axes; written with np.pad."""
    a = np.pad(a, [(0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0))])
    H, W = a.shape[-2:]
    return a[..., max(-top, 0):H - max(-bottom, 0), max(-left, 0):W - max(-right, 0)]


def _conv_extras(plan, x, gy, got, res, where):
    geo, w = plan.geometry, got["w"]
    N, g, Qg = geo.N, geo.groups, geo.C_out // geo.groups
    got["x_pad"] = pad2d(x, geo.pad_h, geo.pad_w)
    got["cols6"] = im2col(got["x_pad"], geo.kh, geo.kw, geo.Ho, geo.Wo, geo.sh, geo.sw,
                          geo.dh, geo.dw)
    got["cols"] = np.ascontiguousarray(got["cols6"]).reshape(N, g, -1, geo.Ho * geo.Wo)
    dcols = np.matmul(w.reshape(g, Qg, -1).transpose(0, 2, 1),         # (g, K, Qg)
                      gy.reshape(N, g, Qg, geo.Ho * geo.Wo))           # (N, g, K, L)
    got["dcols"] = dcols
    got["gx_pad"] = col2im(dcols.reshape(N, geo.C_in, geo.kh, geo.kw, geo.Ho, geo.Wo),
                           geo.Hp, geo.Wp, geo.sh, geo.sw, geo.dh, geo.dw)
    got["G"] = dilate2d(gy, geo.sh, geo.sw)
    got["P"] = _conv.inserted_grad(gy, geo)
    got["W_T"] = _conv.flip_swap(w, g)
    got["gx_ins"] = _conv.grad_input_inserted(gy, w, geo)
    got["R"], got["gw_rot"] = seed_weight_grad(got["P"], x, geo)
    gx = got["gx"]
    res.value(where, "col2im(dcols) cropped == autograd gX",
              _close(np.asarray(crop2d(got["gx_pad"], geo.pad_h, geo.pad_w)), gx))
    res.value(where, "inserted-grad gX == autograd gX", _close(got["gx_ins"], gx))
    res.value(where, "Rot180(P * X) gW == autograd gW",
              _close(_conv.grad_weight_inserted(x, gy, geo), got["gw"])
              and _close(got["gw_rot"], got["gw"]))
    top, left = _axis(plan, "inserted pad before")
    bottom, right = _axis(plan, "inserted pad after")
    res.value(where, f"P == G padded {top}/{bottom} rows, {left}/{right} cols",
              np.array_equal(got["P"], _pad_or_crop(got["G"], top, bottom, left, right)))
    unread = _covered_rows(geo, geo.kh, geo.kw, geo.pad_h[0], geo.pad_w[0], geo.H, geo.W)
    zero = (int(np.sum(~gx.any(axis=(0, 1, 3)))), int(np.sum(~gx.any(axis=(0, 1, 2)))))
    (uh, uw), (H, W) = plan.unread, (geo.H, geo.W)
    expect = (uh if uw < W else H, uw if uh < H else W)      # no row read: every column is 0
    res.value(where, f"{plan.unread} rows/cols read by no window (col2im coverage {unread}, "
              f"zero gradient {zero})", unread == plan.unread and zero == expect)


def _pool_extras(plan, x, gy, got, res, where):
    geo, layer = plan.geometry, plan.layer
    avg = plan.kind == "avgpool2d"
    got["x_pad"] = _pool._padded(x, geo, 0.0 if avg else -np.inf)
    got["tap"] = got["x_pad"][tap_slices(0, 0, geo.Ho, geo.Wo, geo.sh, geo.sw, geo.dh, geo.dw)]
    if avg:
        got["D"] = _pool.avg_divisor(geo, layer.count_include_pad,
                                     getattr(layer, "divisor_override", None))
    else:
        got["argmax"] = _pool.max_pool_forward(x, geo)[1]
    unread = _covered_rows(geo, geo.kh, geo.kw, geo.ph, geo.pw, geo.H, geo.W)
    res.value(where, f"{plan.unread} rows/cols read by no window (col2im coverage {unread})",
              unread == plan.unread)


def _layer_arrays(plan, x_in, rng, res, where):
    """Run one layer on its recorded input; return {key: array} of what the code produced."""
    layer = plan.layer
    for p in _params(layer):
        p.grad = None
    xt = Tensor(np.array(x_in), requires_grad=True)
    y = layer(xt) if layer is not None else xt.reshape(*plan.out_shape)
    y = y[0] if isinstance(y, tuple) else y
    gy = rng.standard_normal(y.shape)
    y.backward(gy)
    got = {"x": x_in, "y": y.data, "gy": gy, "gx": xt.grad}
    for key, name in (("w", "weight"), ("b", "bias")):
        param = getattr(layer, name, None)
        if param is not None:
            got[key], got["g" + key] = param.data, param.grad
    if plan.kind == "conv2d":
        _conv_extras(plan, got["x"], gy, got, res, where)
    elif plan.kind == "convtranspose2d":
        transpose_extras(plan, got["x"], gy, got, res, where)
    elif plan.kind in ("avgpool2d", "maxpool2d"):
        _pool_extras(plan, got["x"], gy, got, res, where)
    elif plan.kind == "adaptiveavgpool2d":
        got["A_h"] = _pool.adaptive_bins(x_in.shape[-2], y.shape[-2], np.float64)[0]
        got["A_w"] = _pool.adaptive_bins(x_in.shape[-1], y.shape[-1], np.float64)[0]
    return got


def trace_bytes(plans) -> int:
    """Bytes of the float64 arrays a trace materializes: every tensor each plan lists."""
    return 8 * sum(math.prod(t.shape) for p in plans for t in p.tensors)


def run_trace(model, in_shape, seed: int = 0) -> TraceResult:
    """Trace ``model`` on random float64 data of shape ``in_shape`` (batch included)."""
    rng = np.random.default_rng(seed)
    plans = plan_layers(model, in_shape)
    check_bytes(f"--trace on input {tuple(in_shape)}", trace_bytes(plans),
                "trace a smaller input (the shapes follow the same arithmetic)")
    model = _float64(model)
    plans = plan_layers(model, in_shape)                  # the plans of the float64 copy
    res = TraceResult(batch=in_shape[0])
    x = Tensor(rng.standard_normal(in_shape), requires_grad=True)
    try:
        out, calls = _record(model, plans, x)
        out = out[0] if isinstance(out, tuple) else out
        out.backward(rng.standard_normal(out.shape))
    except Exception as err:  # noqa: BLE001 - any failure of the real run is a finding
        res.mismatches.append(f"the forward/backward pass raised {type(err).__name__}: {err}")
        return res
    res.shape("model", "output", plans[-1].out_shape, out.data)
    res.shape("model", "input gradient", in_shape, x.grad)
    for p in _params(model):
        res.shape("model", "parameter gradient", p.shape, p.grad)
    real = [p for p in plans if p.layer is not None]
    if [id(layer) for layer, _, _ in calls] != [id(p.layer) for p in real]:
        res.mismatches.append("forward does not call the layers once each in registration "
                              "order; the explanation follows registration order")
        return res
    inputs = {id(p): a for p, (_, a, _) in zip(real, calls)}
    outputs = {id(p): b for p, (_, _, b) in zip(real, calls)}
    for i, plan in enumerate(plans):
        where = f"layer {plan.index}" + (f" ({plan.name})" if plan.name else "")
        if plan.layer is None:                          # reshape or F.activation in forward()
            before = [p for p in plans[:i] if p.layer is not None]
            after = [p for p in plans[i + 1:] if p.layer is not None]
            x_in = outputs[id(before[-1])] if before else x.data
            res.shape(where, "Y", plan.out_shape,
                      inputs[id(after[0])] if after else out.data)
            if not plan.kind.startswith("flatten"):
                continue
        else:
            x_in = inputs[id(plan)]
            res.shape(where, "Y (in the model)", plan.out_shape, outputs[id(plan)])
        try:
            got = _layer_arrays(plan, x_in, rng, res, where)
        except Exception as err:  # noqa: BLE001 - a crash is a mismatch, reported as such
            res.mismatches.append(f"{where}: running it raised {type(err).__name__}: {err}")
            continue
        for row in plan.tensors:
            if row.key:
                res.shape(where, row.name, row.shape, got.get(row.key))
    return res
