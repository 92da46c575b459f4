"""Bad input raises a clear ValueError/TypeError that names the argument and the value.

Hand-picked cases check the messages; hypothesis draws invalid configurations (each a valid one
with exactly one thing broken) that must all be rejected.
"""
from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numcnn.functional as F
from numcnn import tensor


def arr(*shape, dtype=np.float64):
    return tensor(np.random.default_rng(0).standard_normal(shape).astype(dtype))


X = arr(1, 3, 8, 8)


# --- conv2d -----------------------------------------------------------------------------------

def test_conv_channel_mismatch():
    with pytest.raises(ValueError, match=r"input has 3 channels but weight expects 1 "
                                         r"\(weight shape \(6, 1, 5, 5\)"):
        F.conv2d(X, arr(6, 1, 5, 5))


def test_conv_groups_must_divide_channels():
    with pytest.raises(ValueError, match=r"groups=2 must divide the input channels C_in=3"):
        F.conv2d(X, arr(4, 1, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"groups=2 must divide the output channels C_out=3"):
        F.conv2d(arr(1, 4, 6, 6), arr(3, 2, 3, 3), groups=2)
    with pytest.raises(ValueError, match=r"groups must be a positive int, got 0"):
        F.conv2d(X, arr(3, 3, 3, 3), groups=0)
    with pytest.raises(ValueError, match=r"groups.*1\.5"):
        F.conv2d(X, arr(3, 3, 3, 3), groups=1.5)


def test_conv_kernel_larger_than_padded_input():
    with pytest.raises(ValueError, match=r"kernel 5 does not fit in the padded input height "
                                         r"3 \+ 0 \+ 0 = 3"):
        F.conv2d(arr(1, 1, 3, 9), arr(1, 1, 5, 3))
    with pytest.raises(ValueError, match=r"dilation 3 \(extent 7\) does not fit.*width "
                                         r"4 \+ 1 \+ 1 = 6.*padding >= 2"):
        F.conv2d(arr(1, 1, 9, 4), arr(1, 1, 3, 3), padding=1, dilation=3)


@pytest.mark.parametrize("name, kwargs, value", [
    ("stride", {"stride": 0}, "0"),
    ("stride", {"stride": (1, -2)}, r"\(1, -2\)"),
    ("dilation", {"dilation": 0}, "0"),
    ("dilation", {"dilation": (0, 1)}, r"\(0, 1\)"),
    ("padding", {"padding": -1}, "-1"),
    ("padding", {"padding": (0, -3)}, r"\(0, -3\)"),
])
def test_conv_non_positive_stride_dilation_negative_padding(name, kwargs, value):
    with pytest.raises(ValueError, match=rf"{name} must be >= \d on both axes, got {value}"):
        F.conv2d(X, arr(2, 3, 3, 3), **kwargs)


@pytest.mark.parametrize("kwargs", [{"stride": 1.0}, {"padding": 1.5}, {"dilation": (1, 2, 3)},
                                    {"stride": True}, {"padding": None}])
def test_conv_non_integer_arguments(kwargs):
    (name,) = kwargs
    with pytest.raises(TypeError, match=rf"{name} must be an int or a pair of ints"):
        F.conv2d(X, arr(2, 3, 3, 3), **kwargs)


def test_conv_same_padding_needs_stride_one():
    with pytest.raises(ValueError, match=r"padding='same'.*stride=\(2, 2\)"):
        F.conv2d(X, arr(2, 3, 3, 3), stride=2, padding="same")


def test_conv_unknown_padding_string():
    with pytest.raises(ValueError, match=r"padding must be an int, a pair, 'same' or 'valid', "
                                         r"got 'full'"):
        F.conv2d(X, arr(2, 3, 3, 3), padding="full")


@pytest.mark.parametrize("shape", [(8, 8), (1, 1, 1, 8, 8), (8,)])
@pytest.mark.parametrize("op", ["conv2d", "avg_pool2d", "max_pool2d", "adaptive_avg_pool2d"])
def test_input_must_be_4d_or_3d(shape, op):
    call = {
        "conv2d": lambda t: F.conv2d(t, arr(1, 1, 3, 3)),
        "avg_pool2d": lambda t: F.avg_pool2d(t, 2),
        "max_pool2d": lambda t: F.max_pool2d(t, 2),
        "adaptive_avg_pool2d": lambda t: F.adaptive_avg_pool2d(t, 2),
    }[op]
    expected = (rf"{op}: input must be 4-D \(N, C, H, W\) or 3-D unbatched \(C, H, W\), "
                rf"got shape {re.escape(str(shape))}")
    with pytest.raises(ValueError, match=expected):
        call(arr(*shape))


def test_conv_weight_must_be_4d():
    with pytest.raises(ValueError, match=r"weight must be 4-D.*\(2, 3, 3\)"):
        F.conv2d(X, arr(2, 3, 3))


@pytest.mark.parametrize("which", ["input", "weight", "bias"])
def test_integer_dtypes_are_rejected(which):
    x, w, b = X, arr(2, 3, 3, 3), arr(2)
    bad = {"input": tensor(np.ones((1, 3, 8, 8), np.int64)),
           "weight": tensor(np.ones((2, 3, 3, 3), np.int32)),
           "bias": tensor(np.ones(2, np.int64))}[which]
    args = {"input": (bad, w, b), "weight": (x, bad, b), "bias": (x, w, bad)}[which]
    with pytest.raises(TypeError, match=rf"conv2d: {which} must have a floating dtype.*int"):
        F.conv2d(*args)


@pytest.mark.parametrize("op", [F.avg_pool2d, F.max_pool2d, F.relu, F.tanh, F.sigmoid,
                                F.softmax, F.log_softmax])
def test_integer_inputs_rejected_by_float_ops(op):
    args = (2,) if op in (F.avg_pool2d, F.max_pool2d) else ()
    with pytest.raises(TypeError, match=r"input must have a floating dtype.*int64"):
        op(np.ones((1, 1, 4, 4), np.int64), *args)


def test_float32_input_with_float64_weight():
    with pytest.raises(TypeError, match=r"input is float32, weight is float64"):
        F.conv2d(arr(1, 3, 8, 8, dtype=np.float32), arr(2, 3, 3, 3))
    with pytest.raises(TypeError, match=r"bias is float64"):
        F.conv2d(arr(1, 3, 8, 8, dtype=np.float32), arr(2, 3, 3, 3, dtype=np.float32), arr(2))
    with pytest.raises(TypeError, match=r"input is float32, weight is float64"):
        F.linear(arr(2, 3, dtype=np.float32), arr(4, 3))


def test_conv_bias_shape():
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\), got \(3,\)"):
        F.conv2d(X, arr(2, 3, 3, 3), arr(3))


