"""Tests of ``numcnn.optim``: SGD, Adam and AdamW against ``torch.optim`` on the same gradients,
dtype and in-place behaviour, skipped parameters, exact resumption from ``state_dict`` and the
argument checks."""
import io
import itertools
import json

import numpy as np
import pytest

import numcnn as nc
from numcnn import optim

SHAPES = [(3, 4), (5,), ()]
STEPS = 10


# ----------------------------------------------------------------------------------------------
# helpers
# ----------------------------------------------------------------------------------------------
def make_params(dtype=np.float64, seed=0, shapes=SHAPES):
    rng = np.random.default_rng(seed)
    return [nc.tensor(rng.standard_normal(s).astype(dtype), requires_grad=True) for s in shapes]


def gradient_sequence(params, steps, seed=1, none_every=None):
    """``steps`` lists of one gradient (or None) per parameter."""
    rng = np.random.default_rng(seed)
    seq = []
    for t in range(steps):
        row = []
        for i, p in enumerate(params):
            g = rng.standard_normal(p.shape).astype(p.dtype)
            row.append(None if none_every and (t + i) % none_every == 0 else g)
        seq.append(row)
    return seq


def run_ours(opt, params, grads):
    for row in grads:
        for p, g in zip(params, row):
            p.grad = None if g is None else g.copy()
        opt.step()


def run_torch(torch, opt, tparams, grads):
    for row in grads:
        for p, g in zip(tparams, row):
            p.grad = None if g is None else torch.from_numpy(g.copy())
        opt.step()


def torch_copies(torch, params):
    return [torch.tensor(p.data.copy(), requires_grad=True) for p in params]


def assert_same_as_torch(params, tparams, rtol=1e-12, atol=1e-14):
    for p, q in zip(params, tparams):
        np.testing.assert_allclose(p.data, q.detach().numpy(), rtol=rtol, atol=atol)


def checkpoint_round_trip(obj):
    """Store ``obj`` as JSON plus arrays in an ``.npz`` (no pickle) and read it back."""
    arrays = {}

    def flatten(x):
        if isinstance(x, np.ndarray):
            arrays[f"a{len(arrays)}"] = x
            return {"__array__": f"a{len(arrays) - 1}"}
        if isinstance(x, dict):
            return {str(k): flatten(v) for k, v in x.items()}  # JSON keys become strings
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
# update rules against torch.optim
# ----------------------------------------------------------------------------------------------
SGD_CASES = [
    {"momentum": m, "dampening": d, "nesterov": n, "weight_decay": wd, "maximize": mx}
    for m, d, n, wd, mx in itertools.product([0.0, 0.9], [0.0, 0.5], [False, True], [0.0, 0.1],
                                             [False, True])
    if not (n and (m == 0 or d != 0))
]


@pytest.mark.parametrize("options", SGD_CASES, ids=lambda o: "-".join(f"{k}={v}" for k, v in
                                                                      o.items()))
def test_sgd_matches_torch(options):
    torch = pytest.importorskip("torch")
    params = make_params()
    tparams = torch_copies(torch, params)
    grads = gradient_sequence(params, STEPS)
    run_ours(optim.SGD(params, lr=0.05, **options), params, grads)
    run_torch(torch, torch.optim.SGD(tparams, lr=0.05, **options), tparams, grads)
    assert_same_as_torch(params, tparams)


ADAM_CASES = [
    {"weight_decay": wd, "amsgrad": a, "maximize": mx, "betas": b, "eps": e}
    for wd, a, mx, b, e in itertools.product([0.0, 0.1], [False, True], [False, True],
                                             [(0.9, 0.999), (0.3, 0.5)], [1e-8])
] + [{"eps": 0.1, "betas": (0.0, 0.0)}, {"eps": 0.0, "betas": (0.5, 0.9)}]


@pytest.mark.parametrize("name", ["Adam", "AdamW"])
@pytest.mark.parametrize("options", ADAM_CASES, ids=lambda o: "-".join(f"{k}={v}" for k, v in
                                                                       o.items()))
