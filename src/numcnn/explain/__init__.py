"""Dimension's Secret, printed: every shape, size formula, cost and gradient of a model.

:func:`explain` walks a model (or one layer) for a given input shape and returns a table with,
per layer, the input and output shapes, the output-size arithmetic with the actual numbers,
the parameters, the forward and backward FLOPs and the activation memory; ``backward=True``
adds every tensor of the backward pass (im2col columns, the zero-inserted and padded gradient,
the flipped kernel, which axes each gradient sums over), and ``trace=True`` runs the model for
real and checks every printed shape against the arrays the code produces.
:func:`explain_op` is the ``key=value`` form of one conv or pooling configuration.
For one small conv or pooling layer, :func:`explain_values` prints the arrays themselves and
:func:`explain_page` writes the interactive page (:mod:`.values` computes the arrays with the
kernels, :mod:`.page` lays out the steps, :mod:`.html` is the self-contained viewer).

>>> from numcnn.explain import explain_op
>>> text = explain_op("conv2d", H=6, W=6, k=3, s=2, trace=True)
>>> print(text.splitlines()[0])
numcnn explain conv2d N=1 C_in=1 C_out=1 H=6 W=6 k=3x3 s=2x2 p=0x0 d=1x1 g=1
>>> print(next(line for line in text.splitlines() if "inserted pad after" in line))
  inserted pad after  = k_eff-1-p+r                 3      3
>>> print(text.splitlines()[-2])
trace: 24 shapes checked, all match (batch 1, float64)
"""
from __future__ import annotations

import numpy as np

from .config import layer_from_config
from .html import write_page
from .page import PageData, page_data
from .parse import LAYER_NAMES, OP_KEYS, build_layers, parse_key_values, parse_layer_spec, spec_key
from .plan import ExplainError, LayerPlan
from .render import backward_sections, detail, summary
from .trace import TraceError, TraceResult, run_trace
from .values import check_small, layer_values, values_text
from .walk import leaves, plan_layers

__all__ = [
    "DEFAULT_INPUT", "ExplainError", "Explanation", "TraceError",
    "explain", "explain_config", "explain_op", "explain_page", "explain_values", "one_layer",
    "resolve_target",
]

#: Input (C, H, W) assumed for a layer when none is given: the project's data sets are 28x28.
DEFAULT_INPUT = (1, 28, 28)
#: Largest batch traced as is; other batches are traced at batch 2 (shapes differ only in N;
#: batch 1 cannot train BatchNorm1d).
MAX_TRACE_BATCH = 4


class Explanation(str):
    """The explanation text; ``plans`` holds the per-layer data, ``trace`` the trace result."""

    plans: list[LayerPlan]
    trace: TraceResult | None


def _finish(text: str, plans: list[LayerPlan], traced: TraceResult | None) -> Explanation:
    if traced is not None:
        if traced.mismatches:
            lines = "\n  ".join(traced.mismatches)
            raise TraceError(f"trace: {len(traced.mismatches)} mismatches between the "
                             f"explanation and the code:\n  {lines}", text)
        text += "\n" + traced.summary()
    out = Explanation(text)
    out.plans, out.trace = plans, traced
    return out


def resolve_target(target):
    """A model name, a layer spec or a module -> (module, display name, default (C, H, W))."""
    if not isinstance(target, str):
        return target, type(target).__name__, _default_input(target)
    from ..models import MODELS, get_model, input_size

    name = target.strip()
    if name.lower() in MODELS:
        return get_model(name.lower()), name.lower(), input_size(name.lower())
    if "(" not in name and "," not in name and spec_key(name) not in LAYER_NAMES:
        raise ExplainError(f"unknown model or layer {target!r}; models: {', '.join(sorted(MODELS))}"
                           f"; layers look like conv2d(3, 16, kernel_size=3)")
    module = build_layers(parse_layer_spec(name))
    return module, name, _default_input(module)


def _default_input(module) -> tuple[int, ...]:
    """(C, H, W) for a model or layer when the caller gives none."""
    size = getattr(module, "image_size", None)
    if size is not None:
        channels = getattr(module, "config", {}).get("in_channels", 1)
        return (channels,) + tuple(size)
    first = next(iter(leaves(module)))[1]
    if type(first).__name__ == "Linear":
        return (first.in_features,)
    channels = getattr(first, "in_channels", None) or getattr(first, "num_features", None)
    return (channels or 1,) + DEFAULT_INPUT[1:]


