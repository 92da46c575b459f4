"""numcnn.validation: the argument checks of the layers, models, optimizers, schedulers,
transforms and the command line, each message naming where, the argument, the value and what
was expected."""
from __future__ import annotations

import argparse
from fractions import Fraction

import numpy as np
import pytest

from numcnn import data, models, nn, optim
from numcnn.validation import (
    check_bool,
    check_choice,
    check_device,
    check_float_dtype,
    check_image_input,
    check_int,
    check_pair,
    check_probability,
    check_real,
    check_reduction,
    is_int,
    is_real,
    non_negative_float,
    non_negative_int,
    positive_float,
    positive_int,
    to_pair,
)


def test_check_int():
    assert check_int(np.int64(3), "n", "Op") == 3 and type(check_int(np.int64(3), "n", "Op")) is int
    assert check_int(-1, "last_epoch", "StepLR", minimum=-1) == -1
    assert check_int(-10**9, "n", "Op", minimum=None) == -10**9
    with pytest.raises(ValueError, match=r"^Conv2d: in_channels must be >= 1, got 0$"):
        check_int(0, "in_channels", "Conv2d")
    with pytest.raises(TypeError, match=r"^StepLR: step_size must be an int, got 2\.5$"):
        check_int(2.5, "step_size", "StepLR")
    with pytest.raises(TypeError, match=r"must be an int, got True"):
        check_int(True, "n", "Op")


@pytest.mark.parametrize("kwargs, value, message", [
    ({"low": 0}, -1, r"^SGD: lr must be >= 0, got -1$"),
    ({"low": 0, "low_open": True}, 0, r"^StepLR: gamma must be > 0, got 0$"),
    ({"high": 1, "high_open": True}, 1, r"must be < 1, got 1$"),
    ({"high": 1}, 2, r"must be <= 1, got 2$"),
    ({"low": 0, "high": 1, "high_open": True}, 1.0, r"must be in \[0, 1\), got 1.0$"),
    ({"low": 0, "high": 1, "low_open": True}, 0.0, r"must be in \(0, 1\], got 0.0$"),
    ({}, float("nan"), r"must be finite, got nan$"),
])
def test_check_real_ranges(kwargs, value, message):
    where, name = ("SGD", "lr") if message.startswith("^SGD") else ("StepLR", "gamma")
    with pytest.raises(ValueError, match=message):
        check_real(value, name, where, **kwargs)


def test_check_real_types():
    assert check_real(np.float32(0.5), "lr", "SGD") == 0.5
    assert type(check_real(np.float64(0.5), "lr", "SGD")) is float
    for bad in ("0.1", True, None):
        with pytest.raises(TypeError, match=rf"SGD: lr must be a real number, got {bad!r}"):
            check_real(bad, "lr", "SGD")


@pytest.mark.parametrize("value, integer, real", [
    (3, True, True), (np.int64(-2), True, True), (2.5, False, True), (np.float32(1), False, True),
    (Fraction(1, 3), False, True), (True, False, False), (np.bool_(False), False, False),
    ("3", False, False), (None, False, False), (np.array(3), False, False),
])
def test_is_int_and_is_real(value, integer, real):
    assert is_int(value) is integer and is_real(value) is real


def test_check_bool_and_its_hint():
    assert check_bool(np.bool_(True), "bias", "Linear") is True
    with pytest.raises(TypeError, match=r"^Linear: bias must be a bool, got 'yes'$"):
        check_bool("yes", "bias", "Linear")
    with pytest.raises(TypeError, match=r"got 0\.5 \(fill comes after it\)$"):
        check_bool(0.5, "pad_if_needed", "RandomCrop", hint=" (fill comes after it)")


