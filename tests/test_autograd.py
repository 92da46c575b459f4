"""The autograd engine and every differentiable Tensor operation.

Each Tensor op is checked with ``numcnn.gradcheck`` (float64 central differences against random,
never all-ones, upstream weights) and, in float32 and float64, for the shape and dtype of every
gradient. The engine is checked for PyTorch's semantics: accumulation into leaves, freed graphs,
``retain_graph``, ``no_grad``, deep graphs, shared subexpressions and error cases.
"""
from __future__ import annotations

import numpy as np
import pytest

import numcnn as nc
from numcnn import Tensor, gradcheck, no_grad, tensor
from numcnn.autograd import is_grad_enabled, make, unbroadcast

# --- input makers: each returns an array of the given shape from a generator --------------------

def normal(*shape):
    return lambda rng: rng.standard_normal(shape)


def positive(*shape):
    return lambda rng: rng.uniform(0.5, 2.0, shape)


def away_from_zero(*shape):
    """Normal values pushed away from 0 (for kinks such as relu and abs)."""
    def make(rng):
        z = rng.standard_normal(shape)
        return np.sign(z) * (0.1 + np.abs(z))
    return make


BOOL_MASK = np.array([[True, False, True, True], [False, False, True, False],
                      [True, True, False, False]])

#: name -> (function of tensors, input makers)
TENSOR_OPS = {
    "add": (lambda a, b: a + b, [normal(3, 4), normal(3, 4)]),
    "add_row_broadcast": (lambda a, b: a + b, [normal(3, 4), normal(4)]),
    "add_both_broadcast": (lambda a, b: a + b, [normal(3, 1), normal(1, 4)]),
    "add_rank_broadcast": (lambda a, b: a + b, [normal(3, 1), normal(2, 3, 4)]),
    "add_0d": (lambda a, b: a + b, [normal(), normal(2, 3)]),
    "add_python_scalar": (lambda a: a + 2.5, [normal(3)]),
    "radd_python_scalar": (lambda a: 2.5 + a, [normal(3)]),
    "radd_ndarray": (lambda a: np.linspace(-1, 1, 4, dtype=a.dtype) + a, [normal(3, 4)]),
    "sub": (lambda a, b: a - b, [normal(3, 4), normal(3, 4)]),
    "sub_broadcast": (lambda a, b: a - b, [normal(2, 1, 4), normal(3, 1)]),
    "rsub": (lambda a: 1.0 - a, [normal(2, 3)]),
    "mul": (lambda a, b: a * b, [normal(3, 4), normal(3, 4)]),
    "mul_broadcast": (lambda a, b: a * b, [normal(2, 3, 4), normal(3, 1)]),
    "mul_self": (lambda a: a * a, [normal(5)]),
    "rmul_ndarray": (lambda a: np.arange(1.0, 5.0, dtype=a.dtype) * a, [normal(2, 4)]),
    "div": (lambda a, b: a / b, [normal(3, 4), positive(3, 4)]),
    "div_broadcast": (lambda a, b: a / b, [normal(2, 3), positive(2, 1)]),
    "rtruediv": (lambda a: 2.0 / a, [positive(3, 2)]),
    "matmul": (lambda a, b: a @ b, [normal(3, 4), normal(4, 2)]),
    "matmul_batched": (lambda a, b: a @ b, [normal(2, 3, 4), normal(2, 4, 5)]),
    "matmul_broadcast_right": (lambda a, b: a @ b, [normal(2, 3, 4), normal(4, 5)]),
    "matmul_broadcast_left": (lambda a, b: a @ b, [normal(3, 4), normal(2, 4, 5)]),
    "rmatmul_ndarray": (lambda a: np.arange(6.0, dtype=a.dtype).reshape(2, 3) @ a, [normal(3, 2)]),
    "matmul_1d_1d": (lambda a, b: a @ b, [normal(4), normal(4)]),
    "matmul_1d_2d": (lambda a, b: a @ b, [normal(4), normal(4, 3)]),
    "matmul_2d_1d": (lambda a, b: a @ b, [normal(3, 4), normal(4)]),
    "matmul_1d_3d": (lambda a, b: a @ b, [normal(4), normal(2, 4, 3)]),
    "matmul_3d_1d": (lambda a, b: a @ b, [normal(2, 3, 4), normal(4)]),
    "matmul_1d_self": (lambda a: a @ a, [normal(5)]),
    "matmul_broadcast_batches": (lambda a, b: a @ b, [normal(2, 1, 3, 4), normal(3, 4, 2)]),
    "matmul_broadcast_both_ways": (lambda a, b: a @ b, [normal(2, 1, 3, 4), normal(1, 3, 4, 2)]),
    "matmul_broadcast_size_1_batch": (lambda a, b: a @ b, [normal(1, 3, 4), normal(2, 4, 2)]),
    "rmatmul_ndarray_1d": (lambda a: np.linspace(-1, 1, 3, dtype=a.dtype) @ a, [normal(2, 3, 2)]),
    "pow_int": (lambda a: a ** 3, [normal(2, 3)]),
    "pow_fraction": (lambda a: a ** 1.5, [positive(2, 3)]),
    "pow_negative": (lambda a: a ** -2, [positive(4)]),
    "pow_tensor": (lambda a, b: a ** b, [positive(2, 3), normal(2, 3)]),
    "pow_tensor_broadcast": (lambda a, b: a ** b, [positive(2, 3), normal(3)]),
    "rpow": (lambda a: 2.0 ** a, [normal(4)]),
    "neg": (lambda a: -a, [normal(2, 3)]),
    "sum": (lambda a: a.sum(), [normal(3, 4)]),
    "sum_axis": (lambda a: a.sum(axis=0), [normal(3, 4)]),
    "sum_negative_axis_keepdims": (lambda a: a.sum(axis=-1, keepdims=True), [normal(2, 3, 4)]),
    "sum_axis_tuple": (lambda a: a.sum(axis=(0, 2)), [normal(2, 3, 4)]),
    "mean": (lambda a: a.mean(), [normal(3, 4)]),
    "mean_axis_keepdims": (lambda a: a.mean(axis=1, keepdims=True), [normal(2, 3, 4)]),
    "mean_axis_tuple": (lambda a: a.mean(axis=(0, -1)), [normal(2, 3, 4)]),
    "max": (lambda a: a.max(), [normal(3, 4)]),
    "max_axis": (lambda a: a.max(axis=1), [normal(3, 4)]),
    "max_axis_keepdims": (lambda a: a.max(axis=0, keepdims=True), [normal(3, 4)]),
    "max_axis_tuple": (lambda a: a.max(axis=(1, 2)), [normal(2, 3, 4)]),
    "reshape": (lambda a: a.reshape(4, 3), [normal(2, 6)]),
    "reshape_tuple": (lambda a: a.reshape((3, -1)), [normal(2, 6)]),
    "view": (lambda a: a.view(12), [normal(3, 4)]),
    "flatten": (lambda a: a.flatten(), [normal(2, 3, 4)]),
    "flatten_from_1": (lambda a: a.flatten(1), [normal(2, 3, 4)]),
    "flatten_middle": (lambda a: a.flatten(1, 2), [normal(2, 3, 4, 2)]),
    "transpose": (lambda a: a.transpose(0, 2), [normal(2, 3, 4)]),
    "transpose_default": (lambda a: a.transpose(), [normal(2, 3, 4)]),
    "permute": (lambda a: a.permute(2, 0, 1), [normal(2, 3, 4)]),
    "permute_tuple": (lambda a: a.permute((1, 2, 0)), [normal(2, 3, 4)]),
    "T": (lambda a: a.T, [normal(2, 3, 4)]),
    "exp": (lambda a: a.exp(), [normal(2, 3)]),
    "log": (lambda a: a.log(), [positive(2, 3)]),
    "sqrt": (lambda a: a.sqrt(), [positive(2, 3)]),
    "tanh": (lambda a: a.tanh(), [normal(2, 3)]),
    "sigmoid": (lambda a: a.sigmoid(), [normal(2, 3)]),
    "relu": (lambda a: a.relu(), [away_from_zero(3, 4)]),
    "abs": (lambda a: a.abs(), [away_from_zero(3, 4)]),
    "index_int": (lambda a: a[1], [normal(3, 4)]),
    "index_slice": (lambda a: a[:, 1:3], [normal(3, 4)]),
    "index_negative_step": (lambda a: a[::-2], [normal(5, 2)]),
    "index_fancy_repeated": (lambda a: a[[0, 2, 0, 0]], [normal(3, 4)]),
    "index_fancy_pairs_repeated": (lambda a: a[[0, 1, 0, 0], [2, 2, 2, 3]], [normal(3, 4)]),
    "index_tensor": (lambda a: a[Tensor(np.array([2, 2, 1]))], [normal(3, 4)]),
    "index_bool_mask": (lambda a: a[BOOL_MASK], [normal(3, 4)]),
    "index_ellipsis_newaxis": (lambda a: a[None, ..., 1], [normal(3, 4)]),
    "composite": (lambda a, b: ((a * b).sum(axis=1) / (a.exp().mean() + 1.0)).tanh(),
                  [normal(3, 4), normal(4)]),
}


