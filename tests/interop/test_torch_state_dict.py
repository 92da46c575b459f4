"""PyTorch state dicts in and out of numcnn: the same architecture in both libraries, weights
copied either way, equal outputs on real MNIST test images (evaluation mode, BatchNorm running
statistics)."""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest

from numcnn import io, models, nn

LENET_VARIANTS = [{"activation": "tanh", "pool": "avg"}, {"activation": "relu", "pool": "max"}]
CONVNET = {"width": 8, "hidden": 32}


def _max_diff(a, b) -> float:
    assert a.shape == b.shape
    return float(np.abs(a - b).max())


@pytest.mark.parametrize("config", LENET_VARIANTS, ids=lambda c: f"{c['activation']}-{c['pool']}")
def test_lenet5_numcnn_to_torch(torch, torch_models, mnist_batch, interop, config):
    ours = models.lenet5(**config)
    theirs = torch_models.lenet5(**config)
    theirs.load_state_dict(io.torch_state_dict(ours, as_torch=True), strict=True)
    x = mnist_batch("lenet5")
    diff = _max_diff(interop.numcnn_output(ours, x), interop.torch_output(torch, theirs, x))
    assert diff < interop.ATOL


@pytest.mark.parametrize("config", LENET_VARIANTS, ids=lambda c: f"{c['activation']}-{c['pool']}")
def test_lenet5_torch_to_numcnn(torch, torch_models, mnist_batch, interop, config):
    torch.manual_seed(0)
    theirs = torch_models.lenet5(**config)
    ours = models.lenet5(**config)
    assert io.load_torch_state_dict(ours, theirs.state_dict()) == ([], [])
    x = mnist_batch("lenet5")
    diff = _max_diff(interop.numcnn_output(ours, x), interop.torch_output(torch, theirs, x))
    assert diff < interop.ATOL
    # the prediction of every image agrees, not only the logits
    np.testing.assert_array_equal(interop.numcnn_output(ours, x).argmax(1),
                                  interop.torch_output(torch, theirs, x).argmax(1))


def test_convnet_numcnn_to_torch(torch, torch_models, mnist_batch, interop):
    ours = models.convnet(**CONVNET)
    interop.randomize_batch_norm(ours)
    theirs = torch_models.convnet(**CONVNET)
    theirs.load_state_dict(io.torch_state_dict(ours, as_torch=True), strict=True)
    assert int(theirs.features[1].num_batches_tracked) == 7
    x = mnist_batch("convnet")
    diff = _max_diff(interop.numcnn_output(ours, x), interop.torch_output(torch, theirs, x))
    assert diff < interop.ATOL


def test_convnet_torch_to_numcnn(torch, torch_models, mnist_batch, interop):
    """Running statistics learned by PyTorch (a few training-mode batches) come across."""
    torch.manual_seed(1)
    theirs = torch_models.convnet(**CONVNET)
    x = mnist_batch("convnet")
    theirs.train()
    with torch.no_grad():
        for start in range(0, 64, 16):
            theirs(torch.from_numpy(x[start:start + 16]))
    ours = models.convnet(**CONVNET)
    io.load_torch_state_dict(ours, theirs.state_dict())
    assert int(ours.features[1].num_batches_tracked) == 4
    np.testing.assert_allclose(ours.features[1].running_var,
                               theirs.features[1].running_var.numpy(), rtol=0, atol=0)
    diff = _max_diff(interop.numcnn_output(ours, x), interop.torch_output(torch, theirs, x))
    assert diff < interop.ATOL


def test_default_convnet_round_trip(torch, torch_models, mnist_batch, interop):
    """The full-size ConvNet, copied to torch and back: identical weights, equal outputs."""
    ours = models.convnet()
    interop.randomize_batch_norm(ours, seed=3)
    theirs = torch_models.convnet()
    theirs.load_state_dict(io.torch_state_dict(ours, as_torch=True))
    back = models.convnet()
    io.load_torch_state_dict(back, theirs.state_dict())
    for (key, a), b in zip(ours.state_dict().items(), back.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=key)
    x = mnist_batch("convnet")[:16]
    assert _max_diff(interop.numcnn_output(back, x), interop.torch_output(torch, theirs, x)) \
        < interop.ATOL