def test_adam_matches_torch(name, options):
    torch = pytest.importorskip("torch")
    params = make_params()
    tparams = torch_copies(torch, params)
    grads = gradient_sequence(params, STEPS)
    run_ours(getattr(optim, name)(params, lr=0.03, **options), params, grads)
    run_torch(torch, getattr(torch.optim, name)(tparams, lr=0.03, **options), tparams, grads)
    assert_same_as_torch(params, tparams)


def test_defaults_match_torch():
    torch = pytest.importorskip("torch")
    for name in ["SGD", "Adam", "AdamW"]:
        ours = getattr(optim, name)(make_params()).defaults
        theirs = getattr(torch.optim, name)(torch_copies(torch, make_params())).defaults
        for key, value in ours.items():
            assert theirs[key] == value, (name, key)


@pytest.mark.parametrize("name, options", [
    ("SGD", {"momentum": 0.9, "nesterov": True}),
    ("Adam", {"weight_decay": 0.1, "amsgrad": True}),
    ("AdamW", {"betas": (0.8, 0.99)}),
])
def test_param_groups_with_their_own_options_match_torch(name, options):
    torch = pytest.importorskip("torch")
    params = make_params()
    tparams = torch_copies(torch, params)
    grads = gradient_sequence(params, STEPS)

    def groups(ps):
        return [{"params": ps[:1]}, {"params": ps[1:], "lr": 0.2, "weight_decay": 0.05}]

    run_ours(getattr(optim, name)(groups(params), lr=0.01, **options), params, grads)
    run_torch(torch, getattr(torch.optim, name)(groups(tparams), lr=0.01, **options), tparams,
              grads)
    assert_same_as_torch(params, tparams)


@pytest.mark.parametrize("name, options", [
    ("SGD", {"momentum": 0.9, "dampening": 0.1}),
    ("Adam", {"amsgrad": True}),
    ("AdamW", {}),
])
def test_none_grads_are_skipped_like_torch(name, options):
    torch = pytest.importorskip("torch")
    params = make_params()
    tparams = torch_copies(torch, params)
    grads = gradient_sequence(params, STEPS, none_every=3)
    run_ours(getattr(optim, name)(params, lr=0.05, **options), params, grads)
    run_torch(torch, getattr(torch.optim, name)(tparams, lr=0.05, **options), tparams, grads)
    assert_same_as_torch(params, tparams)


@pytest.mark.parametrize("name, options", [
    ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adam", {"amsgrad": True, "weight_decay": 0.01}),
    ("AdamW", {}),
])
def test_float32_stays_float32_and_is_close_to_torch(name, options):
    torch = pytest.importorskip("torch")
    params = make_params(np.float32)
    tparams = torch_copies(torch, params)
    opt = getattr(optim, name)(params, lr=0.05, **options)
    grads = gradient_sequence(params, STEPS)
    run_ours(opt, params, grads)
    run_torch(torch, getattr(torch.optim, name)(tparams, lr=0.05, **options), tparams, grads)
    for p in params:
        assert p.data.dtype == np.float32
        for buffer in opt.state[p].values():
            if isinstance(buffer, np.ndarray):
                assert buffer.dtype == np.float32
    assert_same_as_torch(params, tparams, rtol=1e-5, atol=1e-6)


# ----------------------------------------------------------------------------------------------
# behaviour
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW"])
def test_updates_in_place_and_leaves_grad_alone(name):
    params = make_params()
    arrays = [p.data for p in params]
    view = params[0].data[0]  # a view into the first parameter
    before = view.copy()
    opt = getattr(optim, name)(params, lr=0.1, **({"momentum": 0.9} if name == "SGD" else {}))
    grads = gradient_sequence(params, 3)
    for row in grads:
        for p, g in zip(params, row):
            p.grad = g.copy()
        opt.step()
        for p, g in zip(params, row):
            np.testing.assert_array_equal(p.grad, g)  # the step does not write to .grad
    assert all(p.data is a for p, a in zip(params, arrays))
    assert not np.array_equal(view, before)
    np.testing.assert_array_equal(view, params[0].data[0])


def test_parameter_without_grad_is_untouched_and_has_no_state():
    params = make_params()
    frozen = params[1].data.copy()
    opt = optim.Adam(params, lr=0.1)
    for row in gradient_sequence(params, 3):
        params[0].grad, params[2].grad = row[0], row[2]
        opt.step()
    np.testing.assert_array_equal(params[1].data, frozen)
    assert params[1] not in opt.state
    assert opt.state[params[0]]["step"] == 3


