"""ONNX export and import.

Export: ``onnx.checker.check_model(full_check=True)`` accepts every file and ONNX Runtime (a
test-only oracle) computes numcnn's outputs on real MNIST test images, for LeNet-5 (both
variants), ConvNet, custom ``forward`` methods and small Sequential models covering padding,
ceil_mode, count_include_pad, dilation, groups and 'same' padding. Import: exported files load
back with the same outputs, and so do files written by ``torch.onnx.export``.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

import numcnn as nc
import numcnn.onnx as nco
from numcnn import checkpoint, io, models, nn, optim
from numcnn import functional as F

onnx = pytest.importorskip("onnx", reason="the ONNX tests need the onnx package")
ort = pytest.importorskip("onnxruntime", reason="the ONNX tests need onnxruntime as an oracle")

CONVNET = {"width": 8, "hidden": 32}


def _session(proto):
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    data = proto if isinstance(proto, bytes) else proto.SerializeToString()
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def _run_ort(proto, x):
    return _session(proto).run(None, {"input": x})[0]


def _ops(proto) -> list[str]:
    return [node.op_type for node in proto.graph.node]


def _node(proto, op_type):
    return next(n for n in proto.graph.node if n.op_type == op_type)


def _attr(node, name):
    return next(onnx.helper.get_attribute_value(a) for a in node.attribute if a.name == name)


def _check_file(path):
    onnx.checker.check_model(str(path), full_check=True)
    return onnx.load(str(path))


# --- the models of numcnn.models -------------------------------------------------------------

MODELS = [("lenet5", {"activation": "tanh", "pool": "avg"}),
          ("lenet5", {"activation": "relu", "pool": "max"}),
          ("convnet", CONVNET)]
MODEL_IDS = ["lenet5-tanh-avg", "lenet5-relu-max", "convnet"]


@pytest.mark.parametrize("name, config", MODELS, ids=MODEL_IDS)
def test_registered_models_match_onnxruntime(tmp_path, mnist_batch, interop, name, config):
    model = models.get_model(name, **config)
    interop.randomize_batch_norm(model)
    path = tmp_path / f"{name}.onnx"
    nco.export(model, models.input_size(name), path)
    proto = _check_file(path)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "N" and [d.dim_value for d in dims[1:]] == \
        list(models.input_size(name))
    x = mnist_batch(name)
    ours = interop.numcnn_output(model, x)
    theirs = _run_ort(proto, x)
    assert np.abs(ours - theirs).max() < interop.ATOL
    np.testing.assert_array_equal(ours.argmax(1), theirs.argmax(1))
    assert np.abs(_run_ort(proto, x[:1]) - ours[:1]).max() < interop.ATOL   # any batch size


def test_lenet5_graph(mnist_batch):
    proto = nco.export(models.lenet5(), (1, 32, 32))
    assert _ops(proto) == ["Conv", "Tanh", "AveragePool", "Conv", "Tanh", "AveragePool",
                           "Flatten", "Gemm", "Tanh", "Gemm", "Tanh", "Gemm"]
    assert sorted(i.name for i in proto.graph.initializer) == sorted(
        models.lenet5().state_dict())
    assert _attr(_node(proto, "Gemm"), "transB") == 1
    assert proto.graph.output[0].name == "output"
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["numcnn.arch"] == "lenet5"
    assert proto.opset_import[0].version == 17 and proto.producer_name == "numcnn"


def test_convnet_graph_keeps_batch_norm_and_dropout():
    model = models.convnet(**CONVNET)
    proto = nco.export(model)                       # the input size comes from the registry
    ops = _ops(proto)
    assert ops.count("BatchNormalization") == 5 and ops.count("Dropout") == 3
    bn = _node(proto, "BatchNormalization")
    assert _attr(bn, "epsilon") == pytest.approx(1e-5)
    assert _attr(bn, "momentum") == pytest.approx(0.9)
    assert "features.1.running_var" in {i.name for i in proto.graph.initializer}


# --- small Sequential models on MNIST images ---------------------------------------------------

def _with_head(features: nn.Sequential, classes: int = 10) -> nn.Sequential:
    """``features`` then Flatten and a Linear classifier sized for (1, 28, 28) input."""
    size = features.eval()(np.zeros((1, 1, 28, 28), np.float32)).numel()
    return nn.Sequential(*features, nn.Flatten(), nn.Linear(size, classes))


SMALL = {
    "stride-pads": lambda: _with_head(nn.Sequential(
        nn.Conv2d(1, 4, 3, stride=2, padding=(1, 2)), nn.ReLU(),
        nn.MaxPool2d(3, stride=2, padding=1), nn.Conv2d(4, 4, (3, 1), stride=(1, 2)))),
    "ceil-max": lambda: _with_head(nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Tanh(), nn.MaxPool2d(3, 2, 1, ceil_mode=True),
        nn.MaxPool2d(2, ceil_mode=True))),
    "ceil-avg-count-pad": lambda: _with_head(nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Sigmoid(), nn.AvgPool2d(3, 2, 1, ceil_mode=True),
        nn.AvgPool2d(2, ceil_mode=True))),
    "avg-exclude-pad": lambda: _with_head(nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.ReLU(), nn.AvgPool2d(3, 2, 1, count_include_pad=False),
        nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False))),
    "dilation": lambda: _with_head(nn.Sequential(
        nn.Conv2d(1, 4, 3, dilation=2), nn.ReLU(), nn.MaxPool2d(2, 1, dilation=2),
        nn.MaxPool2d(3, 3, 1, dilation=2, ceil_mode=True))),
    "groups": lambda: _with_head(nn.Sequential(
        nn.Conv2d(1, 4, 3), nn.Conv2d(4, 8, 3, groups=2), nn.BatchNorm2d(8), nn.Sigmoid(),
        nn.Conv2d(8, 8, 3, groups=8, bias=False), nn.LeakyReLU(0.1), nn.MaxPool2d(2))),
    "same": lambda: _with_head(nn.Sequential(
        nn.Conv2d(1, 4, 4, padding="same"), nn.ReLU(),
        nn.Conv2d(4, 4, (3, 2), padding="same", dilation=(1, 2)), nn.Tanh(),
        nn.Conv2d(4, 2, 5, padding="valid"), nn.AvgPool2d(2))),
    "head": lambda: nn.Sequential(
        nn.Conv2d(1, 8, 5, stride=2), nn.BatchNorm2d(8), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(8, 16, bias=False), nn.BatchNorm1d(16), nn.ReLU(),
        nn.Dropout(0.5), nn.Linear(16, 10), nn.LogSoftmax(dim=1)),
    "softmax-adaptive": lambda: nn.Sequential(
        nn.Conv2d(1, 3, 3, padding=1), nn.AdaptiveAvgPool2d((7, 4)), nn.Flatten(),
        nn.Linear(84, 10), nn.Softmax(dim=-1)),
}


@pytest.fixture(params=sorted(SMALL))
def small_model(request, interop):
    nc.manual_seed(0)
    model = SMALL[request.param]()
    interop.randomize_batch_norm(model, seed=1)
    return request.param, model.eval()


def test_small_models_match_onnxruntime(tmp_path, mnist_batch, interop, small_model):
    _, model = small_model
    nco.export(model, (1, 28, 28), tmp_path / "m.onnx")
    proto = _check_file(tmp_path / "m.onnx")
    x = mnist_batch("convnet")
    assert np.abs(_run_ort(proto, x) - interop.numcnn_output(model, x)).max() < interop.ATOL


def test_small_models_round_trip(mnist_batch, interop, small_model):
    """export then numcnn.onnx.load: the same layers, the same outputs."""
    name, model = small_model
    again = nco.load(nco.export(model, (1, 28, 28)))
    x = mnist_batch("convnet")
    assert np.abs(interop.numcnn_output(again, x) - interop.numcnn_output(model, x)).max() \
        < 1e-6
    flat = [m for m in model.modules() if not m._modules]
    expected = [type(m).__name__ for m in flat]
    if name == "softmax-adaptive":
        expected[1] = "AvgPool2d"                        # 28x28 -> 7x4: fixed windows
    assert [type(m).__name__ for m in again] == expected


def test_padding_attributes():
    proto = nco.export(SMALL["same"](), (1, 28, 28))
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert _attr(convs[0], "pads") == [1, 1, 2, 2]             # k=4 'same': 1 before, 2 after
    assert _attr(convs[1], "pads") == [1, 1, 1, 1] and _attr(convs[1], "dilations") == [1, 2]
    proto = nco.export(SMALL["groups"](), (1, 28, 28))
    assert [_attr(n, "group") for n in proto.graph.node if n.op_type == "Conv"] == [1, 2, 8]
    proto = nco.export(SMALL["avg-exclude-pad"](), (1, 28, 28))
    assert [_attr(n, "count_include_pad") for n in proto.graph.node
            if n.op_type == "AveragePool"] == [0, 0]


def test_ceil_mode_becomes_explicit_end_padding():
    """Written as end padding, ceil_mode means the same to every ONNX reader."""
    proto = nco.export(SMALL["ceil-max"](), (1, 28, 28))
    pools = [n for n in proto.graph.node if n.op_type == "MaxPool"]
    assert [_attr(n, "ceil_mode") for n in pools] == [0, 0]
    assert _attr(pools[0], "pads") == [1, 1, 2, 2]              # 26 -> 14 needs 1 more at the end
    proto = nco.export(SMALL["ceil-avg-count-pad"](), (1, 28, 28))
    assert _ops(proto)[2:4] == ["Pad", "AveragePool"]           # padding counts, overhang not
    proto = nco.export(SMALL["dilation"](), (1, 28, 28))
    assert "Pad" in _ops(proto)                                 # -inf: pads reach the kernel


def test_opsets(mnist_batch, interop):
    model = models.lenet5(activation="relu", pool="max")
    x = mnist_batch("lenet5")[:8]
    for opset in (13, onnx.defs.onnx_opset_version()):
        proto = nco.export(model, (1, 32, 32), opset=opset)
        assert proto.opset_import[0].version == opset
        if opset <= 21:                        # the newest opsets may be ahead of the runtime
            assert np.abs(_run_ort(proto, x) - interop.numcnn_output(model, x)).max() \
                < interop.ATOL


def test_fixed_batch_size(mnist_batch, interop):
    model = models.lenet5()
    proto = nco.export(model, (1, 32, 32), batch_size=4)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_value for d in dims] == [4, 1, 32, 32]
    x = mnist_batch("lenet5")[:4]
    assert np.abs(_run_ort(proto, x) - interop.numcnn_output(model, x)).max() < interop.ATOL


def test_float64_model(mnist_batch, interop):
    model = models.convnet(**CONVNET).double()
    proto = nco.export(model)
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.DOUBLE
    again = nco.load(proto)
    assert again[0].weight.dtype == np.float64
    as_float = nco.export(model, dtype=np.float32)             # for runtimes without float64
    x = mnist_batch("convnet")
    expected = interop.numcnn_output(model, x.astype(np.float64))
    assert np.abs(_run_ort(as_float, x) - expected).max() < interop.ATOL
    assert model.features[0].weight.dtype == np.float64         # the model is untouched


# --- tracing custom forward methods -------------------------------------------------------------

class Residual(nn.Module):
    """Normalization with constants, ``x.relu()``, a residual sum scaled by a parameter, a
    ``reshape`` in ``forward``: all of it outside any layer."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.conv2 = nn.Conv2d(4, 4, 3, padding=1)
        self.pool = nn.MaxPool2d(2)
        self.scale = nn.Parameter(np.full((4, 1, 1), 0.5, np.float32))
        self.fc = nn.Linear(4 * 14 * 14, 10)

    def forward(self, x):
        x = (x - 0.5) / 2.0
        y = self.conv(x).relu()
        y = y + self.conv2(y) * self.scale
        y = self.pool(y).tanh()
        return self.fc(y.reshape(y.shape[0], -1)).sigmoid()


