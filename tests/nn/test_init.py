"""numcnn.nn.init: PyTorch's fan and gain formulas, and the statistics of every initializer."""
import math

import numpy as np
import pytest

import numcnn as nc
from numcnn import nn
from numcnn.nn import init

BIG = (512, 64, 3, 3)          # fan_in 576, fan_out 4608, 295k samples


@pytest.mark.parametrize("shape, fans", [
    ((6, 1, 5, 5), (25, 150)), ((120, 400), (400, 120)), (BIG, (576, 4608)), ((4, 3, 2), (6, 8)),
])
def test_fan_in_and_fan_out(shape, fans):
    assert init._calculate_fan_in_and_fan_out(np.empty(shape)) == fans


def test_fans_need_two_dimensions():
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions \(got shape \(5,\)\)"):
        init._calculate_fan_in_and_fan_out(np.empty(5))


@pytest.mark.parametrize("args, gain", [
    (("linear",), 1.0), (("conv2d",), 1.0), (("sigmoid",), 1.0), (("tanh",), 5 / 3),
    (("relu",), math.sqrt(2)), (("leaky_relu",), math.sqrt(2 / (1 + 0.01 ** 2))),
    (("leaky_relu", math.sqrt(5)), math.sqrt(1 / 3)), (("selu",), 0.75),
])
def test_calculate_gain(args, gain):
    assert init.calculate_gain(*args) == pytest.approx(gain, rel=1e-15)


def test_calculate_gain_errors():
    with pytest.raises(ValueError, match="unsupported nonlinearity 'gelu'"):
        init.calculate_gain("gelu")
    with pytest.raises(ValueError, match="negative_slope 'x' is not a valid number"):
        init.calculate_gain("leaky_relu", "x")


def sample(fn, dtype=np.float32, seed=0, **kwargs):
    nc.manual_seed(seed)
    w = np.empty(BIG, dtype=dtype)
    assert fn(w, **kwargs) is w and w.dtype == dtype
    return w


@pytest.mark.parametrize("kwargs, fan, gain", [
    ({}, 576, math.sqrt(2 / (1 + 0.0))),                       # a=0: leaky_relu gain = √2
    ({"a": math.sqrt(5)}, 576, math.sqrt(1 / 3)),              # PyTorch's layer default
    ({"mode": "fan_out", "nonlinearity": "relu"}, 4608, math.sqrt(2)),
    ({"nonlinearity": "tanh"}, 576, 5 / 3),
])
def test_kaiming_uniform_bounds_and_std(kwargs, fan, gain):
    w = sample(init.kaiming_uniform_, **kwargs)
    bound = gain * math.sqrt(3 / fan)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.999 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)
    assert abs(w.mean()) < 0.01 * bound


@pytest.mark.parametrize("kwargs, fan, gain", [
    ({}, 576, math.sqrt(2)), ({"mode": "fan_out", "nonlinearity": "relu"}, 4608, math.sqrt(2)),
])
def test_kaiming_normal_std(kwargs, fan, gain):
    w = sample(init.kaiming_normal_, dtype=np.float64, **kwargs)
    assert w.std() == pytest.approx(gain / math.sqrt(fan), rel=0.01)


def test_xavier_uniform_and_normal():
    a = math.sqrt(6 / (576 + 4608))
    w = sample(init.xavier_uniform_)
    assert np.abs(w).max() <= a and w.std() == pytest.approx(a / math.sqrt(3), rel=0.01)
    w = sample(init.xavier_uniform_, gain=2.0)
    assert np.abs(w).max() <= 2 * a and np.abs(w).max() > 1.99 * a
    w = sample(init.xavier_normal_, gain=init.calculate_gain("tanh"))
    assert w.std() == pytest.approx(5 / 3 * math.sqrt(2 / (576 + 4608)), rel=0.01)


def test_uniform_normal_constant_zeros_ones():
    w = sample(init.uniform_, a=-2.0, b=3.0)
    assert w.min() >= -2 and w.max() <= 3 and w.mean() == pytest.approx(0.5, abs=0.02)
    w = sample(init.normal_, mean=1.0, std=0.5)
    assert w.mean() == pytest.approx(1.0, abs=0.01) and w.std() == pytest.approx(0.5, rel=0.01)
    p = nn.Parameter(np.empty((3, 4), dtype=np.float32))
    assert init.constant_(p, 0.25) is p and np.all(p.data == 0.25) and p.dtype == np.float32
    assert np.all(init.zeros_(p).data == 0) and np.all(init.ones_(p).data == 1)


def test_seed_and_generator_make_draws_reproducible():
    np.testing.assert_array_equal(sample(init.kaiming_uniform_, seed=5),
                                  sample(init.kaiming_uniform_, seed=5))
    assert not np.array_equal(sample(init.kaiming_uniform_, seed=5),
                              sample(init.kaiming_uniform_, seed=6))
    a, b = np.empty((10, 10)), np.empty((10, 10))
    init.xavier_normal_(a, generator=np.random.default_rng(1))
    init.xavier_normal_(b, generator=np.random.default_rng(1))
    np.testing.assert_array_equal(a, b)


def test_initializer_errors():
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out', got 'fan_avg'"):
        init.kaiming_uniform_(np.empty((3, 3)), mode="fan_avg")
    with pytest.raises(TypeError, match="floating dtype, got int64"):
        init.zeros_(np.zeros(3, dtype=np.int64))
    with pytest.raises(TypeError, match="Tensor, Parameter or ndarray, got list"):
        init.zeros_([0.0, 1.0])
    with pytest.raises(ValueError, match="std must be >= 0"):
        init.normal_(np.empty(3), std=-1.0)
    empty = np.empty((0, 3))
    assert init.kaiming_normal_(empty) is empty


def test_matches_torch_formulas():
    torch = pytest.importorskip("torch")
    for shape in [(6, 1, 5, 5), (10, 84), (3, 4, 2)]:
        assert init._calculate_fan_in_and_fan_out(np.empty(shape)) == \
            torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))
    for name, param in [("tanh", None), ("relu", None), ("leaky_relu", 0.2), ("selu", None)]:
        assert init.calculate_gain(name, param) == torch.nn.init.calculate_gain(name, param)