def test_conv_unknown_method():
    with pytest.raises(ValueError, match=r"method must be one of.*got 'fft'"):
        F.conv2d(X, arr(2, 3, 3, 3), method="fft")


# --- pooling ----------------------------------------------------------------------------------

@pytest.mark.parametrize("op", [F.avg_pool2d, F.max_pool2d])
def test_pool_padding_at_most_half_the_kernel(op):
    with pytest.raises(ValueError, match=r"padding 2 on the height axis is more than half the "
                                         r"kernel size 3; pad should be at most 1"):
        op(X, 3, padding=2)
    with pytest.raises(ValueError, match=r"padding 2 on the width axis.*kernel size 2"):
        op(X, (4, 2), padding=(2, 2))


@pytest.mark.parametrize("op", [F.avg_pool2d, F.max_pool2d])
def test_pool_kernel_does_not_fit(op):
    with pytest.raises(ValueError, match=r"kernel 9 does not fit in the padded input height"):
        op(X, (9, 2))


@pytest.mark.parametrize("kwargs, pattern", [
    ({"kernel_size": 0}, r"kernel_size must be >= 1.*got 0"),
    ({"kernel_size": 2, "stride": 0}, r"stride must be >= 1.*got 0"),
    ({"kernel_size": 2, "padding": -1}, r"padding must be >= 0.*got -1"),
    ({"kernel_size": 2.0}, r"kernel_size must be an int or a pair of ints"),
])
def test_pool_bad_arguments(kwargs, pattern):
    for op in (F.avg_pool2d, F.max_pool2d):
        with pytest.raises((ValueError, TypeError), match=pattern):
            op(X, **kwargs)


def test_max_pool_bad_dilation():
    with pytest.raises(ValueError, match=r"dilation must be >= 1.*got 0"):
        F.max_pool2d(X, 2, dilation=0)