def test_custom_forward(tmp_path, mnist_batch, interop):
    model = Residual()
    nco.export(model, (1, 28, 28), tmp_path / "r.onnx")
    proto = _check_file(tmp_path / "r.onnx")
    assert _ops(proto) == ["Sub", "Div", "Conv", "Relu", "Conv", "Mul", "Add", "MaxPool",
                           "Tanh", "Flatten", "Gemm", "Sigmoid"]
    assert "scale" in {i.name for i in proto.graph.initializer}
    x = mnist_batch("convnet")
    assert np.abs(_run_ort(proto, x) - interop.numcnn_output(model, x)).max() < interop.ATOL


class Stack(nn.Module):
    """Layers kept in a ModuleList and applied in a loop, then ``flatten`` in ``forward``."""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(1, 3, 3, stride=2), nn.ReLU(),
                                     nn.Conv2d(3, 3, 3, stride=2), nn.Tanh()])
        self.head = nn.Linear(3 * 6 * 6, 10)

    def forward(self, x):
        for layer in self.layers:
            x = layer(x)
        return self.head(x.flatten(1))


def test_module_list(mnist_batch, interop):
    model = Stack()
    proto = nco.export(model, (1, 28, 28))
    assert _ops(proto) == ["Conv", "Relu", "Conv", "Tanh", "Flatten", "Gemm"]
    assert [n.name for n in proto.graph.node][:2] == ["layers.0", "layers.1"]
    x = mnist_batch("convnet")
    assert np.abs(_run_ort(proto, x) - interop.numcnn_output(model, x)).max() < interop.ATOL
    again = nco.load(proto)
    np.testing.assert_allclose(again(x).data, interop.numcnn_output(model, x), atol=1e-6)


