"""Test-wide settings: deterministic, CPU-bound, quiet."""

import os

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")


@pytest.fixture(autouse=True)
def _seed_everything():
    """Every test starts from the same global RNG state, so results do not depend on order."""
    np.random.seed(0)
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    torch.manual_seed(0)
    yield