@pytest.mark.parametrize("value, error, pattern", [
    (0, ValueError, r"divisor must be not zero"),
    (1.5, TypeError, r"divisor_override must be an int, got 1.5"),
    (True, TypeError, r"divisor_override must be an int, got True"),
])
def test_avg_pool_divisor_override(value, error, pattern):
    # PyTorch refuses only zero and non-ints; a negative divisor is allowed (see
    # tests/test_argument_forms.py)
    with pytest.raises(error, match=pattern):
        F.avg_pool2d(X, 2, divisor_override=value)


def test_adaptive_output_size():
    with pytest.raises(ValueError, match=r"output_size must be >= 0.*got -1"):
        F.adaptive_avg_pool2d(X, -1)
    with pytest.raises(ValueError, match=r"output_size must be >= 0.*\(2, -1\)"):
        F.adaptive_avg_pool2d(X, (2, -1))


# --- losses -------------------------------------------------------------------------------------

LOGITS = arr(3, 4)


@pytest.mark.parametrize("op", [F.cross_entropy, F.nll_loss])
def test_class_targets(op):
    with pytest.raises(ValueError, match=r"target 4 is out of range for 4 classes"):
        op(LOGITS, np.array([0, 4, 1]))
    with pytest.raises(ValueError, match=r"target -1 is out of range for 4 classes"):
        op(LOGITS, np.array([0, -1, 1]))
    with pytest.raises(TypeError, match=r"target must hold integer class indices, got dtype "
                                        r"float64"):
        op(LOGITS, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"target must have shape \(3,\).*got \(2,\)"):
        op(LOGITS, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"input must be 2-D.*\(3, 4, 1\)"):
        op(arr(3, 4, 1), np.array([0, 1, 2]))


@pytest.mark.parametrize("call", [
    lambda r: F.cross_entropy(LOGITS, np.array([0, 1, 2]), reduction=r),
    lambda r: F.nll_loss(LOGITS, np.array([0, 1, 2]), reduction=r),
    lambda r: F.mse_loss(LOGITS, LOGITS, reduction=r),
])
def test_bad_reduction(call):
    with pytest.raises(ValueError, match=r"reduction must be one of \('mean', 'sum', 'none'\), "
                                         r"got 'avg'"):
        call("avg")


def test_label_smoothing_range():
    with pytest.raises(ValueError, match=r"label_smoothing must be in \[0, 1\], got 1.5"):
        F.cross_entropy(LOGITS, np.array([0, 1, 2]), label_smoothing=1.5)


def test_mse_shape_mismatch():
    with pytest.raises(ValueError, match=r"input shape \(3, 4\) and target shape \(4, 3\)"):
        F.mse_loss(LOGITS, arr(4, 3))


# --- linear, batch_norm, dropout, pad -----------------------------------------------------------

def test_linear_feature_mismatch_and_bias():
    with pytest.raises(ValueError, match=r"input has 4 features.*weight expects 3 "
                                         r"\(weight shape \(2, 3\)\)"):
        F.linear(arr(5, 4), arr(2, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(2,\), got \(3,\)"):
        F.linear(arr(5, 3), arr(2, 3), arr(3))


def test_batch_norm_errors():
    rm, rv = np.zeros(3), np.ones(3)
    x = arr(4, 3, 2, 2)
    with pytest.raises(ValueError, match=r"weight must have shape \(3,\), got \(4,\)"):
        F.batch_norm(x, rm, rv, arr(4), arr(3), training=True)
    with pytest.raises(ValueError, match=r"bias must have shape \(3,\), got \(2, 3\)"):
        F.batch_norm(x, rm, rv, arr(3), arr(2, 3))
    with pytest.raises(ValueError, match=r"input must be.*got \(3,\)"):
        F.batch_norm(arr(3), rm, rv)
    with pytest.raises(ValueError, match=r"more than 1 value per channel.*\(1, 3\)"):
        F.batch_norm(arr(1, 3), rm, rv, training=True)
    with pytest.raises(ValueError, match=r"running_mean and running_var are required"):
        F.batch_norm(x, None, None, training=False)


@pytest.mark.parametrize("p", [-0.1, 1.5])
def test_dropout_probability(p):
    with pytest.raises(ValueError, match=rf"p must be in \[0, 1\], got {p}"):
        F.dropout(arr(3), p)


def test_pad_errors():
    x = arr(2, 3)
    with pytest.raises(ValueError, match=r"even length.*\(1, 2, 3\)"):
        F.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match=r"even length <= 2·ndim = 4"):
        F.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"mode must be one of .*got 'symmetric'"):
        F.pad(x, (1, 1), mode="symmetric")
    with pytest.raises(ValueError, match=r"crops more than the whole dimension"):
        F.pad(x, (-6, 1))


