"""The steps of the interactive page: which arrays to show, which cells to mark, what to say.

:func:`page_data` turns one layer's arrays (:mod:`.values`, all computed by numcnn's kernels)
into a JSON-ready dict of *stages*; a stage shows some arrays and may step through *cells*,
each marking the cells of the arrays it reads (a window, a weight, routed gradients) and the
one cell it produces. The page (:mod:`.html`) only displays this data: every number on it was
computed here or by the kernels, never in the browser.

A layer kind is one stage function in :data:`STAGES` beside its entry in
:data:`numcnn.explain.values.VALUES`; ConvTranspose2d's lives in :mod:`.page_transpose`, the
building blocks (:class:`~.stage.Stage`, numbers and sums as shown) in :mod:`.stage`.
"""
from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TypedDict

import numpy as np

from ..ops.shapes import ConvGeometry, PoolGeometry
from .page_transpose import transpose_stages
from .plan import LayerPlan
from .render import detail
from .stage import (
    MAX_CELLS,
    NOT_BATCHED,
    Grid,
    Marks,
    Stage,
    StageData,
    grids,
    nonzero_sum,
    num,
    size_lines,
    times,
)
from .values import CAPTIONS_OF, inserted_pads

__all__ = ["MAX_CELLS", "NOT_BATCHED", "STAGES", "ArrayData", "PageData", "Stage", "grids",
           "nonzero_sum", "num", "page_data", "times"]


# --- Conv2d ----------------------------------------------------------------------------------

def conv_stages(plan: LayerPlan, a: dict[str, np.ndarray]) -> list[Stage]:
    """Forward, gW, the seed's gX (insert, pad, flip, correlate), gX by col2im, the seed's gW."""
    geo = plan.geometry_as(ConvGeometry)
    return [_conv_sizes(plan, geo),
            *(stage(geo, a) for stage in (_conv_forward, _conv_weight_grad, _conv_insert_zeros,
                                          _conv_pad_inserted, _conv_flip_kernel,
                                          _conv_correlate_inserted, _conv_col2im,
                                          _conv_seed_weight_grad))]


def _conv_sizes(plan: LayerPlan, geo: ConvGeometry) -> Stage:
    """H_out = (H + 2p − k_eff)/s + 1 rounded down, the remainder r, and every size."""
    return Stage("sizes", "The layer and its sizes", [
        (f"seed form: H_out = (H + 2p − k)/s + 1 = ({geo.H} + {geo.pad_h[0] + geo.pad_h[1]} − "
         f"{geo.keh})/{geo.sh} + 1 = {geo.Ho} (rounded down; k is k_eff = d(k−1)+1 = {geo.keh} "
         "when dilated)"),
        (f"the remainder r = (H + 2p − k_eff) mod s = {geo.rh} (rows), {geo.rw} (cols): "
         f"input rows the last window does not reach"),
        *size_lines(plan)], ["X", "X_pad", "W"])


