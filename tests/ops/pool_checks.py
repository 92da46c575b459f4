"""The pool kernels against the reference loops, as one assertion per op (used by the pool
tests and, on several threads, by the thread tests)."""
from __future__ import annotations

import numpy as np

from numcnn import reference as ref
from numcnn.ops import engine


def assert_avg_pool_matches_reference(cfg, seed):
    x, gy = cfg.arrays(seed, dilated=False)
    np.testing.assert_allclose(engine.avg_pool2d_forward(x, **cfg.avg_kwargs),
                               ref.avg_pool2d(x, **cfg.avg_kwargs), rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(engine.avg_pool2d_backward(gy, x.shape, **cfg.avg_kwargs),
                               ref.avg_pool2d_backward(gy, x.shape, **cfg.avg_kwargs),
                               rtol=1e-12, atol=1e-13)


def assert_max_pool_matches_reference(cfg, seed, ties):
    """Values, argmax (first maximum wins, also on inputs full of ties) and gradient."""
    x, gy = cfg.arrays(seed, dilated=True)
    if ties:
        x = np.round(x)                                               # mostly -1, 0, 1
    y, argmax = engine.max_pool2d_forward(x, **cfg.max_kwargs)
    y_ref, argmax_ref = ref.max_pool2d(x, **cfg.max_kwargs)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(argmax, argmax_ref)
    np.testing.assert_allclose(engine.max_pool2d_backward(gy, argmax, x.shape, **cfg.max_kwargs),
                               ref.max_pool2d_backward(gy, argmax_ref, x.shape, **cfg.max_kwargs),
                               rtol=1e-12, atol=1e-13)
