"""Module, Parameter and containers: registration, naming, modes, state dicts, dtype, repr."""
import copy
import pickle
from collections import OrderedDict

import numpy as np
import pytest

import numcnn as nc
from numcnn import nn
from numcnn.autograd import Tensor


class Block(nn.Module):
    """A conv and a batch norm, with a buffer and a plain attribute of its own."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1)
        self.scale = nn.Parameter(np.ones(3, dtype=np.float32))
        self.register_buffer("steps", np.zeros((), dtype=np.int64))
        self.bn = nn.BatchNorm2d(3)
        self.note = "plain attribute"

    def forward(self, x):
        return self.bn(self.conv(x)) * self.scale.reshape(1, 3, 1, 1)


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 4 * 4, 5))

    def forward(self, x):
        return self.head(self.block(x))


def x_batch(dtype=np.float32):
    return np.random.default_rng(0).standard_normal((4, 2, 4, 4)).astype(dtype)


# --- Parameter ----------------------------------------------------------------------------------

def test_parameter_keeps_dtype_shares_data_and_requires_grad():
    arr = np.zeros((2, 3))
    p = nn.Parameter(arr)
    assert isinstance(p, Tensor) and p.requires_grad and p.dtype == np.float64
    assert p.data is arr
    assert nn.Parameter(nc.tensor(np.ones(2, dtype=np.float32))).dtype == np.float32
    assert not nn.Parameter(arr, requires_grad=False).requires_grad
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_parameter_rejects_integer_data():
    with pytest.raises(TypeError, match="floating dtype.*int64"):
        nn.Parameter(np.arange(3, dtype=np.int64))


# --- registration and naming --------------------------------------------------------------------

def test_named_parameters_follow_registration_order_with_dotted_names():
    names = [name for name, _ in Net().named_parameters()]
    assert names == ["block.scale", "block.conv.weight", "block.conv.bias", "block.bn.weight",
                     "block.bn.bias", "head.1.weight", "head.1.bias"]
    assert all(isinstance(p, nn.Parameter) for p in Net().parameters())


def test_buffers_children_and_modules():
    net = Net()
    assert [n for n, _ in net.named_buffers()] == [
        "block.steps", "block.bn.running_mean", "block.bn.running_var",
        "block.bn.num_batches_tracked"]
    assert all(isinstance(b, np.ndarray) for b in net.buffers())
    assert [n for n, _ in net.named_children()] == ["block", "head"]
    assert [type(m).__name__ for m in net.children()] == ["Block", "Sequential"]
    assert [n for n, _ in net.named_modules()] == [
        "", "block", "block.conv", "block.bn", "head", "head.0", "head.1"]
    assert len(list(net.modules())) == 7
    assert [n for n, _ in net.block.named_parameters(recurse=False)] == ["scale"]
    assert net.block.note == "plain attribute" and "note" not in net.block._parameters


def test_shared_parameter_is_listed_once():
    net = nn.Module()
    net.a = nn.Linear(3, 3)
    net.b = nn.Linear(3, 3)
    net.b.weight = net.a.weight
    assert [n for n, _ in net.named_parameters()] == ["a.weight", "a.bias", "b.bias"]
    assert net.num_parameters() == 9 + 3 + 3


def test_reassignment_moves_between_registries_and_none_is_kept():
    m = nn.Module()
    m.x = nn.Parameter(np.ones(2))
    m.x = nn.Linear(2, 2)                # parameter -> module
    assert "x" not in m._parameters and "x" in m._modules
    m.register_parameter("b", None)
    assert m.b is None and list(m.named_parameters()) == list(m.x.named_parameters("x"))
    m.register_buffer("buf", np.zeros(2))
    m.buf = np.ones(3)                   # buffers take a new array by assignment
    assert m.state_dict()["buf"].shape == (3,)
    del m.buf
    assert "buf" not in m.state_dict()
    with pytest.raises(AttributeError, match="no attribute 'buf'"):
        _ = m.buf


def test_registration_errors():
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="cannot assign Tensor as parameter 'weight'"):
        m.weight = nc.tensor(np.ones((2, 2)))
    with pytest.raises(TypeError, match="buffer 'b'.*ndarray"):
        m.register_buffer("b", [1.0, 2.0])
    with pytest.raises(KeyError, match="contain no '.'"):
        m.register_buffer("a.b", np.zeros(1))
    with pytest.raises(KeyError, match="attribute 'in_features' already exists"):
        m.register_buffer("in_features", np.zeros(1))
    with pytest.raises(TypeError, match="is not a Module subclass"):
        m.add_module("child", "not a module")

    class Early(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(np.ones(1))

    with pytest.raises(AttributeError, match=r"before Module.__init__\(\) call"):
        Early()
    with pytest.raises(NotImplementedError, match="Module is missing the required forward"):
        nn.Module()(1)


def test_non_persistent_buffer_is_not_saved():
    m = nn.Module()
    m.register_buffer("cache", np.zeros(2), persistent=False)
    assert [n for n, _ in m.named_buffers()] == ["cache"] and not m.state_dict()


# --- modes and gradients ------------------------------------------------------------------------

def test_train_and_eval_reach_every_submodule():
    net = Net()
    assert all(m.training for m in net.modules())
    assert net.eval() is net
    assert not any(m.training for m in net.modules())
    net.block.train()
    assert net.block.bn.training and not net.head[1].training
    with pytest.raises(ValueError, match="mode must be a bool"):
        net.train("yes")


def test_zero_grad_sets_gradients_to_none_or_zeros():
    net = Net()
    nc.functional.cross_entropy(net(x_batch()), np.array([0, 1, 2, 3])).backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all(not p.grad.any() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


# --- state dicts --------------------------------------------------------------------------------

def test_state_dict_names_order_and_copies():
    net = Net()
    sd = net.state_dict()
    assert isinstance(sd, OrderedDict)
    assert list(sd) == [
        "block.scale", "block.steps", "block.conv.weight", "block.conv.bias", "block.bn.weight",
        "block.bn.bias", "block.bn.running_mean", "block.bn.running_var",
        "block.bn.num_batches_tracked", "head.1.weight", "head.1.bias"]
    tracked = sd["block.bn.num_batches_tracked"]
    assert tracked.dtype == np.int64 and tracked.shape == ()
    sd["head.1.bias"][:] = 123.0                     # a copy: the model is untouched
    assert not np.any(net.head[1].bias.data == 123.0)
    assert net.state_dict(keep_vars=True)["head.1.bias"] is net.head[1].bias


def test_load_state_dict_round_trip_in_place_keeping_dtype():
    src, dst = Net(), Net()
    src(x_batch())                                   # move the running statistics
    sd = {k: (v.astype(np.float64) if v.dtype == np.float32 else v)
          for k, v in src.state_dict().items()}
    weight = dst.block.conv.weight
    result = dst.load_state_dict(sd)
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert repr(result) == "<All keys matched successfully>"
    assert dst.block.conv.weight is weight and weight.dtype == np.float32
    for key, value in src.state_dict().items():
        np.testing.assert_array_equal(dst.state_dict()[key], value)
    assert int(dst.block.bn.num_batches_tracked) == 1
    dst.eval(), src.eval()
    np.testing.assert_array_equal(dst(x_batch()).data, src(x_batch()).data)


def test_load_state_dict_strict_errors_list_missing_and_unexpected_keys():
    net = Net()
    sd = net.state_dict()
    del sd["head.1.bias"]
    sd["head.2.weight"] = np.zeros(3)
    before = net.head[1].weight.data.copy()
    sd["head.1.weight"] = before + 1
    with pytest.raises(KeyError) as info:
        net.load_state_dict(sd)
    msg = str(info.value)
    assert 'Missing key(s) in state_dict: "head.1.bias"' in msg
    assert 'Unexpected key(s) in state_dict: "head.2.weight"' in msg
    assert isinstance(info.value, ValueError) and isinstance(info.value, nn.StateDictError)
    np.testing.assert_array_equal(net.head[1].weight.data, before)   # nothing was copied
    result = net.load_state_dict(sd, strict=False)
    assert result == (["head.1.bias"], ["head.2.weight"])
    np.testing.assert_array_equal(net.head[1].weight.data, before + 1)


def test_load_state_dict_shape_mismatch_names_key_and_shapes_even_when_not_strict():
    net = Net()
    sd = net.state_dict()
    sd["head.1.weight"] = np.zeros((5, 47))
    for strict in (True, False):
        with pytest.raises(ValueError, match=r"size mismatch for head\.1\.weight: .*\(5, 47\).*"
                                             r"\(5, 48\)"):
            net.load_state_dict(sd, strict=strict)


def test_load_state_dict_accepts_tensors_and_rejects_non_mappings():
    a, b = nn.Linear(3, 2), nn.Linear(3, 2)
    b.load_state_dict({k: nc.tensor(v) for k, v in a.state_dict().items()})
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    with pytest.raises(TypeError, match="state_dict must be a mapping .* got list"):
        b.load_state_dict([a.weight.data])


# --- dtype, copies ------------------------------------------------------------------------------

def test_double_converts_parameters_and_float_buffers_only():
    net = Net()
    weight = net.block.conv.weight
    assert net.double() is net
    assert weight is net.block.conv.weight and weight.dtype == np.float64
    assert all(p.dtype == np.float64 for p in net.parameters())
    assert net.block.bn.running_var.dtype == np.float64
    assert net.block.bn.num_batches_tracked.dtype == np.int64
    assert net.block.steps.dtype == np.int64
    assert net(x_batch(np.float64)).dtype == np.float64
    assert net.float().block.bn.running_mean.dtype == np.float32
    with pytest.raises(TypeError, match="dtype must be float32 or float64, got int32"):
        net.to(np.int32)


def test_deepcopy_and_pickle_give_independent_equal_models():
    net = Net()
    for clone in (copy.deepcopy(net), pickle.loads(pickle.dumps(net))):
        assert clone.block.conv.weight is not net.block.conv.weight
        for (k, v), (k2, v2) in zip(net.state_dict().items(), clone.state_dict().items()):
            assert k == k2
            np.testing.assert_array_equal(v, v2)


# --- containers ---------------------------------------------------------------------------------

def test_sequential_indexing_slicing_and_ordered_dict():
    seq = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    assert len(seq) == 3 and isinstance(seq[0], nn.Linear) and seq[-1] is seq[2]
    assert [type(m).__name__ for m in seq] == ["Linear", "ReLU", "Linear"]
    head = seq[1:]
    assert isinstance(head, nn.Sequential) and list(head._modules) == ["1", "2"]
    with pytest.raises(IndexError, match="index 3 is out of range for 3 modules"):
        seq[3]
    named = nn.Sequential(OrderedDict([("fc", nn.Linear(4, 2)), ("act", nn.Tanh())]))
    assert [n for n, _ in named.named_parameters()] == ["fc.weight", "fc.bias"]
    assert named.fc is named[0]
    del seq[1]
    assert list(seq._modules) == ["0", "1"] and seq(np.ones((1, 4), np.float32)).shape == (1, 2)
    seq.append(nn.Sigmoid())
    assert len(seq) == 3


def test_module_list_registers_its_modules():
    class Stack(nn.Module):
        def __init__(self):
            super().__init__()
            self.layers = nn.ModuleList([nn.Linear(2, 2), nn.Linear(2, 2)])

    stack = Stack()
    assert [n for n, _ in stack.named_parameters()] == [
        "layers.0.weight", "layers.0.bias", "layers.1.weight", "layers.1.bias"]
    stack.layers.insert(0, nn.ReLU())
    assert isinstance(stack.layers[0], nn.ReLU) and len(stack.layers) == 3
    assert next(n for n, _ in stack.named_parameters()) == "layers.1.weight"
    with pytest.raises(NotImplementedError):
        stack.layers(np.ones(2))


# --- printing -----------------------------------------------------------------------------------

def test_repr_nests_like_torch():
    net = Net()
    assert repr(net) == (
        "Net(\n"
        "  (block): Block(\n"
        "    (conv): Conv2d(2, 3, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))\n"
        "    (bn): BatchNorm2d(3, eps=1e-05, momentum=0.1, affine=True, bias=True, "
        "track_running_stats=True)\n"
        "  )\n"
        "  (head): Sequential(\n"
        "    (0): Flatten(start_dim=1, end_dim=-1)\n"
        "    (1): Linear(in_features=48, out_features=5, bias=True)\n"
        "  )\n"
        ")")
    assert repr(nn.Module()) == "Module()"