def _conv_forward(geo: ConvGeometry, a: dict[str, np.ndarray]) -> Stage:
    """Y[q, o_h, o_w] = Σ_(c′,u,v) X_pad[γ(q)·C_in/g + c′, s·o_h + d·u, s·o_w + d·v]·W[q, c′, u, v]
    (+ b[q]): one cell per output, marking its window and the weights."""
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, sh, sw, dh, dw = geo.kh, geo.kw, geo.sh, geo.sw, geo.dh, geo.dw
    Xp, Wt, Y, b = a["X_pad"][0], a["W"], a["Y"][0], a.get("b")
    st = Stage("forward", "Forward: each Y cell is one window of X_pad times W, summed",
               [f"Y[q, o_h, o_w] = Σ_(c′,u,v) X_pad[γ(q)·{Cg} + c′, {sh}·o_h + {dh}·u, "
                f"{sw}·o_w + {dw}·v] · W[q, c′, u, v]" + (" + b[q]" if b is not None else ""),
                (f"window size k_eff = {geo.keh}x{geo.kew}, stride {sh}x{sw}; "
                 f"{geo.C_out * geo.Ho * geo.Wo} output cells")], ["X_pad", "W", "Y"], fill="Y")
    for q, oh, ow in itertools.product(range(geo.C_out), range(geo.Ho), range(geo.Wo)):
        marks: Marks = {"X_pad": [], "W": []}
        terms: list[str] = []
        for c1, u, v in itertools.product(range(Cg), range(kh), range(kw)):
            c, i, j = (q // Qg) * Cg + c1, sh * oh + dh * u, sw * ow + dw * v
            marks["X_pad"].append([c, i, j])
            marks["W"].append([q * Cg + c1, u, v])
            terms.append(times(Xp[c, i, j], Wt[q, c1, u, v]))
        bias = f" + b[{q}] ({num(b[q])})" if b is not None else ""
        st.cell(f"Y[{q}, {oh}, {ow}]: window at rows {sh * oh}…{sh * oh + dh * (kh - 1)}, "
                f"cols {sw * ow}…{sw * ow + dw * (kw - 1)} of X_pad",
                " + ".join(terms) + bias + f" = {num(Y[q, oh, ow])}", marks, ["Y", q, oh, ow])
    return st


def _conv_weight_grad(geo: ConvGeometry, a: dict[str, np.ndarray]) -> Stage:
    """gW[q, c′, u, v] = Σ_(o_h,o_w) gY[q, o_h, o_w]·X_pad[γ(q)·C_in/g + c′, s·o_h + d·u,
    s·o_w + d·v], and gb[q] = Σ gY[q]: one cell per weight, marking the windows it touched."""
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, sh, sw, dh, dw = geo.kh, geo.kw, geo.sh, geo.sw, geo.dh, geo.dw
    Xp, gY = a["X_pad"][0], a["gY"][0]
    st = Stage("gW", "gW: each weight's gradient sums over the windows it touched",
               [(f"gW[q, c′, u, v] = Σ_(o_h,o_w) gY[q, o_h, o_w] · X_pad[γ(q)·{Cg} + c′, "
                 f"{sh}·o_h + {dh}·u, {sw}·o_w + {dw}·v]"),
                ("the weight W[q, c′, u, v] met exactly these inputs in the forward, one per "
                 "window: gY weights each")]
               + ([f"gb[q] = Σ gY[q] = {', '.join(num(v) for v in a['gb'])}"]
                  if a.get("b") is not None else []), ["gY", "X_pad", "gW"], fill="gW")
    for q, c1, u, v in itertools.product(range(geo.C_out), range(Cg), range(kh), range(kw)):
        c = (q // Qg) * Cg + c1
        marks: Marks = {"gY": [], "X_pad": []}
        terms: list[str] = []
        for oh, ow in itertools.product(range(geo.Ho), range(geo.Wo)):
            i, j = sh * oh + dh * u, sw * ow + dw * v
            marks["gY"].append([q, oh, ow])
            marks["X_pad"].append([c, i, j])
            terms.append(times(gY[q, oh, ow], Xp[c, i, j]))
        st.cell(f"gW[{q}, {c1}, {u}, {v}]: the cells this weight multiplied, one per window",
                " + ".join(terms) + f" = {num(a['gW'][q, c1, u, v])}", marks,
                ["gW", q * Cg + c1, u, v])
    return st


def _conv_insert_zeros(geo: ConvGeometry, a: dict[str, np.ndarray]) -> Stage:
    """The seed's gX ①: G = gY with s−1 zeros between neighbours, s(H_out − 1) + 1 per axis."""
    sh, sw, Ho, Wo = geo.sh, geo.sw, geo.Ho, geo.Wo
    st = Stage("insert", "gX the seed's way ①: insert s−1 zeros between the gY values", [
        f"G = gY with {sh - 1} zero row(s) and {sw - 1} zero column(s) between neighbours",
        (f"size of G = s(H_out − 1) + 1 = {sh}·({Ho} − 1) + 1 = {sh * (Ho - 1) + 1} rows, "
         f"{sw}·({Wo} − 1) + 1 = {sw * (Wo - 1) + 1} cols")], ["gY", "G"])
    for q, oh, ow in itertools.product(range(geo.C_out), range(Ho), range(Wo)):
        st.mark("gY", q, oh, ow)
        st.mark("G", q, sh * oh, sw * ow)
    return st


def _conv_pad_inserted(geo: ConvGeometry, a: dict[str, np.ndarray]) -> Stage:
    """The seed's gX ②: P = G padded k_eff−1−p before and k_eff−1−p+r after, H + k_eff − 1
    per axis; the cells the remainder r adds are marked "r"."""
    top, bottom, left, right = inserted_pads(geo)
    P = a["P"][0]
    r_note = (f" — the remainder r = {geo.rh} adds {geo.rh} row(s) after"
              if geo.rh else "") + (f", r = {geo.rw} adds {geo.rw} col(s) after" if geo.rw else "")
    st = Stage("pad", "② pad: k_eff−1−p before, k_eff−1−p+r after (the remainder r)", [
        (f"rows: before k_eff−1−p = {geo.keh}−1−{geo.pad_h[0]} = {top}; after k_eff−1−p+r = "
         f"{geo.keh}−1−{geo.pad_h[1]}+{geo.rh} = {bottom}"),
        (f"cols: before {geo.kew}−1−{geo.pad_w[0]} = {left}; after "
         f"{geo.kew}−1−{geo.pad_w[1]}+{geo.rw} = {right}{r_note}"),
        (f"size of P = H + k_eff − 1 = {geo.H} + {geo.keh} − 1 = {geo.H + geo.keh - 1} rows, "
         f"{geo.W} + {geo.kew} − 1 = {geo.W + geo.kew - 1} cols (always; negative amounts "
         "crop)")], ["G", "P"])
    Gh, Gw = a["G"].shape[-2:]
    for q, i, j in itertools.product(range(geo.C_out), range(P.shape[-2]), range(P.shape[-1])):
        if 0 <= i - top < Gh and 0 <= j - left < Gw:
            st.mark("P", q, i, j)
        elif i >= P.shape[-2] - geo.rh or j >= P.shape[-1] - geo.rw:
            st.mark("P", q, i, j, "r")
    return st


def _conv_flip_kernel(geo: ConvGeometry, a: dict[str, np.ndarray]) -> Stage:
    """The seed's gX ③: W_T[γ·C_in/g + c′, q′, u, v] = W[γ·C_out/g + q′, c′, kh−1−u, kw−1−v];
    one cell per (c, q′) kernel."""
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, WT = geo.kh, geo.kw, a["W_T"]
    st = Stage("flip", "③ flip the kernel 180° and swap its channels: W_T", [
        "W_T[γ·C_in/g + c′, q′, u, v] = W[γ·C_out/g + q′, c′, kh−1−u, kw−1−v]",
        (f"shape {tuple(WT.shape)} = (C_in, C_out/g, kh, kw): the contraction now runs over the "
         "output channels")], ["W", "W_T"])
    for c, q1 in itertools.product(range(geo.C_in), range(Qg)):
        q, c1 = (c // Cg) * Qg + q1, c % Cg
        marks: Marks = {"W": [[q * Cg + c1, u, v] for u in range(kh) for v in range(kw)],
                        "W_T": [[c * Qg + q1, u, v] for u in range(kh) for v in range(kw)]}
        st.cell(f"W_T[{c}, {q1}] = rot180(W[{q}, {c1}])",
                "; ".join(f"W_T[{c},{q1},{u},{v}] = W[{q},{c1},{kh - 1 - u},{kw - 1 - v}] = "
                          f"{num(WT[c, q1, u, v])}" for u in range(kh) for v in range(kw)),
                marks, ["W_T", c * Qg + q1, 0, 0])
    return st


def _conv_correlate_inserted(geo: ConvGeometry, a: dict[str, np.ndarray]) -> Stage:
    """The seed's gX ④: gX[c, i, j] = Σ_(q′,u,v) P[γ·C_out/g + q′, i + d·u, j + d·v]·W_T[c, q′,
    u, v], stride 1; one cell per input, marking its window of P."""
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, dh, dw = geo.kh, geo.kw, geo.dh, geo.dw
    P, WT, gX_ins = a["P"][0], a["W_T"], a["gX_ins"][0]
    st = Stage("correlate", "④ correlate P with W_T, cell by cell: gX", [
        (f"gX[c, i, j] = Σ_(q′,u,v) P[γ·{Qg} + q′, i + {dh}·u, j + {dw}·v] · W_T[c, q′, u, v]"
         " (stride 1, the layer's dilation)"),
        f"output size = |P| − k_eff + 1 = {P.shape[-2]} − {geo.keh} + 1 = {geo.H}: exactly X"],
        ["P", "W_T", "gX_ins"], fill="gX_ins")
    for c, i, j in itertools.product(range(geo.C_in), range(geo.H), range(geo.W)):
        marks: Marks = {"P": [], "W_T": []}
        pairs: list[tuple[float, float]] = []
        for q1, u, v in itertools.product(range(Qg), range(kh), range(kw)):
            q = (c // Cg) * Qg + q1
            marks["P"].append([q, i + dh * u, j + dw * v])
            marks["W_T"].append([c * Qg + q1, u, v])
            pairs.append((P[q, i + dh * u, j + dw * v], WT[c, q1, u, v]))
        st.cell(f"gX[{c}, {i}, {j}]: the window of P at rows {i}…{i + dh * (kh - 1)}, cols "
                f"{j}…{j + dw * (kw - 1)}", nonzero_sum(pairs, gX_ins[c, i, j]),
                marks, ["gX_ins", c, i, j])
    return st


def _conv_col2im(geo: ConvGeometry, a: dict[str, np.ndarray]) -> Stage:
    """gX by im2col/col2im: gX[c, i, j] = Σ gY[q, o_h, o_w]·W[q, c′, u, v] over the windows
    with s·o + d·u − p = i (per axis); one cell per input, checked against the seed's gX."""
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, sh, sw, dh, dw = geo.kh, geo.kw, geo.sh, geo.sw, geo.dh, geo.dw
    ph, pw = geo.pad_h[0], geo.pad_w[0]
    Wt, gY, gX = a["W"], a["gY"][0], a["gX"][0]
    diff = float(np.abs(a["gX"] - a["gX_ins"]).max())
    st = Stage("col2im", "The same gX from im2col/col2im: each input cell gathers what it fed", [
        "dcols = W^T @ gY per group, then col2im adds each column back where im2col read it:",
        (f"gX[c, i, j] = Σ over (q, o, u) with {sh}·o_h + {dh}·u − {ph} = i and "
         f"{sw}·o_w + {dw}·v − {pw} = j of gY[q, o_h, o_w] · W[q, c′, u, v]"),
        f"max |gX (col2im) − gX (inserted)| = {diff:g}: the two forms agree"],
        ["gY", "W", "gX", "gX_ins"], fill="gX")
    for c, i, j in itertools.product(range(geo.C_in), range(geo.H), range(geo.W)):
        marks: Marks = {"gY": [], "W": [], "gX_ins": [[c, i, j]]}
        terms: list[str] = []
        c1 = c % Cg
        for q1, oh, ow in itertools.product(range(Qg), range(geo.Ho), range(geo.Wo)):
            q = (c // Cg) * Qg + q1
            du, dv = i + ph - sh * oh, j + pw - sw * ow
            if du % dh or dv % dw or not (0 <= du // dh < kh and 0 <= dv // dw < kw):
                continue
            u, v = du // dh, dv // dw
            marks["gY"].append([q, oh, ow])
            marks["W"].append([q * Cg + c1, u, v])
            terms.append(times(gY[q, oh, ow], Wt[q, c1, u, v]))
        st.cell(f"gX[{c}, {i}, {j}]: {len(terms)} window position(s) read this input",
                (" + ".join(terms) if terms else "read by no window: 0")
                + f" = {num(gX[c, i, j])}", marks, ["gX", c, i, j])
    return st


def _conv_seed_weight_grad(geo: ConvGeometry, a: dict[str, np.ndarray]) -> Stage:
    """The seed's gW: R[q, c] = P[q] ⋆ X[c], gW[q, c′] = rot180(R[q, γ(q)·C_in/g + c′]), checked
    against the direct gW."""
    diff = float(np.abs(a["gW"] - a["gW_rot"]).max())
    return Stage("seed-gW", "gW the seed's way: R = P ⋆ X, rotated 180°", [
        "R[q, c] = P[q] ⋆ X[c] (X slides over P): size |P| − H + 1 = k_eff per axis",
        "gW[q, c′] = rot180(R[q, γ(q)·C_in/g + c′]), every d-th entry when dilated",
        f"max |gW (seed form) − gW (direct)| = {diff:g}"], ["P", "X", "R", "gW_rot", "gW"])


# --- pooling ---------------------------------------------------------------------------------

def _window(geo: PoolGeometry, oh: int, ow: int) -> list[tuple[int, int]]:
    return [(geo.sh * oh + geo.dh * u, geo.sw * ow + geo.dw * v)
            for u in range(geo.kh) for v in range(geo.kw)]


def _pool_sizes(plan: LayerPlan, fill: str) -> Stage:
    geo = plan.geometry_as(PoolGeometry)
    return Stage("sizes", "The layer and its sizes", [
        (f"seed form: H_out = (H + 2p − k)/s + 1 = ({geo.H} + 2·{geo.ph} − {geo.kh})/{geo.sh} + 1"
         f" (rounded {'up, PyTorch rule' if geo.ceil_mode else 'down'}) = {geo.Ho}"),
         f"X_pad: X padded with {fill} (p before; p plus the ceil-mode overhang after)",
        *size_lines(plan)], ["X", "X_pad"])


def avg_stages(plan: LayerPlan, a: dict[str, np.ndarray]) -> list[Stage]:
    """Forward: each window's sum over D; backward: each input gathers gY/D of its windows."""
    geo = plan.geometry_as(PoolGeometry)
    Xp, Y, D, gY, gX = a["X_pad"][0], a["Y"][0], a["D"], a["gY"][0], a["gX"][0]
    stages = [_pool_sizes(plan, "0")]
    st = Stage("forward", "Forward: each Y cell is its window's sum divided by D",
               ["Y[c, o] = (Σ window of X_pad) / D[o]",
                (f"count_include_pad={bool(getattr(plan.layer, 'count_include_pad', True))}: "
                 "D counts the window's cells (the padding too when True)")],
               ["X_pad", "D", "Y"], fill="Y")
    for c, oh, ow in itertools.product(range(geo.C), range(geo.Ho), range(geo.Wo)):
        cells = [(i, j) for i, j in _window(geo, oh, ow) if i < Xp.shape[-2] and j < Xp.shape[-1]]
        st.cell(f"Y[{c}, {oh}, {ow}]", "(" + " + ".join(num(Xp[c, i, j]) for i, j in cells)
                + f") / {num(D[oh, ow])} = {num(Y[c, oh, ow])}",
                {"X_pad": [[c, i, j] for i, j in cells], "D": [[0, oh, ow]]}, ["Y", c, oh, ow])
    stages.append(st)
    st = Stage("backward", "gX: each input cell gathers gY/D from every window it lies in",
               ["gX[c, i, j] = Σ over windows o containing (i, j) of gY[c, o] / D[o]"],
               ["gY", "D", "gX"], fill="gX")
    for c, i, j in itertools.product(range(geo.C), range(geo.H), range(geo.W)):
        marks: Marks = {"gY": [], "D": []}
        terms: list[str] = []
        for oh, ow in itertools.product(range(geo.Ho), range(geo.Wo)):
            if (i + geo.ph, j + geo.pw) in _window(geo, oh, ow):
                marks["gY"].append([c, oh, ow])
                marks["D"].append([0, oh, ow])
                terms.append(f"{num(gY[c, oh, ow])}/{num(D[oh, ow])}")
        st.cell(f"gX[{c}, {i}, {j}]: in {len(terms)} window(s)",
                (" + ".join(terms) if terms else "in no window: 0") + f" = {num(gX[c, i, j])}",
                marks, ["gX", c, i, j])
    stages.append(st)
    return stages


def max_stages(plan: LayerPlan, a: dict[str, np.ndarray]) -> list[Stage]:
    """Forward: each window's maximum; backward: each gY goes to its window's argmax cell."""
    geo = plan.geometry_as(PoolGeometry)
    Xp, Y, am, gY, gX = a["X_pad"][0], a["Y"][0], a["argmax"][0], a["gY"][0], a["gX"][0]
    stages = [_pool_sizes(plan, "−∞")]
    fwd = Stage("forward", "Forward: each Y cell is its window's maximum (argmax kept)",
                [("Y[c, o] = max over the window of X_pad; argmax = tap u·kw + v of the first "
                  "maximum (PyTorch's tie rule)")], ["X_pad", "Y", "argmax"], fill="Y")
    route = Stage("route", "Backward: each gY value is routed to its window's argmax cell",
                  [("gX[c, i, j] = Σ of gY[c, o] over the windows o whose maximum is X[c, i, j];"
                    " every other input gets 0")], ["gY", "X", "gX"])
    for c, oh, ow in itertools.product(range(geo.C), range(geo.Ho), range(geo.Wo)):
        t = int(am[c, oh, ow])
        mi, mj = geo.sh * oh + geo.dh * (t // geo.kw), geo.sw * ow + geo.dw * (t % geo.kw)
        cells = [(i, j) for i, j in _window(geo, oh, ow)]
        fwd.cell(f"Y[{c}, {oh}, {ow}]: maximum at tap {t} = X_pad[{c}, {mi}, {mj}]",
                 "max(" + ", ".join(num(Xp[c, i, j]) for i, j in cells) + f") = "
                 f"{num(Y[c, oh, ow])}",
                 {"X_pad": [[c, i, j, "a" if (i, j) == (mi, mj) else "m"] for i, j in cells],
                  "argmax": [[c, oh, ow]]}, ["Y", c, oh, ow])
        xi, xj = mi - geo.ph, mj - geo.pw
        route.cell(f"gY[{c}, {oh}, {ow}] = {num(gY[c, oh, ow])} → X[{c}, {xi}, {xj}] "
                   f"(value {num(Xp[c, mi, mj])}, the window's maximum)",
                   f"gX[{c}, {xi}, {xj}] += {num(gY[c, oh, ow])}; in total gX[{c}, {xi}, {xj}] = "
                   f"{num(gX[c, xi, xj])}",
                   {"gY": [[c, oh, ow]], "gX": [[c, xi, xj, "a"]],
                    "X": [[c, i - geo.ph, j - geo.pw, "a" if (i, j) == (mi, mj) else "m"]
                          for i, j in cells
                          if 0 <= i - geo.ph < geo.H and 0 <= j - geo.pw < geo.W]},
                   ["gX", c, xi, xj])
    return stages + [fwd, route]


def _shapes_stage(plan: LayerPlan) -> Stage:
    return Stage("shapes", "Every shape, as numcnn explain prints it",
                 detail(plan, f"{plan.label}: input {plan.in_shape}").splitlines(), [])


#: plan.kind -> function(plan, arrays) -> [Stage]; see :data:`.values.VALUES`.
STAGES: dict[str, Callable[[LayerPlan, dict[str, np.ndarray]], list[Stage]]] = {
    "conv2d": conv_stages, "avgpool2d": avg_stages, "maxpool2d": max_stages,
    "convtranspose2d": transpose_stages}


class ArrayData(TypedDict):
    """One array the page shows: its caption, its shape and its 2-D slices."""

    caption: str
    shape: list[int]
    grids: list[Grid]


class PageData(TypedDict):
    """What the page (:mod:`.html`) displays: the layer, every array shown, the stages."""

    title: str
    layer: str
    input: list[int]
    kind: str
    arrays: dict[str, ArrayData]
    stages: list[StageData]


def page_data(plan: LayerPlan, arrays: dict[str, np.ndarray], title: str) -> PageData:
    """Everything the page shows, as plain JSON-ready data."""
    captions = CAPTIONS_OF[plan.kind]
    stages = [s.data for s in STAGES[plan.kind](plan, arrays) + [_shapes_stage(plan)]]
    shown = {name for s in stages for name in s["show"]}
    return {
        "title": title, "layer": plan.label, "input": list(plan.in_shape),
        "kind": plan.kind,
        "arrays": {name: {"caption": captions.get(name, ""),
                          "shape": list(np.shape(arrays[name])), "grids": grids(name, arrays[name])}
                   for name in sorted(shown)},
        "stages": stages,
    }
