"""Tests of ``numcnn.optim.lr_scheduler``: every learning-rate (and momentum) sequence against
``torch.optim.lr_scheduler`` step for step, exact resumption from ``state_dict`` and the argument
checks."""
import io
import json
import warnings

import numpy as np
import pytest

import numcnn as nc
from numcnn import optim
from numcnn.optim import lr_scheduler as sched

LRS = [0.1, 0.03]  # two parameter groups with different learning rates


def make_params(seed=0):
    rng = np.random.default_rng(seed)
    return [nc.tensor(rng.standard_normal(s), requires_grad=True) for s in [(2, 3), (4,)]]


def build(kind, lib, params, **options):
    """An SGD (with momentum) or Adam optimizer of ``lib`` (numcnn.optim or torch.optim) over
    two groups."""
    groups = [{"params": params[:1], "lr": LRS[0]}, {"params": params[1:], "lr": LRS[1]}]
    if kind == "sgd":
        return lib.SGD(groups, lr=0.5, momentum=0.9, **options)
    return getattr(lib, kind)(groups, lr=0.5, **options)


def momenta(opt):
    return [g["betas"][0] if "betas" in g else g["momentum"] for g in opt.param_groups]


def checkpoint_round_trip(obj):
    """Store ``obj`` as JSON plus arrays in an ``.npz`` (no pickle) and read it back."""
    arrays = {}

    def flatten(x):
        if isinstance(x, np.ndarray):
            arrays[f"a{len(arrays)}"] = x
            return {"__array__": f"a{len(arrays) - 1}"}
        if isinstance(x, dict):
            return {str(k): flatten(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [flatten(v) for v in x]
        assert x is None or isinstance(x, (bool, int, float, str)), f"not JSON-able: {x!r}"
        return x

    text = json.dumps(flatten(obj))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    buffer.seek(0)
    with np.load(buffer, allow_pickle=False) as npz:
        loaded = {k: npz[k] for k in npz.files}

    def unflatten(x):
        if isinstance(x, dict):
            if "__array__" in x:
                return loaded[x["__array__"]]
            return {k: unflatten(v) for k, v in x.items()}
        if isinstance(x, list):
            return [unflatten(v) for v in x]
        return x

    return unflatten(json.loads(text))


# ----------------------------------------------------------------------------------------------
# sequences against torch
# ----------------------------------------------------------------------------------------------
CASES = [
    ("StepLR", {"step_size": 7, "gamma": 0.5}, 40),
    ("StepLR", {"step_size": 1}, 35),
    ("MultiStepLR", {"milestones": [30, 5, 12, 12], "gamma": 0.3}, 40),
    ("ExponentialLR", {"gamma": 0.9}, 40),
    ("LinearLR", {"start_factor": 0.25, "end_factor": 1.0, "total_iters": 10}, 35),
    ("LinearLR", {"start_factor": 1.0, "end_factor": 0.1, "total_iters": 8}, 35),
    ("LinearLR", {}, 35),
    ("CosineAnnealingLR", {"T_max": 10, "eta_min": 1e-3}, 45),
    ("CosineAnnealingLR", {"T_max": 7}, 45),
    ("CosineAnnealingLR", {"T_max": 1, "eta_min": 1e-4}, 35),
    ("OneCycleLR", {"max_lr": 0.5, "total_steps": 40}, 40),
    ("OneCycleLR", {"max_lr": [1.0, 0.2], "epochs": 4, "steps_per_epoch": 9,
                    "pct_start": 0.25, "anneal_strategy": "linear"}, 36),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": 37, "three_phase": True, "div_factor": 10.0,
                    "final_div_factor": 100.0, "base_momentum": 0.8,
                    "max_momentum": [0.9, 0.95]}, 37),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": 33, "three_phase": True,
                    "anneal_strategy": "linear", "pct_start": 0.4}, 33),
    ("OneCycleLR", {"max_lr": 0.3, "total_steps": 30, "cycle_momentum": False}, 30),
]


@pytest.mark.parametrize("kind", ["sgd", "Adam", "AdamW"])
@pytest.mark.parametrize("name, options, steps", CASES,
                         ids=[f"{c[0]}-{i}" for i, c in enumerate(CASES)])