def make_inputs(makers, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    return [tensor(m(rng).astype(dtype), requires_grad=True) for m in makers]


@pytest.mark.parametrize("name", sorted(TENSOR_OPS))
def test_tensor_op_gradcheck(name):
    fn, makers = TENSOR_OPS[name]
    assert gradcheck(fn, make_inputs(makers))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name", sorted(TENSOR_OPS))
def test_tensor_op_keeps_dtype_and_gradient_shapes(name, dtype):
    """Each gradient has the shape and dtype of its variable; the output keeps the dtype."""
    fn, makers = TENSOR_OPS[name]
    inputs = make_inputs(makers, dtype)
    out = fn(*inputs)
    assert out.dtype == dtype
    gy = np.random.default_rng(1).standard_normal(out.shape).astype(dtype)
    out.backward(gy)
    for t in inputs:
        assert t.grad is not None
        assert t.grad.shape == t.shape and t.grad.dtype == dtype


def test_index_repeated_fancy_indices_add_up():
    x = tensor(np.zeros(4), requires_grad=True)
    x[[1, 1, 3, 1]].backward(np.array([1.0, 2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(x.grad, [0.0, 7.0, 0.0, 3.0])


def test_max_shares_gradient_among_ties_like_torch_amax(torch):
    x = np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]])
    gy = np.array([0.5, -3.0])
    t = tensor(x, requires_grad=True)
    t.max(axis=1).backward(gy)
    tx = torch.tensor(x, requires_grad=True)
    torch.amax(tx, dim=1).backward(torch.tensor(gy))
    np.testing.assert_allclose(t.grad, tx.grad.numpy(), rtol=1e-15)
    np.testing.assert_allclose(t.grad, [[0, 0.25, 0.25], [-1, -1, -1]], rtol=1e-15)


def test_values_match_numpy():
    rng = np.random.default_rng(5)
    a, b = rng.standard_normal((2, 3)), rng.uniform(0.5, 2, (2, 3))
    ta, tb = tensor(a), tensor(b)
    np.testing.assert_array_equal((ta - tb).data, a - b)
    np.testing.assert_array_equal((ta / tb).data, a / b)
    np.testing.assert_array_equal((tb ** ta).data, b ** a)
    np.testing.assert_array_equal((2.0 - ta).data, 2.0 - a)
    np.testing.assert_array_equal((2.0 / tb).data, 2.0 / b)
    np.testing.assert_array_equal(ta.max(axis=0).data, a.max(axis=0))
    np.testing.assert_array_equal(ta.mean(axis=(0, 1)).data, a.mean())
    np.testing.assert_allclose(ta.sigmoid().data, 1 / (1 + np.exp(-a)), rtol=1e-15)
    assert ta.T.shape == (3, 2) and ta.flatten().shape == (6,)
    assert tensor(np.float64(3.0)).flatten().shape == (1,)


def test_sigmoid_is_stable_for_large_inputs():
    x = tensor(np.array([-1000.0, 0.0, 1000.0], dtype=np.float32), requires_grad=True)
    y = x.sigmoid()
    np.testing.assert_array_equal(y.data, [0.0, 0.5, 1.0])
    y.backward(np.ones(3, np.float32))
    assert np.all(np.isfinite(x.grad))


# --- the engine -------------------------------------------------------------------------------

def test_gradients_accumulate_across_backward_calls():
    """Like PyTorch: leaf gradients add up across backward() calls until zeroed."""
    x = tensor(np.array([1.0, -2.0, 3.0]), requires_grad=True)
    w = np.array([0.5, 2.0, -1.0])
    (x * x * w).sum().backward()
    first = x.grad.copy()
    np.testing.assert_allclose(first, 2 * x.data * w)
    (x * x * w).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    x.zero_grad()
    assert x.grad is None
    (x * w).sum().backward()
    np.testing.assert_array_equal(x.grad, w)


def test_second_backward_through_freed_graph_raises():
    x = tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.exp() * 3.0).sum()
    y.backward()
    with pytest.raises(RuntimeError, match="second time"):
        y.backward()


