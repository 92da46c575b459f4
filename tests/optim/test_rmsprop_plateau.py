"""RMSprop and ReduceLROnPlateau against PyTorch, step by step."""
from __future__ import annotations

import numpy as np
import pytest

import numcnn as nc
from numcnn import optim
from numcnn.optim.lr_scheduler import ReduceLROnPlateau

DTYPES = [np.float64, np.float32]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("options", [
    {}, {"lr": 0.05, "alpha": 0.9}, {"momentum": 0.9}, {"centered": True},
    {"centered": True, "momentum": 0.5, "weight_decay": 0.1, "eps": 1e-6},
    {"maximize": True, "weight_decay": 0.01},
])
def test_rmsprop_matches_torch(torch, dtype, options, rng):
    w0 = rng.standard_normal((3, 4)).astype(dtype)
    ours = nc.tensor(w0.copy(), requires_grad=True)
    theirs = torch.tensor(w0.copy(), requires_grad=True)
    opt, topt = optim.RMSprop([ours], **options), torch.optim.RMSprop([theirs], **options)
    for _ in range(6):
        g = rng.standard_normal(w0.shape).astype(dtype)
        ours.grad = g.copy()
        theirs.grad = torch.tensor(g)
        opt.step()
        topt.step()
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(ours.data, theirs.detach().numpy(), rtol=tol, atol=tol)
    assert ours.dtype == dtype


def test_rmsprop_state_round_trip_and_refusals(rng, tmp_path):
    w = nc.tensor(rng.standard_normal(3), requires_grad=True)
    opt = optim.RMSprop([w], momentum=0.9, centered=True)
    w.grad = np.ones(3)
    opt.step()
    nc.save(opt.state_dict(), tmp_path / "opt")
    w2 = nc.tensor(w.data.copy(), requires_grad=True)
    opt2 = optim.RMSprop([w2], momentum=0.9, centered=True)
    opt2.load_state_dict(nc.load(tmp_path / "opt"))
    w.grad = w2.grad = np.full(3, 0.5)
    opt.step()
    opt2.step()
    np.testing.assert_array_equal(w.data, w2.data)
    for bad in ({"lr": -1}, {"alpha": -0.1}, {"momentum": -1}, {"eps": -1}):
        with pytest.raises(ValueError, match=f"{next(iter(bad))} must be >= 0"):
            optim.RMSprop([w], **bad)
    with pytest.raises(TypeError, match="centered must be a bool"):
        optim.RMSprop([w], centered=1)


@pytest.mark.parametrize("options", [
    {}, {"patience": 0}, {"mode": "max", "patience": 1, "factor": 0.5},
    {"threshold_mode": "abs", "threshold": 0.05, "patience": 1},
    {"cooldown": 2, "patience": 0, "min_lr": 0.02},
    {"mode": "max", "threshold_mode": "abs", "cooldown": 1, "patience": 2, "eps": 0.01},
])
def test_reduce_lr_on_plateau_matches_torch(torch, options, rng):
    w = nc.tensor(np.zeros(1), requires_grad=True)
    tw = torch.zeros(1, requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    topt = torch.optim.SGD([tw], lr=1.0)
    sched = ReduceLROnPlateau(opt, **options)
    tsched = torch.optim.lr_scheduler.ReduceLROnPlateau(topt, **options)
    metrics = np.concatenate([np.linspace(1, 0.5, 5), np.full(6, 0.5), rng.random(15)])
    for m in metrics:
        sched.step(float(m))
        tsched.step(float(m))
        assert sched.get_last_lr() == pytest.approx(tsched.get_last_lr(), rel=1e-15)
        assert sched.num_bad_epochs == tsched.num_bad_epochs
        assert sched.best == tsched.best


def test_reduce_lr_on_plateau_state_and_refusals(tmp_path):
    w = nc.tensor(np.zeros(1), requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    sched = ReduceLROnPlateau(opt, patience=0)
    sched.step(nc.tensor(1.0))                 # a 0-d tensor metric, as loss.item() would be
    sched.step(2.0)
    nc.save(sched.state_dict(), tmp_path / "s")
    again = ReduceLROnPlateau(optim.SGD([w], lr=1.0), patience=0)
    again.load_state_dict(nc.load(tmp_path / "s"))
    assert again.best == 1.0 and again.get_last_lr() == [0.1]
    with pytest.raises(ValueError, match="Factor should be < 1.0"):
        ReduceLROnPlateau(opt, factor=1.0)
    with pytest.raises(ValueError, match="mode 'low' is unknown"):
        ReduceLROnPlateau(opt, mode="low")
    with pytest.raises(ValueError, match="threshold mode 'x' is unknown"):
        ReduceLROnPlateau(opt, threshold_mode="x")
    with pytest.raises(ValueError, match="expected 1 min_lrs"):
        ReduceLROnPlateau(opt, min_lr=[0, 0])
    with pytest.raises(TypeError, match="numcnn.optim.Optimizer"):
        ReduceLROnPlateau(object())
