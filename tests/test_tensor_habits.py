"""What a PyTorch user types on tensors: size/numel/dim, argmax/softmax methods, cat/stack,
factories, no_grad as a decorator, numcnn.save/load, the version counter, float16."""
from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import numcnn as nc
import numcnn.functional as F
from numcnn import nn
from numcnn.gradcheck import gradcheck

DTYPES = [np.float64, np.float32]
TOL = {np.float64: 1e-12, np.float32: 1e-5}


# --- size, numel, dim -------------------------------------------------------------------------

def test_size_is_torch_size(torch):
    x = nc.zeros(2, 3, 4)
    t = torch.zeros(2, 3, 4)
    assert x.size() == tuple(t.size()) == (2, 3, 4)
    for d in range(-3, 3):
        assert x.size(d) == t.size(d)
        assert x.size(dim=d) == t.size(dim=d)
    assert x.numel() == t.numel() == 24
    assert x.dim() == t.dim() == 3
    for bad in (3, -4):
        with pytest.raises(IndexError, match=r"Dimension out of range \(expected to be in range "
                                             r"of \[-3, 2\], but got"):
            x.size(bad)
        with pytest.raises(IndexError):
            t.size(bad)


def test_zero_dim_size():
    assert nc.tensor(3.0).size() == () and nc.tensor(3.0).numel() == 1


def test_numpy_functions_accept_tensors():
    x = nc.tensor(np.arange(6.0).reshape(2, 3))
    assert np.asarray(x) is x.data                       # shared, as a torch CPU tensor
    assert np.asarray(x, dtype=np.float32).dtype == np.float32
    np.testing.assert_array_equal(np.array(x, copy=True), x.data)


# --- argmax, softmax, log_softmax methods ----------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
@pytest.mark.parametrize("keepdim", [False, True])
def test_argmax_matches_torch(torch, dtype, dim, keepdim, rng):
    a = rng.standard_normal((4, 5)).astype(dtype)
    a[1, 2] = a[1, 3] = a.max() + 1                      # a tie: the first index wins in both
    ours = nc.tensor(a).argmax(dim=dim, keepdim=keepdim)
    theirs = torch.tensor(a).argmax(dim=dim, keepdim=keepdim)
    assert isinstance(ours, nc.Tensor) and ours.dtype == np.int64
    assert ours.shape == tuple(theirs.shape)
    np.testing.assert_array_equal(ours.numpy(), theirs.numpy())


def test_argmax_numpy_axis_alias():
    a = nc.tensor(np.array([[0.0, 2.0], [3.0, 1.0]]))
    np.testing.assert_array_equal(a.argmax(axis=1), [1, 0])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax_methods_match_torch(torch, dtype, name, dim, rng):
    a = rng.standard_normal((3, 4, 5)).astype(dtype)
    g = rng.standard_normal((3, 4, 5)).astype(dtype)
    x = nc.tensor(a, requires_grad=True)
    y = getattr(x, name)(dim)
    (y * nc.tensor(g)).sum().backward()
    tx = torch.tensor(a, requires_grad=True)
    ty = getattr(tx, name)(dim)
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_allclose(y.data, ty.detach().numpy(), rtol=TOL[dtype], atol=TOL[dtype])
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=TOL[dtype], atol=TOL[dtype])
    assert y.dtype == dtype and x.grad.dtype == dtype