def test_torch_state_dict_values():
    model = models.convnet(**CONVNET)
    state = io.torch_state_dict(model)
    assert list(state) == list(model.state_dict())
    assert all(isinstance(v, np.ndarray) for v in state.values())
    assert state["features.0.weight"].shape == (8, 1, 3, 3)
    assert state["classifier.1.weight"].shape == (32, 8 * 2 * 7 * 7)
    assert state["features.1.num_batches_tracked"].shape == ()
    state["features.0.weight"][...] = 0            # a copy: the model is untouched
    assert np.abs(model.features[0].weight.data).sum() > 0


def test_as_torch_gives_tensors(torch):
    state = io.torch_state_dict(models.convnet(**CONVNET), as_torch=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())
    assert state["features.0.weight"].dtype == torch.float32
    assert state["features.1.num_batches_tracked"].dtype == torch.int64
    assert state["features.1.num_batches_tracked"].shape == ()


def test_accepts_parameters_and_other_dtypes(torch, torch_models):
    """Parameters (requiring grad) and float64 tensors load; values are cast to the model's
    dtype."""
    theirs = torch_models.lenet5().double()
    state = dict(theirs.named_parameters())              # Parameters, requires_grad=True
    ours = models.lenet5()
    result = io.load_torch_state_dict(ours, state)
    assert result == ([], [])
    assert ours.fc1.weight.dtype == np.float32
    np.testing.assert_allclose(ours.fc1.weight.data, theirs.fc1.weight.detach().numpy(),
                               rtol=1e-7)


def test_accepts_half_precision(torch, torch_models):
    theirs = torch_models.lenet5().to(torch.bfloat16)
    ours = models.lenet5()
    io.load_torch_state_dict(ours, theirs.state_dict())
    np.testing.assert_array_equal(ours.conv1.weight.data,
                                  theirs.conv1.weight.float().detach().numpy())


def test_missing_and_unexpected_keys(torch_models):
    ours = models.lenet5()
    before = ours.conv1.weight.data.copy()
    state = io.torch_state_dict(models.lenet5())
    del state["fc3.bias"]
    state["fc4.weight"] = np.zeros((3, 3), np.float32)
    with pytest.raises(nn.StateDictError) as info:
        io.load_torch_state_dict(ours, state)
    message = str(info.value)
    assert 'Missing key(s) in state_dict: "fc3.bias"' in message
    assert 'Unexpected key(s) in state_dict: "fc4.weight"' in message
    np.testing.assert_array_equal(ours.conv1.weight.data, before)   # nothing copied
    # non-strict: the rest loads, the problems come back
    result = io.load_torch_state_dict(ours, state, strict=False)
    assert result.missing_keys == ["fc3.bias"] and result.unexpected_keys == ["fc4.weight"]
    np.testing.assert_array_equal(ours.conv1.weight.data, state["conv1.weight"])


def test_shape_mismatch_names_key_and_shapes(torch, torch_models):
    theirs = torch_models.lenet5(num_classes=5)
    with pytest.raises(ValueError, match=r"size mismatch for fc3.weight: copying a value of "
                                         r"shape \(5, 84\).*\(10, 84\)"):
        io.load_torch_state_dict(models.lenet5(), theirs.state_dict())
    with pytest.raises(ValueError, match="size mismatch for fc3.weight"):
        io.load_torch_state_dict(models.lenet5(), theirs.state_dict(), strict=False)


def test_bad_arguments():
    with pytest.raises(TypeError, match="model must be a numcnn.nn.Module"):
        io.load_torch_state_dict(object(), {})
    with pytest.raises(TypeError, match="state_dict must be a mapping"):
        io.load_torch_state_dict(models.lenet5(), [("conv1.weight", 1)])
    with pytest.raises(TypeError, match="model must be a numcnn.nn.Module"):
        io.torch_state_dict("lenet5")


def test_numpy_path_does_not_import_torch():
    """Converting with NumPy arrays (and reading torch-like objects) never imports torch."""
    code = textwrap.dedent("""
        import sys
        from numcnn import io, models
        model = models.lenet5()
        io.load_torch_state_dict(model, io.torch_state_dict(models.lenet5()))
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=60, env=_env(), check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def _env():
    import os

    import numcnn

    env = dict(os.environ)
    src = os.path.dirname(os.path.dirname(numcnn.__file__))
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    return env
