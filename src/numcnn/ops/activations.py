"""Smooth activations and their derivatives, on ndarrays: GELU (exact and tanh), SiLU, Softplus.

Each ``*_forward`` returns ``y = f(x)``; each ``*_backward`` returns ``gx = g · f'(x)``.
NumPy has no ``erf``, so :func:`erf` is computed here to double precision (series and
continued fraction); float32 inputs are computed in float64 and cast back.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["erf", "gelu_backward", "gelu_forward", "silu_backward", "silu_forward",
           "softplus_backward", "softplus_forward"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_KAPPA = 0.044715
_TERMS = 64


def erf(x: np.ndarray) -> np.ndarray:
    """``erf(x) = (2/√π) ∫₀ˣ e^{−t²} dt`` in float64, vectorized (no loop over elements).

    ``|x| < 3``: ``erf(x) = (2/√π) e^{−x²} Σₙ 2ⁿ x^{2n+1} / (1·3···(2n+1))`` (all terms positive:
    no cancellation; 64 terms reach double precision). ``|x| ≥ 3``: ``erfc(x) = e^{−x²} /
    (√π K)`` with the continued fraction ``K = x + (1/2)/(x + 1/(x + (3/2)/(x + ...)))``.
    """
    x = np.asarray(x, dtype=np.float64)
    a = np.abs(x)
    small = a < 3.0
    xs = np.where(small, a, 0.0)
    term = xs.copy()
    total = xs.copy()
    x2 = xs * xs
    for n in range(1, _TERMS):            # loop over series terms, not over elements
        term = term * (2.0 * x2 / (2 * n + 1))
        total += term
    series = 2.0 / math.sqrt(math.pi) * np.exp(-x2) * total
    xl = np.where(small, 3.0, a)
    k = xl.copy()
    for n in range(_TERMS, 0, -1):        # the continued fraction, evaluated from its tail
        k = xl + (n / 2.0) / k
    erfc = np.exp(-xl * xl) / (math.sqrt(math.pi) * k)
    return np.sign(x) * np.where(small, series, 1.0 - erfc)


def _phi(x: np.ndarray) -> np.ndarray:
    """Standard normal density ``φ(x) = e^{−x²/2} / √(2π)``."""
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def gelu_forward(x: np.ndarray, approximate: str = "none") -> np.ndarray:
    """``'none'``: ``y = x Φ(x) = ½ x (1 + erf(x/√2))``; ``'tanh'``:
    ``y = ½ x (1 + tanh(√(2/π) (x + 0.044715 x³)))``."""
    x64 = x.astype(np.float64, copy=False)
    if approximate == "tanh":
        y = 0.5 * x64 * (1.0 + np.tanh(_SQRT_2_OVER_PI * (x64 + _KAPPA * x64 ** 3)))
    else:
        y = 0.5 * x64 * (1.0 + erf(x64 / math.sqrt(2.0)))
    return y.astype(x.dtype, copy=False)


def gelu_backward(x: np.ndarray, g: np.ndarray, approximate: str = "none") -> np.ndarray:
    """``'none'``: ``f'(x) = Φ(x) + x φ(x)``; ``'tanh'``, with ``u = √(2/π)(x + κx³)`` and
    ``t = tanh u``: ``f'(x) = ½(1 + t) + ½ x (1 − t²) √(2/π) (1 + 3κx²)``."""
    x64 = x.astype(np.float64, copy=False)
    if approximate == "tanh":
        t = np.tanh(_SQRT_2_OVER_PI * (x64 + _KAPPA * x64 ** 3))
        d = 0.5 * (1 + t) + 0.5 * x64 * (1 - t * t) * _SQRT_2_OVER_PI * (1 + 3 * _KAPPA * x64 ** 2)
    else:
        d = 0.5 * (1.0 + erf(x64 / math.sqrt(2.0))) + x64 * _phi(x64)
    return (g * d).astype(x.dtype, copy=False)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """``1/(1+e^{−x})`` without overflow."""
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(x.dtype, copy=False)


def silu_forward(x: np.ndarray) -> np.ndarray:
    """``y = x σ(x)``."""
    return x * _sigmoid(x)


def silu_backward(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """``f'(x) = σ(x) (1 + x (1 − σ(x)))``."""
    s = _sigmoid(x)
    return g * s * (1 + x * (1 - s))


def softplus_forward(x: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    """``y = (1/β) log(1 + e^{βx})``, and ``y = x`` where ``βx > threshold`` (as PyTorch)."""
    bx = beta * x
    soft = np.logaddexp(0, np.minimum(bx, threshold)) / beta   # log(1 + e^{βx}) / β, stable
    return np.where(bx > threshold, x, soft).astype(x.dtype, copy=False)


def softplus_backward(x: np.ndarray, g: np.ndarray, beta: float, threshold: float) -> np.ndarray:
    """``f'(x) = σ(βx)``, and 1 where ``βx > threshold``."""
    bx = (beta * x).astype(x.dtype, copy=False)
    return (g * np.where(bx > threshold, 1, _sigmoid(bx))).astype(x.dtype, copy=False)
