"""RMSprop with the update rule of ``torch.optim.RMSprop``."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..validation import check_bool, check_real
from .optimizer import Optimizer

__all__ = ["RMSprop"]


class _Hyper(NamedTuple):
    lr: float
    alpha: float
    eps: float
    weight_decay: float
    momentum: float
    centered: bool
    maximize: bool


class RMSprop(Optimizer):
    r"""RMSprop, as ``torch.optim.RMSprop``.

    For each parameter :math:`\theta` with gradient :math:`g_t`:

    .. math::

        g_t &\leftarrow -g_t \quad\text{if maximize};\qquad
        g_t \leftarrow g_t + \lambda\,\theta_{t-1} \quad\text{(weight decay)}\\
        v_t &= \alpha\,v_{t-1} + (1-\alpha)\,g_t^2, \qquad v_0 = 0\\
        \tilde v_t &= v_t - \bar g_t^2 \quad\text{with } \bar g_t = \alpha\,\bar g_{t-1}
            + (1-\alpha)\,g_t \quad\text{(if centered, else } \tilde v_t = v_t)\\
        b_t &= \mu\,b_{t-1} + g_t / (\sqrt{\tilde v_t} + \epsilon), \qquad
            \theta_t = \theta_{t-1} - \gamma\,b_t \quad\text{(if } \mu > 0\text{)}\\
        \theta_t &= \theta_{t-1} - \gamma\,g_t / (\sqrt{\tilde v_t} + \epsilon)
            \quad\text{(otherwise)}

    Parameters
    ----------
    params : iterable of Tensor or of dict
    lr : float, default 1e-2
    alpha : float, default 0.99
        Smoothing constant of the squared-gradient average.
    eps : float, default 1e-8
    weight_decay, momentum : float, default 0
    centered : bool, default False
        Divide by the estimated variance instead of the raw second moment.
    maximize : bool, default False

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> w = nc.tensor(np.array([1.0]), requires_grad=True)
    >>> opt = nc.optim.RMSprop([w], lr=0.01)
    >>> w.grad = np.array([2.0])
    >>> opt.step()
    >>> w.data.round(4)                # 1 − 0.01 · 2 / √(0.01 · 4)
    array([0.9])
    """

    _array_state = ("square_avg", "momentum_buffer", "grad_avg")
    _scalar_state = ("step",)
    _required_state = ("step", "square_avg")

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0, momentum: float = 0, centered: bool = False,
                 maximize: bool = False) -> None:
        defaults = {"lr": lr, "alpha": alpha, "eps": eps, "weight_decay": weight_decay,
                    "momentum": momentum, "centered": centered, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_options(self, options: dict, where: str) -> None:
        for name in ("lr", "alpha", "eps", "weight_decay", "momentum"):
            options[name] = check_real(options[name], name, where, low=0)
        for name in ("centered", "maximize"):
            options[name] = check_bool(options[name], name, where)

    def _hyper(self, group: dict) -> _Hyper:
        return _Hyper(float(group["lr"]), float(group["alpha"]), float(group["eps"]),
                      float(group["weight_decay"]), float(group["momentum"]),
                      bool(group["centered"]), bool(group["maximize"]))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, h: _Hyper) -> None:
        g = -grad if h.maximize else grad
        if h.weight_decay != 0:
            g = g + h.weight_decay * param
        if "square_avg" not in state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param)
            if h.momentum > 0:
                state["momentum_buffer"] = np.zeros_like(param)
            if h.centered:
                state["grad_avg"] = np.zeros_like(param)
        state["step"] += 1
        v = state["square_avg"]
        v *= h.alpha                                 # v = α v + (1 − α) g²
        v += (1 - h.alpha) * g * g
        if h.centered:
            gbar = state.setdefault("grad_avg", np.zeros_like(param))
            gbar *= h.alpha                          # ḡ = α ḡ + (1 − α) g
            gbar += (1 - h.alpha) * g
            avg = np.sqrt(v - gbar * gbar) + h.eps   # √(v − ḡ²) + ε
        else:
            avg = np.sqrt(v) + h.eps
        if h.momentum > 0:
            buf = state.setdefault("momentum_buffer", np.zeros_like(param))
            buf *= h.momentum                        # b = μ b + g / avg
            buf += g / avg
            param -= h.lr * buf
        else:
            param -= h.lr * g / avg
