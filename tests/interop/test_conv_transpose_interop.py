"""ConvTranspose2d across libraries: PyTorch state dicts both ways, ONNX ConvTranspose export
(checked by onnx's full checker and computed by ONNX Runtime) and import (numcnn's own files
and torch.onnx.export's), and the safetensors architecture spec, on real MNIST test digits.
"""
from __future__ import annotations

import io as stdio
import warnings

import numpy as np
import pytest

import numcnn as nc
import numcnn.onnx as nco
from numcnn import io, nn

#: (name, numcnn layers, torch layers) of small decoders over (C, 28, 28) inputs; each pair has
#: the same parameter names so state dicts map one to one.
DECODERS = {
    "k4s2p1": lambda m: [m.Conv2d(1, 4, 3, stride=2, padding=1), m.ReLU(),
                         m.ConvTranspose2d(4, 2, 4, stride=2, padding=1)],
    "output_padding-groups": lambda m: [m.Conv2d(1, 4, 3, stride=2, padding=1), m.Tanh(),
                                        m.ConvTranspose2d(4, 6, 3, stride=2, padding=1,
                                                          output_padding=1, groups=2)],
    "dilation-asymmetric": lambda m: [m.Conv2d(1, 3, (3, 2), stride=(2, 3)), m.ReLU(),
                                      m.ConvTranspose2d(3, 2, (2, 3), stride=(3, 2),
                                                        padding=(1, 0), output_padding=(2, 1),
                                                        dilation=(2, 1), bias=False)],
}


def _pair(torch, name):
    ours = nn.Sequential(*DECODERS[name](nn))
    theirs = torch.nn.Sequential(*DECODERS[name](torch.nn))
    return ours, theirs


def _images(mnist_batch, n=16):
    return mnist_batch("convnet")[:n]                  # (n, 1, 28, 28), normalized float32


@pytest.mark.parametrize("name", list(DECODERS))
def test_state_dict_torch_to_numcnn_and_back(torch, mnist_batch, interop, name):
    torch.manual_seed(0)
    ours, theirs = _pair(torch, name)
    assert list(ours.state_dict()) == list(theirs.state_dict())
    assert io.load_torch_state_dict(ours, theirs.state_dict()) == ([], [])
    x = _images(mnist_batch)
    expected = interop.torch_output(torch, theirs, x)
    assert np.abs(interop.numcnn_output(ours, x) - expected).max() < interop.ATOL
    # and back: fresh torch weights replaced by numcnn's
    _, again = _pair(torch, name)
    again.load_state_dict(io.torch_state_dict(ours, as_torch=True), strict=True)
    assert np.abs(interop.torch_output(torch, again, x) - expected).max() < interop.ATOL


def test_default_init_matches_torch_distribution(torch):
    """Both draw W from U(±1/√fan_in) (kaiming a=√5) with fan_in = (C_out/g)·kh·kw, bias alike.

    The largest of n draws from U(±bound) falls below q·bound with probability qⁿ: q = 0.99 for
    the 8,192 weights and q = 0.6 for the 32 biases keep that under 1e-7 (seeded besides)."""
    nc.manual_seed(0)
    torch.manual_seed(0)
    ours = nn.ConvTranspose2d(64, 32, 4, groups=2)
    theirs = torch.nn.ConvTranspose2d(64, 32, 4, groups=2)
    bound = 1 / np.sqrt(16 * 4 * 4)
    for a, b, q in ((ours.weight.data, theirs.weight.detach().numpy(), 0.99),
                    (ours.bias.data, theirs.bias.detach().numpy(), 0.6)):
        assert a.shape == b.shape and a.dtype == b.dtype == np.float32
        assert np.abs(a).max() <= bound and np.abs(b).max() <= bound
        assert np.abs(a).max() > q * bound and np.abs(b).max() > q * bound


def test_repr_matches_torch(torch):
    kw = {"stride": (2, 1), "padding": (1, 0), "output_padding": (1, 0), "dilation": (1, 2), "groups": 2,
              "bias": False}
    assert repr(nn.ConvTranspose2d(4, 6, 3, **kw)) == repr(torch.nn.ConvTranspose2d(4, 6, 3, **kw))
    assert repr(nn.ConvTranspose2d(4, 6, 3)) == repr(torch.nn.ConvTranspose2d(4, 6, 3))