def test_sequence_matches_torch_exactly(name, options, steps, kind):
    torch = pytest.importorskip("torch")
    params = make_params()
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    opt, topt = build(kind, optim, params), build(kind, torch.optim, tparams)
    ours = getattr(sched, name)(opt, **options)
    theirs = getattr(torch.optim.lr_scheduler, name)(topt, **options)
    ours_lrs, torch_lrs = [ours.get_last_lr()], [theirs.get_last_lr()]
    ours_mom, torch_mom = [momenta(opt)], [momenta(topt)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's hints about call order
        for _ in range(steps):
            opt.step()
            topt.step()
            ours.step()
            theirs.step()
            ours_lrs.append(ours.get_last_lr())
            torch_lrs.append(theirs.get_last_lr())
            ours_mom.append(momenta(opt))
            torch_mom.append(momenta(topt))
    assert ours_lrs == torch_lrs  # bit for bit
    assert ours_mom == torch_mom
    assert [g["lr"] for g in opt.param_groups] == ours_lrs[-1]
    assert ours.last_epoch == theirs.last_epoch == steps
    assert ours.base_lrs == theirs.base_lrs
    assert len(set(map(tuple, ours_lrs))) > 1


def test_one_cycle_values_by_hand():
    opt = build("sgd", optim, make_params())
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=11, pct_start=0.5,
                         anneal_strategy="linear", div_factor=10.0, final_div_factor=1.0)
    lrs, moms = [s.get_last_lr()[0]], [opt.param_groups[0]["momentum"]]
    for _ in range(10):
        s.step()
        lrs.append(s.get_last_lr()[0])
        moms.append(opt.param_groups[0]["momentum"])
    # up from 0.1 to 1.0 over steps 0..4.5, down to 0.1 at step 10
    np.testing.assert_allclose(lrs[0], 0.1)
    assert max(lrs) == lrs[5] and lrs[-1] == pytest.approx(0.1)
    assert min(moms) == moms[5] and moms[0] == moms[-1] == pytest.approx(0.95)
    s.step()  # step 11 = total_steps is still allowed, as in torch
    with pytest.raises(ValueError, match="stepped 12 times but total_steps is 11"):
        s.step()


def test_one_cycle_phase_of_a_single_step_uses_its_end_value():
    opt = build("Adam", optim, make_params())
    s = sched.OneCycleLR(opt, max_lr=1.0, total_steps=10, pct_start=0.1)  # phase 1: step 0 only
    assert s.get_last_lr() == [1.0, 1.0]
    assert opt.param_groups[0]["betas"] == (0.85, 0.999)
    s.step()
    assert s.get_last_lr()[0] < 1.0


def test_one_cycle_turns_sgd_momentum_on_like_torch():
    opt = optim.SGD(make_params(), lr=0.1)
    sched.OneCycleLR(opt, max_lr=0.1, total_steps=10)
    assert opt.param_groups[0]["momentum"] == 0.95


def test_get_last_lr_is_a_copy_and_scheduler_drives_the_optimizer():
    params = make_params()
    opt = optim.SGD(params, lr=1.0)
    s = sched.ExponentialLR(opt, gamma=0.5)
    last = s.get_last_lr()
    last[0] = 123.0
    assert s.get_last_lr() == [1.0]
    s.step()
    for p in params:
        p.grad = np.ones_like(p.data)
    before = params[0].data.copy()
    opt.step()
    np.testing.assert_array_equal(params[0].data, before - 0.5)


# ----------------------------------------------------------------------------------------------
# state_dict / load_state_dict
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name, options, kind", [
    ("OneCycleLR", {"max_lr": 0.4, "total_steps": 30, "three_phase": True}, "AdamW"),
    ("OneCycleLR", {"max_lr": [0.4, 0.1], "total_steps": 30}, "sgd"),
    ("CosineAnnealingLR", {"T_max": 8, "eta_min": 1e-3}, "Adam"),
    ("MultiStepLR", {"milestones": [3, 9, 9, 20]}, "sgd"),
    ("LinearLR", {"start_factor": 0.1, "total_iters": 15}, "Adam"),
    ("StepLR", {"step_size": 4, "gamma": 0.7}, "sgd"),
])
def test_training_resumes_exactly_from_saved_states(name, options, kind):
    """Run 25 steps; vs. 12 steps, a checkpoint, and 13 more with new objects loaded from it."""
    rng = np.random.default_rng(3)
    grads = [[rng.standard_normal(s) for s in [(2, 3), (4,)]] for _ in range(25)]

    def train(opt, s, params, rows, record):
        for row in rows:
            for p, g in zip(params, row):
                p.grad = g.copy()
            opt.step()
            s.step()
            record.append((s.get_last_lr(), momenta(opt)))

    params = make_params()
    opt = build(kind, optim, params)
    s = getattr(sched, name)(opt, **options)
    record = []
    train(opt, s, params, grads[:12], record)
    checkpoint = checkpoint_round_trip({
        "params": [p.data.copy() for p in params], "optimizer": opt.state_dict(),
        "scheduler": s.state_dict()})
    train(opt, s, params, grads[12:], record)

    params2 = [nc.tensor(a.copy(), requires_grad=True) for a in checkpoint["params"]]
    opt2 = build(kind, optim, params2)
    s2 = getattr(sched, name)(opt2, **options)
    opt2.load_state_dict(checkpoint["optimizer"])
    s2.load_state_dict(checkpoint["scheduler"])
    assert s2.last_epoch == 12 and s2.get_last_lr() == record[11][0]
    record2 = []
    train(opt2, s2, params2, grads[12:], record2)
    assert record2 == record[12:]
    for p, q in zip(params, params2):
        np.testing.assert_array_equal(p.data, q.data)


