"""The page's stages for ConvTranspose2d: the conv's input gradient, run as a layer.

``Y = Kᵀ X + b`` with K the conv2d from C_out to C_in channels whose weight is W (docs/math.md
§11), so the forward is drawn twice: as the scatter (every input cell stamps its value times W
into ``Y_pad``, s apart, overlaps adding; the crop by p gives Y) and as the seed's picture of
the conv's gX with X in the place of gY (s−1 zeros inserted, padded k_eff−1−p before and
k_eff−1−p+r after, correlated with the flipped, channel-swapped kernel). The backward is K
itself: gX = conv2d(gY, W), a window of gY per cell, and gW the conv's weight gradient with gY
as its input. Every number comes from :func:`numcnn.explain.values.transpose_values`.
"""
from __future__ import annotations

import itertools

import numpy as np

from ..ops.transpose import ConvTransposeGeometry
from .plan import LayerPlan
from .stage import Marks, Stage, nonzero_sum, num, size_lines, times


def _sizes(plan: LayerPlan) -> Stage:
    geo = plan.geometry_as(ConvTransposeGeometry)
    (sh, sw), (ph, pw), (rh, rw), (dh, dw) = (geo.stride, geo.padding, geo.output_padding,
                                              geo.dilation)
    lines = [(f"H_out = (H − 1)·s − 2p + d(k − 1) + r + 1 = ({geo.H} − 1)·{sh} − 2·{ph} + "
             f"{dh}·({geo.kh} − 1) + {rh} + 1 = {geo.Ho}  (r = output_padding)")]
    if (geo.W, geo.kw, sw, pw, dw, rw) != (geo.H, geo.kh, sh, ph, dh, rh):
        lines.append(f"W_out = ({geo.W} − 1)·{sw} − 2·{pw} + {dw}·({geo.kw} − 1) + {rw} + 1 = "
                     f"{geo.Wo}")
    lines += [
        (f"the adjoint of the conv K = Conv2d({geo.C_out}, {geo.C_in}, ({geo.kh}, {geo.kw}), "
         f"stride={geo.stride}, padding={geo.padding}, dilation={geo.dilation}, "
         f"groups={geo.groups}) with weight W: K maps {geo.C_out}x{geo.Ho}x{geo.Wo} back to "
         f"{geo.C_in}x{geo.H}x{geo.W}, and Y = Kᵀ X + b"),
        "the forward is K's input gradient with X in the place of gY; the backward is K itself",
        *size_lines(plan)]
    return Stage("sizes", "The layer and its sizes", lines, ["X", "W"])


def transpose_stages(plan: LayerPlan, a: dict[str, np.ndarray]) -> list[Stage]:
    """Scatter, the sum of the stamps (Y), the seed's inserted form, gX = conv2d(gY, W), gW."""
    return [_sizes(plan),
            *(stage(plan, a) for stage in (_scatter, _sum_of_stamps, _insert_zeros,
                                           _pad_inserted, _flip_kernel, _correlate_inserted,
                                           _input_grad, _weight_grad))]


# --- the forward as a scatter, then each output cell as the sum of its stamps ----------------

