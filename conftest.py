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


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """Tiny tensors: thread hand-offs cost more than the maths (about 10x on 2 busy cores)."""
    try:
        import torch
    except ImportError:  # pragma: no cover
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
