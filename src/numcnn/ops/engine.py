"""How the kernels run: batch chunks within a memory budget, batch blocks on threads, and the
buffers that outlive a call. The math lives in :mod:`.conv`, :mod:`.pool` and :mod:`.windows`; this
module only calls it on slices of the batch, and the math never calls back.

* **Chunks.** The columns of one chunk of samples (or its gX scratch, when that is larger) stay
  within :data:`COLS_BUDGET_BYTES` (at least one sample per thread): 8 MiB kept conv 32->64
  (N=64, 28x28, k3) forward+backward within a few percent of one whole-batch chunk, at a
  fraction of its peak memory.
* **Blocks.** A chunk is cut into one block per thread (:func:`.parallel.run_blocks`); each block
  gathers its columns and runs its GEMMs while they are in its cache, with BLAS on one thread.
  The blocks of every chunk go to one region, where each thread takes the next block as it
  comes free (:func:`_parts`): the threads meet once per call, not once per chunk.
* **Kept columns.** When the whole batch fits one chunk and the weight gradient will be needed,
  the forward's columns are kept for the backward instead of being gathered twice. They outlive
  the call, so they come from the :data:`.workspace.workspace`, which lends the same buffer to
  the next step once the graph that held it is gone. Scratch that lives within one call is left
  to NumPy's allocator, which hands the block just freed to the next request, still in cache
  (pooling the scratch too measured 15 % slower on a LeNet-5 step).
* **Backward in one pass.** Each block computes its rows of gX and its share of gW while its gY
  is in cache; the shares are added in block order, so the sum does not depend on timing.
* **Phase planes for columns.** Where a strided conv is a stride-1 conv of its phase planes
  (:func:`on_phases`), conv_transpose2d's backward reads those planes in place instead of
  gathering im2col columns (docs/math.md §7.6).
"""
from __future__ import annotations

import numpy as np

from . import conv, parallel, pool, windows
from .shapes import (
    ConvGeometry,
    PoolGeometry,
    check_bias,
    check_float_arrays,
    check_output_shape,
    conv_geometry,
    pool_geometry,
)
from .workspace import prime_heap, workspace

#: Largest column buffer one chunk of the batch may hold.
COLS_BUDGET_BYTES = 8 * 2**20

#: Backward forms: "auto" (the GEMM form), "gemm" (im2col GEMM and col2im), "inserted" (the seed's).
METHODS = ("auto", "gemm", "inserted")