def test_export_leaves_the_model_alone():
    model = models.convnet(**CONVNET).train()
    model.classifier.eval()
    nco.export(model)
    assert model.training and model.features[0].training and not model.classifier.training
    assert all("forward" not in m.__dict__ for m in model.modules())
    assert all(not m._forward_hooks for m in model.modules())  # the tracing hooks are gone
    assert int(model.features[1].num_batches_tracked) == 0      # no statistics updated


def test_export_sees_what_a_user_hook_makes(mnist_batch, interop):
    """A user's forward hook stays registered, and export records the output it returns (the
    tensor the next layer really receives): here a hook that negates a ReLU's output."""
    model = Stack()
    model.layers[1].register_forward_hook(lambda module, args, out: out * -1.0)
    proto = nco.export(model, (1, 28, 28))
    assert _ops(proto) == ["Conv", "Relu", "Mul", "Conv", "Tanh", "Flatten", "Gemm"]
    assert len(model.layers[1]._forward_hooks) == 1
    x = mnist_batch("convnet")
    assert np.abs(_run_ort(proto, x) - interop.numcnn_output(model, x)).max() < interop.ATOL


def test_export_inside_no_grad():
    with nc.no_grad():
        proto = nco.export(models.lenet5(), (1, 32, 32))
    assert "Flatten" in _ops(proto)