# --- cat, stack ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat_matches_torch(torch, dtype, dim, rng):
    shapes = [(2, 3, 4), (2, 3, 4), (2, 3, 4)]
    shapes = [tuple(s if i != dim % 3 else k + 1 for i, s in enumerate(shape))
              for k, shape in enumerate(shapes)]
    arrays = [rng.standard_normal(s).astype(dtype) for s in shapes]
    ours = [nc.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = nc.cat(ours, dim), torch.cat(theirs, dim)
    g = rng.standard_normal(y.shape).astype(dtype)
    (y * nc.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.grad, t.grad.numpy())
        assert o.grad.dtype == dtype


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack_matches_torch(torch, dtype, dim, rng):
    arrays = [rng.standard_normal((3, 4)).astype(dtype) for _ in range(3)]
    ours = [nc.tensor(a, requires_grad=True) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y, ty = nc.stack(ours, dim), torch.stack(theirs, dim)
    g = rng.standard_normal(y.shape).astype(dtype)
    (y * nc.tensor(g)).sum().backward()
    (ty * torch.tensor(g)).sum().backward()
    np.testing.assert_array_equal(y.data, ty.detach().numpy())
    for o, t in zip(ours, theirs):
        np.testing.assert_array_equal(o.grad, t.grad.numpy())


def test_cat_stack_gradcheck(rng):
    a, b = (nc.tensor(rng.standard_normal(s), requires_grad=True) for s in ((2, 3), (4, 3)))
    assert gradcheck(lambda a, b: nc.cat([a, b], 0) * 1.5, (a, b))
    c, d = (nc.tensor(rng.standard_normal((2, 3)), requires_grad=True) for _ in range(2))
    assert gradcheck(lambda c, d: nc.stack((c, d), 1), (c, d))


@given(st.lists(st.integers(1, 4), min_size=1, max_size=4), st.integers(0, 2),
       st.integers(1, 3))
def test_cat_shapes(sizes, dim, ndim_extra):
    shape = [2] * (ndim_extra + 1)
    dim = dim % len(shape)
    parts = [nc.zeros(*(shape[:dim] + [n] + shape[dim + 1:])) for n in sizes]
    out = nc.cat(parts, dim)
    assert out.size(dim) == sum(sizes)
    assert nc.stack(parts[:1] * 3, dim).size(dim) == 3


def test_cat_stack_refusals():
    with pytest.raises(ValueError, match="sizes of tensors must match except in dimension 0"):
        nc.cat([nc.zeros(2, 3), nc.zeros(2, 4)])
    with pytest.raises(ValueError, match="non-empty"):
        nc.cat([])
    with pytest.raises(TypeError, match="list or tuple of tensors"):
        nc.cat(nc.zeros(2))
    with pytest.raises(IndexError, match="Dimension out of range"):
        nc.cat([nc.zeros(2, 3)], dim=2)
    with pytest.raises(ValueError, match="stack expects each tensor to be equal size|equal size"):
        nc.stack([nc.zeros(2), nc.zeros(3)])
    with pytest.raises(TypeError, match="one dtype"):
        nc.cat([nc.zeros(2), nc.zeros(2, dtype=np.float64)])


# --- factories -------------------------------------------------------------------------------

def test_tensor_copies_and_from_numpy_shares(torch):
    a = np.zeros(3)
    t, s = nc.tensor(a), nc.from_numpy(a)
    a[0] = 5
    assert t.data[0] == 0 and s.data[0] == 5
    ta, tb = torch.tensor(a), torch.from_numpy(a)   # the same in PyTorch
    a[1] = 7
    assert ta[1] == 0 and tb[1] == 7
    with pytest.raises(TypeError, match="expected np.ndarray"):
        nc.from_numpy([1.0, 2.0])


def test_factories_match_torch_dtypes_and_shapes(torch):
    assert nc.zeros(2, 3).dtype == np.float32 and nc.ones((2, 3)).shape == (2, 3)
    assert nc.randn(4, 5).dtype == np.float32 and nc.randn((4, 5)).shape == (4, 5)
    for args in [(5,), (1, 7), (0, 10, 3), (0.0, 1.0, 0.25), (5, 0, -1)]:
        ours, theirs = nc.arange(*args), torch.arange(*args)
        np.testing.assert_allclose(ours.numpy(), theirs.numpy())
        assert str(ours.dtype) == str(theirs.dtype).replace("torch.", "")
    with pytest.raises(ValueError, match="step must be nonzero"):
        nc.arange(0, 5, 0)
    with pytest.raises(ValueError, match="inconsistent with step sign"):
        nc.arange(0, 5, -1)
    with pytest.raises(TypeError, match="size must be non-negative ints"):
        nc.randn(2, -1)


def test_manual_seed_makes_randn_reproducible():
    nc.manual_seed(3)
    a = nc.randn(5)
    nc.manual_seed(3)
    np.testing.assert_array_equal(a.numpy(), nc.randn(5).numpy())


# --- no_grad -------------------------------------------------------------------------------

def test_no_grad_forms():
    x = nc.tensor([1.0], requires_grad=True)

    @nc.no_grad
    def bare(x):
        return x * 2

    @nc.no_grad()
    def called(x):
        return x * 2

    assert not bare(x).requires_grad and not called(x).requires_grad
    with nc.no_grad():
        assert not (x * 2).requires_grad
        with nc.no_grad():
            pass
        assert not nc.is_grad_enabled()
    assert nc.is_grad_enabled() and (x * 2).requires_grad
    ctx = nc.no_grad()
    with ctx, ctx:              # one object entered twice (nested) restores correctly
        assert not nc.is_grad_enabled()
    assert nc.is_grad_enabled()


def test_no_grad_restores_after_an_exception():
    @nc.no_grad
    def boom():
        raise KeyError("x")

    with pytest.raises(KeyError):
        boom()
    assert nc.is_grad_enabled()


# --- save / load -----------------------------------------------------------------------------

def _model():
    return nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2), nn.Flatten(), nn.Linear(8, 3))


