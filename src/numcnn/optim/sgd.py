"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..validation import check_bool, check_real
from .optimizer import Optimizer

__all__ = ["SGD"]


class _Hyper(NamedTuple):
    lr: float
    momentum: float
    dampening: float
    weight_decay: float
    nesterov: bool
    maximize: bool


class SGD(Optimizer):
    r"""Stochastic gradient descent, with the update rule of ``torch.optim.SGD``.

    For each parameter :math:`\theta` with gradient :math:`g_t` at step :math:`t`:

    .. math::

        g_t &\leftarrow -g_t \quad\text{if maximize}\\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} \quad\text{(weight decay)}\\
        b_t &= \begin{cases} g_t & t = 1\\ \mu\,b_{t-1} + (1 - \tau)\,g_t & t > 1\end{cases}\\
        g_t &\leftarrow \begin{cases} g_t + \mu\,b_t & \text{nesterov}\\ b_t & \text{otherwise}
        \end{cases} \quad\text{(if } \mu \ne 0\text{)}\\
        \theta_t &= \theta_{t-1} - \gamma\,g_t

    with learning rate :math:`\gamma`, momentum :math:`\mu`, dampening :math:`\tau` and weight
    decay :math:`\lambda`. The momentum buffer starts as the first gradient, without dampening.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters, or parameter groups (dicts with ``"params"`` and per-group options).
    lr : float, default 1e-3
        Learning rate :math:`\gamma`, ``>= 0``.
    momentum : float, default 0
        Momentum factor :math:`\mu`, ``>= 0``.
    dampening : float, default 0
        Dampening :math:`\tau` of the momentum.
    weight_decay : float, default 0
        L2 penalty :math:`\lambda`, ``>= 0``, added to the gradient.
    nesterov : bool, default False
        Nesterov momentum; needs ``momentum > 0`` and ``dampening == 0``.
    maximize : bool, default False
        Maximize the objective instead of minimizing it.

    Attributes
    ----------
    state : mapping
        ``state[param]["momentum_buffer"]``: :math:`b_t`, once the parameter has been updated
        with a nonzero momentum.

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> from numcnn.optim import SGD
    >>> w = nc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    >>> opt = SGD([w], lr=0.1, momentum=0.9)
    >>> w.grad = np.array([1.0, -1.0])
    >>> opt.step()
    >>> w.data
    array([0.9, 2.1])
    """

    _array_state = ("momentum_buffer",)

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0, dampening: float = 0,
                 weight_decay: float = 0, nesterov: bool = False, maximize: bool = False) -> None:
        defaults = {"lr": lr, "momentum": momentum, "dampening": dampening,
                        "weight_decay": weight_decay, "nesterov": nesterov, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_options(self, options: dict, where: str) -> None:
        options["lr"] = check_real(options["lr"], "lr", where, low=0)
        options["momentum"] = check_real(options["momentum"], "momentum", where, low=0)
        options["dampening"] = check_real(options["dampening"], "dampening", where)
        options["weight_decay"] = check_real(options["weight_decay"], "weight_decay", where, low=0)
        options["nesterov"] = check_bool(options["nesterov"], "nesterov", where)
        options["maximize"] = check_bool(options["maximize"], "maximize", where)
        if options["nesterov"] and (options["momentum"] <= 0 or options["dampening"] != 0):
            raise ValueError(
                f"{where}: nesterov=True requires momentum > 0 and dampening == 0, got "
                f"momentum={options['momentum']!r}, dampening={options['dampening']!r}")

    def _hyper(self, group: dict) -> _Hyper:
        return _Hyper(float(group["lr"]), float(group["momentum"]), float(group["dampening"]),
                      float(group["weight_decay"]), bool(group["nesterov"]),
                      bool(group["maximize"]))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, h: _Hyper) -> None:
        d_p = -grad if h.maximize else grad  # never written to: it may be the caller's .grad
        if h.weight_decay != 0:
            d_p = d_p + h.weight_decay * param  # g <- g + lambda * theta
        if h.momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = np.array(d_p, copy=True)  # b_1 = g_1
            else:
                buf *= h.momentum  # b_t = mu * b_{t-1} + (1 - tau) * g_t
                buf += (1 - h.dampening) * d_p
            d_p = d_p + h.momentum * buf if h.nesterov else buf  # g + mu * b_t, or b_t
        param -= h.lr * d_p  # theta_t = theta_{t-1} - lr * g