def test_retain_graph_allows_a_second_backward():
    x = tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = (x.exp() * 3.0).sum()
    y.backward(retain_graph=True)
    first = x.grad.copy()
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * first)
    np.testing.assert_allclose(first, 3 * np.exp(x.data))


def test_no_grad_records_nothing_and_restores_the_state():
    x = tensor(np.ones(3), requires_grad=True)
    assert is_grad_enabled()
    with no_grad():
        assert not is_grad_enabled()
        y = (x * 2 + 1).exp().sum()
        z = nc.functional.relu(x)
    assert is_grad_enabled()
    assert not y.requires_grad and not z.requires_grad and y.is_leaf
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()
    with pytest.raises(ValueError), no_grad():
        raise ValueError("inside")
    assert is_grad_enabled()
    with no_grad():
        with no_grad():
            pass
        assert not is_grad_enabled()
    assert is_grad_enabled()


def test_no_grad_as_decorator():
    @no_grad()
    def double(t):
        return t * 2

    x = tensor(np.ones(2), requires_grad=True)
    assert not double(x).requires_grad
    assert is_grad_enabled()
    assert (x * 2).requires_grad


def test_deep_chain_does_not_hit_the_recursion_limit():
    x = tensor(np.array([1.0, 2.0]), requires_grad=True)
    y = x
    for _ in range(20_000):
        y = y + x
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [20_001.0, 20_001.0])


