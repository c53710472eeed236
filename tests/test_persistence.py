"""Saving and loading fitted torch estimators (issue 12, items 1 and 3; docs/persistence.md).

A model fitted on a GPU must unpickle on a machine without CUDA. No GPU is needed to test it:
while pickling, ``torch.serialization.location_tag`` is patched so every storage is recorded
as living on ``cuda:0`` (what a CUDA fit writes), and while loading ``torch.cuda.is_available``
is patched to ``False``. Flipping ``net_.device`` alone (the older test) misses the storages
of modules handed to the nets as instances, which skorch pickles outside its map-to-CPU block.
"""

import io
import pickle
import warnings
from unittest import mock

import joblib
import numpy as np
import pytest
import torch

from as3l_sklearn import (
    ClusterFineTuner,
    LinearEvaluationClassifier,
    PriorGuidedFlexMatchClassifier,
    SimSiamEmbedder,
    SupervisedClassifier,
)
from as3l_sklearn.utils import CUDAToCPUWarning


def _digits(n=60):
    from as3l_sklearn.datasets import load_digits_images

    X, y = load_digits_images(return_X_y=True)
    return X[:n], y[:n]


def _partial(y, per_class=2):
    partial = np.full(len(y), -1)
    for c in np.unique(y):
        partial[np.flatnonzero(y == c)[:per_class]] = c
    return partial


def _embedder():
    return SimSiamEmbedder(backbone="small_cnn", projector_dim=16, predictor_dim=8, max_steps=2, batch_size=16,
                           device="cpu", random_state=0)