def _chunks(N: int, per_sample_bytes: int) -> list[slice]:
    """Nearly equal slices of the batch whose columns fit :data:`COLS_BUDGET_BYTES`, at least one
    sample per thread, so every thread has a block even when one sample exceeds the budget (and
    no chunk is a lone leftover sample)."""
    step = max(parallel.get_num_threads(), COLS_BUDGET_BYTES // max(per_sample_bytes, 1))
    return parallel.batch_blocks(N, -(-N // step))


def _parts(N: int, per_sample_bytes: int) -> int | None:
    """The blocks of one region over the whole batch: each chunk of :func:`_chunks` cut into one
    block per thread (None, one block per thread, when the batch is one chunk). The threads
    take the blocks as they come free, so about one chunk's buffers are in flight at a time,
    and they meet once per call instead of once per chunk: a thread that waits gives up its
    core, and on a virtual machine getting it back can take milliseconds."""
    chunks = len(_chunks(N, per_sample_bytes))
    return None if chunks == 1 else chunks * parallel.get_num_threads()


def _cols_bytes(geo: ConvGeometry, itemsize: int) -> int:
    """Bytes of one sample's columns, C_in·kh·kw × Ho·Wo."""
    return geo.C_in * geo.kh * geo.kw * geo.Ho * geo.Wo * itemsize


def _grad_input_bytes(geo: ConvGeometry, itemsize: int) -> int:
    """Bytes of one sample's gX scratch: gY on the row grid (C_out × Ho·Wq), one kernel row of
    dcols (C_in·kw × Hq·Wq) and the phase planes (C_in·s_h·s_w × Hq·Wq)."""
    plane = geo.Hq * geo.Wq
    return (geo.C_out * geo.Ho * geo.Wq + geo.C_in * (geo.kw + geo.sh * geo.sw) * plane) * itemsize


def _no_products(geo: ConvGeometry) -> bool:
    """An empty batch, no channels or no output: there is no GEMM to run, and every sum over
    the empty index set is 0 (the output is the bias, the gradients are 0)."""
    return 0 in geo.input_shape or 0 in geo.weight_shape or 0 in geo.output_shape


# --- convolution -------------------------------------------------------------------------------

def conv_forward(x, w, b, geo: ConvGeometry, keep_cols: bool = False):
    """``(y, cols)``: y of :func:`.conv.forward`; ``cols`` the columns kept for the weight gradient
    when ``keep_cols`` and the batch fits one chunk, else None."""
    prime_heap()
    y = np.empty(geo.output_shape, np.result_type(x, w))
    if _no_products(geo):
        y[...] = 0 if b is None else b.reshape(1, -1, 1, 1)
        return y, None
    chunks = _chunks(geo.N, _cols_bytes(geo, x.itemsize))
    kept = None
    if keep_cols and len(chunks) == 1:
        K = geo.C_in // geo.groups * geo.kh * geo.kw
        kept = workspace.empty((geo.N, geo.groups, K, geo.Ho * geo.Wo), x.dtype)

    def run(rows: slice) -> None:
        cols = conv.columns(x[rows], geo, None if kept is None else kept[rows])
        conv.forward(x[rows], w, b, geo, cols, y[rows])

    parallel.run_blocks(run, slice(0, geo.N), y.size * geo.kh * geo.kw, calls_blas=True,
                        parts=_parts(geo.N, _cols_bytes(geo, x.itemsize)))
    return y, kept


def on_phases(geo: ConvGeometry) -> bool:
    """Whether the forward and gW may read the phase planes instead of im2col columns
    (:func:`.conv.forward_on_phases`): a stride, no dilation, and each kernel size a multiple of
    its stride, so that every shift of the taps reads every plane (k4 s2, a decoder's layer).
    The planes hold about the input once where the columns hold it kh·kw/(s_h·s_w) times: the
    decoder layer's conv_transpose2d (N=64, 64->32, 14x14 -> 28x28, k4 s2) measured 5-6 %
    faster forward plus backward, alternating with the im2col form in one process."""
    return (max(geo.sh, geo.sw) > 1 and geo.dh == geo.dw == 1
            and geo.kh % geo.sh == 0 and geo.kw % geo.sw == 0)


def _phase_blocks(geo: ConvGeometry, itemsize: int) -> int:
    """How many blocks the batch is cut into on phase planes: each block's planes (C_in ×
    s_h·s_w·Hq·Wq a sample) and its gY and Y on their grid (C_out × Ho·Wq each) fit half of
    :data:`COLS_BUDGET_BYTES`. The count does not depend on the threads: a block's GEMMs are
    as wide as its grid, and a GEMM's rounding may follow its width, so that gX of
    conv_transpose2d stays the same to the bit on any number of threads (blocks of 16 and 32
    samples measured alike on the decoder layer, blocks of 8 about 6 % slower)."""
    per_sample = (geo.C_in * geo.sh * geo.sw * geo.Hq + 2 * geo.C_out * geo.Ho) * geo.Wq * itemsize
    return -(-geo.N * per_sample // max(1, COLS_BUDGET_BYTES // 2))


def conv_forward_and_grad_weight(x, w, gy, geo: ConvGeometry):
    """``(conv(x, W), gW(x, gy))``: the forward of :func:`.conv.forward` and the weight gradient
    of :func:`.conv.grad_weight` for the upstream ``gy``, both from one gather of x's columns
    (or of its phase planes, :func:`on_phases`) per block. conv_transpose2d's backward needs
    exactly this pair (its gX is the conv of its gY, its gW the conv weight gradient with that
    gY as the input), and the gather is the larger part of either.
    """
    prime_heap()
    y = np.empty(geo.output_shape, np.result_type(x, w))
    if _no_products(geo):
        y[...] = 0
        return y, np.zeros(geo.weight_shape, np.result_type(x, gy))
    phases = on_phases(geo)

    def run(rows: slice) -> np.ndarray:
        if phases:
            z = windows.phase_rows(x[rows], geo)                       # (C_in, sh, sw, .)
            conv.forward_on_phases(z, w, geo, y[rows])
            with np.errstate(invalid="ignore"):   # a NaN here is recomputed below, exactly
                return conv.grad_weight_on_phases(z, gy[rows], geo)
        cols = conv.columns(x[rows], geo)                              # (n, g, K, L)
        conv.forward(x[rows], w, None, geo, cols, y[rows])
        return conv.grad_weight(cols, gy[rows], geo)                   # this block's share of gW

    if phases:
        gw = parallel.sum_over_blocks(run, slice(0, geo.N), y.size * geo.kh * geo.kw,
                                      calls_blas=True, parts=_phase_blocks(geo, x.itemsize))
        if not np.isfinite(gw).all():   # the planes' 0·inf at wrap-around positions
            gw = conv_grad_weight(x, gy, geo)
        return y, gw
    gw = parallel.sum_over_blocks(run, slice(0, geo.N), y.size * geo.kh * geo.kw,
                                  calls_blas=True, parts=_parts(geo.N, _cols_bytes(geo, x.itemsize)))
    return y, gw


def conv_backward(x, w, gy, geo: ConvGeometry, cols=None, need_input=True, need_weight=True,
                  method: str = "auto", gx_bias=None):
    """``(gX, gW)``, None where not needed; ``cols`` are the forward's kept columns, if any.
    ``gx_bias`` (C_in,), when given, is added to every cell of its channel of gX, block by block
    while the block is in cache: conv_transpose2d's forward is that sum."""
    prime_heap()
    gx = np.empty(geo.input_shape, np.result_type(gy, w)) if need_input else None
    if _no_products(geo):                      # every gradient is an empty or all-zero sum
        if gx is not None:
            gx[...] = 0 if gx_bias is None else gx_bias.reshape(1, -1, 1, 1)
        return gx, np.zeros(geo.weight_shape, np.result_type(x, gy)) if need_weight else None
    if method == "inserted":
        gw = _backward_inserted(x, w, gy, geo, gx, need_weight)
        if gx is not None and gx_bias is not None:
            gx += gx_bias.reshape(1, -1, 1, 1)
        return gx, gw

    def run(rows: slice):
        if need_input:
            assert gx is not None
            gy_rows = conv.gy_on_rows(gy[rows], geo)                   # (n, g, Qg, Ho·Wq)
            conv.grad_input(gy_rows, w, geo, gx[rows])
            if gx_bias is not None:
                gx[rows] += gx_bias.reshape(1, -1, 1, 1)
        if need_weight:
            block_cols = cols[rows] if cols is not None else conv.columns(x[rows], geo)
            return conv.grad_weight(block_cols, gy[rows], geo)         # this block's share of gW
        return None

    # the larger of the buffers a block needs sets the chunk: gX's scratch, the columns
    # gathered again for gW
    per_sample = max(_grad_input_bytes(geo, gy.itemsize) if need_input else 0,
                     _cols_bytes(geo, gy.itemsize) if need_weight and cols is None else 0)
    parts = None if cols is not None else _parts(geo.N, per_sample)
    elements = geo.C_in * geo.kh * geo.kw * geo.Ho * geo.Wo * geo.N
    if not need_weight:
        parallel.run_blocks(run, slice(0, geo.N), elements, calls_blas=True, parts=parts)
        return gx, None
    return gx, parallel.sum_over_blocks(run, slice(0, geo.N), elements, calls_blas=True,
                                        parts=parts)


def conv_grad_input(gy, w, geo: ConvGeometry, method: str = "auto", bias=None) -> np.ndarray:
    """gX alone (:func:`.conv.grad_input`, or the seed's form for ``method="inserted"``), plus
    ``bias`` (C_in,) on every cell of its channel when given (conv_transpose2d's forward)."""
    return conv_backward(None, w, gy, geo, need_weight=False, method=method, gx_bias=bias)[0]


def conv_grad_weight(x, gy, geo: ConvGeometry, cols=None, method: str = "auto") -> np.ndarray:
    """gW alone (:func:`.conv.grad_weight`, or the seed's form for ``method="inserted"``)."""
    return conv_backward(x, None, gy, geo, cols, need_input=False, method=method)[1]


def _backward_inserted(x, w, gy, geo: ConvGeometry, gx, need_weight: bool):
    """The seed's form (SPEC §3.2), block by block; returns gW (or None)."""
    def run(rows: slice):
        if gx is not None:
            gx[rows] = conv.grad_input_inserted(gy[rows], w, geo)
        return conv.grad_weight_inserted(x[rows], gy[rows], geo) if need_weight else None

    elements = geo.C_in * geo.kh * geo.kw * geo.Ho * geo.Wo * geo.N
    if need_weight:
        return parallel.sum_over_blocks(run, slice(0, geo.N), elements, calls_blas=True)
    parallel.run_blocks(run, slice(0, geo.N), elements, calls_blas=True)
    return None


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"conv2d: method must be one of {METHODS}, got {method!r}")


# --- pooling -----------------------------------------------------------------------------------

def _pool_work(geo: PoolGeometry) -> int:
    """The work size the threads' threshold compares: the pool's outputs (counting one element
    per tap and output made LeNet-5's pools threaded, and its step measured 5 % slower)."""
    return geo.N * geo.C * geo.Ho * geo.Wo


def avg_pool_forward(x, geo: PoolGeometry, count_include_pad=True, divisor_override=None):
    """:func:`.pool.avg_pool_forward` on batch blocks, whose row sums (C × Hp × Wo a sample)
    fit :data:`COLS_BUDGET_BYTES` a chunk (:func:`_parts`)."""
    y = np.empty(geo.output_shape, x.dtype)
    parallel.run_blocks(lambda rows: pool.avg_pool_forward(
        x[rows], geo, count_include_pad, divisor_override, y[rows]), slice(0, geo.N),
        _pool_work(geo), parts=_parts(geo.N, geo.C * geo.Hp * geo.Wo * x.itemsize))
    return y


def avg_pool_backward(gy, geo: PoolGeometry, count_include_pad=True, divisor_override=None):
    """:func:`.pool.avg_pool_backward` on batch blocks."""
    gx = np.empty((geo.N, geo.C, geo.H, geo.W), gy.dtype)
    parallel.run_blocks(lambda rows: pool.avg_pool_backward(
        gy[rows], geo, count_include_pad, divisor_override, gx[rows]), slice(0, geo.N),
        _pool_work(geo))
    return gx


def max_pool_forward(x, geo: PoolGeometry):
    """:func:`.pool.max_pool_forward` on batch blocks: ``(y, argmax)``."""
    y, argmax = np.empty(geo.output_shape, x.dtype), np.empty(geo.output_shape, np.int64)
    parallel.run_blocks(lambda rows: pool.max_pool_forward(
        x[rows], geo, (y[rows], argmax[rows])), slice(0, geo.N), _pool_work(geo))
    return y, argmax


def max_pool_backward(gy, argmax, geo: PoolGeometry):
    """:func:`.pool.max_pool_backward` on batch blocks."""
    gx = np.empty((geo.N, geo.C, geo.H, geo.W), gy.dtype)
    parallel.run_blocks(lambda rows: pool.max_pool_backward(
        gy[rows], argmax[rows], geo, gx[rows]), slice(0, geo.N), _pool_work(geo))
    return gx


# --- dense products --------------------------------------------------------------------------

#: OpenBLAS runs a GEMM of at most this many multiply-adds on one thread (65536 · its
#: GEMM_MULTITHREAD_THRESHOLD of 4); bigger ones would wake its worker threads.
BLAS_SINGLE_THREAD_MNK = 65536 * 4


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` for a 2-D ``a`` (M, K) and ``b`` (K, N) with BLAS held to one thread: numcnn's
    own products never wake BLAS's worker threads, which would keep spinning on the cores the
    next kernel needs. Products of about 16 M multiply-adds and more have the rows of ``a`` split
    among the kernel threads; smaller ones (LeNet-5's layers) stay on the calling thread, where a
    region's hand-off costs more than it saves (a LeNet-5 epoch measured about 10 % slower split).
    Products BLAS runs on one thread anyway are left to it."""
    (M, K), N = a.shape, b.shape[-1]
    if M * K * N <= BLAS_SINGLE_THREAD_MNK:
        return a @ b
    out = np.empty((M, N), np.result_type(a, b))

    def run(rows: slice) -> None:
        np.matmul(a[rows], b, out=out[rows])

    parallel.run_blocks(run, slice(0, M), M * K * N // 64, calls_blas=True)  # vs the threshold
    return out


# --- public kernels on ndarrays, with PyTorch's argument names (torch.nn.grad) ----------------

def conv2d_forward(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """conv2d on ndarrays (cross-correlation, as ``torch.nn.functional.conv2d``).

    Shape: x (N, C_in, H, W), w (C_out, C_in/g, kh, kw), b (C_out,) -> y (N, C_out, Ho, Wo).
    """
    x, w = check_float_arrays("conv2d", input=x, weight=w)
    geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    return conv_forward(x, w, check_bias(b, geo.C_out, "conv2d"), geo)[0]


def conv2d_input(input_shape, w, gy, stride=1, padding=0, dilation=1, groups=1, method="auto"):
    """Gradient of conv2d with respect to its input. Shape: gy (N, C_out, Ho, Wo) -> input_shape."""
    _check_method(method)
    w, gy = check_float_arrays("conv2d", weight=w, gy=gy)
    geo = conv_geometry(tuple(input_shape), w.shape, stride, padding, dilation, groups)
    check_output_shape(gy, geo.output_shape, "gy", "conv2d")
    return conv_grad_input(gy, w, geo, method)


def conv2d_weight(x, weight_shape, gy, stride=1, padding=0, dilation=1, groups=1, method="auto"):
    """Gradient of conv2d with respect to its weight. Shape -> weight_shape."""
    _check_method(method)
    x, gy = check_float_arrays("conv2d", input=x, gy=gy)
    geo = conv_geometry(x.shape, tuple(weight_shape), stride, padding, dilation, groups)
    check_output_shape(gy, geo.output_shape, "gy", "conv2d")
    return conv_grad_weight(x, gy, geo, method=method)


def conv2d_forward_and_weight(x, w, gy, stride=1, padding=0, dilation=1, groups=1):
    """``(conv2d_forward(x, w), conv2d_weight(x, w.shape, gy))`` from one gather of x's columns.

    Shape: x (N, C_in, H, W), w (C_out, C_in/g, kh, kw), gy (N, C_out, Ho, Wo) -> (y, gW).
    """
    x, w, gy = check_float_arrays("conv2d", input=x, weight=w, gy=gy)
    geo = conv_geometry(x.shape, w.shape, stride, padding, dilation, groups)
    check_output_shape(gy, geo.output_shape, "gy", "conv2d")
    return conv_forward_and_grad_weight(x, w, gy, geo)


def conv2d_bias(gy):
    """Gradient of conv2d with respect to its bias: gy summed over (N, Ho, Wo)."""
    return conv.grad_bias(gy)


def avg_pool2d_forward(x, kernel_size, stride=None, padding=0, ceil_mode=False,
                       count_include_pad=True, divisor_override=None):
    """avg_pool2d on ndarrays. Shape: (N, C, H, W) -> (N, C, Ho, Wo)."""
    geo = pool_geometry(x.shape, kernel_size, stride, padding, 1, ceil_mode, "avg_pool2d")
    return avg_pool_forward(x, geo, count_include_pad, divisor_override)


def avg_pool2d_backward(gy, input_shape, kernel_size, stride=None, padding=0, ceil_mode=False,
                        count_include_pad=True, divisor_override=None):
    """Gradient of avg_pool2d with respect to its input. Shape -> input_shape."""
    geo = pool_geometry(tuple(input_shape), kernel_size, stride, padding, 1, ceil_mode,
                        "avg_pool2d")
    check_output_shape(gy, geo.output_shape, "gy", "avg_pool2d")
    return avg_pool_backward(gy, geo, count_include_pad, divisor_override)


def max_pool2d_forward(x, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False):
    """max_pool2d on ndarrays: returns ``(y, argmax)`` with argmax the window-local tap index."""
    geo = pool_geometry(x.shape, kernel_size, stride, padding, dilation, ceil_mode, "max_pool2d")
    return max_pool_forward(x, geo)


def max_pool2d_backward(gy, argmax, input_shape, kernel_size, stride=None, padding=0,
                        dilation=1, ceil_mode=False):
    """Gradient of max_pool2d with respect to its input. Shape -> input_shape."""
    geo = pool_geometry(tuple(input_shape), kernel_size, stride, padding, dilation, ceil_mode,
                        "max_pool2d")
    check_output_shape(gy, geo.output_shape, "gy", "max_pool2d")
    check_output_shape(argmax, geo.output_shape, "argmax", "max_pool2d")
    _check_argmax(argmax, geo)
    return max_pool_backward(gy, argmax, geo)


def _check_argmax(argmax: np.ndarray, geo: PoolGeometry) -> None:
    """Refuse an argmax that :func:`max_pool2d_forward` cannot have given: window-local tap
    indices are ints in [0, kh·kw), or -1 for a window without a real cell."""
    taps = geo.kh * geo.kw
    if not np.issubdtype(argmax.dtype, np.integer):
        raise TypeError(f"max_pool2d: argmax must hold ints (the window-local tap index), "
                        f"got dtype {argmax.dtype}")
    if argmax.size and (argmax.min() < -1 or argmax.max() >= taps):
        raise ValueError(f"max_pool2d: argmax must lie in [-1, {taps}) for a {geo.kh}x{geo.kw} "
                         f"window, got values from {argmax.min()} to {argmax.max()}")