def test_output_size_matches_torch(torch):
    torch.manual_seed(1)
    theirs = torch.nn.ConvTranspose2d(3, 2, 3, stride=3, padding=1)
    ours = nn.ConvTranspose2d(3, 2, 3, stride=3, padding=1)
    io.load_torch_state_dict(ours, theirs.state_dict())
    x = np.random.default_rng(0).standard_normal((2, 3, 4, 5)).astype(np.float32)
    for size in [(10, 13), (11, 14), (12, 15), (2, 3, 12, 13), (2, 12, 13)]:
        if len(size) == 3:
            y, expected = ours(x[0], output_size=size), theirs(torch.tensor(x[0]), output_size=size)
        else:
            y, expected = ours(x, output_size=size), theirs(torch.tensor(x), output_size=size)
        assert y.shape == tuple(expected.shape)
        np.testing.assert_allclose(y.data, expected.detach().numpy(), atol=1e-5)
    for bad in [(9, 13), (13, 13), (10,)]:
        with pytest.raises(ValueError):
            theirs(torch.tensor(x), output_size=bad)
        with pytest.raises(ValueError, match="output_size|valid sizes"):
            ours(x, output_size=bad)


# --- ONNX ------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", list(DECODERS))
def test_onnx_export_matches_onnxruntime_and_loads_back(mnist_batch, interop, name):
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    model = nn.Sequential(*DECODERS[name](nn))
    proto = nco.export(model, (1, 28, 28))              # check_model(full_check=True) inside
    node = next(n for n in proto.graph.node if n.op_type == "ConvTranspose")
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    layer = model[2]
    assert attrs["output_padding"] == list(layer.output_padding)
    assert attrs["group"] == layer.groups and attrs["dilations"] == list(layer.dilation)
    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    x = _images(mnist_batch)
    ours = interop.numcnn_output(model, x)
    theirs = session.run(None, {"input": x})[0]
    assert ours.shape == theirs.shape
    assert np.abs(ours - theirs).max() < interop.ATOL
    loaded = nco.load(proto)
    assert type(loaded[2]).__name__ == "ConvTranspose2d"
    assert repr(loaded[2]) == repr(layer)
    assert np.abs(interop.numcnn_output(loaded, x) - ours).max() < interop.ATOL


def test_onnx_import_of_torch_export(torch, mnist_batch, interop):
    pytest.importorskip("onnx")
    torch.manual_seed(2)
    _, theirs = _pair(torch, "output_padding-groups")
    buffer = stdio.BytesIO()
    with warnings.catch_warnings():                  # the exporter's deprecation notices
        warnings.simplefilter("ignore")
        torch.onnx.export(theirs.eval(), (torch.zeros(2, 1, 28, 28),), buffer, dynamo=False,
                          opset_version=17, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
    model = nco.load(buffer.getvalue())
    x = _images(mnist_batch)
    diff = np.abs(interop.numcnn_output(model, x) - interop.torch_output(torch, theirs, x)).max()
    assert diff < interop.ATOL


def test_onnx_import_refusals(rng):
    onnx = pytest.importorskip("onnx")
    helper = onnx.helper
    w = onnx.numpy_helper.from_array(rng.standard_normal((2, 3, 3, 3)).astype(np.float32), "w")

    def model(**attrs):
        node = helper.make_node("ConvTranspose", ["input", "w"], ["output"], name="up", **attrs)
        graph = helper.make_graph(
            [node], "g", [helper.make_tensor_value_info("input", 1, [1, 2, 4, 4])],
            [helper.make_tensor_value_info("output", 1, None)], [w])
        return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])

    assert type(nco.load(model(strides=[2, 2], output_padding=[1, 1]))[0]).__name__ == \
        "ConvTranspose2d"
    with pytest.raises(nco.OnnxImportError, match="asymmetric pads"):
        nco.load(model(pads=[1, 0, 0, 0]))
    with pytest.raises(nco.OnnxImportError, match="output_shape"):
        nco.load(model(output_shape=[9, 9]))
    with pytest.raises(nco.OnnxImportError, match="output_padding must be smaller"):
        nco.load(model(output_padding=[1, 1]))


def test_export_refuses_output_size_call():
    pytest.importorskip("onnx")

    class Decoder(nn.Module):
        def __init__(self):
            super().__init__()
            self.up = nn.ConvTranspose2d(1, 1, 3, stride=2)

        def forward(self, x):
            return self.up(x, output_size=(8, 8))

    with pytest.raises(nco.OnnxExportError, match="keyword"):
        nco.export(Decoder(), (1, 3, 3))


def test_architecture_spec_round_trip(tmp_path):
    pytest.importorskip("safetensors")
    model = nn.Sequential(*DECODERS["dilation-asymmetric"](nn))
    path = tmp_path / "decoder.safetensors"
    model.save(path)
    again = nn.Module.load(path)
    assert repr(again) == repr(model)
    x = np.random.default_rng(0).standard_normal((2, 1, 28, 28)).astype(np.float32)
    np.testing.assert_array_equal(again(x).data, model(x).data)