def test_state_dict_round_trip(tmp_path):
    model = _model()
    path = tmp_path / "model.pt"                 # any suffix: nothing is appended
    nc.save(model.state_dict(), path)
    assert path.is_file() and not (tmp_path / "model.pt.npz").exists()
    state = nc.load(path)
    assert list(state) == list(model.state_dict())
    other = _model()
    other.load_state_dict(state)
    for (k, a), b in zip(model.state_dict().items(), other.state_dict().values()):
        np.testing.assert_array_equal(a, b)
        assert a.dtype == b.dtype


def test_nested_checkpoint_round_trip(tmp_path):
    model = _model()
    opt = nc.optim.Adam(model.parameters(), lr=1e-3)
    x = nc.randn(2, 1, 4, 4)
    model(x).sum().backward()
    opt.step()
    ckpt = {"epoch": 3, "model": model.state_dict(), "optimizer": opt.state_dict(),
            "best": (0.5, float("inf"), None), "name": "lenet", "flag": True,
            "weights": nn.Linear(2, 2).weight, "ids": np.arange(3)}
    buffer = io.BytesIO()
    nc.save(ckpt, buffer)
    buffer.seek(0)
    back = nc.load(buffer)
    assert back["epoch"] == 3 and back["name"] == "lenet" and back["flag"] is True
    assert back["best"] == (0.5, float("inf"), None)
    assert isinstance(back["weights"], nc.Tensor) and back["weights"].requires_grad
    assert set(back["optimizer"]["state"]) == set(opt.state_dict()["state"])  # int keys kept
    opt2 = nc.optim.Adam(_model().parameters(), lr=1e-3)
    opt2.load_state_dict(back["optimizer"])
    np.testing.assert_array_equal(back["ids"], np.arange(3))


def test_load_accepts_torch_load_arguments(tmp_path):
    nc.save({"a": np.ones(2)}, tmp_path / "f")
    assert nc.load(tmp_path / "f", map_location="cpu", weights_only=True)["a"].shape == (2,)
    with pytest.raises(ValueError, match="map_location must be None or 'cpu'"):
        nc.load(tmp_path / "f", map_location="cuda:0")


def test_save_refuses_what_needs_pickle(tmp_path):
    with pytest.raises(TypeError, match="cannot store a Sequential"):
        nc.save(_model(), tmp_path / "m")
    with pytest.raises(TypeError, match="dtype object"):
        nc.save({"a": np.array([{}], dtype=object)}, tmp_path / "m")
    with pytest.raises(TypeError, match="dict keys must be"):
        nc.save({(1, 2): 3}, tmp_path / "m")
    assert not (tmp_path / "m").exists()          # nothing half-written is left behind
    assert list(tmp_path.iterdir()) == []


def test_load_refuses_pickles_and_foreign_files(tmp_path, torch):
    path = tmp_path / "torch.pt"
    torch.save({"w": torch.zeros(2)}, path)
    with pytest.raises(ValueError, match="torch.save file.*safetensors"):
        nc.load(path)
    legacy = tmp_path / "legacy.pt"
    torch.save({"w": torch.zeros(2)}, legacy, _use_new_zipfile_serialization=False)
    with pytest.raises(ValueError, match="pickle.*never unpickles"):
        nc.load(legacy)
    plain = tmp_path / "plain.npz"
    np.savez(plain, w=np.zeros(2))
    with pytest.raises(ValueError, match="not written by numcnn.save"):
        nc.load(plain)
    with pytest.raises(FileNotFoundError):
        nc.load(tmp_path / "missing")


def test_load_reads_safetensors_state_dicts(tmp_path):
    pytest.importorskip("safetensors")
    model = _model()
    model.save(tmp_path / "m.safetensors")
    state = nc.load(tmp_path / "m.safetensors")
    _model().load_state_dict(state)


