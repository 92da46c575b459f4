"""Layers against their torch.nn twins (same weights, float64), plus validation and modes."""
import math

import numpy as np
import pytest

import numcnn as nc
from numcnn import nn

torch = pytest.importorskip("torch")
tnn = torch.nn

RNG = np.random.default_rng(1234)


def copy_into_torch(ours, theirs):
    """Load our state dict into the torch module (float64)."""
    theirs.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in
                            ours.state_dict().items()})
    return theirs


def run_both(ours, theirs, x, target_grad=True, *extra):
    """Forward both modules on x, backward a random upstream gradient (never all ones), and
    return (our output, torch output, our input grad, torch input grad)."""
    xt = torch.tensor(x, requires_grad=True)
    xo = nc.tensor(x, requires_grad=True)
    yo, yt = ours(xo, *extra), theirs(xt, *[torch.from_numpy(e) for e in extra])
    if isinstance(yo, tuple):
        yo, yt = yo[0], yt[0]
    g = RNG.standard_normal(yo.shape)
    yo.backward(g)
    yt.backward(torch.from_numpy(g))
    return yo, yt, xo.grad, xt.grad


def assert_same(ours, theirs, x, atol=1e-10):
    yo, yt, gxo, gxt = run_both(ours, theirs, x)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-9, atol=atol)
    np.testing.assert_allclose(gxo, gxt.numpy(), rtol=1e-9, atol=atol)
    for (name, p), (tname, tp) in zip(ours.named_parameters(), theirs.named_parameters()):
        assert name == tname
        np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-9, atol=atol, err_msg=name)
    assert repr(ours) == repr(theirs)


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("kwargs", [
    {"in_channels": 3, "out_channels": 4, "kernel_size": 3},
    {"in_channels": 2, "out_channels": 4, "kernel_size": (3, 2), "stride": 2, "padding": (1, 0)},
    {"in_channels": 4, "out_channels": 6, "kernel_size": 3, "dilation": 2, "groups": 2,
     "bias": False},
    {"in_channels": 2, "out_channels": 3, "kernel_size": 4, "padding": "same"},
])
def test_conv2d_matches_torch(kwargs):
    ours = nn.Conv2d(**kwargs, dtype=np.float64)
    theirs = copy_into_torch(ours, tnn.Conv2d(**kwargs, dtype=torch.float64))
    assert_same(ours, theirs, RNG.standard_normal((2, kwargs["in_channels"], 9, 8)))


@pytest.mark.parametrize("bias", [True, False])
def test_linear_matches_torch(bias):
    ours = nn.Linear(7, 5, bias=bias, dtype=np.float64)
    theirs = copy_into_torch(ours, tnn.Linear(7, 5, bias=bias, dtype=torch.float64))
    assert_same(ours, theirs, RNG.standard_normal((4, 7)))


@pytest.mark.parametrize("ours, theirs", [
    (nn.MaxPool2d(2), tnn.MaxPool2d(2)),
    (nn.MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True),
     tnn.MaxPool2d(3, stride=2, padding=1, dilation=1, ceil_mode=True)),
    (nn.AvgPool2d(2), tnn.AvgPool2d(2)),
    (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False),
     tnn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)),
    (nn.AvgPool2d((2, 3), divisor_override=4), tnn.AvgPool2d((2, 3), divisor_override=4)),
    (nn.AdaptiveAvgPool2d((3, 2)), tnn.AdaptiveAvgPool2d((3, 2))),
    (nn.AdaptiveAvgPool2d(1), tnn.AdaptiveAvgPool2d(1)),
    (nn.ReLU(), tnn.ReLU()),
    (nn.LeakyReLU(0.2), tnn.LeakyReLU(0.2)),
    (nn.Tanh(), tnn.Tanh()),
    (nn.Sigmoid(), tnn.Sigmoid()),
    (nn.Softmax(dim=1), tnn.Softmax(dim=1)),
    (nn.LogSoftmax(dim=1), tnn.LogSoftmax(dim=1)),
    (nn.Flatten(), tnn.Flatten()),
    (nn.Flatten(2), tnn.Flatten(2)),
    (nn.Identity(), tnn.Identity()),
], ids=lambda m: repr(m))
def test_parameter_free_layers_match_torch(ours, theirs):
    assert_same(ours, theirs, RNG.standard_normal((2, 3, 7, 7)))