def _scatter(plan: LayerPlan, a: dict[str, np.ndarray]) -> Stage:
    """Y_pad[γ(c)·C_out/g + o′, s·i + d·u, s·j + d·v] += X[c, i, j]·W[c, o′, u, v]: one cell
    per input, marking its stamp; the rows and cols output_padding adds are marked "r"."""
    geo = plan.geometry_as(ConvTransposeGeometry)
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, H, W = geo.kh, geo.kw, geo.H, geo.W
    (sh, sw), (rh, _), (dh, dw) = geo.stride, geo.output_padding, geo.dilation
    keh, kew = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    X, Wt, Yp = a["X"][0], a["W"], a["Y_pad"][0]
    st = Stage("scatter", "Forward, the scatter: each input cell stamps X·W into Y_pad, s apart", [
        ("Y_pad[o, s·i + d·u, s·j + d·v] += X[c, i, j] · W[c, o′, u, v]  for every c in the "
         f"group of o = γ(c)·{Qg} + o′ and every tap (u, v)"),
        (f"Y_pad has (H − 1)·s + k_eff + r = ({H} − 1)·{sh} + {keh} + {rh} = {Yp.shape[-2]} "
         f"rows, {Yp.shape[-1]} cols: the output before the crop by p; where stamps overlap "
         "they add"),
        ("the grid shows Y_pad with every stamp added; step through to see where each input "
         "cell's stamp lands (the next stage sums the stamps on each cell)")],
        ["X", "W", "Y_pad"])
    for o, i, j in itertools.product(range(geo.C_out), range(Yp.shape[-2]), range(Yp.shape[-1])):
        if i >= (H - 1) * sh + keh or j >= (W - 1) * sw + kew:
            st.mark("Y_pad", o, i, j, "r")            # output_padding: reached by no stamp
    for c, i, j in itertools.product(range(geo.C_in), range(H), range(W)):
        gam = c // Cg
        marks: Marks = {"X": [[c, i, j, "a"]], "W": [], "Y_pad": []}
        adds = []
        for o1, u, v in itertools.product(range(Qg), range(kh), range(kw)):
            o, ri, rj = gam * Qg + o1, sh * i + dh * u, sw * j + dw * v
            marks["W"].append([c * Qg + o1, u, v])
            marks["Y_pad"].append([o, ri, rj, "a"])
            adds.append(f"Y_pad[{o},{ri},{rj}] += {times(X[c, i, j], Wt[c, o1, u, v])}")
        st.cell(f"X[{c}, {i}, {j}] = {num(X[c, i, j])} stamps {num(X[c, i, j])}·W[{c}] at rows "
                f"{sh * i}…{sh * i + dh * (kh - 1)}, cols {sw * j}…{sw * j + dw * (kw - 1)} "
                "of Y_pad", "; ".join(adds), marks, ["Y_pad", gam * Qg, sh * i, sw * j])
    return st


def _sum_of_stamps(plan: LayerPlan, a: dict[str, np.ndarray]) -> Stage:
    """Y[o, i′, j′] = Y_pad[o, i′ + p, j′ + p] (+ b[o]): one cell per output, marking the inputs
    and weights whose stamps landed there."""
    geo = plan.geometry_as(ConvTransposeGeometry)
    (ph, pw), (rh, rw) = geo.padding, geo.output_padding
    Yp, b = a["Y_pad"][0], a.get("b")
    lines = [("Y[o, i′, j′] = Y_pad[o, i′ + p, j′ + p]" + (" + b[o]" if b is not None else "")
              + ": the stamps that landed there, summed"),
             (f"the crop drops p = {ph} row(s) at the top and bottom, {pw} col(s) at the left "
              f"and right: {Yp.shape[-2]} − 2·{ph} = {geo.Ho} rows")]
    if rh or rw:
        lines.append(f"output_padding r = {(rh, rw)}: the last rows/cols of Y_pad lie past every "
                     "stamp" + (", they hold only the bias" if b is not None else ""))
    st = Stage("sum", "Y: each output cell is the sum of the stamps on it, cropped by p", lines,
               ["X", "W", "Y_pad", "Y"], fill="Y")
    for o, yi, yj in itertools.product(range(geo.C_out), range(geo.Ho), range(geo.Wo)):
        marks: Marks = {"X": [], "W": [], "Y_pad": [[o, yi + ph, yj + pw]]}
        terms = _stamps_on(geo, a, o, yi + ph, yj + pw, marks)
        bias = f" + b[{o}] ({num(b[o])})" if b is not None else ""
        st.cell(f"Y[{o}, {yi}, {yj}] = Y_pad[{o}, {yi + ph}, {yj + pw}]{bias and ' + b'}: "
                f"{len(terms)} stamp(s) land here", (" + ".join(terms) or "0") + bias
                + f" = {num(a['Y'][0][o, yi, yj])}", marks, ["Y", o, yi, yj])
    return st


