"""Tests of SimSiamEmbedder: training loop, monitors, persistence, estimator API, bad input.

Everything runs on tiny data (64 images of 8x8 px, 1-3 epochs, tiny heads) in one torch
thread; accuracy and speed are measured in ``benchmarks/bench_embedding.py``.
"""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from as3l_sklearn.datasets import load_digits_images
from as3l_sklearn.embedding import ClusterFineTuner, SimSiamEmbedder
from as3l_sklearn.embedding import TrainingInterruptedWarning
from as3l_sklearn.embedding._simsiam import knn_loo_accuracy



@pytest.fixture(scope="module")
def digits():
    X, y = load_digits_images()
    return X[:64], y[:64]


def _small(**params):
    base = dict(
        backbone="small_cnn", projector_dim=32, predictor_dim=8, max_epochs=2, batch_size=16,
        device="cpu", random_state=0,
    )
    base.update(params)
    return SimSiamEmbedder(**base)


@pytest.fixture(scope="module")
def fitted(digits):
    X, _ = digits
    return _small(max_epochs=3, lr=0.5).fit(X)



def test_fit_transform_shapes_and_history(fitted, digits):
    X, _ = digits
    F = fitted.transform(X)
    assert F.shape == (64, 128) and F.dtype == np.float32
    assert fitted.image_shape_ == (1, 8, 8) and fitted.n_features_in_ == 64
    assert fitted.n_epochs_ == fitted.max_epochs_ == 3
    history = fitted.net_.history
    assert len(history) == 3
    # collapse monitor: std of the normalised projector outputs, healthy ~ 1/sqrt(32) = 0.18
    z_std = history[:, "z_std"]
    assert all(0.05 < v < 0.3 for v in z_std)
    assert list(fitted.get_feature_names_out()[:2]) == ["simsiam0", "simsiam1"]


def test_loss_falls(fitted):
    losses = fitted.net_.history[:, "train_loss"]
    assert losses[-1] < losses[0]


def test_transform_is_deterministic_and_seeded(fitted, digits):
    X, _ = digits
    np.testing.assert_array_equal(fitted.transform(X), fitted.transform(X))
    # per-row features: a subset transforms to the same rows (BatchNorm in eval mode)
    np.testing.assert_allclose(fitted.transform(X[:5]), fitted.transform(X)[:5], rtol=1e-5, atol=1e-6)
    again = _small(max_epochs=3, lr=0.5).fit(X)
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    other = _small(max_epochs=3, lr=0.5, random_state=1).fit(X)
    assert not np.allclose(other.transform(X), fitted.transform(X))


def test_global_torch_rng_untouched(digits):
    X, _ = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _small(max_epochs=1).fit(X)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


def test_pickle_roundtrip(fitted, digits):
    X, _ = digits
    restored = pickle.loads(pickle.dumps(fitted))
    np.testing.assert_array_equal(restored.transform(X), fitted.transform(X))
    assert restored.device_ == "cpu"


def test_clone_and_pipeline(fitted, digits):
    X, _ = digits
    fresh = clone(fitted)
    assert not hasattr(fresh, "net_")
    assert fresh.get_params()["max_epochs"] == 3
    pipe = Pipeline([
        ("embed", _small(max_epochs=1)),
        ("fine", ClusterFineTuner(n_clusters=4, n_runs=2, n_components=8, max_epochs=2, random_state=0, device="cpu")),
    ])
    out = pipe.fit_transform(X)
    assert out.shape == (64, 8)
    np.testing.assert_allclose(pipe.transform(X), out, rtol=1e-4, atol=1e-5)


def test_user_module_backbone_is_not_trained_in_place(digits):
    X, _ = digits
    backbone = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    before = [p.detach().clone() for p in backbone.parameters()]
    embedder = _small(backbone=backbone, max_epochs=1).fit(X)
    assert embedder.transform(X).shape == (64, 4)
    for old, new in zip(before, backbone.parameters()):
        np.testing.assert_array_equal(old.numpy(), new.detach().numpy())


def test_knn_monitor_records_accuracy(digits):
    X, y = digits
    embedder = _small(max_epochs=2).fit(X, monitor=(X[:40], y[:40]))
    accuracy = embedder.net_.history[:, "knn_acc"]
    assert len(accuracy) == 2 and all(0.0 <= a <= 1.0 for a in accuracy)


def test_knn_loo_accuracy():
    features = np.array([[1, 0], [1, 0.1], [0.9, 0], [0, 1], [0.1, 1], [0, 0.9]])
    assert knn_loo_accuracy(features, [0, 0, 0, 1, 1, 1], k=2) == 1.0
    assert knn_loo_accuracy(features, [0, 1, 0, 1, 0, 1], k=2) < 0.5