class TinyNet(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.fc = nn.Linear(3, width)
        self.out = nn.Linear(width, 2)

    def forward(self, x):
        return self.out(F.relu(self.fc(x)))


def test_model_save_accepts_custom_subclasses(tmp_path):
    pytest.importorskip("safetensors")
    model = TinyNet(width=5)
    path = tmp_path / "tiny.safetensors"
    model.save(path)
    again = TinyNet.load(path, width=5)
    x = nc.randn(2, 3)
    np.testing.assert_array_equal(model.eval()(x).data, again(x).data)
    assert not again.training
    with pytest.raises(ValueError, match="holds no numcnn architecture"):
        nn.Module.load(path)
    seq = nn.Sequential(nn.Linear(3, 2))
    seq.save(tmp_path / "seq.safetensors")
    assert isinstance(nn.Module.load(tmp_path / "seq.safetensors"), nn.Sequential)
    with pytest.raises(ValueError, match="holds a Sequential, not a TinyNet"):
        TinyNet.load(tmp_path / "seq.safetensors")
    with pytest.raises(ValueError, match="holds the weights of a model saved with its"):
        TinyNet.load(tmp_path / "seq.safetensors", width=5)

    class Other(TinyNet):
        pass

    with pytest.raises(ValueError, match="holds the weights of a .*TinyNet"):
        Other.load(path, width=5)


# --- version counter (issue 13, item 8) ------------------------------------------------------

def test_inplace_change_of_a_saved_tensor_is_refused_like_torch(torch):
    w = nc.tensor(np.array([1.0, 2.0]))
    x = nc.tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = (x * w).sum()
    w.mul_(2)
    with pytest.raises(RuntimeError, match="one of the variables needed for gradient "
                                           "computation has been modified by an inplace "
                                           "operation"):
        y.backward()
    tw = torch.tensor([1.0, 2.0])
    tx = torch.tensor([3.0, 4.0], requires_grad=True)
    ty = (tx * tw).sum()
    tw.mul_(2)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.backward()


@pytest.mark.parametrize("mutate", [
    lambda t: t.add_(1), lambda t: t.sub_(1), lambda t: t.mul_(2), lambda t: t.div_(2),
    lambda t: t.zero_(), lambda t: t.fill_(3), lambda t: t.copy_(np.ones(2)),
    lambda t: t.clamp_(0, 1), lambda t: t.__setitem__(0, 5.0),
])
def test_every_inplace_op_bumps_the_version(mutate):
    t = nc.tensor(np.array([1.0, 2.0]))
    before = t._version
    mutate(t)
    assert t._version == before + 1


def test_augmented_assignment_is_inplace_and_checked():
    w = nc.tensor(np.array([1.0, 2.0]))
    alias = w
    x = nc.tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = (x * w).sum()
    w += 1
    assert alias is w and w._version == 1
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()


def test_views_share_the_version_counter():
    base = nc.tensor(np.arange(6.0))
    view = base.reshape(2, 3)
    x = nc.tensor(np.ones(6), requires_grad=True)
    y = (x * base).sum()
    view[0, 0] = 10.0                       # writes through to base
    assert base.data[0] == 10 and base._version == 1
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()


def test_ops_that_save_nothing_allow_later_inplace_changes(torch):
    x = nc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    w = nc.tensor(np.array([5.0, 6.0]))
    y = (x + w).sum()           # Add reads no values in its backward: allowed, as in PyTorch
    w.add_(1)
    y.backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0])


def test_leaf_requiring_grad_refuses_inplace_unless_no_grad():
    p = nc.tensor(np.ones(2), requires_grad=True)
    with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used "
                                           "in an in-place operation"):
        p.add_(1)
    x = nc.tensor(np.ones(2))
    y = (p * x).sum()
    with nc.no_grad():
        p.mul_(2)                 # what an optimizer step does: allowed, and checked later
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()


def test_optimizer_step_and_init_count_as_inplace_changes(torch):
    w = nn.Parameter(np.array([1.0, 2.0]))
    x = nc.tensor(np.array([3.0, 4.0]), requires_grad=True)
    opt = nc.optim.SGD([w], lr=0.1)
    y = (x * w).sum()
    y.backward(retain_graph=True)
    opt.step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        y.backward()
    tw = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    tx = torch.tensor([3.0, 4.0], requires_grad=True)
    ty = (tx * tw).sum()
    ty.backward(retain_graph=True)
    torch.optim.SGD([tw], lr=0.1).step()
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        ty.backward()
    before = w._version
    nn.init.zeros_(w)
    assert w._version == before + 1


def test_raw_data_writes_are_unchecked_as_documented():
    w = nc.tensor(np.array([1.0, 2.0]))
    x = nc.tensor(np.array([3.0, 4.0]), requires_grad=True)
    y = (x * w).sum()
    w.data[...] = 10.0          # the raw ndarray: no version bump, as in PyTorch
    y.backward()
    np.testing.assert_array_equal(x.grad, [10.0, 10.0])