class Square(nn.Module):
    def forward(self, x):
        return x * x


class ShiftedReLU(nn.ReLU):
    """A subclass of a supported layer may compute something else: it is not exported as one."""

    def forward(self, x):
        return super().forward(x) - 1.0


class Exp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x):
        return self.fc(x).exp()


class BatchMix(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(x).reshape(-1)


def test_export_errors():
    with pytest.raises(nco.OnnxExportError, match=r"layer '1' \(Square\) cannot be exported"):
        nco.export(nn.Sequential(nn.Linear(4, 4), Square()), (4,))
    with pytest.raises(nco.OnnxExportError, match=r"layer '0' \(ShiftedReLU\) cannot be"):
        nco.export(nn.Sequential(ShiftedReLU()), (4,))
    with pytest.raises(nco.OnnxExportError, match="operation 'Exp'"):
        nco.export(Exp(), (4,))
    with pytest.raises(nco.OnnxExportError, match="batch"):
        nco.export(BatchMix(), (4,))
    with pytest.raises(nco.OnnxExportError, match="divisor_override"):
        nco.export(nn.Sequential(nn.AvgPool2d(2, divisor_override=3)), (1, 4, 4))
    with pytest.raises(nco.OnnxExportError, match="return_indices"):
        nco.export(nn.Sequential(nn.MaxPool2d(2, return_indices=True)), (1, 4, 4))
    with pytest.raises(ValueError, match="opset must be an int from 13"):
        nco.export(models.lenet5(), (1, 32, 32), opset=11)
    with pytest.raises(TypeError, match="input_shape is needed for Sequential"):
        nco.export(nn.Sequential(nn.Linear(4, 4)))
    with pytest.raises(ValueError, match="input_shape must be positive ints"):
        nco.export(models.lenet5(), (1, 0, 32))
    with pytest.raises(ValueError, match="dtype must be float32, float64"):
        nco.export(models.lenet5(), dtype=np.int32)
    with pytest.raises(ValueError, match="LeNet5: expected input of shape"):
        nco.export(models.lenet5(), (1, 28, 28))


# --- import --------------------------------------------------------------------------------------

def test_loaded_model_can_be_fine_tuned(mnist_batch):
    base = models.lenet5(activation="relu", pool="max")
    model = nco.load(nco.export(base))
    assert isinstance(model, nn.Sequential) and not model.training
    assert list(model.state_dict())[:2] == ["0.weight", "0.bias"]
    x = nc.tensor(mnist_batch("lenet5"))
    from numcnn import data

    labels = data.MNIST(train=False, limit=64, download=False).targets[:64]
    model.train()
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(5):
        loss = F.cross_entropy(model(x), labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.item()))
    assert losses[-1] < losses[0]