def test_diamond_graph_sums_both_paths():
    """x feeds two branches that meet again: its gradient is the sum over both paths."""
    x = tensor(np.array([0.5, -1.5]), requires_grad=True)
    a = x * 3.0
    b = x.exp()
    y = (a * b).sum()                                    # d/dx = 3e^x + 3x e^x
    y.backward()
    np.testing.assert_allclose(x.grad, 3 * np.exp(x.data) * (1 + x.data), rtol=1e-14)
    u = tensor(np.array([2.0]), requires_grad=True)
    h = u * u
    (h + h * h).sum().backward()                         # 2u + 4u^3
    np.testing.assert_allclose(u.grad, [2 * 2 + 4 * 8])


def test_backward_on_non_scalar_needs_a_grad():
    x = tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(RuntimeError, match=r"scalar outputs.*\(2, 3\)"):
        (x * 2).backward()


def test_backward_grad_of_wrong_shape_raises():
    x = tensor(np.ones((2, 3)), requires_grad=True)
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(2, 3\)"):
        (x * 2).backward(np.ones((3, 2)))


def test_backward_accepts_a_tensor_grad_and_copies_it():
    x = tensor(np.ones(3), requires_grad=True)
    g = np.array([1.0, 2.0, 3.0])
    (x + 0.0).backward(tensor(g))
    np.testing.assert_array_equal(x.grad, g)
    x.grad = None
    y = x * 1.0
    y.backward(g)
    g[0] = 100.0
    assert x.grad[0] == 1.0                              # the leaf's grad does not alias g