def test_assigning_data_of_another_shape_is_a_clear_error():
    x = nc.tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"cannot assign an array of shape \(3, 2\) to a tensor "
                                         r"of shape \(2, 3\)"):
        x.data = np.ones((3, 2))
    x.data = np.zeros((2, 3), dtype=np.float32)     # same shape: fine (Module.to does this)
    assert x.dtype == np.float32


def test_retain_graph_second_backward_still_checks(rng):
    w = nc.tensor(rng.standard_normal(3))
    x = nc.tensor(rng.standard_normal(3), requires_grad=True)
    y = (x * w).sum()
    y.backward(retain_graph=True)
    w.add_(1)
    with pytest.raises(RuntimeError, match="inplace"):
        y.backward()


# --- float16 (issue 13, item 9) -------------------------------------------------------------

def test_float16_is_refused_clearly():
    with pytest.raises(TypeError, match="float16 is not supported .*astype\\(np.float32\\)"):
        nc.tensor(np.ones(2, dtype=np.float16))
    with pytest.raises(TypeError, match="float16 is not supported"):
        F.conv2d(np.ones((1, 1, 3, 3), np.float16), np.ones((1, 1, 1, 1), np.float32))
    with pytest.raises(TypeError, match="float16 is not supported"):
        nn.Linear(2, 2)(np.ones((1, 2), np.float16))
    with pytest.raises(TypeError, match="float16 is not supported"):
        nc.tensor([1.0], dtype=np.float16)
    with pytest.raises(TypeError, match="float16 is not supported"):
        nc.tensor(np.ones(2)).astype(np.float16)


def test_min_clone_float_double(torch, rng):
    a = rng.standard_normal((3, 4))
    x = nc.tensor(a, requires_grad=True)
    assert gradcheck(lambda x: x.min(axis=1), (x,))
    assert gradcheck(lambda x: x.clone() * 2, (x,))
    np.testing.assert_array_equal(x.min(axis=0).data, torch.tensor(a).min(dim=0).values.numpy())
    assert x.float().dtype == np.float32 and x.float().double().dtype == np.float64
    c = x.clone()
    c.data[0, 0] = 99.0
    assert x.data[0, 0] != 99.0


def test_load_checks_the_declared_structure_size_first(tmp_path, monkeypatch):
    from numcnn import serialization
    nc.save({"a": np.ones(2), "name": "x" * 1000}, tmp_path / "f")
    monkeypatch.setattr(serialization, "_MAX_META_BYTES", 100)
    with pytest.raises(ValueError, match="declares a .*-byte structure entry"):
        nc.load(tmp_path / "f")


def test_softmax_checks_its_output_not_its_input(torch):
    x = nc.tensor(np.array([[1.0, 2.0]]))
    w = nc.tensor(np.array([[0.5, 1.0]]), requires_grad=True)
    h = x * 1.0
    y = (h + w).log_softmax(1)        # log_softmax saves its result, as in PyTorch
    x.add_(1)                         # not saved by anything that reads it later
    y.sum().backward()
    with nc.no_grad():
        z = (w * 2).softmax(1)
    assert not z.requires_grad
    q = (w * 2).softmax(1)
    with nc.no_grad():
        q.mul_(2)                     # the saved output itself changed: refused
    with pytest.raises(RuntimeError, match="inplace"):
        q.sum().backward()


@pytest.mark.parametrize("start, end, named", [
    (9, -1, "start_dim"), (0, 9, "end_dim"), (-9, -1, "start_dim")])
def test_flatten_refuses_a_dim_out_of_range_instead_of_wrapping_it(start, end, named):
    x = nc.tensor(np.zeros((2, 3, 4, 5), np.float32))
    match = f"flatten: {named} must be an int in -4..3 for a 4-D tensor of shape"
    for fn in (lambda: x.flatten(start, end), lambda: nc.flatten(x, start, end),
               lambda: nc.nn.Flatten(start, end)(x)):
        with pytest.raises(IndexError, match=match):
            fn()
    with pytest.raises(IndexError, match="start_dim must be an int in -4..3 .* got 1.0"):
        x.flatten(1.0)
    assert x.flatten(-4, 3).shape == (120,) and nc.tensor(3.0).flatten(-1, 0).shape == (1,)


def test_mean_over_an_axis_out_of_range_names_the_axis():
    x = nc.tensor(np.zeros((2, 3)), requires_grad=True)
    for axis in (9, (0, 9), -3):
        with pytest.raises(np.exceptions.AxisError, match="out of bounds for array of dimension 2"):
            x.mean(axis=axis)
    y = x.mean(axis=-1)
    y.backward(np.ones(2))
    assert y.shape == (2,) and np.allclose(x.grad, 1 / 3)
