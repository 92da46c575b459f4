"""safetensors files: numcnn writes what ``safetensors.torch`` reads into the PyTorch twin (and
back) with equal outputs on real MNIST images; ``io.save``/``io.load`` rebuild the model from
the file alone; nothing is ever pickled."""
from __future__ import annotations

import json
import pickle
import struct
import sys

import numpy as np
import pytest

from numcnn import io, models, nn

pytest.importorskip("safetensors", reason="the safetensors tests need the safetensors package")

CONVNET = {"width": 8, "hidden": 32}


def _header(path) -> dict:
    """The JSON header of a safetensors file, read by hand: 8-byte length, then JSON."""
    with open(path, "rb") as f:
        raw = f.read()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + length])
    end = max(v["data_offsets"][1] for k, v in header.items() if k != "__metadata__")
    assert 8 + length + end == len(raw)          # tensors and header fill the whole file
    return header


@pytest.mark.parametrize("name, config", [("lenet5", {"activation": "relu", "pool": "max"}),
                                          ("lenet5", {}), ("convnet", CONVNET)])
def test_numcnn_file_loads_into_torch(tmp_path, torch, torch_models, mnist_batch, interop,
                                      name, config):
    from safetensors.torch import load_file

    ours = models.get_model(name, **config)
    interop.randomize_batch_norm(ours)
    path = io.save_safetensors(ours, tmp_path / "model.safetensors")
    theirs = getattr(torch_models, name)(**config)
    theirs.load_state_dict(load_file(path), strict=True)
    x = mnist_batch(name)
    diff = np.abs(interop.numcnn_output(ours, x) - interop.torch_output(torch, theirs, x)).max()
    assert diff < interop.ATOL


@pytest.mark.parametrize("name, config", [("lenet5", {}), ("convnet", CONVNET)])
def test_torch_file_loads_into_numcnn(tmp_path, torch, torch_models, mnist_batch, interop,
                                      name, config):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    theirs = getattr(torch_models, name)(**config)
    x = mnist_batch(name)
    theirs.train()
    with torch.no_grad():
        theirs(torch.from_numpy(x[:32]))          # non-trivial BatchNorm statistics
    save_file(theirs.state_dict(), tmp_path / "torch.safetensors")
    ours = io.load_safetensors(models.get_model(name, **config), tmp_path / "torch.safetensors")
    diff = np.abs(interop.numcnn_output(ours, x) - interop.torch_output(torch, theirs, x)).max()
    assert diff < interop.ATOL
    # and back again through numcnn's writer: bit-identical tensors
    io.save_safetensors(ours, tmp_path / "again.safetensors")
    from safetensors.torch import load_file

    again = load_file(tmp_path / "again.safetensors")
    for key, value in theirs.state_dict().items():
        assert torch.equal(again[key], value), key


def test_save_and_load_rebuild_the_model(tmp_path, mnist_batch, interop):
    model = models.lenet5(activation="relu", pool="max")
    io.save(model, tmp_path / "lenet.safetensors", metadata={"note": "digits"})
    meta = io.read_metadata(tmp_path / "lenet.safetensors")
    assert meta["format"] == "numcnn" and meta["arch"] == "lenet5" and meta["note"] == "digits"
    assert json.loads(meta["config"]) == model.config
    again = io.load(tmp_path / "lenet.safetensors")
    assert type(again) is type(model) and again.config == model.config
    assert not again.training
    x = mnist_batch("lenet5")
    np.testing.assert_array_equal(interop.numcnn_output(again, x),
                                  interop.numcnn_output(model, x))


def test_convnet_and_float64(tmp_path, mnist_batch, interop):
    model = models.convnet(**CONVNET).double()
    interop.randomize_batch_norm(model)
    io.save(model, tmp_path / "convnet.safetensors")
    again = io.load(tmp_path / "convnet.safetensors")
    assert again.features[0].weight.dtype == np.float64
    assert int(again.features[1].num_batches_tracked) == 7
    x = mnist_batch("convnet").astype(np.float64)
    np.testing.assert_array_equal(interop.numcnn_output(again, x),
                                  interop.numcnn_output(model, x))