def test_the_other_checks():
    assert check_probability(np.float64(0.25), "p", "Dropout") == 0.25
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got 2"):
        check_probability(2, "p", "Dropout")
    assert check_choice("relu", "activation", "LeNet5", ("tanh", "relu")) == "relu"
    with pytest.raises(ValueError, match=r"LeNet5: activation must be one of 'tanh', 'relu', "
                                         r"got 'gelu'"):
        check_choice("gelu", "activation", "LeNet5", ("tanh", "relu"))
    assert check_reduction("sum", "MSELoss") == "sum"
    with pytest.raises(ValueError, match="MSELoss: reduction must be"):
        check_reduction("avg", "MSELoss")
    assert check_float_dtype("float64", "Linear") == np.float64
    with pytest.raises(TypeError, match="Linear: dtype must be float32 or float64, got float16"):
        check_float_dtype(np.float16, "Linear")
    check_device("cpu", "Linear")
    with pytest.raises(ValueError, match="Linear: only device=None or 'cpu'"):
        check_device("cuda", "Linear")
    check_image_input(np.zeros((2, 1, 32, 32)), "LeNet5", 1, (32, 32))
    with pytest.raises(ValueError, match=r"LeNet5: expected input of shape \(N, 1, 32, 32\), "
                                         r"got \(2, 1, 28, 28\); pad"):
        check_image_input(np.zeros((2, 1, 28, 28)), "LeNet5", 1, (32, 32), "; pad")


def test_pairs():
    assert to_pair(3, "size", "RandomCrop") == (3, 3)
    assert to_pair([2, 1], "size", "RandomCrop") == (2, 1)
    assert check_pair(2, "kernel_size", "MaxPool2d", minimum=1) == 2  # kept as given
    assert check_pair([2, 3], "kernel_size", "MaxPool2d", minimum=1) == (2, 3)
    with pytest.raises(ValueError, match=r"RandomShift: max_shift must be >= 0 on both axes"):
        to_pair((1, -1), "max_shift", "RandomShift", minimum=0)
    with pytest.raises(TypeError, match=r"RandomCrop: size must be an int or a pair of ints "
                                        r"\(or a 1-tuple\), got 'a'"):
        to_pair("a", "size", "RandomCrop")


def test_command_line_converters():
    assert positive_int("3") == 3 and positive_float("0.5") == 0.5
    for bad, message in (("0", "expected a positive integer, got 0"),
                         ("x", "expected a positive integer, got 'x'")):
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            positive_int(bad)
    for bad in ("0", "-1", "inf", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a positive number"):
            positive_float(bad)
    assert non_negative_int("0") == 0 and non_negative_float("0") == 0.0
    assert non_negative_float("0.9") == 0.9
    for bad in ("-1", "1.5", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected an integer >= 0"):
            non_negative_int(bad)
    for bad in ("-0.1", "inf", "nan", "x"):
        with pytest.raises(argparse.ArgumentTypeError, match="expected a (finite )?number >= 0"):
            non_negative_float(bad)


# --- the same checks, reached through the classes that use them --------------------------------

@pytest.mark.parametrize("make, error, message", [
    (lambda: nn.Conv2d(0, 6, 3), ValueError, "Conv2d: in_channels must be >= 1, got 0"),
    (lambda: nn.Linear(4, 2, bias="yes"), TypeError, "Linear: bias must be a bool, got 'yes'"),
    (lambda: models.lenet5(activation="gelu"), ValueError, "activation must be one of"),
    (lambda: models.convnet(width=0), ValueError, "width must be >= 1, got 0"),
    (lambda: optim.SGD([nn.Parameter(np.zeros(2))], lr=-1.0), ValueError,
     "SGD: lr must be >= 0, got -1.0"),
    (lambda: optim.lr_scheduler.StepLR(optim.SGD([nn.Parameter(np.zeros(2))], lr=0.1),
                                       step_size=0), ValueError,
     "StepLR: step_size must be >= 1, got 0"),
    (lambda: data.RandomShift(-1), ValueError, "RandomShift: max_shift must be >= 0"),
    (lambda: data.RandomCrop("a"), TypeError, "RandomCrop: size must be an int or a pair"),
    (lambda: data.ToFloat(np.int32), TypeError, "ToFloat: dtype must be float32 or float64"),
])
def test_callers_report_through_the_shared_checks(make, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        make()