def explain(model_or_layer, input_shape=None, batch: int = 1, backward: bool = False,
            trace: bool = False, dtype="float32") -> Explanation:
    """Explain ``model_or_layer`` (a module, a model name or a layer spec) on one input.

    Parameters
    ----------
    model_or_layer : numcnn.nn.Module, or str such as ``"lenet5"`` or ``"conv2d(1, 6, 5)"``
    input_shape : (C, H, W) of one sample (a 4-tuple includes the batch); default: the
        model's ``input_shape`` attribute, else (C, 28, 28) with C from the first layer
    batch : int, the batch size the shapes, FLOPs and memory are given for
    backward : also list every tensor of each layer's backward pass
    trace : run the model on random float64 data and check every shape (raises TraceError)
    dtype : dtype of the activations counted in the memory column

    Returns
    -------
    Explanation, a ``str`` (print it) with ``plans`` and ``trace`` attributes.

    Raises
    ------
    ExplainError : the configuration cannot run; the message says which layer and why.
    """
    module, name, default = resolve_target(model_or_layer)
    sample = tuple(input_shape) if input_shape is not None else default
    if len(sample) == 4:
        batch, sample = sample[0], sample[1:]
    if not isinstance(batch, (int, np.integer)) or batch < 1:
        raise ExplainError(f"batch must be a positive int, got {batch!r}")
    plans = plan_layers(module, (int(batch),) + sample)
    dt = np.dtype(dtype)
    title = f"numcnn explain {name}: input {sample}, batch {batch}, activations {dt.name}"
    text = summary(plans, title, dt.itemsize, batch, dt.name)
    if backward:
        text += "\n\n" + backward_sections(plans)
    traced = None
    if trace:
        traced = run_trace(module, (batch if 2 <= batch <= MAX_TRACE_BATCH else 2,) + sample)
    return _finish(text, plans, traced)


def explain_op(op: str, trace: bool = False, **params) -> Explanation:
    """One ``conv2d``, ``convtranspose2d``, ``avgpool2d`` or ``maxpool2d`` configuration, axis by
    axis.

    ``params`` use the keys (``N, C_in, C_out, H, W, k, s, p, d, g`` for conv, and ``r`` (the
    output_padding) for the transposed conv;
    ``N, C, H, W, k, s, p, [d,] ceil_mode, count_include_pad`` for pools); a pair is a tuple
    or an ``"AxB"`` string.
    """
    items = [f"{k}={'x'.join(map(str, v)) if isinstance(v, tuple) else int(v)}"
             for k, v in params.items()]
    return explain_config(op, items, trace)


def explain_config(op: str, items, trace: bool = False) -> Explanation:
    """:func:`explain_op` for ``key=value`` strings, as typed on the command line."""
    op = op.lower().replace("_", "")
    if op not in OP_KEYS:
        raise ExplainError(f"unknown op {op!r}; expected one of {', '.join(OP_KEYS)}")
    layer, in_shape, title = layer_from_config(op, parse_key_values(op, items))
    plans = plan_layers(layer, in_shape)
    traced = run_trace(layer, in_shape) if trace else None
    return _finish(detail(plans[0], title), plans, traced)



def one_layer(model_or_layer, input_shape=None, what: str = "--html"):
    """``(plan, title)`` of a single conv or pooling layer on one sample (batch 1)."""
    if isinstance(model_or_layer, LayerPlan):
        plan = model_or_layer
    else:
        module, name, default = resolve_target(model_or_layer)
        sample = tuple(input_shape) if input_shape is not None else default
        sample = sample[1:] if len(sample) == 4 else sample
        plans = plan_layers(module, (1,) + tuple(sample))
        if len(plans) != 1:
            kinds = ", ".join(p.kind for p in plans)
            raise ExplainError(f"{what} explains one layer; {name} has {len(plans)} ({kinds}): "
                               f"give one layer, e.g. 'conv2d(1, 1, 3, stride=2)'")
        plan = plans[0]
    check_small(plan, what)
    title = f"{plan.label} on input {'x'.join(map(str, plan.in_shape[1:]))}"
    return plan, title


def explain_values(model_or_layer, input_shape=None, inputs=None) -> str:
    """The arrays of one layer on one small sample (X_pad, Y, G, P, W_T, gX, gW), as text.

    ``inputs``: ``{"x", "w", "b", "gy"}`` arrays to use instead of small random integers.
    """
    plan, _ = one_layer(model_or_layer, input_shape, "--values")
    source = "small random integers, seed 0" if inputs is None else "as given"
    return values_text(plan, layer_values(plan, inputs)[1], source)


def explain_page(model_or_layer, input_shape=None, path=None, inputs=None,
                 title=None) -> PageData:
    """The interactive page's data for one layer; written as a self-contained HTML file to
    ``path`` when given. Every number is computed by numcnn's kernels (:mod:`.values`)."""
    plan, default_title = one_layer(model_or_layer, input_shape, "--html")
    data = page_data(plan, layer_values(plan, inputs)[1], title or default_title)
    if path is not None:
        try:
            write_page(data, path)
        except OSError as err:
            raise ExplainError(f"cannot write the page {str(path)!r}: "
                               f"{err.strerror or err}") from None
    return data