class _InterruptOnSecondEpoch(Callback):
    def on_epoch_begin(self, net, **kwargs):
        if len(net.history) == 2:
            raise KeyboardInterrupt


def test_keyboard_interrupt_leaves_a_usable_fitted_estimator(digits):
    X, _ = digits
    embedder = _small(max_epochs=5, callbacks=[("interrupt", _InterruptOnSecondEpoch())])
    with pytest.warns(TrainingInterruptedWarning, match="1 of 5 epochs"):
        embedder.fit(X)
    assert embedder.n_epochs_ == 1
    F = embedder.transform(X)
    assert F.shape == (64, 128) and np.isfinite(F).all()
    # the weights are those reached after the finished epoch: the cosine schedule starts at
    # the same lr whatever max_epochs is, so one uninterrupted epoch lands on the same weights
    one_epoch = _small(max_epochs=1).fit(X)
    np.testing.assert_array_equal(F, one_epoch.transform(X))
    assert pickle.loads(pickle.dumps(embedder)).transform(X).shape == (64, 128)


def test_memory_caches_transform(fitted, digits, tmp_path):
    X, _ = digits
    embedder = clone(fitted).set_params(memory=str(tmp_path)).fit(X)
    first = embedder.transform(X)
    embedder.net_.module_.encoder = None  # a cache hit must not touch the network
    np.testing.assert_array_equal(embedder.transform(X), first)


def test_flattened_input_with_image_shape(digits):
    X, _ = digits
    flat = X.reshape(64, -1).astype(np.float32) / 255
    embedder = _small(max_epochs=1, image_shape=(1, 8, -1)).fit(flat)
    assert embedder.image_shape_ == (1, 8, 8)
    images = flat.reshape(64, 1, 8, 8)
    np.testing.assert_allclose(embedder.transform(flat), embedder.transform(images), rtol=1e-6)


@pytest.mark.parametrize(
    "X, params, error, match",
    [
        (np.full((8, 1, 8, 8), np.nan, dtype=np.float32), {}, ValueError, "NaN"),
        (np.zeros((8, 8, 8, 5), dtype=np.uint8), {}, ValueError, "channels"),
        (np.zeros((8, 3, 3, 1), dtype=np.uint8), {}, ValueError, "X has images of 3x3"),
        (np.zeros((8, 1, 1, 1), dtype=np.uint8), {"backbone": torch.nn.Flatten()}, ValueError, "2x2"),
        (np.zeros((8, 64)), {}, ValueError, "image_shape"),
        (np.zeros((1, 8, 8, 1), dtype=np.uint8), {}, ValueError, "1 sample"),
        (np.zeros((8, 8, 8, 1), dtype=np.uint8), {"backbone": "vgg"}, ValueError, "vgg"),
        (np.zeros((8, 8, 8, 1), dtype=np.uint8), {"backbone": 3}, TypeError, "backbone"),
        (np.zeros((8, 8, 8, 1), dtype=np.uint8), {"batch_size": 0}, ValueError, "batch_size"),
        (np.zeros((8, 8, 8, 1), dtype=np.uint8), {"lr": -1.0}, ValueError, "lr"),
        (np.zeros((8, 8, 8, 1), dtype=np.uint8), {"augment": "weak"}, ValueError, "augment"),
    ],
)
def test_bad_input_raises_clear_errors(X, params, error, match):
    with pytest.raises(error, match=match):
        _small(**params).fit(X)


def test_transform_rejects_other_image_shapes(fitted):
    with pytest.raises(ValueError, match="fitted on images of shape"):
        fitted.transform(np.zeros((4, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="fitted on images of shape"):
        fitted.transform(np.zeros((4, 1, 10, 10), dtype=np.float32))


def test_auto_epochs_and_batch_size_scale_with_the_data(digits):
    X, _ = digits
    embedder = _small(max_epochs="auto", batch_size="auto")
    assert embedder._check_params(64, "cpu")[:2] == (800, 64)
    assert embedder._check_params(5_000, "cpu")[:2] == (20, 128)
    assert embedder._check_params(50_000, "cuda")[:2] == (400, 512)
    assert embedder._check_params(10_000_000, "cpu")[:2] == (10, 128)
    auto_heads = _small(projector_dim="auto", predictor_dim="auto")
    assert auto_heads._check_params(64, "cpu")[3] == (512, 128)
    assert auto_heads._check_params(64, "cuda")[3] == (2048, 512)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_pickles_and_transforms(digits):
    X, _ = digits
    embedder = _small(device="cuda", max_epochs=1).fit(X)
    restored = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_allclose(restored.transform(X), embedder.transform(X), rtol=1e-3, atol=1e-3)
