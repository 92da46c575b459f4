"""The benchmark's cases (bench/): each library's runner computes what the case says, and the
constants derived from the cases agree with the layers they describe."""
from __future__ import annotations

import numpy as np
import pytest
from bench import numcnn_cases
from bench.cases import CONV_CASES, TRANSPOSE_CASE, Conv
from bench.naive import LENET_EPOCH_CONV_MACS
from bench.other_libraries import mygrad_conv, mygrad_conv2d, mygrad_inputs

import numcnn as nc
import numcnn.functional as F
from numcnn.models import lenet5
from numcnn.ops import engine


@pytest.mark.parametrize("name, conv", CONV_CASES, ids=[name for name, _ in CONV_CASES])
def test_conv_output_shape_is_the_layers(name, conv):
    one = conv._replace(N=1)  # the shape rule does not depend on the batch
    x = np.zeros((1, conv.C_in, conv.H, conv.H), np.float32)
    w = np.zeros((conv.C_out, conv.C_in, conv.k, conv.k), np.float32)
    y = F.conv2d(x, w, stride=conv.stride, padding=conv.padding)
    assert one.output_shape() == y.shape
    assert conv.flops() == 2 * conv.N * np.prod(y.shape) * conv.C_in * conv.k * conv.k


def test_the_decoder_case_doubles_its_input_in_both_libraries():
    """Both runners run the decoder case forward and backward, and its output-size rule is
    PyTorch's and numcnn's: 14x14 -> 28x28."""
    torch = pytest.importorskip("torch")
    from bench import torch_cases

    conv = TRANSPOSE_CASE.conv._replace(N=2)
    x = np.zeros((2, conv.C_in, conv.H, conv.H), np.float32)
    w = np.zeros((conv.C_in, conv.C_out, conv.k, conv.k), np.float32)
    ours = F.conv_transpose2d(x, w, stride=conv.stride, padding=conv.padding)
    theirs = torch.nn.functional.conv_transpose2d(torch.from_numpy(x), torch.from_numpy(w),
                                                  stride=conv.stride, padding=conv.padding)
    assert conv.transpose_output_shape() == ours.shape == tuple(theirs.shape) == (2, 32, 28, 28)
    numcnn_cases.conv_transpose(conv, True)()
    torch_cases.conv_transpose(conv, True)()


def test_lenet_epoch_multiply_adds_are_those_of_the_lenet5_model():
    """Counted on the model itself: each conv's output elements times its kernel taps, forward
    and gW for conv1 (its input is the data: no gX), forward, gX and gW for conv2."""
    model = lenet5()
    convs = [m for m in model.modules() if isinstance(m, nc.nn.Conv2d)]
    per_image = []
    for layer in convs:
        layer.register_forward_hook(lambda m, args, out: per_image.append(
            int(np.prod(out.shape[1:])) * int(np.prod(m.weight.shape[1:]))))
    model(np.zeros((1, 1, 32, 32), np.float32))
    assert len(per_image) == 2
    assert LENET_EPOCH_CONV_MACS == 60_000 * (2 * per_image[0] + 3 * per_image[1])


def test_cols_budget_sets_and_restores_the_constant():
    old = engine.COLS_BUDGET_BYTES
    with numcnn_cases.cols_budget(2):
        assert engine.COLS_BUDGET_BYTES == 2 * 2**20
    assert engine.COLS_BUDGET_BYTES == old
    with pytest.raises(KeyError), numcnn_cases.cols_budget(0.5):
        raise KeyError("restored on errors too")
    assert engine.COLS_BUDGET_BYTES == old
    with numcnn_cases.cols_budget(None):
        assert engine.COLS_BUDGET_BYTES == old


@pytest.mark.parametrize("stride,padding", [(1, 0), (2, 1)])
def test_mygrad_computes_the_same_conv_as_numcnn(stride, padding):
    mg = pytest.importorskip("mygrad")
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 2, 9, 9))
    w = rng.standard_normal((4, 2, 3, 3))
    b = rng.standard_normal(4)
    Ho = (9 + 2 * padding - 3) // stride + 1
    gy = rng.standard_normal((3, 4, Ho, Ho))

    mx, mw, mb = mg.tensor(x), mg.tensor(w), mg.tensor(b)
    my = mygrad_conv2d(mx, mw, mb, stride, padding)
    my.backward(gy)
    nx, nw, nb = (nc.tensor(a, requires_grad=True) for a in (x, w, b))
    ny = F.conv2d(nx, nw, nb, stride=stride, padding=padding)
    ny.backward(gy)

    for ours, theirs in [(ny.data, my.data), (nx.grad, mx.grad), (nw.grad, mw.grad),
                         (nb.grad, mb.grad)]:
        assert ours.dtype == theirs.dtype == np.float64
        np.testing.assert_allclose(ours, theirs, rtol=1e-10, atol=1e-12)


def test_mygrad_runs_float32_and_each_run_does_the_same_work():
    """The comparison is float32 like numcnn's, and MyGrad replaces gradients on backward, so
    the runner needs no clearing between runs (numcnn's clears them)."""
    pytest.importorskip("mygrad")
    conv = Conv(2, 1, 2, 8, 3, 1, 0)
    x, w, b, gy = inputs = mygrad_inputs(conv)
    assert {t.dtype for t in inputs} == {np.dtype(np.float32)}
    assert gy.shape == conv.output_shape()
    mygrad_conv2d(x, w, b, conv.stride, conv.padding).backward(gy)
    first = w.grad.copy()
    mygrad_conv2d(x, w, b, conv.stride, conv.padding).backward(gy)
    np.testing.assert_array_equal(w.grad, first)
    mygrad_conv(conv)()  # the runner builds the same inputs and runs
