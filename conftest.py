"""Test-wide settings: deterministic, CPU-bound, quiet."""

import os

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")
# faiss' OpenMP threads otherwise spin while they wait: on the shared, oversubscribed CPU each
# tiny nearest-center search then costs ~30 ms instead of ~0.1 ms (must precede faiss' import)
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


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
