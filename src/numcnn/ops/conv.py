"""conv2d forward and its three gradients, in two equal forms   (SPEC-math §2, §3, §6).

Dimension legend: N batch, C_in/C_out channels, g groups, Cg = C_in/g, Qg = C_out/g,
H/W input, Hp/Wp padded input, kh/kw kernel, Ho/Wo output, K = Cg·kh·kw, L = Ho·Wo.
Arrays: x, w, b, y and their gradients gx, gw, gb, gy; ``geo`` is a
:class:`~numcnn.ops.shapes.ConvGeometry` (validated once, at the public boundary).

GEMM backward (``method="gemm"``): one batched GEMM per contraction on im2col columns, and
col2im (a scatter-add looping over kernel taps only) for gx; with stride 1 the scatter adds
whole padded rows, one kernel row at a time (:func:`_grad_input_plan`). The default, ``"auto"``,
uses it except for gx with stride 1 and C_out <= C_in, where the seed's form below costs the
same GEMM and no scatter. The seed's form (``method="inserted"``): gx is the zero-inserted,
padded gy correlated with the flipped, channel-swapped kernel (3.2a); gw is rot180 of the
padded inserted gy correlated with x (3.2c).

Speed: batches run in chunks within ``COLS_BUDGET_BYTES``; within a chunk, batch blocks run on
the kernel threads (:mod:`numcnn.ops.parallel`), each gathering its columns and running its
GEMMs while they are in cache; :func:`backward` computes gx and gw in one such pass.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from . import parallel
from .shapes import ConvGeometry, conv_geometry
from .windows import col2im, col2im_rows, dilate2d, im2col, pad_or_crop2d

#: Largest column buffer (im2col columns, or dcols in the backward) one step may hold; bigger
#: batches are processed in chunks of samples. The GEMMs are per sample anyway, so chunks cost
#: little: 8 MiB kept conv 32->64 (N=64, 28x28, k3) forward+backward within 5 % of one 55 MiB
#: chunk and cut its peak extra memory from 141 MiB to 35 MiB (PyTorch CPU: 37 MiB).
COLS_BUDGET_BYTES = 8 * 2**20

METHODS = ("auto", "gemm", "inserted")


def _is_pointwise(geo: ConvGeometry) -> bool:
    """1x1 kernel, stride 1, no padding: the columns are the input itself (no copy)."""
    return (geo.kh, geo.kw, geo.sh, geo.sw) == (1, 1, 1, 1) and geo.pad_h == geo.pad_w == (0, 0)


def columns(x: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """im2col of the zero-padded input, grouped for the GEMM.

    Shape: x (N, C_in, H, W) -> cols (N, g, K, L), K = Cg·kh·kw, L = Ho·Wo.
    """
    N, g = x.shape[0], geo.groups
    K, L = geo.C_in // g * geo.kh * geo.kw, geo.Ho * geo.Wo
    if _is_pointwise(geo):
        return x.reshape(N, g, K, L)                                   # free view
    cols = im2col(x, geo.kh, geo.kw, geo.Ho, geo.Wo, geo.sh, geo.sw, geo.dh, geo.dw,
                  pad_h=geo.pad_h, pad_w=geo.pad_w)                    # (N, C_in, kh, kw, Ho, Wo)
    return cols.reshape(N, g, K, L)


def _batch_chunks(geo: ConvGeometry, itemsize: int, row_width: int | None = None):
    """Batch slices whose column buffer (Ho × ``row_width`` outputs, default Wo) stays within
    ``COLS_BUDGET_BYTES``, but at least one sample per kernel thread, so that every thread has
    a block even when one sample's columns exceed the budget (the ResNet stem's are 7.4 MiB)."""
    per_sample = geo.C_in * geo.kh * geo.kw * geo.Ho * (row_width or geo.Wo) * itemsize
    step = max(parallel.get_num_threads(), COLS_BUDGET_BYTES // max(per_sample, 1))
    return [slice(i, min(i + step, geo.N)) for i in range(0, geo.N, step)]


def forward(x, w, b, geo: ConvGeometry, keep_cols: bool = False):
    """``Y[n,q,o_h,o_w] = b[q] + Σ_{c',u,v} W[q,c',u,v]·X̃[n, γ(q)·Cg + c', s_h·o_h + d_h·u − p_h,
    s_w·o_w + d_w·v − p_w]``   (SPEC §2.3)

    Returns ``(y, cols)``; ``cols`` (N, g, K, L) is kept for the weight gradient only when asked
    for and when the batch fits in one chunk, else None.
    """
    N, g = geo.N, geo.groups
    Qg = geo.C_out // g
    w_g = w.reshape(g, Qg, -1)                                         # (g, Qg, K)
    y = np.empty((N, g, Qg, geo.Ho * geo.Wo), dtype=np.result_type(x, w))
    chunks = _batch_chunks(geo, x.itemsize)
    cols = None
    fuse = parallel.gemm_splittable(geo.C_out // g * geo.C_in // g * geo.kh * geo.kw
                                    * geo.Ho * geo.Wo)
    fuse = fuse and not _is_pointwise(geo)
    b_g = None if b is None else b.reshape(g, Qg, 1)
    for chunk in chunks:
        if fuse:
            cols = _columns_and_product(x[chunk], w_g, geo, y[chunk], b_g)
        else:
            cols = columns(x[chunk], geo)                              # (n, g, K, L)
            parallel.matmul(w_g, cols, out=y[chunk])                   # (n, g, Qg, L)
    y = y.reshape(geo.output_shape)                                    # (N, C_out, Ho, Wo)
    if b is not None and not fuse:
        y += b.reshape(1, -1, 1, 1)
    return y, (cols if keep_cols and len(chunks) == 1 else None)


def _columns_and_product(x, w_g, geo: ConvGeometry, y_out, b_g=None) -> np.ndarray:
    """Each thread gathers the columns of its batch block and multiplies them at once, while
    they are still in its cache (one hand-off instead of two, BLAS on one thread per block),
    and adds the bias ``b_g`` (g, Qg, 1) to its rows of the output.
    Shapes: x (n, C_in, H, W), y_out (n, g, Qg, L); returns cols (n, g, K, L)."""
    n, g = x.shape[0], geo.groups
    cols = np.empty((n, g, geo.C_in // g * geo.kh * geo.kw, geo.Ho * geo.Wo), dtype=x.dtype)

    def gather_and_multiply(block):
        im2col(x[block], geo.kh, geo.kw, geo.Ho, geo.Wo, geo.sh, geo.sw, geo.dh, geo.dw,
               out=cols[block].reshape(-1, geo.C_in, geo.kh, geo.kw, geo.Ho, geo.Wo),
               pad_h=geo.pad_h, pad_w=geo.pad_w)
        np.matmul(w_g, cols[block], out=y_out[block])
        if b_g is not None:
            y_out[block] += b_g

    parallel.over_batch(gather_and_multiply, n, cols.size, calls_blas=True)
    return cols


def grad_bias(gy: np.ndarray) -> np.ndarray:
    """``gb[q] = Σ_{n, o_h, o_w} gY[n, q, o_h, o_w]``   (SPEC 3.1a). Shape (C_out,)."""
    return gy.sum(axis=(0, 2, 3))


def grad_weight(x, gy, geo: ConvGeometry, cols=None, method: str = "auto") -> np.ndarray:
    """``gW[q,c',u,v] = Σ_{n,o_h,o_w} gY[n,q,o_h,o_w]·X̃[n, γ(q)·Cg + c', s_h·o_h + d_h·u − p_h,
    s_w·o_w + d_w·v − p_w]``   (SPEC 3.1b)

    GEMM form: per sample ``cols_n (K, L) @ gy_nᵀ (L, Qg)``, summed over n, is gWᵀ.
    Shape (C_out, Cg, kh, kw).
    """
    if method == "inserted":
        return grad_weight_inserted(x, gy, geo)
    g, N = geo.groups, geo.N
    gy_g = gy.reshape(N, g, geo.C_out // g, geo.Ho * geo.Wo)            # (N, g, Qg, L)
    gw = np.zeros((g, geo.C_out // g, geo.C_in // g * geo.kh * geo.kw), dtype=gy.dtype)
    gw_t = gw.transpose(0, 2, 1)                                       # (g, K, Qg) view
    # cols_n @ gy_nᵀ rather than gy_n @ cols_nᵀ: the same products, but BLAS reads the big
    # operand in its stored order (measured 1.3-1.4x faster)
    if cols is not None:
        gw_t += parallel.matmul(cols, gy_g.transpose(0, 1, 3, 2), sum_batch=True)  # (g, K, Qg)
    else:
        K = gw.shape[-1]
        fuse = parallel.gemm_splittable(K * geo.C_out // g * geo.Ho * geo.Wo) and not \
            _is_pointwise(geo)
        for chunk in _batch_chunks(geo, x.itemsize):
            gy_t = gy_g[chunk].transpose(0, 1, 3, 2)                    # (n, g, L, Qg)
            if fuse:
                gw_t += _columns_times_gy(x[chunk], gy_t, geo)
            else:
                c = columns(x[chunk], geo)                              # (n, g, K, L)
                gw_t += parallel.matmul(c, gy_t, sum_batch=True)
    return gw.reshape(geo.weight_shape)


def _columns_times_gy(x, gy_t, geo: ConvGeometry) -> np.ndarray:
    """``Σ_n cols_n @ gy_nᵀ`` with each thread gathering and contracting its own batch block's
    columns, as in the forward. Shapes: x (n, C_in, H, W), gy_t (n, g, L, Qg) -> (g, K, Qg)."""
    n = x.shape[0]

    def block_sum(block):
        return np.matmul(columns(x[block], geo), gy_t[block]).sum(axis=0)

    K = geo.C_in // geo.groups * geo.kh * geo.kw
    return parallel.sum_over_batch(block_sum, n, n * geo.groups * K * geo.Ho * geo.Wo,
                                   calls_blas=True)


def _inserted_is_cheaper(geo: ConvGeometry) -> bool:
    """With stride 1 the seed's form inserts no zeros, so its GEMM does the same work as the
    dcols GEMM and the scatter-add becomes a gather, which copies faster; its column buffer
    (C_out·kh·kw per input pixel) is no larger than dcols (C_in·kh·kw per output pixel) when
    C_out <= C_in. Measured on both kinds of layer; "auto" picks by this rule."""
    return (geo.sh, geo.sw) == (1, 1) and geo.C_out <= geo.C_in and not _is_pointwise(geo)


def grad_input(gy, w, geo: ConvGeometry, method: str = "auto") -> np.ndarray:
    """``gX[n,c,i,j] = Σ_{q ∈ group γ(c)} Σ_{u ∈ U_h(i), v ∈ U_w(j)}
    gY[n, q, (i + p_h − d_h·u)/s_h, (j + p_w − d_w·v)/s_w]·W[q, c', u, v]``   (SPEC 3.1c)

    GEMM form (``"gemm"``): ``dcols = Wᵀ gY`` contracted over Qg, then col2im. The seed's form
    (``"inserted"``): :func:`grad_input_inserted`. ``"auto"`` takes the inserted form for stride 1
    when C_out <= C_in (see :func:`_inserted_is_cheaper`), the GEMM form otherwise. Shape (N, C_in, H, W).
    """
    if method == "inserted" or (method == "auto" and _inserted_is_cheaper(geo)):
        return grad_input_inserted(gy, w, geo)
    N, g = geo.N, geo.groups
    Qg = geo.C_out // g
    w_t = w.reshape(g, Qg, -1).transpose(0, 2, 1)                     # (g, K, Qg)
    if _is_pointwise(geo):
        gy_g = gy.reshape(N, g, Qg, geo.Ho * geo.Wo)                   # (N, g, Qg, L)
        return np.matmul(w_t, gy_g).reshape(geo.input_shape)          # dcols is gx itself
    gx = np.empty(geo.input_shape, dtype=np.result_type(gy, w))
    plan = _grad_input_plan(gy, w, geo, gx)
    for chunk in _batch_chunks(geo, gy.itemsize, plan.row_width):
        n = chunk.stop - chunk.start
        if plan.splittable:
            parallel.over_batch(lambda b, at=chunk.start: plan.job(_shifted(b, at)),
                                n, n * plan.elements_per_sample, calls_blas=True)
        else:
            plan.job(chunk)
    return gx


def _shifted(block: slice, start: int) -> slice:
    return slice(start + block.start, start + block.stop)


@dataclass(frozen=True)
class _GradInputPlan:
    job: Callable[[slice], None]  # writes gx[block] for a slice of the whole batch
    splittable: bool              # may blocks of the batch run job on several threads?
    row_width: int                # column grid width for the memory budget (Wp or Wo)
    elements_per_sample: int      # size of one sample's columns


def _grad_input_plan(gy, w, geo: ConvGeometry, gx: np.ndarray) -> _GradInputPlan:
    """How gX is computed in the GEMM form for this layer: the whole-row form (stride 1, see
    :func:`_rows_layout_pays`) or the compact form, as a job per batch block."""
    g, Qg = geo.groups, geo.C_out // geo.groups
    Ho, Wo, Hp, Wp = geo.Ho, geo.Wo, geo.Hp, geo.Wp
    K = geo.C_in // g * geo.kh * geo.kw
    if _rows_layout_pays(geo):
        w_rows = _kernel_rows(w, geo)                                  # (kh, g, Cg·kw, Qg)

        def rows_job(block):
            """One kernel row at a time: ``dcols_u = W_uᵀ gY_rows``, then its kw runs are
            added (:func:`~numcnn.ops.windows.col2im_rows`), while the block is in cache."""
            n = block.stop - block.start
            # gy on the Ho × Wp grid of whole padded rows, zero where no output is
            gy_rows = np.zeros((n, geo.C_out, Ho, Wp), dtype=gy.dtype)
            gy_rows[..., :Wo] = gy[block]
            gy_rows = gy_rows.reshape(n, g, Qg, Ho * Wp)               # (n, g, Qg, Ho·Wp)

            def row_columns(u):                                        # (n, C_in, kw, Ho·Wp)
                return np.matmul(w_rows[u], gy_rows).reshape(n, geo.C_in, geo.kw, -1)

            gx[block] = col2im_rows(row_columns, n, geo.C_in, Hp, Wp, geo.kh, geo.kw, geo.dh,
                                    geo.dw, geo.pad_h, geo.pad_w, gx.dtype)

        return _GradInputPlan(rows_job, True, Wp, g * K * Ho * Wp)
    w_t = w.reshape(g, Qg, -1).transpose(0, 2, 1)                     # (g, K, Qg)

    def compact_job(block):
        """``gx[block] = col2im(Wᵀ gY)``; col2im splits itself when called whole."""
        n = block.stop - block.start
        gy_g = gy[block].reshape(n, g, Qg, Ho * Wo)                    # (n, g, Qg, L)
        dcols = np.matmul(w_t, gy_g)                                   # (n, g, K, L)
        gx[block] = col2im(dcols.reshape(n, geo.C_in, geo.kh, geo.kw, Ho, Wo),
                           Hp, Wp, geo.sh, geo.sw, geo.dh, geo.dw,
                           crop_h=geo.pad_h, crop_w=geo.pad_w)         # (n, C_in, H, W)

    return _GradInputPlan(compact_job, parallel.gemm_splittable(K * Qg * Ho * Wo), Wo,
                          g * K * Ho * Wo)


def _kernel_rows(w: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """W split by kernel row and transposed for the dcols GEMM:
    ``w_rows[u, γ, c'·kw + v, q'] = W[γ·Qg + q', c', u, v]``. Shape (kh, g, Cg·kw, Qg)."""
    g, Qg, Cg = geo.groups, geo.C_out // geo.groups, geo.C_in // geo.groups
    return np.ascontiguousarray(w.reshape(g, Qg, Cg, geo.kh, geo.kw).transpose(3, 0, 2, 4, 1)
                                .reshape(geo.kh, g, Cg * geo.kw, Qg))


def backward(x, w, gy, geo: ConvGeometry, cols=None, need_input=True, need_weight=True,
             method: str = "auto"):
    """``(gX, gW)`` (None where not needed): :func:`grad_input` and :func:`grad_weight`.

    When both use the GEMM form, the forward kept its columns and the blocks may run on
    threads, each thread computes its batch block's share of both in one pass: ``gY`` and the
    block's columns are read while in cache, and the threads are handed work once.
    """
    g, Qg = geo.groups, geo.C_out // geo.groups
    K = geo.C_in // g * geo.kh * geo.kw
    fused = (need_input and need_weight and cols is not None and method != "inserted"
             and not (method == "auto" and _inserted_is_cheaper(geo)) and not _is_pointwise(geo)
             and parallel.gemm_splittable(K * Qg * geo.Ho * geo.Wo))
    if fused:
        gx = np.empty(geo.input_shape, dtype=np.result_type(gy, w))
        plan = _grad_input_plan(gy, w, geo, gx)
        fused = plan.splittable
    if not fused:
        return (grad_input(gy, w, geo, method) if need_input else None,
                grad_weight(x, gy, geo, cols, method) if need_weight else None)
    gy_t = gy.reshape(geo.N, g, Qg, geo.Ho * geo.Wo).transpose(0, 1, 3, 2)  # (N, g, L, Qg)

    def both(block):
        plan.job(block)
        return np.matmul(cols[block], gy_t[block]).sum(axis=0)        # (g, K, Qg)

    gw_t = parallel.sum_over_batch(both, geo.N, geo.N * plan.elements_per_sample, calls_blas=True)
    gw = np.ascontiguousarray(gw_t.transpose(0, 2, 1)).reshape(geo.weight_shape)
    return gx, gw


def _rows_layout_pays(geo: ConvGeometry) -> bool:
    """The whole-row form needs stride 1 and costs Wp/Wo times the dcols GEMM; its contiguous
    scatter wins while that factor is at most 2 (LeNet's conv2: 1.4 -> 1.0 ms at N=64; conv
    32->64 28x28: 22 -> 16 ms). Its batch blocks call BLAS from several threads at once, which
    needs :func:`~numcnn.ops.parallel.gemm_splittable`; otherwise the compact form, whose GEMM
    BLAS threads itself, measured faster."""
    if (geo.sh, geo.sw) != (1, 1) or geo.Wp > 2 * geo.Wo:
        return False
    row_mnk = geo.C_in // geo.groups * geo.kw * geo.C_out // geo.groups * geo.Ho * geo.Wp
    return parallel.get_num_threads() == 1 or parallel.gemm_splittable(row_mnk)


# --- the seed's form: zero-inserted gradient, flipped kernel (SPEC §3.2) ---------------------

def inserted_grad(gy: np.ndarray, geo: ConvGeometry) -> np.ndarray:
    """P: gy with s−1 zeros inserted, padded ``k_eff−1−p_before`` before and the rest after.

    The size is always ``H + k_eff − 1`` (3.2); the end padding exceeds the start padding by
    the remainder r when the stride does not divide. Negative amounts crop.
    Shape: gy (N, C_out, Ho, Wo) -> P (N, C_out, H + ke_h − 1, W + ke_w − 1).
    """
    G = dilate2d(gy, geo.sh, geo.sw)                                   # (N, C_out, sh(Ho-1)+1, ...)
    top = geo.keh - 1 - geo.pad_h[0]
    left = geo.kew - 1 - geo.pad_w[0]
    bottom = geo.H + geo.keh - 1 - top - G.shape[-2]
    right = geo.W + geo.kew - 1 - left - G.shape[-1]
    return pad_or_crop2d(G, top, bottom, left, right)


def flip_swap(w: np.ndarray, groups: int) -> np.ndarray:
    """W_T[γ·Cg + c', q', u, v] = W[γ·Qg + q', c', kh−1−u, kw−1−v]: rot180 on the spatial axes
    only, and C_out <-> C_in within each group. Shape (C_out, Cg, kh, kw) -> (C_in, Qg, kh, kw).
    """
    C_out, Cg, kh, kw = w.shape
    flipped = np.flip(w, axis=(2, 3))
    return (flipped.reshape(groups, C_out // groups, Cg, kh, kw)
            .transpose(0, 2, 1, 3, 4)
            .reshape(groups * Cg, C_out // groups, kh, kw))


def grad_input_inserted(gy, w, geo: ConvGeometry) -> np.ndarray:
    """(3.2a) ``gX[n, c] = Σ_{q in group} P[n, q] ⋆_d rot180(W[q, c'])``: a stride-1, unpadded
    conv of the inserted gradient P with W_T. Shape (N, C_in, H, W)."""
    P = inserted_grad(gy, geo)                                         # (N, C_out, H+keh-1, W+kew-1)
    w_t = flip_swap(w, geo.groups)                                     # (C_in, Qg, kh, kw)
    inner = conv_geometry(P.shape, w_t.shape, 1, 0, (geo.dh, geo.dw), geo.groups)
    return forward(np.ascontiguousarray(P), np.ascontiguousarray(w_t), None, inner)[0]


def grad_weight_inserted(x, gy, geo: ConvGeometry) -> np.ndarray:
    """(3.2c) the seed's ``grad w = Rot180(Inserted Grad y ⋆ x)``:
    ``R[n,q,c] = P[n,q] ⋆ X[n,c]`` (x slides over P; size ke_h × ke_w), then
    ``gW[q,c'] = Σ_n rot180(R[n, q, γ(q)·Cg + c'])[::d_h, ::d_w]``.

    The sum over n becomes the contraction of one conv call: P plays the input with the batch as
    channels, x the kernel. Shape (C_out, Cg, kh, kw).
    """
    N, g = geo.N, geo.groups
    Cg, Qg = geo.C_in // g, geo.C_out // g
    P = inserted_grad(gy, geo)                                         # (N, C_out, PH, PW)
    PH, PW = P.shape[-2:]
    # input: one "image" per q', channels (γ, n): (Qg, g·N, PH, PW)
    p_in = P.reshape(N, g, Qg, PH, PW).transpose(2, 1, 0, 3, 4).reshape(Qg, g * N, PH, PW)
    # kernel: one filter per (γ, c'), reading channels n of its group: (g·Cg, N, H, W)
    x_k = x.reshape(N, g, Cg, geo.H, geo.W).transpose(1, 2, 0, 3, 4).reshape(g * Cg, N, geo.H, geo.W)
    inner = conv_geometry(p_in.shape, x_k.shape, 1, 0, 1, g)
    R = forward(np.ascontiguousarray(p_in), np.ascontiguousarray(x_k), None, inner)[0]
    # R: (Qg, g·Cg, keh, kew) with R[q', γ·Cg + c'] = Σ_n P[n, γ·Qg + q'] ⋆ X[n, γ·Cg + c']
    R = R.reshape(Qg, g, Cg, geo.keh, geo.kew).transpose(1, 0, 2, 3, 4)  # (g, Qg, Cg, keh, kew)
    gw = np.flip(R, axis=(3, 4))[..., ::geo.dh, ::geo.dw]              # rot180 of the result
    return gw.reshape(geo.weight_shape)


# --- public kernels with PyTorch's argument names (torch.nn.grad) ------------------------------

def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"conv2d: method must be one of {METHODS}, got {method!r}")


def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d on ndarrays (cross-correlation, as ``torch.nn.functional.conv2d``).

    Shape: x (N, C_in, H, W), w (C_out, C_in/g, kh, kw), b (C_out,) -> y (N, C_out, Ho, Wo).
    """
    geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    return forward(x, w, b, geo)[0]


def conv2d_input(input_shape, w, gy, stride=1, padding=0, dilation=1, groups=1, method="auto"):
    """Gradient of conv2d with respect to its input. Shape: gy (N, C_out, Ho, Wo) -> input_shape."""
    _check_method(method)
    geo = conv_geometry(tuple(input_shape), w.shape, stride, padding, dilation, groups)
    return grad_input(gy, w, geo, method)


def conv2d_weight(x, weight_shape, gy, stride=1, padding=0, dilation=1, groups=1, method="auto"):
    """Gradient of conv2d with respect to its weight. Shape -> weight_shape."""
    _check_method(method)
    geo = conv_geometry(x.shape, tuple(weight_shape), stride, padding, dilation, groups)
    return grad_weight(x, gy, geo, method=method)


def conv2d_bias(gy):
    """Gradient of conv2d with respect to its bias: gy summed over (N, Ho, Wo)."""
    return grad_bias(gy)
