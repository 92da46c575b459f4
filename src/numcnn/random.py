"""The library's random number generator: seeded once, saved and restored with checkpoints.

Initializers, dropout and random data augmentation draw from :func:`get_rng` unless given a
generator, so ``manual_seed(s)`` makes a whole run reproducible.
"""
from __future__ import annotations

from typing import Any

import numpy as np

_rng = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Reseed the global generator (like ``torch.manual_seed``) and return it."""
    global _rng
    if not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _rng = np.random.default_rng(int(seed))
    return _rng


def get_rng() -> np.random.Generator:
    """The global generator."""
    return _rng


def get_rng_state() -> dict[str, Any]:
    """The generator's state as a JSON-able dict (for checkpoints)."""
    return dict(_rng.bit_generator.state)  # a new dict already; NumPy types it as a Mapping


def set_rng_state(state: dict) -> None:
    """Restore a state returned by :func:`get_rng_state`."""
    _rng.bit_generator.state = state