def _graph(nodes, initializers=(), inputs=None, outputs=None, opset=17):
    helper = onnx.helper
    inputs = inputs or [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT,
                                                      ["N", 1, 8, 8])]
    outputs = outputs or [helper.make_tensor_value_info("output", onnx.TensorProto.FLOAT,
                                                        None)]
    graph = helper.make_graph(nodes, "g", inputs, outputs,
                              [onnx.numpy_helper.from_array(a, n) for n, a in initializers])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_import_matmul_add_and_reshape(rng):
    helper = onnx.helper
    w = rng.standard_normal((64, 5)).astype(np.float32)
    b = rng.standard_normal(5).astype(np.float32)
    proto = _graph([
        helper.make_node("Relu", ["input"], ["r"]),
        helper.make_node("Constant", [], ["shape"],
                         value=onnx.numpy_helper.from_array(np.array([0, -1], np.int64))),
        helper.make_node("Reshape", ["r", "shape"], ["flat"]),
        helper.make_node("MatMul", ["flat", "w"], ["mm"]),
        helper.make_node("Add", ["mm", "b"], ["output"]),
    ], [("w", w), ("b", b)])
    model = nco.load(proto)
    assert [type(m).__name__ for m in model] == ["ReLU", "Flatten", "Linear"]
    x = rng.standard_normal((3, 1, 8, 8)).astype(np.float32)
    expected = np.maximum(x, 0).reshape(3, -1) @ w + b
    np.testing.assert_allclose(model(x).data, expected, rtol=1e-5, atol=1e-6)


def test_import_gemm_alpha_beta_trans(rng):
    helper = onnx.helper
    w = rng.standard_normal((64, 5)).astype(np.float32)        # (in, out): transB=0
    c = rng.standard_normal((1, 5)).astype(np.float32)
    proto = _graph([helper.make_node("Flatten", ["input"], ["f"]),
                    helper.make_node("Gemm", ["f", "w", "c"], ["output"], alpha=0.5,
                                     beta=2.0)],
                   [("w", w), ("c", c)])
    model = nco.load(proto)
    x = rng.standard_normal((2, 1, 8, 8)).astype(np.float32)
    np.testing.assert_allclose(model(x).data, 0.5 * x.reshape(2, -1) @ w + 2.0 * c,
                               rtol=1e-5, atol=1e-5)


def test_import_errors(rng):
    helper = onnx.helper
    w = rng.standard_normal((2, 1, 3, 3)).astype(np.float32)
    branch = _graph([helper.make_node("Relu", ["input"], ["a"]),
                     helper.make_node("Add", ["a", "input"], ["output"])])
    with pytest.raises(nco.OnnxImportError, match="chains of layers"):
        nco.load(branch)
    unknown = _graph([helper.make_node("Exp", ["input"], ["output"], name="exp1")])
    with pytest.raises(nco.OnnxImportError, match=r"node 'exp1' \(Exp\).*not supported"):
        nco.load(unknown)
    skew = _graph([helper.make_node("Conv", ["input", "w"], ["output"], pads=[0, 0, 2, 2])],
                  [("w", w)])
    with pytest.raises(nco.OnnxImportError, match="asymmetric pads"):
        nco.load(skew)
    with pytest.raises(FileNotFoundError):
        nco.load("missing.onnx")
    with pytest.raises(TypeError, match="expected a path, bytes or an onnx.ModelProto"):
        nco.load(3)


# --- files written by PyTorch ---------------------------------------------------------------

def _torch_export(torch, model, shape, dynamic=True, opset=17):
    import io as stdio

    buffer = stdio.BytesIO()
    axes = {"input": {0: "N"}, "output": {0: "N"}} if dynamic else None
    # any failure of torch's exporter fails the test: these files are the point of the test
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notices
        torch.onnx.export(model.eval(), (torch.zeros((2,) + shape),), buffer,
                          dynamo=False, opset_version=opset, input_names=["input"],
                          output_names=["output"], dynamic_axes=axes)
    return buffer.getvalue()


@pytest.mark.parametrize("config", [{"activation": "relu", "pool": "max"}, {}],
                         ids=["relu-max", "tanh-avg"])
def test_torch_exported_lenet5(torch, torch_models, mnist_batch, interop, config):
    torch.manual_seed(0)
    theirs = torch_models.lenet5(**config)
    model = nco.load(_torch_export(torch, theirs, (1, 32, 32)))
    x = mnist_batch("lenet5")
    diff = np.abs(interop.numcnn_output(model, x) - interop.torch_output(torch, theirs, x)).max()
    assert diff < interop.ATOL


