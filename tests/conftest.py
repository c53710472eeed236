"""Fixtures shared by the ``as3l`` command's tests."""

import pytest

from as3l_sklearn.embedding import SimSiamEmbedder


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    """The test's own stage cache (the default lives under XDG_CACHE_HOME); the command's test
    modules use it for every test (``pytestmark``)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))


@pytest.fixture
def simsiam_fits(monkeypatch):
    """Counts SimSiam fits (the expensive stage a cache must skip): the pool size of each."""
    calls = []
    original = SimSiamEmbedder.fit

    def counting_fit(self, X, y=None):
        calls.append(len(X))
        return original(self, X, y)

    monkeypatch.setattr(SimSiamEmbedder, "fit", counting_fit)
    return calls