def _stamps_on(geo: ConvTransposeGeometry, a: dict[str, np.ndarray], o: int, pi: int, pj: int,
               marks: Marks) -> list[str]:
    """The products X[c, i, j]·W[c, o′, u, v] stamped on Y_pad[o, pi, pj]: the (i, u) with
    s·i + d·u = pi (per axis); their inputs and weights are added to ``marks``."""
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    (sh, sw), (dh, dw) = geo.stride, geo.dilation
    X, Wt = a["X"][0], a["W"]
    terms: list[str] = []
    for c1, u, v in itertools.product(range(Cg), range(geo.kh), range(geo.kw)):
        di, dj = pi - dh * u, pj - dw * v
        if di % sh or dj % sw or not (0 <= di // sh < geo.H and 0 <= dj // sw < geo.W):
            continue
        c, i, j = (o // Qg) * Cg + c1, di // sh, dj // sw
        marks["X"].append([c, i, j])
        marks["W"].append([c * Qg + o % Qg, u, v])
        terms.append(times(X[c, i, j], Wt[c, o % Qg, u, v]))
    return terms


# --- the seed's picture of the conv's gX, with X in the place of gY --------------------------

def _insert_zeros(plan: LayerPlan, a: dict[str, np.ndarray]) -> Stage:
    """The seed's form ①: G = X (zero-extended by ⌊r/s⌋ when r ≥ s) with s−1 zeros between
    neighbours, s(H + ⌊r/s⌋ − 1) + 1 per axis."""
    geo = plan.geometry_as(ConvTransposeGeometry)
    (sh, sw), (rh, rw) = geo.stride, geo.output_padding
    H, W, G = geo.H, geo.W, a["G"][0]
    Hk, Wk = H + rh // sh, W + rw // sw
    lines = [(f"G = X with {sh - 1} zero row(s) and {sw - 1} zero column(s) between neighbours: "
             "the conv's gX picture, X in the place of gY"),
             (f"size of G = s(H − 1) + 1 = {sh}·({Hk} − 1) + 1 = {G.shape[-2]} rows, "
              f"{sw}·({Wk} − 1) + 1 = {G.shape[-1]} cols")]
    if (Hk, Wk) != (H, W):
        lines.append(f"output_padding ≥ stride: X is zero-extended to {Hk}x{Wk} first (K maps "
                     f"{geo.Ho} rows back to H + ⌊r/s⌋ = {Hk})")
    st = Stage("insert", "The seed's form ①: insert s−1 zeros between the X values", lines,
               ["X", "G"])
    for c, i, j in itertools.product(range(geo.C_in), range(H), range(W)):
        st.mark("X", c, i, j)
        st.mark("G", c, sh * i, sw * j)
    return st


def _pad_amounts(axis: str, k_eff: int, p: int, r: int, s: int, before: int, after: int) -> str:
    """The line that derives one axis's pad amounts k_eff−1−p and k_eff−1−p+r."""
    extended = f" − {s}·⌊{r}/{s}⌋ (X was extended by those)" if r >= s else ""
    return (f"{axis}: before k_eff−1−p = {k_eff}−1−{p} = {before}; after k_eff−1−p+r = "
            f"{k_eff}−1−{p}+{r}{extended} = {after}")


def _pad_inserted(plan: LayerPlan, a: dict[str, np.ndarray]) -> Stage:
    """The seed's form ②: P = G padded k_eff−1−p before and k_eff−1−p+r after, H_out + k_eff − 1
    per axis; the cells output_padding adds are marked "r"."""
    geo = plan.geometry_as(ConvTransposeGeometry)
    (sh, sw), (rh, rw) = geo.stride, geo.output_padding
    (_, keh, kew) = plan.axis_rows[0]
    (_, top, left), (_, bottom, right) = plan.axis_rows[5], plan.axis_rows[6]
    P = a["P"][0]
    st = Stage("pad", "② pad: k_eff−1−p before, k_eff−1−p+r after", [
        _pad_amounts("rows", keh, geo.padding[0], rh, sh, top, bottom),
        _pad_amounts("cols", kew, geo.padding[1], rw, sw, left, right),
        *(["r = output_padding: the rows and cols it adds (red) get no X, only the bias"]
          if rh or rw else []),
        (f"size of P = H_out + k_eff − 1 = {geo.Ho} + {keh} − 1 = {P.shape[-2]} rows, "
         f"{geo.Wo} + {kew} − 1 = {P.shape[-1]} cols (negative amounts crop)")], ["G", "P"])
    Gh, Gw = a["G"].shape[-2:]
    for c, i, j in itertools.product(range(geo.C_in), range(P.shape[-2]), range(P.shape[-1])):
        if 0 <= i - top < Gh and 0 <= j - left < Gw:
            st.mark("P", c, i, j)
        elif i >= P.shape[-2] - rh or j >= P.shape[-1] - rw:
            st.mark("P", c, i, j, "r")
    return st


def _flip_kernel(plan: LayerPlan, a: dict[str, np.ndarray]) -> Stage:
    """The seed's form ③: W_T[γ·C_out/g + o′, c′, u, v] = W[γ·C_in/g + c′, o′, kh−1−u, kw−1−v];
    one cell per (o, c′) kernel."""
    geo = plan.geometry_as(ConvTransposeGeometry)
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, WT = geo.kh, geo.kw, a["W_T"]
    st = Stage("flip", "③ flip W 180° and swap its channels: W_T", [
        "W_T[γ·C_out/g + o′, c′, u, v] = W[γ·C_in/g + c′, o′, kh−1−u, kw−1−v]",
        (f"shape {tuple(WT.shape)} = (C_out, C_in/g, kh, kw): a conv2d weight from C_in to "
         "C_out channels")], ["W", "W_T"])
    for o, c1 in itertools.product(range(geo.C_out), range(Cg)):
        c, o1 = (o // Qg) * Cg + c1, o % Qg
        marks: Marks = {"W": [[c * Qg + o1, u, v] for u in range(kh) for v in range(kw)],
                        "W_T": [[o * Cg + c1, u, v] for u in range(kh) for v in range(kw)]}
        st.cell(f"W_T[{o}, {c1}] = rot180(W[{c}, {o1}])",
                "; ".join(f"W_T[{o},{c1},{u},{v}] = W[{c},{o1},{kh - 1 - u},{kw - 1 - v}] = "
                          f"{num(WT[o, c1, u, v])}" for u in range(kh) for v in range(kw)),
                marks, ["W_T", o * Cg + c1, 0, 0])
    return st


def _correlate_inserted(plan: LayerPlan, a: dict[str, np.ndarray]) -> Stage:
    """The seed's form ④: Y_ins[o, i, j] = Σ_(c′,u,v) P[γ·C_in/g + c′, i + d·u, j + d·v]·W_T[o,
    c′, u, v], stride 1; one cell per output, checked against the scatter's Y."""
    geo = plan.geometry_as(ConvTransposeGeometry)
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, (dh, dw), keh = geo.kh, geo.kw, geo.dilation, plan.axis_rows[0][1]
    P, WT, Yi, b = a["P"][0], a["W_T"], a["Y_ins"][0], a.get("b")
    diff = float(np.abs(a["Y_ins"] + (0 if b is None else b.reshape(1, -1, 1, 1)) - a["Y"])
                 .max())
    st = Stage("correlate", "④ correlate P with W_T, cell by cell: the same Y", [
        (f"Y_ins[o, i, j] = Σ_(c′,u,v) P[γ·{Cg} + c′, i + {dh}·u, j + {dw}·v] · W_T[o, c′, u, v]"
         " (stride 1, the layer's dilation)"),
        f"output size = |P| − k_eff + 1 = {P.shape[-2]} − {keh} + 1 = {geo.Ho}: exactly H_out",
        (f"max |Y_ins{' + b' if b is not None else ''} − Y| = {diff:g}: the scatter and the "
         "seed's form agree")], ["P", "W_T", "Y_ins"], fill="Y_ins")
    for o, i, j in itertools.product(range(geo.C_out), range(geo.Ho), range(geo.Wo)):
        marks: Marks = {"P": [], "W_T": []}
        pairs: list[tuple[float, float]] = []
        for c1, u, v in itertools.product(range(Cg), range(kh), range(kw)):
            c = (o // Qg) * Cg + c1
            marks["P"].append([c, i + dh * u, j + dw * v])
            marks["W_T"].append([o * Cg + c1, u, v])
            pairs.append((P[c, i + dh * u, j + dw * v], WT[o, c1, u, v]))
        st.cell(f"Y_ins[{o}, {i}, {j}]: the window of P at rows {i}…{i + dh * (kh - 1)}, cols "
                f"{j}…{j + dw * (kw - 1)}", nonzero_sum(pairs, Yi[o, i, j]),
                marks, ["Y_ins", o, i, j])
    return st


# --- the backward: K itself, two gathers -----------------------------------------------------

def _input_grad(plan: LayerPlan, a: dict[str, np.ndarray]) -> Stage:
    """gX = conv2d(gY, W): gX[c, i, j] = Σ_(o′,u,v) gY_pad[γ(c)·C_out/g + o′, s·i + d·u,
    s·j + d·v]·W[c, o′, u, v]; one cell per input, marking where its stamp reached."""
    geo = plan.geometry_as(ConvTransposeGeometry)
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, (sh, sw), (dh, dw) = geo.kh, geo.kw, geo.stride, geo.dilation
    Wt, gYp, gX = a["W"], a["gY_pad"][0], a["gX"][0]
    st = Stage("gX", "Backward gX = conv2d(gY, W): each gX cell is a window of gY_pad times W", [
        (f"gX[c, i, j] = Σ_(o′,u,v) gY_pad[γ(c)·{Qg} + o′, {sh}·i + {dh}·u, {sw}·j + {dw}·v] "
         "· W[c, o′, u, v]"),
        ("the forward was Kᵀ, so its gradient is K = conv2d(·, W) itself (stride, padding, "
         "dilation, groups of the layer): a gather, each X cell collects the gY its stamp "
         "reached")], ["gY_pad", "W", "gX"], fill="gX")
    for c, i, j in itertools.product(range(geo.C_in), range(geo.H), range(geo.W)):
        marks: Marks = {"gY_pad": [], "W": []}
        pairs: list[tuple[float, float]] = []
        for o1, u, v in itertools.product(range(Qg), range(kh), range(kw)):
            o, ri, rj = (c // Cg) * Qg + o1, sh * i + dh * u, sw * j + dw * v
            marks["gY_pad"].append([o, ri, rj])
            marks["W"].append([c * Qg + o1, u, v])
            pairs.append((gYp[o, ri, rj], Wt[c, o1, u, v]))
        st.cell(f"gX[{c}, {i}, {j}]: the window of gY_pad at rows {sh * i}…"
                f"{sh * i + dh * (kh - 1)}, cols {sw * j}…{sw * j + dw * (kw - 1)} (where X[{c}, "
                f"{i}, {j}] stamped)", " + ".join(times(p, q) for p, q in pairs)
                + f" = {num(gX[c, i, j])}", marks, ["gX", c, i, j])
    return st


def _weight_grad(plan: LayerPlan, a: dict[str, np.ndarray]) -> Stage:
    """gW[c, o′, u, v] = Σ_(i,j) X[c, i, j]·gY_pad[γ(c)·C_out/g + o′, s·i + d·u, s·j + d·v],
    and gb[o] = Σ gY[o]; one cell per weight, marking the inputs it carried."""
    geo = plan.geometry_as(ConvTransposeGeometry)
    Cg, Qg = geo.C_in // geo.groups, geo.C_out // geo.groups
    kh, kw, (sh, sw), (dh, dw) = geo.kh, geo.kw, geo.stride, geo.dilation
    X, gYp, gW = a["X"][0], a["gY_pad"][0], a["gW"]
    lines = [(f"gW[c, o′, u, v] = Σ_(i,j) X[c, i, j] · gY_pad[γ(c)·{Qg} + o′, {sh}·i + {dh}·u, "
              f"{sw}·j + {dw}·v]"),
             ("the weight W[c, o′, u, v] carried each X[c, i, j] to one output cell: gY there "
              "weights it (the conv's weight gradient with gY as the input)")]
    if "gb" in a:
        lines.append(f"gb[o] = Σ gY[o] = {', '.join(num(v) for v in a['gb'])}")
    st = Stage("gW", "gW: each weight's gradient sums over the input cells it carried", lines,
               ["X", "gY_pad", "gW"], fill="gW")
    for c, o1, u, v in itertools.product(range(geo.C_in), range(Qg), range(kh), range(kw)):
        o = (c // Cg) * Qg + o1
        marks: Marks = {"X": [], "gY_pad": []}
        terms: list[str] = []
        for i, j in itertools.product(range(geo.H), range(geo.W)):
            ri, rj = sh * i + dh * u, sw * j + dw * v
            marks["X"].append([c, i, j])
            marks["gY_pad"].append([o, ri, rj])
            terms.append(times(X[c, i, j], gYp[o, ri, rj]))
        st.cell(f"gW[{c}, {o1}, {u}, {v}]: every input cell times the gY its stamp reached "
                f"through this weight", " + ".join(terms) + f" = {num(gW[c, o1, u, v])}", marks,
                ["gW", c * Qg + o1, u, v])
    return st