def test_torch_exported_convnet(torch, torch_models, mnist_batch, interop):
    torch.manual_seed(0)
    theirs = torch_models.convnet(**CONVNET)
    x = mnist_batch("convnet")
    theirs.train()
    with torch.no_grad():
        theirs(torch.from_numpy(x))                # running statistics worth checking
    model = nco.load(_torch_export(torch, theirs, (1, 28, 28)))
    diff = np.abs(interop.numcnn_output(model, x) - interop.torch_output(torch, theirs, x)).max()
    assert diff < interop.ATOL


def test_torch_exported_view_and_ceil_mode(torch, mnist_batch, interop):
    """``x.view(x.size(0), -1)`` exports as a Shape/Gather/Concat computation; ceil_mode
    and count_include_pad=False come through as attributes."""
    tnn = torch.nn

    class Net(tnn.Module):
        def __init__(self):
            super().__init__()
            self.conv = tnn.Conv2d(1, 4, 3, stride=2, padding=1, dilation=2)
            self.pool = tnn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False)
            self.pool2 = tnn.MaxPool2d(2, ceil_mode=True)
            self.fc = tnn.Linear(4 * 4 * 4, 10)

        def forward(self, x):
            x = self.pool2(self.pool(torch.nn.functional.leaky_relu(self.conv(x), 0.1)))
            return torch.log_softmax(self.fc(x.view(x.size(0), -1)), dim=1)

    torch.manual_seed(0)
    theirs = Net()
    data = _torch_export(torch, theirs, (1, 28, 28))
    assert "Shape" in _ops(onnx.load_model_from_string(data))
    model = nco.load(data)
    x = mnist_batch("convnet")
    diff = np.abs(interop.numcnn_output(model, x) - interop.torch_output(torch, theirs, x)).max()
    assert diff < interop.ATOL


# --- the command line ------------------------------------------------------------------------

def _cli(argv):
    from numcnn.cli import main

    return main(argv)


def _checkpoint(tmp_path, model):
    path = tmp_path / "best.npz"
    checkpoint.save(path, {"arch": model.arch, "model_config": dict(model.config),
                           "model_state": dict(model.state_dict()), "dataset": "mnist"})
    return path


def test_cli_export_onnx(tmp_path, capsys, mnist_batch, interop):
    model = models.lenet5(activation="relu")
    ckpt = _checkpoint(tmp_path, model)
    assert _cli(["export", str(ckpt), str(tmp_path / "out" / "lenet.onnx")]) == 0
    assert "wrote" in capsys.readouterr().out
    proto = _check_file(tmp_path / "out" / "lenet.onnx")
    x = mnist_batch("lenet5")
    assert np.abs(_run_ort(proto, x) - interop.numcnn_output(model, x)).max() < interop.ATOL
    assert _cli(["export", str(ckpt), str(tmp_path / "l13.onnx"), "--opset", "13"]) == 0
    assert onnx.load(str(tmp_path / "l13.onnx")).opset_import[0].version == 13


def test_cli_export_safetensors_and_back(tmp_path):
    pytest.importorskip("safetensors")
    model = models.convnet(**CONVNET).double()
    ckpt = _checkpoint(tmp_path, model)
    assert _cli(["export", str(ckpt), str(tmp_path / "c.safetensors")]) == 0
    assert io.load(tmp_path / "c.safetensors").config == model.config
    # a .safetensors file exports to ONNX too (float32 by default)
    assert _cli(["export", str(tmp_path / "c.safetensors"), str(tmp_path / "c.onnx")]) == 0
    elem = onnx.load(str(tmp_path / "c.onnx")).graph.input[0].type.tensor_type.elem_type
    assert elem == onnx.TensorProto.FLOAT


def test_cli_errors(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, models.lenet5())
    assert _cli(["export", str(ckpt), str(tmp_path / "x.txt")]) == 1
    assert "numcnn: error: the output" in capsys.readouterr().err
    assert _cli(["export", str(tmp_path / "missing.npz"), str(tmp_path / "x.onnx")]) == 1
    assert "numcnn: error:" in capsys.readouterr().err
    assert _cli(["export", str(ckpt), str(tmp_path / "x.onnx"), "--opset", "7"]) == 1
    assert "opset must be" in capsys.readouterr().err
