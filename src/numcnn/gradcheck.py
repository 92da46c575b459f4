"""Finite-difference gradient checking with ``torch.autograd.gradcheck``'s contract."""
from __future__ import annotations

import numpy as np

from .autograd import Tensor

__all__ = ["GradcheckError", "gradcheck"]


class GradcheckError(RuntimeError):
    """An analytic gradient disagrees with central finite differences."""


def _scalarize(output, rng: np.random.Generator) -> tuple[list[Tensor], list[np.ndarray]]:
    """Reduce the outputs to one scalar with fixed random weights (never all ones, which would
    hide transposition bugs)."""
    outs = output if isinstance(output, (tuple, list)) else (output,)
    outs = [o for o in outs if isinstance(o, Tensor)]
    weights = [rng.standard_normal(o.shape) for o in outs]
    return outs, weights


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True, seed=0):
    """Compare the analytic gradients of ``fn(*inputs)`` with central finite differences.

    Every input tensor with ``requires_grad=True`` must be float64. The outputs are contracted
    with fixed random weights ``r`` into ``L = Σ <r, out>``; for each input element
    ``(L(x + eps) − L(x − eps)) / (2·eps)`` is compared with the backward pass, passing when
    ``|analytic − numeric| <= atol + rtol·|numeric|``.

    Returns True when every gradient matches. Otherwise raises :class:`GradcheckError` naming the
    input, the worst element, both values and their difference (or returns False when
    ``raise_exception=False``).

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> x = nc.tensor(np.random.default_rng(0).standard_normal((2, 3)), requires_grad=True)
    >>> nc.gradcheck(lambda t: (t * t).sum(axis=1), (x,))
    True
    """
    inputs = tuple(inputs) if isinstance(inputs, (tuple, list)) else (inputs,)
    checked = [(k, t) for k, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input tensor has requires_grad=True")
    for k, t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: input {k} must be float64 for finite differences, got {t.dtype}")
    rng = np.random.default_rng(seed)
    outs, weights = _scalarize(fn(*inputs), rng)

    def loss_value() -> float:
        res = fn(*inputs)
        res = res if isinstance(res, (tuple, list)) else (res,)
        res = [o for o in res if isinstance(o, Tensor)]
        return float(sum(np.sum(o.data * r) for o, r in zip(res, weights)))

    for _, t in checked:
        t.grad = None
    total = None
    for o, r in zip(outs, weights):
        if not o.requires_grad:
            continue
        term = (o * Tensor(r.astype(o.dtype))).sum()
        total = term if total is None else total + term
    if total is not None:
        total.backward()

    for k, t in checked:
        analytic = np.zeros(t.shape) if t.grad is None else t.grad
        numeric = np.zeros(t.shape)
        flat = t.data.reshape(-1)
        for i in range(flat.size):
            old = flat[i]
            flat[i] = old + eps
            plus = loss_value()
            flat[i] = old - eps
            minus = loss_value()
            flat[i] = old
            numeric.flat[i] = (plus - minus) / (2 * eps)
        diff = np.abs(analytic - numeric)
        bad = diff > atol + rtol * np.abs(numeric)
        if bad.any():
            worst = tuple(int(i) for i in np.unravel_index(
                np.argmax(diff - rtol * np.abs(numeric)), t.shape))
            msg = (
                f"gradcheck: gradient of input {k} (shape {t.shape}) disagrees with finite "
                f"differences at {sum(bad.flat)} of {t.numel()} elements; worst at index {worst}: "
                f"analytic {analytic[worst]:.8g}, numeric {numeric[worst]:.8g}, "
                f"difference {diff[worst]:.3g} (atol={atol}, rtol={rtol})"
            )
            if raise_exception:
                raise GradcheckError(msg)
            return False
    return True
