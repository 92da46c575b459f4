"""Adam and AdamW: adaptive moment estimation, with L2 or decoupled weight decay."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..validation import check_bool, check_real
from .optimizer import Optimizer

__all__ = ["Adam", "AdamW"]


class _Hyper(NamedTuple):
    lr: float
    beta1: float
    beta2: float
    eps: float
    weight_decay: float
    amsgrad: bool
    maximize: bool


class Adam(Optimizer):
    r"""Adam, with the update rule of ``torch.optim.Adam``.

    For each parameter :math:`\theta` with gradient :math:`g_t` at step :math:`t = 1, 2, \dots`:

    .. math::

        g_t &\leftarrow -g_t \quad\text{if maximize}\\
        g_t &\leftarrow g_t + \lambda\,\theta_{t-1} \quad\text{(Adam: L2 weight decay)}\\
        \theta_{t-1} &\leftarrow (1 - \gamma\lambda)\,\theta_{t-1}
            \quad\text{(AdamW: decoupled weight decay)}\\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\,g_t\\
        v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\,g_t^2\\
        \hat v_t &= \max(\hat v_{t-1}, v_t) \text{ if amsgrad, else } v_t\\
        \theta_t &= \theta_{t-1} - \frac{\gamma}{1 - \beta_1^t}\;
            \frac{m_t}{\sqrt{\hat v_t} / \sqrt{1 - \beta_2^t} + \epsilon}

    with :math:`m_0 = v_0 = \hat v_0 = 0`, learning rate :math:`\gamma` and weight decay
    :math:`\lambda`. The step count :math:`t` is kept per parameter and only advances when the
    parameter has a gradient.

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters, or parameter groups (dicts with ``"params"`` and per-group options).
    lr : float, default 1e-3
        Learning rate :math:`\gamma`, ``>= 0``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates :math:`\beta_1, \beta_2` of the moment estimates, each in ``[0, 1)``.
    eps : float, default 1e-8
        :math:`\epsilon`, added to the denominator, ``>= 0``.
    weight_decay : float, default 0
        :math:`\lambda`, ``>= 0``: an L2 penalty added to the gradient.
    amsgrad : bool, default False
        Use the running maximum of :math:`v_t` (AMSGrad).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.

    Attributes
    ----------
    state : mapping
        ``state[param]``: ``"step"`` (int :math:`t`), ``"exp_avg"`` (:math:`m_t`),
        ``"exp_avg_sq"`` (:math:`v_t`) and, with amsgrad, ``"max_exp_avg_sq"``
        (:math:`\hat v_t`).

    Examples
    --------
    >>> import numpy as np, numcnn as nc
    >>> from numcnn.optim import Adam
    >>> w = nc.tensor(np.array([1.0, 2.0]), requires_grad=True)
    >>> opt = Adam([w], lr=0.1)
    >>> w.grad = np.array([3.0, -0.5])
    >>> opt.step()
    >>> w.data  # the first Adam step moves each weight by about lr, against its gradient's sign
    array([0.9, 2.1])
    """

    _decoupled = False
    _array_state = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq")
    _scalar_state = ("step",)
    _required_state = ("step", "exp_avg", "exp_avg_sq")

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0, amsgrad: bool = False,
                 maximize: bool = False) -> None:
        defaults = {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                        "amsgrad": amsgrad, "maximize": maximize}
        super().__init__(params, defaults)

    def _check_options(self, options: dict, where: str) -> None:
        options["lr"] = check_real(options["lr"], "lr", where, low=0)
        betas = options["betas"]
        if isinstance(betas, np.ndarray):
            betas = betas.tolist()
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"{where}: betas must be a pair (beta1, beta2), got {betas!r}")
        options["betas"] = tuple(
            check_real(b, f"betas[{i}]", where, low=0, high=1, high_open=True)
            for i, b in enumerate(betas))
        options["eps"] = check_real(options["eps"], "eps", where, low=0)
        options["weight_decay"] = check_real(options["weight_decay"], "weight_decay", where, low=0)
        options["amsgrad"] = check_bool(options["amsgrad"], "amsgrad", where)
        options["maximize"] = check_bool(options["maximize"], "maximize", where)

    def _hyper(self, group: dict) -> _Hyper:
        beta1, beta2 = group["betas"]
        return _Hyper(float(group["lr"]), float(beta1), float(beta2), float(group["eps"]),
                      float(group["weight_decay"]), bool(group["amsgrad"]),
                      bool(group["maximize"]))

    def _update(self, param: np.ndarray, grad: np.ndarray, state: dict, h: _Hyper) -> None:
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
            if h.amsgrad:
                state["max_exp_avg_sq"] = np.zeros_like(param)
        if h.amsgrad and "max_exp_avg_sq" not in state:  # amsgrad switched on later
            state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        step = state["step"]
        if h.maximize:
            grad = -grad
        if h.weight_decay != 0:
            if self._decoupled:
                param *= 1 - h.lr * h.weight_decay  # theta <- (1 - lr * lambda) * theta
            else:
                grad = grad + h.weight_decay * param  # g <- g + lambda * theta
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        # m_t = beta1 * m_{t-1} + (1 - beta1) * g_t, written as an interpolation m + w * (g - m)
        # (w = 1 - beta1) the way torch's lerp computes it
        weight = 1 - h.beta1
        if weight < 0.5:
            exp_avg += weight * (grad - exp_avg)
        else:
            exp_avg[...] = grad - (grad - exp_avg) * (1 - weight)
        exp_avg_sq *= h.beta2  # v_t = beta2 * v_{t-1} + (1 - beta2) * g_t^2
        exp_avg_sq += (1 - h.beta2) * grad * grad
        bias_correction1 = 1 - h.beta1 ** step
        bias_correction2_sqrt = (1 - h.beta2 ** step) ** 0.5
        step_size = h.lr / bias_correction1
        if h.amsgrad:
            np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
            denom = np.sqrt(state["max_exp_avg_sq"])  # v_hat_t = max(v_hat_{t-1}, v_t)
        else:
            denom = np.sqrt(exp_avg_sq)
        denom /= bias_correction2_sqrt  # sqrt(v_hat_t) / sqrt(1 - beta2^t) + eps
        denom += h.eps
        update = -step_size * exp_avg  # theta_t = theta_{t-1} - lr / (1 - beta1^t) * m_t / denom
        update /= denom
        param += update


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, the update rule of ``torch.optim.AdamW``.

    The same update as :class:`Adam`, except that weight decay shrinks the parameter directly
    before the moment update instead of being added to the gradient:

    .. math::

        \theta_{t-1} \leftarrow (1 - \gamma\lambda)\,\theta_{t-1}

    Parameters
    ----------
    params : iterable of Tensor or of dict
        Parameters, or parameter groups (dicts with ``"params"`` and per-group options).
    lr : float, default 1e-3
        Learning rate :math:`\gamma`, ``>= 0``.
    betas : (float, float), default (0.9, 0.999)
        Decay rates :math:`\beta_1, \beta_2` of the moment estimates, each in ``[0, 1)``.
    eps : float, default 1e-8
        :math:`\epsilon`, added to the denominator, ``>= 0``.
    weight_decay : float, default 1e-2
        Decoupled weight decay :math:`\lambda`, ``>= 0``.
    amsgrad : bool, default False
        Use the running maximum of :math:`v_t` (AMSGrad).
    maximize : bool, default False
        Maximize the objective instead of minimizing it.
    """

    _decoupled = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 1e-2, amsgrad: bool = False,
                 maximize: bool = False) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad, maximize=maximize)