def test_detach_cuts_the_graph():
    x = tensor(np.array([1.0, 2.0]), requires_grad=True)
    d = (x * 2).detach()
    assert not d.requires_grad and d.is_leaf
    y = (x * d).sum()                                    # d is a constant
    y.backward()
    np.testing.assert_array_equal(x.grad, [2.0, 4.0])
    assert d.grad is None


def test_constants_get_no_gradient():
    x = tensor(np.array([1.0, 2.0]), requires_grad=True)
    c = tensor(np.array([3.0, 4.0]))
    (x * c).sum().backward()
    assert c.grad is None
    np.testing.assert_array_equal(x.grad, [3.0, 4.0])


def test_integer_tensors_cannot_require_grad():
    with pytest.raises(TypeError, match="int64"):
        tensor(np.arange(3), requires_grad=True)
    with pytest.raises(TypeError, match="int"):
        tensor(np.arange(3)).requires_grad_()
    with pytest.raises(TypeError):
        Tensor([True, False], requires_grad=True)
    assert tensor(np.arange(3)).dtype == np.arange(3).dtype


def test_ndarray_operand_on_the_left_returns_a_tensor():
    x = tensor(np.array([[1.0, 2.0], [3.0, 4.0]]), requires_grad=True)
    a = np.array([[10.0, 20.0], [30.0, 40.0]])
    for result, expected in ((a + x, a + x.data), (a - x, a - x.data), (a * x, a * x.data),
                             (a / x, a / x.data), (a @ x, a @ x.data)):
        assert isinstance(result, Tensor) and result.requires_grad
        np.testing.assert_allclose(result.data, expected)
    (a - x).sum().backward()
    np.testing.assert_array_equal(x.grad, -np.ones((2, 2)))


@pytest.mark.parametrize("scalar", [2, 2.5, np.float64(2.5), np.int64(3)])
def test_python_scalars_keep_float32(scalar):
    x = tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    for y in (x + scalar, scalar + x, x - scalar, scalar - x, x * scalar, scalar * x,
              x / scalar, scalar / x, x ** scalar, scalar ** x):
        assert y.dtype == np.float32
    y = ((x * scalar + 1) / scalar - scalar) ** 2
    y.sum().backward()
    assert x.grad.dtype == np.float32


def test_dtypes_are_preserved():
    assert tensor(np.ones(2, np.float32)).dtype == np.float32
    assert tensor(np.ones(2)).dtype == np.float64
    assert tensor([1.0, 2.0]).dtype == np.float64
    assert nc.zeros(2, 3).dtype == np.float32 and nc.ones((2, 3)).shape == (2, 3)
    x = tensor(np.ones(2, np.float32), requires_grad=True)
    y = x.astype(np.float64)
    assert y.dtype == np.float64
    (y * 2).sum().backward()
    assert x.grad.dtype == np.float32


def test_unbroadcast():
    g = np.arange(24.0).reshape(2, 3, 4)
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), g.sum(axis=(0, 2))[:, None])
    np.testing.assert_array_equal(unbroadcast(g, (4,)), g.sum(axis=(0, 1)))
    np.testing.assert_array_equal(unbroadcast(g, ()), g.sum())
    assert unbroadcast(g, g.shape) is g