def test_load_state_dict_rejects_another_schedulers_state():
    opt = optim.SGD(make_params(), lr=0.1)
    step = sched.StepLR(opt, step_size=3)
    cosine = sched.CosineAnnealingLR(opt, T_max=5)
    with pytest.raises(ValueError, match=r"unknown keys \['T_max', 'eta_min'\]"):
        step.load_state_dict(cosine.state_dict())
    wrong = step.state_dict()
    wrong["base_lrs"] = [0.1, 0.2]
    with pytest.raises(ValueError, match="base_lrs has 2 entries but the optimizer has 1"):
        step.load_state_dict(wrong)


def test_step_after_param_groups_changed_raises():
    params = make_params()
    opt = optim.SGD(params[:1], lr=0.1)
    s = sched.StepLR(opt, step_size=2)
    opt.add_param_group({"params": params[1:]})
    with pytest.raises(ValueError, match="the optimizer has 2 parameter groups but the "
                                         "scheduler was built for 1"):
        s.step()


# ----------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, message", [
    (lambda o: sched.StepLR(o, step_size=0), ValueError, "StepLR: step_size must be >= 1, got 0"),
    (lambda o: sched.StepLR(o, step_size=2.5), TypeError, "StepLR: step_size must be an int"),
    (lambda o: sched.StepLR(o, step_size=2, gamma=0), ValueError,
     "StepLR: gamma must be > 0, got 0"),
    (lambda o: sched.StepLR("opt", step_size=2), TypeError,
     "StepLR: optimizer must be a numcnn.optim.Optimizer, got str"),
    (lambda o: sched.MultiStepLR(o, milestones=[3, 0]), ValueError,
     "MultiStepLR: each milestone must be >= 1, got 0"),
    (lambda o: sched.MultiStepLR(o, milestones=5), TypeError, "milestones must be an iterable"),
    (lambda o: sched.ExponentialLR(o, gamma=-0.5), ValueError, "gamma must be > 0, got -0.5"),
    (lambda o: sched.LinearLR(o, start_factor=0), ValueError,
     r"LinearLR: start_factor must be in \(0, 1\], got 0"),
    (lambda o: sched.LinearLR(o, end_factor=1.5), ValueError,
     r"LinearLR: end_factor must be in \[0, 1\], got 1.5"),
    (lambda o: sched.LinearLR(o, total_iters=0), ValueError, "total_iters must be >= 1, got 0"),
    (lambda o: sched.CosineAnnealingLR(o, T_max=0), ValueError,
     "CosineAnnealingLR: T_max must be >= 1, got 0"),
    (lambda o: sched.CosineAnnealingLR(o, T_max=5, eta_min=-1), ValueError,
     "eta_min must be >= 0, got -1"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1), ValueError,
     "OneCycleLR: give either total_steps or both epochs and steps_per_epoch"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=0), ValueError,
     "total_steps must be >= 1, got 0"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, epochs=2, steps_per_epoch=-3), ValueError,
     "steps_per_epoch must be >= 1, got -3"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=10, pct_start=1.5), ValueError,
     r"pct_start must be in \[0, 1\], got 1.5"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=10, anneal_strategy="exp"),
     ValueError, "anneal_strategy must be 'cos' or 'linear', got 'exp'"),
    (lambda o: sched.OneCycleLR(o, max_lr=[0.1, 0.2, 0.3], total_steps=10), ValueError,
     "max_lr has 3 values but the optimizer has 2 parameter groups"),
    (lambda o: sched.OneCycleLR(o, max_lr=-0.1, total_steps=10), ValueError,
     "max_lr must be > 0, got -0.1"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=10, div_factor=0), ValueError,
     "div_factor must be > 0, got 0"),
    (lambda o: sched.OneCycleLR(o, max_lr=0.1, total_steps=10, base_momentum=-0.1), ValueError,
     "base_momentum must be >= 0, got -0.1"),
])
def test_bad_arguments_raise_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make(build("sgd", optim, make_params()))


def test_one_cycle_beta1_must_stay_below_one():
    opt = build("Adam", optim, make_params())
    with pytest.raises(ValueError, match=r"max_momentum must be in \[0, 1\), got 1.0"):
        sched.OneCycleLR(opt, max_lr=0.1, total_steps=10, max_momentum=1.0)
