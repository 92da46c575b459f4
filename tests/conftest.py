"""Shared test configuration: hypothesis profiles and a few fixtures.

Profiles (select with ``HYPOTHESIS_PROFILE=<name>``):

* ``ci`` (default): no deadline (the machines running the tests are shared and slow), a
  moderate number of examples per property so the whole suite stays fast;
* ``thorough``: many more examples for the properties that do not set their own count.

Properties that are slow (reference loops, PyTorch) or cheap and central (adjoint identities)
set their own ``max_examples``, which takes precedence over the profile; for a soak run of those,
repeat the suite with different ``--hypothesis-seed`` values.
"""
from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "thorough",
    deadline=None,
    max_examples=1000,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A freshly seeded generator: every test sees the same numbers on every run."""
    return np.random.default_rng(20240607)


@pytest.fixture(scope="session")
def torch():
    """PyTorch as an oracle, or skip the test when it is not installed.

    Session-scoped so hypothesis tests may use it; single-threaded so tests running side by side
    do not fight over cores.
    """
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    return torch