def test_tensor_basics():
    x = tensor(np.arange(6.0).reshape(2, 3), requires_grad=True)
    assert len(x) == 2 and x.ndim == 2 and x.numel() == 6 and x.shape == (2, 3)
    assert x.size() == (2, 3) and x.size(1) == 3
    assert x.numpy() is x.data
    assert x.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert x[1, 2].item() == 5.0
    assert "requires_grad=True" in repr(x)
    assert "grad_fn=<Mul>" in repr(x * 2)
    np.testing.assert_array_equal(x > 2.5, x.data > 2.5)
    np.testing.assert_array_equal(x.argmax(axis=1), [2, 2])
    assert x.is_leaf and not (x * 2).is_leaf


MATMUL_SHAPES = [((4,), (4,)), ((4,), (4, 3)), ((3, 4), (4,)), ((4,), (2, 4, 3)),
                 ((2, 3, 4), (4,)), ((3, 4), (4, 2)), ((2, 1, 3, 4), (3, 4, 2)),
                 ((5, 1, 2, 4), (1, 3, 4, 2)), ((4,), (2, 1, 4, 3)), ((1, 2, 3, 4), (4,))]


@pytest.mark.parametrize("shape_a, shape_b", MATMUL_SHAPES)
def test_matmul_matches_numpy(rng, shape_a, shape_b):
    """Values and shapes are np.matmul's, in both dtypes; the gradients pass gradcheck."""
    for dtype in (np.float32, np.float64):
        a = rng.standard_normal(shape_a).astype(dtype)
        b = rng.standard_normal(shape_b).astype(dtype)
        out = tensor(a) @ tensor(b)
        expected = np.matmul(a, b)
        assert out.shape == expected.shape and out.dtype == dtype
        np.testing.assert_allclose(out.data, expected, rtol=1e-5 if dtype == np.float32 else 1e-12)
    x, y = tensor(a, requires_grad=True), tensor(b, requires_grad=True)
    assert gradcheck(lambda p, q: p @ q, (x, y))


def test_matmul_gradients_by_hand():
    """1-D @ 1-D: d(a·b)/da = b; v @ M: d/dv = g Mᵀ, d/dM = v ⊗ g; M @ v: d/dM = g ⊗ v."""
    a = tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    b = tensor(np.array([4.0, -5.0, 6.0]), requires_grad=True)
    out = a @ b
    assert out.shape == () and out.item() == 12.0
    out.backward()
    np.testing.assert_array_equal(a.grad, b.data)
    np.testing.assert_array_equal(b.grad, a.data)
    m = tensor(np.arange(6.0).reshape(3, 2), requires_grad=True)
    g = np.array([1.0, -1.0])
    (a @ m).backward(g)
    np.testing.assert_array_equal(a.grad, b.data + m.data @ g)
    np.testing.assert_array_equal(m.grad, np.outer(a.data, g))
    m.grad = None
    (m.T @ a).backward(g)
    np.testing.assert_array_equal(m.grad, np.outer(a.data, g))