def test_sequential_architecture_round_trip(tmp_path, rng):
    model = nn.Sequential(
        nn.Conv2d(1, 4, 4, padding="same", bias=False), nn.BatchNorm2d(4, momentum=None),
        nn.LeakyReLU(0.2), nn.MaxPool2d(3, 2, 1, dilation=1, ceil_mode=True),
        nn.Conv2d(4, 4, 3, groups=2, dilation=2), nn.AvgPool2d(2, count_include_pad=False),
        nn.Sequential(nn.Flatten(), nn.Dropout(0.1)), nn.Linear(4, 3), nn.Softmax(dim=1))
    io.save(model, tmp_path / "seq.safetensors")
    again = io.load(tmp_path / "seq.safetensors")
    assert repr(again) == repr(model)
    x = rng.standard_normal((2, 1, 10, 10)).astype(np.float32)
    np.testing.assert_array_equal(again(x).data, model.eval()(x).data)


def test_load_safetensors_as_dict(tmp_path):
    model = models.lenet5()
    io.save_safetensors(model, tmp_path / "w.safetensors")
    state = io.load_safetensors(tmp_path / "w.safetensors")
    assert list(state) == sorted(model.state_dict())  # safetensors sorts its keys
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(state[key], value)


def test_file_is_plain_safetensors(tmp_path):
    """The format is a JSON header and raw little-endian bytes: nothing to unpickle."""
    model = models.convnet(**CONVNET)
    io.save(model, tmp_path / "m.safetensors")
    header = _header(tmp_path / "m.safetensors")
    assert header["features.0.weight"] == {"dtype": "F32", "shape": [8, 1, 3, 3],
                                           "data_offsets": header["features.0.weight"][
                                               "data_offsets"]}
    assert header["features.1.num_batches_tracked"]["shape"] == []
    assert header["__metadata__"]["arch"] == "convnet"


def test_no_pickle_anywhere(tmp_path, monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("pickle was used")

    for name in ("load", "loads", "dump", "dumps", "Unpickler", "Pickler"):
        monkeypatch.setattr(pickle, name, forbidden)
    model = models.convnet(**CONVNET)
    io.save(model, tmp_path / "m.safetensors")
    io.load(tmp_path / "m.safetensors")
    io.load_safetensors(models.convnet(**CONVNET), tmp_path / "m.safetensors")


def test_errors(tmp_path):
    model = models.lenet5()
    io.save_safetensors(model, tmp_path / "bare.safetensors")
    with pytest.raises(ValueError, match="holds no numcnn architecture.*load_safetensors"):
        io.load(tmp_path / "bare.safetensors")
    with pytest.raises(ValueError, match="size mismatch for fc3.weight"):
        io.load_safetensors(models.lenet5(num_classes=5), tmp_path / "bare.safetensors")
    with pytest.raises(KeyError, match="Missing key"):
        io.load_safetensors(models.convnet(**CONVNET), tmp_path / "bare.safetensors")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        io.load(tmp_path / "missing.safetensors")
    (tmp_path / "junk.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        io.load(tmp_path / "junk.safetensors")
    with pytest.raises(ValueError, match="reserved"):
        io.save(model, tmp_path / "x.safetensors", metadata={"arch": "mine"})
    with pytest.raises(TypeError, match="dict of str to str"):
        io.save(model, tmp_path / "x.safetensors", metadata={"epoch": 3})
    with pytest.raises(TypeError, match="a path is needed"):
        io.load_safetensors(model)
    with pytest.raises(TypeError, match="Sequential of numcnn.nn layers"):
        io.save(nn.Module(), tmp_path / "x.safetensors")
    assert not (tmp_path / "x.safetensors").exists()


def test_missing_package_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.numpy", None)
    with pytest.raises(ImportError, match=r"pip install 'numcnn\[safetensors\]'"):
        io.save_safetensors(models.lenet5(), tmp_path / "x.safetensors")
