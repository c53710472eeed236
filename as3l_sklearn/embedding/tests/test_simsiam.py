"""Tests of SimSiamEmbedder: training loop, monitors, persistence, estimator API, bad input.

Everything runs on tiny data (64 images of 8x8 px, 1-3 epochs, tiny heads) in one torch
thread; accuracy and speed are measured in ``benchmarks/bench_embedding.py``.
"""

import pickle
from unittest import mock

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from skorch.callbacks import Callback

from as3l_sklearn.datasets import load_digits_images
from as3l_sklearn.embedding import ClusterFineTuner, SimSiamEmbedder
from as3l_sklearn.embedding import CollapseWarning, TrainingInterruptedWarning
from as3l_sklearn.embedding._simsiam import (
    AUTO_BATCH_SIZE,
    AUTO_LR,
    AUTO_STEPS,
    effective_rank,
    knn_loo_accuracy,
    normalized_std,
    step_learning_rate,
)
from as3l_sklearn.nn import ImageInput, pretrained_backbone



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
    assert fitted.n_steps_ == fitted.max_steps_ == 3 * (64 // 16)
    history = fitted.net_.history
    assert len(history) == 3
    # the monitors: spreads of normalised predictor outputs and encoder features (0 on
    # collapse) and the effective rank of the features; all well away from collapse here
    for key in ("p_std", "feature_std"):
        assert all(0.05 < v <= 1.5 for v in history[:, key]), key
    assert all(5 < v <= 64 for v in history[:, "feature_rank"])
    assert not fitted.collapsed_
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
    assert embedder.n_epochs_ == 1 and embedder.n_steps_ == 64 // 16
    F = embedder.transform(X)
    assert F.shape == (64, 128) and np.isfinite(F).all()
    # the weights are those reached after the finished epoch, not the initial ones
    assert not np.allclose(F, _small(max_epochs=0).fit(X).transform(X))
    assert pickle.loads(pickle.dumps(embedder)).transform(X).shape == (64, 128)


def test_memory_caches_transform(fitted, digits, tmp_path):
    X, _ = digits
    embedder = clone(fitted).set_params(memory=str(tmp_path)).fit(X)
    first = embedder.transform(X)
    # a cache hit must not run the network (the key is a digest of the weights, which
    # are read but not run)
    with mock.patch.object(type(embedder.net_), "forward", side_effect=AssertionError("recomputed")):
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
    with pytest.raises(ValueError, match="with 3 channels .RGB., but SimSiamEmbedder was fitted on images with 1 channel"):
        fitted.transform(np.zeros((4, 8, 8, 3), dtype=np.uint8))
    with pytest.raises(ValueError, match="fitted on images of shape"):
        fitted.transform(np.zeros((4, 1, 10, 10), dtype=np.float32))


def test_auto_budget_is_counted_in_steps():
    embedder = _small(max_epochs="auto", max_steps="auto", batch_size="auto", lr="auto")
    for n_samples in (1_000, 10_000, 60_000):
        settings = embedder._check_params(n_samples, "cpu")
        # the same number of optimizer steps whatever the data size
        assert settings["max_steps"] == AUTO_STEPS["cpu"]
        assert settings["batch_size"] == AUTO_BATCH_SIZE["cpu"]
        steps_per_epoch = n_samples // AUTO_BATCH_SIZE["cpu"]
        assert settings["max_epochs"] == -(-AUTO_STEPS["cpu"] // steps_per_epoch)
    cuda = embedder._check_params(50_000, "cuda")
    assert (cuda["max_steps"], cuda["batch_size"]) == (AUTO_STEPS["cuda"], 512)
    # square-root batch rule: SimSiam's 0.06 at batch 512 on CUDA
    assert cuda["lr"] == pytest.approx(0.06)
    assert embedder._check_params(10_000, "cpu")["lr"] == pytest.approx(AUTO_LR["cpu"] * np.sqrt(64 / 256))
    explicit = _small(max_epochs=2, batch_size=16)._check_params(64, "cpu")
    assert (explicit["max_epochs"], explicit["max_steps"]) == (2, 8)
    heads = _small(projector_dim="auto", predictor_dim="auto")
    assert heads._check_params(64, "cpu")["head_dims"] == (512, 128)
    assert heads._check_params(64, "cuda")["head_dims"] == (2048, 512)


def test_lr_rule_scales_with_the_square_root_of_the_batch():
    small = _small(lr=0.4, batch_size=16)._check_params(64, "cpu")["lr"]
    large = _small(lr=0.4, batch_size=64)._check_params(64, "cpu")["lr"]
    assert small == pytest.approx(0.4 * np.sqrt(16 / 256))
    assert large / small == pytest.approx(2.0)  # 4x the batch, 2x the rate


class _RecordLR(Callback):
    def initialize(self):
        self.rates = []
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:  # after the schedule callback has set this step's rate
            self.rates.append(net.optimizer_.param_groups[0]["lr"])


def test_max_steps_stops_inside_an_epoch_and_schedules_every_step(digits):
    X, _ = digits
    recorder = _RecordLR()
    embedder = _small(max_epochs="auto", max_steps=7, lr=0.64, callbacks=[("record", recorder)]).fit(X)
    # 64 images at batch 16: 4 steps per epoch, so 7 steps end inside the second epoch
    assert embedder.n_steps_ == 7 and embedder.n_epochs_ == 2 and embedder.max_epochs_ == 2
    base = 0.64 * np.sqrt(16 / 256)
    assert embedder.lr_ == pytest.approx(base)
    expected = [step_learning_rate(step, base, 7, 1) for step in range(7)]
    np.testing.assert_allclose(recorder.rates, expected)
    assert expected[0] == pytest.approx(base) and expected[-1] < 0.1 * base  # cosine to ~0


def test_step_learning_rate_warmup_then_cosine():
    rates = [step_learning_rate(step, 1.0, 100, 10) for step in range(100)]
    assert rates[0] == pytest.approx(0.1) and rates[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(rates[9:], rates[10:]))
    assert rates[-1] < 1e-3


def test_both_budgets_is_an_error(digits):
    X, _ = digits
    with pytest.raises(ValueError, match="max_steps"):
        _small(max_epochs=2, max_steps=10).fit(X)
    with pytest.raises(ValueError, match="max_epochs"):
        _small(max_epochs=-1).fit(X)


class _ConstantEncoder(torch.nn.Module):
    """A collapsed encoder: every image maps to the same (learnable) vector."""

    def __init__(self):
        super().__init__()
        self.vector = torch.nn.Parameter(torch.ones(16))
        self.out_dim = 16

    def forward(self, x):
        return self.vector.expand(len(x), 16) + 0 * x.flatten(1).sum(1, keepdim=True)


def test_collapse_is_flagged(digits):
    X, _ = digits
    with pytest.warns(CollapseWarning, match="collapsed"):
        collapsed = _small(backbone=_ConstantEncoder(), max_steps=4, max_epochs="auto").fit(X)
    assert collapsed.collapsed_
    history = collapsed.net_.history
    assert history[-1, "feature_std"] < 1e-6 and history[-1, "p_std"] < 1e-3
    assert history[-1, "feature_rank"] == 0.0


def test_monitor_functions():
    rng = np.random.RandomState(0)
    healthy = rng.normal(size=(256, 32)).astype(np.float32)
    assert normalized_std(torch.from_numpy(healthy)) > 0.9
    assert normalized_std(torch.ones(256, 32)) == pytest.approx(0.0, abs=1e-6)
    # rank-1 collapse (every sample on one line) keeps a non-zero std but an effective rank of 1
    line = np.outer(rng.normal(size=256), rng.normal(size=32))
    assert effective_rank(line) == pytest.approx(1.0, abs=1e-4)
    assert effective_rank(healthy) > 20


def test_frozen_encoder_is_not_trained(digits):
    X, _ = digits
    with torch.random.fork_rng():
        torch.manual_seed(0)
        module = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten())
    frozen = _small(backbone=module, max_epochs=0).fit(X)
    assert frozen.n_steps_ == frozen.n_epochs_ == 0 and not frozen.collapsed_
    images = torch.from_numpy(X.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    with torch.no_grad():
        expected = module(images).numpy()
    np.testing.assert_allclose(frozen.transform(X), expected, rtol=1e-5, atol=1e-6)
    trained = _small(backbone=module, max_epochs=1).fit(X)
    assert not np.allclose(trained.transform(X), expected)


def test_pretrained_torchvision_resnet18_frozen_and_continued(digits, tmp_path):
    import torchvision

    X, _ = digits
    with torch.random.fork_rng():
        torch.manual_seed(0)
        reference = torchvision.models.resnet18(weights=None).eval()
    path = tmp_path / "resnet18.pt"
    torch.save(reference.state_dict(), path)  # a small random state_dict stands in for real weights
    encoder = pretrained_backbone("resnet18", path, image_size=32)
    assert encoder.out_dim == 512
    frozen = _small(backbone=encoder, max_epochs=0, image_size=32, normalize="imagenet").fit(X[:8])
    assert frozen.image_size_ == (32, 32) and frozen.n_features_out_ == 512
    assert isinstance(frozen.net_.module_.encoder, ImageInput)
    # by hand: upscale 8 -> 32 px, gray -> RGB, ImageNet statistics, the loaded weights
    images = torch.from_numpy(X[:8].transpose(0, 3, 1, 2).astype(np.float32) / 255)
    images = torch.nn.functional.interpolate(images, size=(32, 32), mode="bilinear", antialias=True)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    reference.fc = torch.nn.Identity()
    with torch.no_grad():
        expected = reference((images.expand(-1, 3, -1, -1) - mean) / std).numpy()
    np.testing.assert_allclose(frozen.transform(X[:8]), expected, rtol=1e-4, atol=1e-4)
    # SimSiam continues from those weights (the parameter itself is left untouched)
    before = {k: v.clone() for k, v in encoder.state_dict().items()}
    continued = _small(backbone=encoder, max_steps=1, max_epochs="auto", image_size=32, normalize="imagenet",
                       batch_size=8).fit(X[:8])
    assert continued.n_steps_ == 1
    assert not np.allclose(continued.transform(X[:8]), expected, atol=1e-4)
    for key, value in encoder.state_dict().items():
        assert torch.equal(before[key], value)


def test_pretrained_backbone_bad_input(tmp_path):
    with pytest.raises(ValueError, match="weights"):
        pretrained_backbone("resnet18", tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="architecture"):
        pretrained_backbone("not_a_model")
    torch.save({"w": torch.zeros(2)}, tmp_path / "wrong.pt")
    with pytest.raises(ValueError, match="do not match"):
        pretrained_backbone("resnet18", tmp_path / "wrong.pt")


def test_image_size_resizes_inside_the_encoder(digits):
    X, _ = digits
    embedder = _small(image_size=12).fit(X)
    assert embedder.image_size_ == (12, 12) and embedder.image_shape_ == (1, 8, 8)
    assert isinstance(embedder.net_.module_.encoder, ImageInput)
    assert embedder.transform(X).shape == (64, 128)
    native = _small(image_size=None).fit(X)
    assert native.image_size_ == (8, 8) and not isinstance(native.net_.module_.encoder, ImageInput)


def test_auto_image_size_and_backbone_fit_the_device():
    big = np.random.RandomState(0).randint(0, 256, size=(16, 90, 60, 3), dtype=np.uint8)
    embedder = _small(backbone="auto", max_steps=1, max_epochs="auto", batch_size=8).fit(big)
    # on a CPU: the longest side goes down to 32 px, and a small CNN encodes it
    assert embedder.image_size_ == (32, 21) and embedder.backbone_ == "small_cnn_2x2"
    assert embedder.transform(big[:2]).shape == (2, 512)
    assert _small()._resolve_image_size((90, 60), "cuda") == (90, 60)


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"image_size": 1}, ValueError, "image_size"),
        ({"image_size": "big"}, ValueError, "image_size"),
        ({"image_size": 2.5}, TypeError, "image_size"),
        ({"normalize": "cifar"}, ValueError, "normalize"),
        ({"normalize": ((0.5, 0.5), (0.1, 0.1))}, ValueError, "normalize"),
        ({"normalize": ((0.5,), (0.0,))}, ValueError, "normalize"),
        ({"lr": "fast"}, TypeError, "lr"),
        ({"max_steps": 0, "max_epochs": "auto"}, ValueError, "max_steps"),
    ],
)
def test_new_parameters_bad_input(digits, params, error, match):
    X, _ = digits
    with pytest.raises(error, match=match):
        _small(**params).fit(X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fit_pickles_and_transforms(digits):
    X, _ = digits
    embedder = _small(device="cuda", max_epochs=1).fit(X)
    restored = pickle.loads(pickle.dumps(embedder))
    np.testing.assert_allclose(restored.transform(X), embedder.transform(X), rtol=1e-3, atol=1e-3)


# ----------------------------------------------------------------------------- progress (issue 13 item 5)
def test_verbose_1_shows_one_bar_per_fit_without_ansi_codes(digits, capsys):
    # before: a skorch table row per epoch on stdout, with ANSI colour codes in a log file
    X, _ = digits
    _small(max_epochs="auto", max_steps=12, batch_size=16, verbose=1).fit(X)
    out, err = capsys.readouterr()
    assert "\x1b[" not in out + err
    assert out == ""  # the bar is on stderr, nothing else is printed
    # one line, refreshed in place a few times (every 30 s off a terminal, plus start and end)
    assert err.count("\n") == 1 and err.count("\r") <= 3
    assert "SimSiamEmbedder" in err and "12/12" in err


def test_verbose_2_prints_plain_epoch_rows_when_not_a_terminal(digits, capsys):
    X, _ = digits
    _small(max_epochs=3, verbose=2).fit(X)
    out, err = capsys.readouterr()
    assert "\x1b[" not in out + err
    assert "train_loss" in out and len(out.strip().splitlines()) == 2 + 3  # header, rule, 3 epochs


def test_verbose_0_is_silent(digits, capsys):
    X, _ = digits
    _small(max_epochs=1).fit(X)
    out, err = capsys.readouterr()
    assert out == "" and err == ""