def test_matmul_gradient_sums_over_broadcast_batches():
    """A matrix used by every batch entry gets the sum of their gradients."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 4))
    w = tensor(rng.standard_normal((4, 5)), requires_grad=True)
    v = tensor(rng.standard_normal(4), requires_grad=True)
    (tensor(x) @ w).sum().backward()
    np.testing.assert_allclose(w.grad, sum(xi.T @ np.ones((2, 5)) for xi in x))
    (tensor(x) @ v).sum().backward()
    np.testing.assert_allclose(v.grad, x.sum(axis=(0, 1)))


@pytest.mark.parametrize("shape_a, shape_b", [((4,), (4,)), ((4,), (2, 4, 3)), ((2, 1, 3, 4), (4,)),
                                              ((2, 1, 3, 4), (3, 4, 2))])
def test_matmul_matches_torch(torch, rng, shape_a, shape_b):
    a, b = rng.standard_normal(shape_a), rng.standard_normal(shape_b)
    x, y = tensor(a, requires_grad=True), tensor(b, requires_grad=True)
    out = x @ y
    g = rng.standard_normal(out.shape)
    out.backward(g)
    tx = torch.tensor(a, requires_grad=True)
    ty = torch.tensor(b, requires_grad=True)
    tout = torch.matmul(tx, ty)
    tout.backward(torch.tensor(g))
    assert out.shape == tuple(tout.shape)
    np.testing.assert_allclose(out.data, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("shape_a, shape_b, message", [
    ((), (3,), r"at least 1-D.*\(\) @ \(3,\)"),
    ((3, 2), (), r"at least 1-D.*\(3, 2\) @ \(\)"),
    ((3,), (4,), r"inner dimensions differ in \(3,\) @ \(4,\).*\(3\).*only axis.*\(4\)"),
    ((2, 3), (2, 3), r"inner dimensions differ in \(2, 3\) @ \(2, 3\).*second-to-last"),
    ((2, 3), (2,), r"inner dimensions differ in \(2, 3\) @ \(2,\)"),
    ((3,), (2, 4, 5), r"inner dimensions differ in \(3,\) @ \(2, 4, 5\)"),
    ((2, 3, 4), (3, 4, 5),
     r"batch dimensions \(2,\) and \(3,\) do not broadcast.*\(2, 3, 4\) @ \(3, 4, 5\)"),
])
def test_matmul_errors_name_both_shapes(shape_a, shape_b, message):
    with pytest.raises(ValueError, match=message):
        tensor(np.ones(shape_a)) @ tensor(np.ones(shape_b))


def test_matmul_with_python_scalar_is_refused():
    with pytest.raises(ValueError, match="at least 1-D"):
        tensor(np.ones(3)) @ 2.0
    with pytest.raises(ValueError, match="at least 1-D"):
        2.0 @ tensor(np.ones(3))


def test_engine_checks_each_gradient_shape():
    """A backward that returns a gradient of the wrong shape is stopped, naming the op."""
    x = tensor(np.ones((2, 3)), requires_grad=True)
    bad = make(x.data.sum(axis=0), (x,), lambda g: (np.ones((3, 2)),), "BadSum")
    with pytest.raises((AssertionError, ValueError, RuntimeError),
                       match=r"BadSum.*\(3, 2\).*\(2, 3\)"):
        bad.backward(np.ones(3))


# --- Tensor is complete at the autograd level ---------------------------------------------------

_AUTOGRAD_ALONE = """
import json, sys, types
package = types.ModuleType("numcnn")   # numcnn/__init__ does not run: only numcnn.autograd and
package.__path__ = [sys.argv[1]]       # what it imports itself are loaded
sys.modules["numcnn"] = package
import numcnn.autograd as ag
t = ag.Tensor([[1.0, 2.0], [3.0, 0.0]])
values = {"softmax": t.softmax(1).data.tolist(), "log_softmax": t.log_softmax(0).data.tolist()}
t.add_(1)
t += 1
t[0, 0] = 5
values["in place"] = t.data.tolist()
print(json.dumps({"methods": sorted(dir(ag.Tensor)), "values": values,
                  "loaded": sorted(m for m in sys.modules if m.startswith("numcnn."))}))
"""


def test_autograd_alone_gives_every_tensor_method():
    """No module above autograd adds methods to Tensor: the class that ``import numcnn.autograd``
    defines, without the package's ``__init__``, is the one ``import numcnn`` gives."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import numcnn.functional as F

    package_dir = Path(nc.__file__).parent
    out = subprocess.run([sys.executable, "-c", _AUTOGRAD_ALONE, str(package_dir)],
                         capture_output=True, text=True, check=True)
    alone = json.loads(out.stdout)
    assert alone["loaded"] == ["numcnn.autograd", "numcnn.inplace"]
    assert alone["methods"] == sorted(dir(Tensor))
    x = Tensor([[1.0, 2.0], [3.0, 0.0]])
    np.testing.assert_allclose(alone["values"]["softmax"], F.softmax(x, 1).data, rtol=1e-15)
    np.testing.assert_allclose(alone["values"]["log_softmax"], F.log_softmax(x, 0).data,
                               rtol=1e-15)
    assert alone["values"]["in place"] == [[5.0, 4.0], [5.0, 2.0]]