def test_sgd_step_sizes_by_hand():
    w = nc.tensor(np.array([1.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.5, momentum=0.5, dampening=0.5)
    for _ in range(3):
        w.grad = np.array([2.0])
        opt.step()
    # b = 2, then 0.5 * 2 + 0.5 * 2 = 2, 2: three steps of 0.5 * 2
    np.testing.assert_array_equal(w.data, [-2.0])


def test_zero_grad():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    for p in params:
        p.grad = np.ones_like(p.data)
    grad0 = params[0].grad
    opt.zero_grad(set_to_none=False)
    assert params[0].grad is grad0 and not grad0.any()
    opt.zero_grad()
    assert all(p.grad is None for p in params)
    opt.step()  # nothing to do


def test_step_with_closure_returns_its_result():
    w = nc.tensor(np.array([1.0, -2.0]), requires_grad=True)
    opt = optim.SGD([w], lr=0.25)

    def closure():
        opt.zero_grad()
        loss = (w * w).sum()
        loss.backward()
        return loss.item()

    assert opt.step(closure) == 5.0
    np.testing.assert_array_equal(w.data, [0.5, -1.0])


def test_grad_of_other_dtype_is_cast_and_wrong_shape_raises():
    w = nc.tensor(np.zeros(3, dtype=np.float32), requires_grad=True)
    opt = optim.SGD([w], lr=1.0)
    w.grad = np.ones(3, dtype=np.float64)
    opt.step()
    assert w.data.dtype == np.float32
    np.testing.assert_array_equal(w.data, [-1, -1, -1])
    w.grad = np.ones(4, dtype=np.float32)
    with pytest.raises(ValueError, match=r"params\[0\] has shape \(3,\) but its grad has shape"):
        opt.step()


def test_accepts_generators_and_group_with_single_tensor():
    params = make_params()
    opt = optim.SGD((p for p in params), lr=0.1)
    assert opt.param_groups[0]["params"] == params
    opt = optim.SGD([{"params": params[0]}, {"params": params[1:], "lr": 1.0}], lr=0.1)
    assert [len(g["params"]) for g in opt.param_groups] == [1, 2]
    assert [g["lr"] for g in opt.param_groups] == [0.1, 1.0]


def test_add_param_group_and_extra_keys_are_kept():
    params = make_params()
    opt = optim.Adam(params[:1], lr=0.1)
    opt.add_param_group({"params": params[1:], "lr": 0.5, "name": "head"})
    assert opt.param_groups[1]["name"] == "head"
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    with pytest.raises(ValueError, match="more than once"):
        opt.add_param_group({"params": params[:1]})


def test_repr_lists_groups():
    text = repr(optim.SGD(make_params(), lr=0.1, momentum=0.9))
    assert text.startswith("SGD (") and "Parameter Group 0" in text and "momentum: 0.9" in text


# ----------------------------------------------------------------------------------------------
# state_dict / load_state_dict
# ----------------------------------------------------------------------------------------------
RESUME_CASES = [
    ("SGD", {"momentum": 0.9, "nesterov": True, "weight_decay": 1e-3}),
    ("SGD", {"momentum": 0.9, "dampening": 0.2}),
    ("Adam", {"amsgrad": True, "weight_decay": 1e-2}),
    ("AdamW", {}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("round_trip", [False, True], ids=["dict", "npz"])
@pytest.mark.parametrize("name, options", RESUME_CASES)
def test_resume_from_state_dict_is_exact(name, options, round_trip, dtype):
    def groups(ps):
        return [{"params": ps[:2]}, {"params": ps[2:], "lr": 0.02}]

    params = make_params(dtype)
    grads = gradient_sequence(params, 10, none_every=4)
    opt = getattr(optim, name)(groups(params), lr=0.05, **options)
    run_ours(opt, params, grads[:5])
    saved = opt.state_dict()
    saved_params = [p.data.copy() for p in params]
    run_ours(opt, params, grads[5:])

    if round_trip:
        saved = checkpoint_round_trip(saved)
    fresh = [nc.tensor(a.copy(), requires_grad=True) for a in saved_params]
    opt2 = getattr(optim, name)(groups(fresh), lr=0.5)  # options come from the state
    opt2.load_state_dict(saved)
    run_ours(opt2, fresh, grads[5:])
    for p, q in zip(params, fresh):
        np.testing.assert_array_equal(p.data, q.data)
        assert q.data.dtype == dtype
    assert opt2.param_groups[1]["lr"] == 0.02
    for p, q in zip(params, fresh):
        assert set(opt.state.get(p, {})) == set(opt2.state.get(q, {}))


def test_state_dict_layout_is_like_torch_and_is_a_copy():
    params = make_params()
    opt = optim.Adam([{"params": params[:1]}, {"params": params[1:], "lr": 0.1}], amsgrad=True)
    params[0].grad = np.ones_like(params[0].data)
    params[2].grad = np.ones_like(params[2].data)
    opt.step()
    sd = opt.state_dict()
    assert [g["params"] for g in sd["param_groups"]] == [[0], [1, 2]]
    assert sorted(sd["state"]) == [0, 2]
    assert set(sd["state"][0]) == {"step", "exp_avg", "exp_avg_sq", "max_exp_avg_sq"}
    assert sd["state"][0]["step"] == 1 and type(sd["state"][0]["step"]) is int
    assert sd["param_groups"][1]["betas"] == [0.9, 0.999]  # JSON-able: a list
    saved = sd["state"][0]["exp_avg"].copy()
    opt.step()
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], saved)
    # a checkpoint round trip gives betas back as a tuple
    opt.load_state_dict(checkpoint_round_trip(sd))
    assert opt.param_groups[1]["betas"] == (0.9, 0.999)
    assert opt.state[params[0]]["step"] == 1


def test_load_state_dict_validates_and_changes_nothing_on_error():
    params = make_params()
    opt = optim.SGD(params, lr=0.1, momentum=0.9)
    for p in params:
        p.grad = np.ones_like(p.data)
    opt.step()
    good = opt.state_dict()
    two_groups = optim.SGD([{"params": params[:1]}, {"params": params[1:]}], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="the state has 2 parameter groups but the optimizer "
                                         "has 1"):
        opt.load_state_dict(two_groups)
    fewer = optim.SGD(params[:2], lr=0.1).state_dict()
    with pytest.raises(ValueError, match="param group 0 has 2 parameters in the state but 3"):
        opt.load_state_dict(fewer)
    bad_shape = opt.state_dict()
    bad_shape["state"][1]["momentum_buffer"] = np.zeros(7)
    with pytest.raises(ValueError, match=r"'momentum_buffer' has shape \(7,\) but the parameter "
                                         r"has shape \(5,\)"):
        opt.load_state_dict(bad_shape)
    bad_key = opt.state_dict()
    bad_key["state"][0]["exp_avg"] = np.zeros((3, 4))
    with pytest.raises(ValueError, match="unknown buffer 'exp_avg'"):
        opt.load_state_dict(bad_key)
    bad_index = opt.state_dict()
    bad_index["state"][9] = bad_index["state"].pop(0)
    with pytest.raises(ValueError, match="parameter index 9"):
        opt.load_state_dict(bad_index)
    bad_option = opt.state_dict()
    bad_option["param_groups"][0]["lr"] = -1.0
    bad_option["param_groups"][0]["momentum"] = 0.5
    with pytest.raises(ValueError, match="lr must be >= 0, got -1.0"):
        opt.load_state_dict(bad_option)
    with pytest.raises(ValueError, match="expected a dict with keys 'state' and 'param_groups'"):
        opt.load_state_dict({"state": {}})
    # nothing above changed the optimizer
    assert opt.param_groups[0]["momentum"] == 0.9
    assert opt.state_dict()["state"].keys() == good["state"].keys()
    for key, entry in good["state"].items():
        np.testing.assert_array_equal(opt.state_dict()["state"][key]["momentum_buffer"],
                                      entry["momentum_buffer"])


def test_load_state_dict_needs_every_adam_buffer():
    params = make_params()
    opt = optim.Adam(params, lr=0.1)
    params[0].grad = np.ones_like(params[0].data)
    opt.step()
    sd = opt.state_dict()
    del sd["state"][0]["exp_avg_sq"]
    with pytest.raises(ValueError, match=r"state \[0\]: buffers \['exp_avg_sq'\] are missing"):
        opt.load_state_dict(sd)
    with pytest.raises(TypeError, match="expected a dict with keys 'state' and 'param_groups', "
                                        "got list"):
        opt.load_state_dict([])


def test_load_state_dict_keeps_group_dicts():
    params = make_params()
    opt = optim.SGD(params, lr=0.1)
    group = opt.param_groups[0]
    sd = opt.state_dict()
    sd["param_groups"][0]["lr"] = 0.3
    opt.load_state_dict(sd)
    assert opt.param_groups[0] is group and group["lr"] == 0.3 and group["params"] == params


# ----------------------------------------------------------------------------------------------
# argument checks
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, message", [
    (lambda p: optim.SGD(p, lr=-1), ValueError, "SGD: lr must be >= 0, got -1"),
    (lambda p: optim.SGD(p, momentum=-0.5), ValueError, "SGD: momentum must be >= 0, got -0.5"),
    (lambda p: optim.SGD(p, weight_decay=-1e-4), ValueError,
     "SGD: weight_decay must be >= 0, got -0.0001"),
    (lambda p: optim.SGD(p, nesterov=True), ValueError,
     ("SGD: nesterov=True requires momentum > 0 and dampening == 0, got momentum=0, "
     "dampening=0")),
    (lambda p: optim.SGD(p, momentum=0.9, dampening=0.1, nesterov=True), ValueError,
     "dampening=0.1"),
    (lambda p: optim.SGD(p, lr="0.1"), TypeError, "SGD: lr must be a real number, got '0.1'"),
    (lambda p: optim.SGD(p, lr=float("nan")), ValueError, "SGD: lr must be finite, got nan"),
    (lambda p: optim.SGD(p, maximize=1), TypeError, "SGD: maximize must be a bool, got 1"),
    (lambda p: optim.Adam(p, lr=-0.1), ValueError, "Adam: lr must be >= 0, got -0.1"),
    (lambda p: optim.Adam(p, betas=(1.0, 0.999)), ValueError,
     r"Adam: betas\[0\] must be in \[0, 1\), got 1.0"),
    (lambda p: optim.Adam(p, betas=(0.9, -0.1)), ValueError,
     r"Adam: betas\[1\] must be in \[0, 1\), got -0.1"),
    (lambda p: optim.Adam(p, betas=0.9), TypeError, r"Adam: betas must be a pair"),
    (lambda p: optim.Adam(p, eps=-1e-8), ValueError, "Adam: eps must be >= 0, got -1e-08"),
    (lambda p: optim.AdamW(p, weight_decay=-1), ValueError,
     "AdamW: weight_decay must be >= 0, got -1"),
    (lambda p: optim.AdamW(p, amsgrad=None), TypeError, "AdamW: amsgrad must be a bool"),
    (lambda p: optim.SGD([{"params": p[:1]}, {"params": p[1:], "lr": -2}]), ValueError,
     "SGD param group 1: lr must be >= 0, got -2"),
    (lambda p: optim.SGD([], lr=0.1), ValueError, "SGD: params is empty"),
    (lambda p: optim.SGD(p[0], lr=0.1), TypeError, "got a single Tensor; wrap it in a list"),
    (lambda p: optim.SGD(set(p), lr=0.1), TypeError, "ordered collection"),
    (lambda p: optim.SGD([p[0], {"params": p[1:]}], lr=0.1), TypeError, "mixes tensors and dicts"),
    (lambda p: optim.SGD([p[0], "w"], lr=0.1), TypeError,
     r"SGD param group 0: params\[1\] must be a tensor .* got str"),
    (lambda p: optim.SGD([p[0], p[0]], lr=0.1), ValueError, "appear more than once"),
    (lambda p: optim.SGD([{"lr": 0.1}]), ValueError, "SGD param group 0: the dict has no 'params'"),
    (lambda p: optim.SGD([nc.tensor(np.arange(3))]), TypeError,
     r"params\[0\] has dtype int64; only floating-point"),
])
def test_bad_arguments_raise_clear_errors(make, error, message):
    with pytest.raises(error, match=message):
        make(make_params())