def test_max_pool_return_indices_match_torch():
    x = RNG.standard_normal((2, 3, 6, 6))
    _, idx = nn.MaxPool2d(2, return_indices=True)(x)
    _, tidx = tnn.MaxPool2d(2, return_indices=True)(torch.from_numpy(x))
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
@pytest.mark.parametrize("label_smoothing", [0.0, 0.1])
def test_cross_entropy_loss_matches_torch(reduction, label_smoothing):
    x = RNG.standard_normal((6, 4))
    t = RNG.integers(0, 4, 6)
    kw = {"reduction": reduction, "label_smoothing": label_smoothing}
    yo, yt, gxo, gxt = run_both(nn.CrossEntropyLoss(**kw), tnn.CrossEntropyLoss(**kw), x, True, t)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(gxo, gxt.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_loss_matches_torch(reduction):
    x, t = RNG.standard_normal((5, 3)), RNG.standard_normal((5, 3))
    yo, yt, gxo, gxt = run_both(nn.MSELoss(reduction=reduction), tnn.MSELoss(reduction=reduction),
                                x, True, t)
    np.testing.assert_allclose(yo.data, yt.detach().numpy(), rtol=1e-12)
    np.testing.assert_allclose(gxo, gxt.numpy(), rtol=1e-12)


# --- batch normalization ------------------------------------------------------------------------

@pytest.mark.parametrize("cls, shape", [
    ("BatchNorm2d", (4, 3, 5, 5)), ("BatchNorm1d", (6, 3)), ("BatchNorm1d", (4, 3, 7))])
@pytest.mark.parametrize("kwargs", [
    {}, {"momentum": None}, {"affine": False, "momentum": 0.3}, {"track_running_stats": False},
    {"bias": False}])
def test_batch_norm_matches_torch_over_steps_and_in_eval(cls, shape, kwargs):
    ours = getattr(nn, cls)(3, dtype=np.float64, **kwargs)
    theirs = getattr(tnn, cls)(3, dtype=torch.float64, **kwargs)
    if ours.affine:
        ours.weight.data[:] = RNG.uniform(0.5, 1.5, 3)
    if ours.bias is not None:
        ours.bias.data[:] = RNG.standard_normal(3)
    copy_into_torch(ours, theirs)
    for _ in range(3):                                   # training steps
        assert_same(ours, theirs, RNG.normal(2.0, 3.0, shape), atol=1e-9)
        ours.zero_grad(), theirs.zero_grad()
        for key, value in theirs.state_dict().items():
            np.testing.assert_allclose(ours.state_dict()[key], value.numpy(), rtol=1e-12)
    ours.eval(), theirs.eval()
    assert_same(ours, theirs, RNG.normal(2.0, 3.0, shape), atol=1e-9)
    if ours.track_running_stats:
        assert int(ours.num_batches_tracked) == 3
    else:
        assert "running_mean" not in ours.state_dict() and ours.running_mean is None


def test_batch_norm_checks_input_and_arguments():
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected 4-D .*got shape \(2, 3\)"):
        nn.BatchNorm2d(3)(np.ones((2, 3), np.float32))
    with pytest.raises(ValueError, match="input has 4 channels .* num_features=3"):
        nn.BatchNorm1d(3)(np.ones((2, 4), np.float32))
    with pytest.raises(ValueError, match="momentum must be in"):
        nn.BatchNorm2d(3, momentum=2)
    with pytest.raises(ValueError, match="eps must be a positive number"):
        nn.BatchNorm2d(3, eps=0)


# --- dropout ------------------------------------------------------------------------------------

def test_dropout_train_zeroes_and_rescales_eval_is_identity():
    drop = nn.Dropout(p=0.25)
    x = np.ones((200, 100))
    nc.manual_seed(3)
    y = drop(x).data
    assert set(np.unique(y)) == {0.0, 1 / 0.75}
    assert abs((y == 0).mean() - 0.25) < 0.01
    nc.manual_seed(3)
    np.testing.assert_array_equal(drop(x).data, y)          # reproducible with the seed
    np.testing.assert_array_equal(drop.eval()(x).data, x)
    assert not np.array_equal(nn.Dropout(0.25)(x).data, y)   # the generator moved on
    assert repr(drop) == "Dropout(p=0.25, inplace=False)"
    with pytest.raises(ValueError, match=r"Dropout: p must be a probability in \[0, 1\], got 1.5"):
        nn.Dropout(1.5)


# --- construction -------------------------------------------------------------------------------

def test_default_init_matches_torch_bounds_and_dtype():
    nc.manual_seed(0)
    conv = nn.Conv2d(16, 32, 5)
    bound = 1 / math.sqrt(16 * 25)   # kaiming_uniform_(a=√5) gives U(±1/√fan_in)
    for p in (conv.weight, conv.bias):
        assert p.dtype == np.float32 and np.abs(p.data).max() <= bound
    assert np.abs(conv.weight.data).max() > 0.95 * bound
    assert abs(conv.weight.data.std() - bound / math.sqrt(3)) < 0.03 * bound
    fc = nn.Linear(300, 200, dtype=np.float64)
    assert fc.weight.dtype == np.float64
    assert np.abs(fc.weight.data).max() <= 1 / math.sqrt(300)
    nc.manual_seed(0)
    np.testing.assert_array_equal(nn.Conv2d(16, 32, 5).weight.data, conv.weight.data)


@pytest.mark.parametrize("make, error, pattern", [
    (lambda: nn.Conv2d(3, 16, 0), ValueError, "kernel_size must be >= 1"),
    (lambda: nn.Conv2d(3, 16, 3, groups=2), ValueError, "in_channels=3 .* groups=2"),
    (lambda: nn.Conv2d(4, 6, 3, groups=4), ValueError, "out_channels=6 .* groups=4"),
    (lambda: nn.Conv2d(0, 6, 3), ValueError, "in_channels must be >= 1, got 0"),
    (lambda: nn.Conv2d(1, 6, 3, stride=0), ValueError, "stride must be >= 1"),
    (lambda: nn.Conv2d(1, 6, 3, padding=-1), ValueError, "padding must be >= 0"),
    (lambda: nn.Conv2d(1, 6, 3, stride=2, padding="same"), ValueError, "padding='same'"),
    (lambda: nn.Conv2d(1, 6, 3, padding="full"), ValueError, "padding must be"),
    (lambda: nn.Conv2d(1, 6, 3, dtype=np.int32), TypeError, "dtype must be float32 or float64"),
    (lambda: nn.Conv2d(1, 6, 3, padding_mode="mirror"), ValueError, "padding_mode must be one of"),
    (lambda: nn.Conv2d(1, 6, 3, device="cuda"), ValueError, "device=None or 'cpu'"),
    (lambda: nn.Conv2d(1.5, 6, 3), TypeError, "in_channels must be an int, got 1.5"),
    (lambda: nn.Linear(4, 0), ValueError, "out_features must be >= 1, got 0"),
    (lambda: nn.Linear(4, 2, bias="yes"), TypeError, "bias must be a bool"),
    (lambda: nn.MaxPool2d(2, padding=2), ValueError, "padding 2 .* at most half"),
    (lambda: nn.AvgPool2d(0), ValueError, "kernel_size must be >= 1"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), ValueError, "divisor must be not zero"),
    (lambda: nn.AdaptiveAvgPool2d((1, 2, 3)), TypeError, "output_size must be an int or a pair"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), ValueError, "reduction must be"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=2.0), ValueError, "label_smoothing"),
])
def test_constructors_validate_arguments(make, error, pattern):
    with pytest.raises(error, match=pattern):
        make()


def test_layer_reprs_match_torch():
    pairs = [
        (nn.Conv2d(1, 6, 5), tnn.Conv2d(1, 6, 5)),
        (nn.Conv2d(4, 8, 3, 2, 1, 2, 2, False), tnn.Conv2d(4, 8, 3, 2, 1, 2, 2, False)),
        (nn.Conv2d(4, 8, 3, padding="same"), tnn.Conv2d(4, 8, 3, padding="same")),
        (nn.MaxPool2d(2), tnn.MaxPool2d(2)),
        (nn.AvgPool2d(3, 1, 1), tnn.AvgPool2d(3, 1, 1)),
        (nn.BatchNorm1d(8, momentum=None), tnn.BatchNorm1d(8, momentum=None)),
        (nn.ReLU(inplace=True), tnn.ReLU(inplace=True)),
        (nn.LeakyReLU(), tnn.LeakyReLU()),
        (nn.CrossEntropyLoss(), tnn.CrossEntropyLoss()),
        (nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2), nn.ReLU()]),
         tnn.ModuleList([tnn.Linear(2, 2), tnn.Linear(2, 2), tnn.ReLU()])),
    ]
    for ours, theirs in pairs:
        assert repr(ours) == repr(theirs)
