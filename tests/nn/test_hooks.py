"""Forward hooks and forward pre-hooks: each scenario runs the same script on a ``torch.nn``
module and on a ``numcnn.nn`` module and the two call logs must be equal, so the semantics
(signatures, what a return value replaces, order, ``prepend``, ``with_kwargs``, removal) are
PyTorch's by construction. The modules compute on plain Python ints, which both accept."""
from __future__ import annotations

import numpy as np
import pytest

from numcnn import nn as nc_nn


def _affine(nn, log, name="m"):
    """A module ``forward(x, scale=1) = scale * x + 1`` that logs its calls."""
    class Affine(nn.Module):
        def forward(self, x, scale=1):
            log.append((name, "forward", x, scale))
            return scale * x + 1
    return Affine()


def _hook_logger(log, tag, returns=None):
    """Pre-hook / hook / kwargs hooks of any arity that log what they see, then return ``returns``."""
    def hook(module, *seen):
        log.append((tag,) + tuple(dict(s) if isinstance(s, dict) else s for s in seen))
        return returns
    return hook


def scenario_replacing(nn):
    """Pre-hooks replace the positional args (tuple or single value), hooks the output; keyword
    arguments reach forward but not the hooks; later hooks see the earlier replacements."""
    log = []
    m = _affine(nn, log)
    m.register_forward_pre_hook(_hook_logger(log, "pre-none"))
    m.register_forward_pre_hook(_hook_logger(log, "pre-single", returns=10))
    m.register_forward_pre_hook(_hook_logger(log, "pre-tuple", returns=(20,)))
    m.register_forward_hook(_hook_logger(log, "hook-none"))
    m.register_forward_hook(_hook_logger(log, "hook-replace", returns=-5))
    m.register_forward_hook(_hook_logger(log, "hook-after"))
    log.append(("result", m(3, scale=2)))
    return log


def scenario_order_prepend_remove(nn):
    """Registration order, ``prepend=True`` first, ``remove()`` (twice, harmless), a handle as a
    context manager, and hooks skipped when forward is called directly."""
    log = []
    m = _affine(nn, log)
    a = m.register_forward_hook(_hook_logger(log, "a"))
    b = m.register_forward_hook(_hook_logger(log, "b"))
    m.register_forward_hook(_hook_logger(log, "first"), prepend=True)
    p = m.register_forward_pre_hook(_hook_logger(log, "pre"))
    m.register_forward_pre_hook(_hook_logger(log, "pre-first"), prepend=True)
    log.append(("result", m(1)))
    a.remove()
    a.remove()
    p.remove()
    log.append(("result", m(2)))
    with m.register_forward_hook(_hook_logger(log, "scoped")) as handle:
        log.append(("result", m(3)))
    log.append(("result", m(4)))
    log.append(("direct", m.forward(5)))
    log.append(("ids increase", a.id < b.id < handle.id))
    return log


def scenario_with_kwargs(nn):
    """``with_kwargs=True``: the pre-hook gets and may replace ``(args, kwargs)``; the hook gets
    ``(args, kwargs, output)``."""
    log = []
    m = _affine(nn, log)

    def pre(module, args, kwargs):
        log.append(("pre", args, dict(kwargs)))
        return (args[0] + 1,), {"scale": kwargs.get("scale", 1) * 10}

    m.register_forward_pre_hook(pre, with_kwargs=True)
    m.register_forward_hook(_hook_logger(log, "hook-kwargs", returns=0), with_kwargs=True)
    m.register_forward_hook(_hook_logger(log, "hook"))
    log.append(("result", m(1, scale=3)))
    log.append(("result", m(1)))
    return log


def scenario_self_removal_and_children(nn):
    """A hook that removes itself still lets the other hooks of that call run, and is gone on
    the next call; hooks on the children of a Sequential fire in execution order."""
    log = []
    first, second = _affine(nn, log, "first"), _affine(nn, log, "second")
    model = nn.Sequential(first, second)
    handles = {}

    def once(module, args, output):
        log.append(("once", args, output))
        handles["once"].remove()

    handles["once"] = second.register_forward_hook(once)
    second.register_forward_hook(_hook_logger(log, "second-hook"))
    first.register_forward_pre_hook(_hook_logger(log, "first-pre"))
    model.register_forward_hook(_hook_logger(log, "model-hook"))
    log.append(("result", model(1)))
    log.append(("result", model(2)))
    return log


SCENARIOS = [scenario_replacing, scenario_order_prepend_remove, scenario_with_kwargs,
             scenario_self_removal_and_children]


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
def test_same_calls_as_torch(torch, scenario):
    ours, theirs = scenario(nc_nn), scenario(torch.nn)
    assert len(ours) > 3
    assert ours == theirs


def test_scenarios_are_not_trivial():
    """The logs show the replacements actually happening (so an ignored return would fail)."""
    log = scenario_replacing(nc_nn)
    assert ("m", "forward", 20, 2) in log  # the last pre-hook's tuple replaced the args
    assert ("pre-tuple", (10,)) in log     # a single value became a 1-tuple
    assert log[-1] == ("result", -5)
    assert ("hook-after", (20,), -5) in log
    log = scenario_order_prepend_remove(nc_nn)
    assert log[-3:-1] == [("m", "forward", 5, 1), ("direct", 6)]  # no hook around forward()


@pytest.mark.parametrize("bad", [(1, 2, 3), [(), {}], 7])
def test_pre_hook_with_kwargs_bad_return(torch, bad):
    for nn, error in ((nc_nn, RuntimeError), (torch.nn, RuntimeError)):
        m = _affine(nn, [])
        m.register_forward_pre_hook(lambda module, args, kwargs, bad=bad: bad, with_kwargs=True)
        with pytest.raises(error, match="forward pre-hook must return None or a tuple of"):
            m(1)


def test_hook_error_propagates():
    m = _affine(nc_nn, [])

    def broken(module, args, output):
        raise KeyError("from the hook")

    m.register_forward_hook(broken)
    with pytest.raises(KeyError, match="from the hook"):
        m(1)


def test_not_callable_is_refused():
    m = _affine(nc_nn, [])
    with pytest.raises(TypeError, match="register_forward_hook: hook must be callable, got 3"):
        m.register_forward_hook(3)
    with pytest.raises(TypeError, match="register_forward_pre_hook: hook must be callable"):
        m.register_forward_pre_hook(None)


def test_hooks_see_tensors_of_real_layers(rng):
    """On a real layer the hook sees the input Tensor and may swap the output for another."""
    conv = nc_nn.Conv2d(1, 2, 3)
    x = rng.standard_normal((1, 1, 5, 5)).astype(np.float32)
    seen = []
    handle = conv.register_forward_hook(lambda m, args, out: (seen.append((args[0].shape,
                                                                           out.shape)), out * 0)[1])
    y = conv(x)
    assert seen == [((1, 1, 5, 5), (1, 2, 3, 3))]
    np.testing.assert_array_equal(y.data, np.zeros((1, 2, 3, 3), np.float32))
    handle.remove()
    assert np.abs(conv(x).data).sum() > 0


def test_handle_does_not_keep_the_module_alive():
    import gc
    import weakref

    m = _affine(nc_nn, [])
    handle = m.register_forward_hook(lambda *a: None)
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None
    handle.remove()  # harmless once the module is gone