# --- hypothesis: invalid configurations ------------------------------------------------------

@st.composite
def invalid_conv(draw):
    """A valid conv2d configuration with exactly one thing broken; returns (kwargs, x, w, text)
    where ``text`` must appear in the error message."""
    g = draw(st.integers(1, 3))
    C_in, C_out = g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    k = draw(st.integers(1, 4))
    H = draw(st.integers(k, k + 5))
    kw = {"stride": 1, "padding": 0, "dilation": 1, "groups": g}
    x_shape, w_shape = (1, C_in, H, H + 1), (C_out, C_in // g, k, k)
    broken = draw(st.sampled_from(["channels", "groups", "fit", "stride", "dilation",
                                   "padding", "same", "padding_str"]))
    if broken == "channels":
        w_shape = (C_out, C_in // g + draw(st.integers(1, 2)), k, k)
        text = f"input has {C_in} channels"
    elif broken == "groups":
        bad = draw(st.integers(2, 5).filter(lambda v: C_in % v))
        kw["groups"] = bad
        w_shape = (C_out * bad, 1, k, k)
        text = f"groups={bad} must divide the input channels C_in={C_in}"
    elif broken == "fit":
        kw["padding"] = p = draw(st.integers(0, 2))
        d = draw(st.integers(1, 3))
        kw["dilation"] = d
        keff = H + 2 * p + draw(st.integers(1, 4))                     # too big by >= 1
        k_big = -(-(keff - 1) // d) + 1                                # d(k-1)+1 >= keff
        w_shape = (C_out, C_in // g, k_big, 1)
        text = "does not fit"
    elif broken in ("stride", "dilation"):
        value = draw(st.integers(-3, 0))
        kw[broken] = value if draw(st.booleans()) else (1, value)
        text = f"{broken} must be >= 1"
    elif broken == "padding":
        kw["padding"] = draw(st.integers(-3, -1))
        text = "padding must be >= 0"
    elif broken == "same":
        kw["padding"], kw["stride"] = "same", draw(st.integers(2, 4))
        text = "padding='same'"
    else:
        kw["padding"] = draw(st.sampled_from(["full", "SAME", "", "causal"]))
        text = "padding must be an int, a pair, 'same' or 'valid'"
    return kw, x_shape, w_shape, text


@given(case=invalid_conv())
def test_invalid_conv_configurations_raise(case):
    kw, x_shape, w_shape, text = case
    with pytest.raises(ValueError) as info:
        F.conv2d(tensor(np.zeros(x_shape)), tensor(np.zeros(w_shape)), **kw)
    assert text in str(info.value)
    assert str(info.value).startswith("conv2d: ")


@st.composite
def invalid_pool(draw):
    """A pooling configuration with one thing broken: padding above k/2, a kernel that does not
    fit, or a non-positive stride/kernel."""
    k = draw(st.integers(1, 5))
    H = draw(st.integers(1, 8))
    broken = draw(st.sampled_from(["padding", "fit", "stride", "kernel"]))
    kw = {"kernel_size": k, "stride": None, "padding": 0}
    if broken == "padding":
        kw["padding"] = draw(st.integers(k // 2 + 1, k + 2))
        text = "more than half the kernel size"
        H = max(H, k)
    elif broken == "fit":
        kw["kernel_size"] = (H + draw(st.integers(1, 3)), 1)
        text = "does not fit"
    elif broken == "stride":
        kw["stride"] = draw(st.integers(-2, 0))
        text = "stride must be >= 1"
        H = max(H, k)
    else:
        kw["kernel_size"] = draw(st.integers(-2, 0))
        text = "kernel_size must be >= 1"
    return kw, (1, 2, H, H), text


@given(case=invalid_pool(), which=st.sampled_from(["avg_pool2d", "max_pool2d"]))
def test_invalid_pool_configurations_raise(case, which):
    kw, x_shape, text = case
    with pytest.raises(ValueError) as info:
        getattr(F, which)(tensor(np.zeros(x_shape)), **kw)
    assert text in str(info.value)
    assert str(info.value).startswith(f"{which}: ")