@pytest.fixture(scope="module")
def fitted():
    X, y = _digits()
    partial = _partial(y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        embedder = _embedder().fit(X)
        models = {
            "SimSiamEmbedder": embedder,
            "PriorGuidedFlexMatchClassifier": PriorGuidedFlexMatchClassifier(
                backbone="small_cnn", max_iter=3, batch_size=8, mu=2, device="cpu", random_state=0).fit(X, partial),
            "PriorGuidedFlexMatchClassifier(encoder=...)": PriorGuidedFlexMatchClassifier(
                encoder=embedder, max_iter=2, batch_size=8, mu=2, device="cpu", random_state=0).fit(X, partial),
            "SupervisedClassifier": SupervisedClassifier(
                backbone="small_cnn", max_iter=3, batch_size=8, device="cpu", random_state=0).fit(X, partial),
            "LinearEvaluationClassifier": LinearEvaluationClassifier(embedder=embedder).fit(X, partial),
            "ClusterFineTuner": ClusterFineTuner(n_clusters=3, n_runs=2, max_epochs=2, device="cpu",
                                                 random_state=0).fit(embedder.transform(X)),
        }
    return X, models


def _output(model, X, embedder):
    if isinstance(model, ClusterFineTuner):
        return model.transform(embedder.transform(X))
    if hasattr(model, "predict_proba"):
        return model.predict_proba(X)
    return model.transform(X)


def _pickled_as_if_on_cuda(model, dump=pickle.dumps):
    """Bytes a CUDA fit would write: every torch storage tagged ``cuda:0``."""
    with mock.patch("torch.serialization.location_tag", lambda storage: "cuda:0"):
        return dump(model)


def _loaded_without_cuda(payload, load=pickle.loads):
    with mock.patch("torch.cuda.is_available", return_value=False):
        return load(payload)


NAMES = ["SimSiamEmbedder", "PriorGuidedFlexMatchClassifier", "PriorGuidedFlexMatchClassifier(encoder=...)",
         "SupervisedClassifier", "LinearEvaluationClassifier", "ClusterFineTuner"]


@pytest.mark.parametrize("name", NAMES)
def test_cuda_tagged_pickle_loads_without_cuda_and_predicts_the_same(fitted, name):
    # before the fix: RuntimeError "Attempting to deserialize object on a CUDA device"
    X, models = fitted
    model, embedder = models[name], models["SimSiamEmbedder"]
    expected = _output(model, X, embedder)
    reloaded = _loaded_without_cuda(_pickled_as_if_on_cuda(model))
    np.testing.assert_array_equal(_output(reloaded, X, embedder), expected)


@pytest.mark.parametrize("name", ["SimSiamEmbedder", "SupervisedClassifier"])
def test_cuda_tagged_joblib_file_loads_without_cuda(fitted, name, tmp_path):
    X, models = fitted
    path = tmp_path / "model.joblib"
    _pickled_as_if_on_cuda(models[name], dump=lambda m: joblib.dump(m, path))
    reloaded = _loaded_without_cuda(path, load=joblib.load)
    np.testing.assert_array_equal(_output(reloaded, X, None), _output(models[name], X, None))


@pytest.mark.parametrize("name", ["SimSiamEmbedder", "SupervisedClassifier"])
def test_cuda_fitted_model_warns_once_and_runs_on_cpu(fitted, name):
    X, models = fitted
    model = models[name]
    expected = _output(model, X, None)
    # a CUDA fit: the net and the estimator say "cuda" and every storage is tagged cuda:0
    original = model.net_.device
    model.net_.device = "cuda"
    try:
        payload = _pickled_as_if_on_cuda(model)
    finally:
        model.net_.device = original
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        reloaded = _loaded_without_cuda(payload)
    moved = [w for w in caught if issubclass(w.category, CUDAToCPUWarning)]
    assert len(moved) == 1 and "cpu" in str(moved[0].message).lower()
    # skorch's own per-net DeviceWarning is folded into the estimator's one
    assert not [w for w in caught if "Requested to load data to CUDA" in str(w.message)]
    assert str(reloaded.net_.device) == "cpu"
    if hasattr(reloaded, "device_"):
        assert reloaded.device_ == "cpu"
    np.testing.assert_array_equal(_output(reloaded, X, None), expected)


def test_pickle_keeps_the_sklearn_version_check(fitted):
    # the state is wrapped in torch.save bytes; what scikit-learn needs at the top stays there
    _, models = fitted
    state = models["SupervisedClassifier"].__getstate__()
    assert set(state) >= {"_torch_state"}
    restored = pickle.loads(pickle.dumps(models["SupervisedClassifier"]))
    assert restored.get_params() == models["SupervisedClassifier"].get_params()


def test_skorch_save_params_round_trip(fitted, tmp_path):
    """The weights alone (skorch's save_params) load into a fresh fit of the same configuration."""
    X, models = fitted
    embedder = models["SimSiamEmbedder"]
    path = tmp_path / "weights.pt"
    embedder.net_.save_params(f_params=str(path))
    other = SimSiamEmbedder(**{**embedder.get_params(), "random_state": 1}).fit(X)
    assert not np.array_equal(other.transform(X), embedder.transform(X))
    other.net_.load_params(f_params=str(path))
    np.testing.assert_array_equal(other.transform(X), embedder.transform(X))


def test_memory_cache_follows_the_weights(tmp_path):
    """Issue 12 item 3: after load_params the cache must not hand back the old weights' features."""
    X, _ = _digits(40)
    first = SimSiamEmbedder(**{**_embedder().get_params(), "memory": str(tmp_path / "cache")}).fit(X)
    second = _embedder().set_params(random_state=1).fit(X)
    cached_old = first.transform(X)
    weights = io.BytesIO()
    second.net_.save_params(f_params=weights)
    weights.seek(0)
    first.net_.load_params(f_params=weights)
    # before the fix: the key was a fingerprint taken at fit, so this returned cached_old
    np.testing.assert_array_equal(first.transform(X), second.transform(X))
    assert not np.array_equal(first.transform(X), cached_old)
    # and the cache still serves repeated calls with unchanged weights
    expected = second.transform(X)
    with mock.patch("as3l_sklearn.embedding._simsiam._SimSiamNet.forward",
                    side_effect=AssertionError("recomputed")):
        np.testing.assert_array_equal(first.transform(X), expected)


@pytest.mark.parametrize("name", ["SimSiamEmbedder", "SupervisedClassifier"])
def test_net_alone_loads_without_cuda_and_stores_its_module_once(fitted, name):
    # the skorch net pickled on its own (e.g. by a callback or a user) maps to the CPU too:
    # its module parameter *is* module_, stored once inside skorch's map-to-CPU block
    X, models = fitted
    net = models[name].net_
    reloaded = _loaded_without_cuda(_pickled_as_if_on_cuda(net))
    assert reloaded.module is reloaded.module_
    # before: the module param was pickled a second time beside module_, outside skorch's block
    assert not isinstance(net.__getstate__()["module"], torch.nn.Module)
    np.testing.assert_array_equal(_output(pickle.loads(pickle.dumps(models[name])), X, None),
                                  _output(models[name], X, None))


def test_the_persistence_page_example_runs(tmp_path, monkeypatch):
    """docs/persistence.md's code block runs as written (it saves files in the working directory)."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parent.parent / "docs" / "persistence.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", page, flags=re.S)
    assert len(blocks) == 1
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        exec(compile(blocks[0], "docs/persistence.md", "exec"), {"__name__": "persistence_example"})
    assert (tmp_path / "classifier.joblib").exists() and (tmp_path / "encoder.pt").exists()
