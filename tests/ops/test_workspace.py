"""The workspace lends a buffer again only once no array uses it, and the kernels built on it
never let one step's arrays overwrite another's."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from numcnn.ops import engine, parallel
from numcnn.ops.shapes import conv_geometry
from numcnn.ops.workspace import Workspace


def test_a_buffer_in_use_is_never_lent_twice():
    ws = Workspace(2**20)
    a = ws.empty((3, 4), np.float32)
    b = ws.empty((3, 4), np.float32)
    assert not np.shares_memory(a, b)
    derived = a.reshape(12)[2:]                                        # a view of a's buffer
    del a
    c = ws.empty((3, 4), np.float32)
    assert not np.shares_memory(c, derived) and not np.shares_memory(c, b)


def test_a_buffer_is_reused_once_every_view_is_gone():
    ws = Workspace(2**20)
    a = ws.empty((5, 6), np.float64)
    address = a.__array_interface__["data"][0]
    view = a.T
    del a
    del view
    b = ws.empty((5, 6), np.float64)
    assert b.__array_interface__["data"][0] == address
    assert ws.held_bytes == 5 * 6 * 8


def test_zeros_and_keys_by_shape_and_dtype():
    ws = Workspace(2**20)
    z = ws.zeros((2, 3), np.float32)
    assert z.dtype == np.float32 and not z.any()
    del z
    other = ws.empty((2, 3), np.float64)
    assert other.dtype == np.float64 and ws.held_bytes == 2 * 3 * 4 + 2 * 3 * 8


def test_capacity_evicts_free_buffers_and_never_pools_what_cannot_fit():
    ws = Workspace(1000)
    big = ws.empty(200, np.float64)                                    # 1600 B: over capacity
    assert ws.held_bytes == 0 and big.size == 200
    a = ws.empty(100, np.float32)                                      # 400 B
    b = ws.empty(100, np.float32)                                      # 400 B, a is in use
    assert ws.held_bytes == 800
    del a
    c = ws.empty(50, np.float64)                                       # 400 B: a is evicted
    assert ws.held_bytes == 800 and not np.shares_memory(b, c)


def test_clear_keeps_lent_buffers_with_their_users():
    ws = Workspace(2**20)
    kept = ws.empty(10)
    kept[:] = 7.0
    free = ws.empty(20)
    del free
    ws.clear()
    assert ws.held_bytes == kept.nbytes
    assert (kept == 7.0).all()


def test_bad_capacity_variable_is_named(monkeypatch):
    monkeypatch.setenv("NUMCNN_WORKSPACE_MB", "lots")
    with pytest.raises(ValueError, match="NUMCNN_WORKSPACE_MB must be a number of MiB >= 0, got 'lots'"):
        Workspace()


@pytest.mark.parametrize("threads", [1, 2])
def test_kept_columns_and_outputs_of_two_calls_never_alias(threads):
    """A second forward (or a backward) while the first call's columns and output are alive must
    not write into them: the autograd graph keeps columns until its backward."""
    before = parallel.get_num_threads()
    parallel.set_num_threads(threads)
    try:
        rng = np.random.default_rng(0)
        x1, x2 = rng.standard_normal((2, 4, 3, 9, 9))
        w = rng.standard_normal((5, 3, 3, 3))
        geo = conv_geometry(x1.shape, w.shape, 1, 1, 1, 1)
        y1, cols1 = engine.conv_forward(x1, w, None, geo, keep_cols=True)
        y1_copy, cols1_copy = y1.copy(), cols1.copy()
        y2, cols2 = engine.conv_forward(x2, w, None, geo, keep_cols=True)
        gy = rng.standard_normal(y1.shape)
        engine.conv_backward(x2, w, gy, geo, cols2)
        assert not np.shares_memory(cols1, cols2) and not np.shares_memory(y1, y2)
        np.testing.assert_array_equal(cols1, cols1_copy)
        np.testing.assert_array_equal(y1, y1_copy)
        gx1, gw1 = engine.conv_backward(x1, w, gy, geo, cols1)
        gx_fresh, gw_fresh = engine.conv_backward(x1, w, gy, geo, None)
        np.testing.assert_allclose(gw1, gw_fresh, rtol=1e-12)
        np.testing.assert_allclose(gx1, gx_fresh, rtol=1e-12)
    finally:
        parallel.set_num_threads(before)


def test_steady_training_steps_hold_a_fixed_workspace():
    """Step after step the pool reuses its buffers instead of growing."""
    import numcnn as nc
    import numcnn.functional as F

    rng = np.random.default_rng(1)
    x = nc.tensor(rng.standard_normal((8, 3, 12, 12)).astype(np.float32), requires_grad=True)
    w = nc.tensor(rng.standard_normal((4, 3, 3, 3)).astype(np.float32), requires_grad=True)
    held = []
    for _ in range(4):
        F.conv2d(x, w, padding=1).sum().backward()
        held.append(engine.workspace.held_bytes)
    assert held[1] == held[2] == held[3]


_FAULTS_PROBE = """
import resource, numpy as np
import numcnn as nc, numcnn.functional as F
from numcnn.models import lenet5
nc.manual_seed(0)
model = lenet5()
opt = nc.optim.SGD(model.parameters(), lr=0.01)
x = nc.tensor(np.random.default_rng(0).standard_normal((64, 1, 32, 32), dtype=np.float32))
y = np.arange(64) % 10
def step():
    loss = F.cross_entropy(model(x), y)
    opt.zero_grad(); loss.backward(); opt.step()
for _ in range(5):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(20):
    step()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 20)
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts glibc's page faults")
def test_training_steps_do_not_page_fault_on_fresh_memory():
    """The ordinary use (NumPy first, no set-up call): after warm-up a LeNet-5 step reuses its
    memory. Without the freed primer block, glibc maps every activation afresh: about 920 page
    faults per step on two threads, 1,600 on one; with it, 0-130 (the worker thread's malloc
    arena trims now and then)."""
    out = subprocess.run([sys.executable, "-c", "import numpy\n" + _FAULTS_PROBE],
                         capture_output=True, text=True, check=True).stdout
    assert float(out.split()[-1]) < 400
