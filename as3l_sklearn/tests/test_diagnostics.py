"""Tests of the label-free feature-space check (as3l_sklearn.diagnostics)."""

import numpy as np
import pytest

from as3l_sklearn.datasets import load_digits_images
from as3l_sklearn.diagnostics import (
    compare_feature_spaces,
    pixel_features,
    propagation_stability,
    score_feature_space,
)
from as3l_sklearn.propagation import LLGCPropagator, SeededKMeansPropagator


def _digits(n=300, per_class=1):
    """The first ``n`` digits images, PCA pixels, labels and a partial label vector."""
    images, y_true = load_digits_images()
    images, y_true = images[:n], y_true[:n]
    y = np.full(n, -1)
    for c in range(10):
        y[np.flatnonzero(y_true == c)[:per_class]] = c
    return images, y_true, y


def _accuracy(check, y_true, y):
    unlabeled = y == -1
    return float(np.mean(check.transduction[unlabeled] == y_true[unlabeled]))


def test_pixel_features_scale_and_shape():
    images, _, _ = _digits(60)
    features = pixel_features(images, n_components=8)
    assert features.shape == (60, 8) and features.dtype == np.float32
    # uint8 images are divided by 255: the same as passing the scaled floats
    scaled = pixel_features(images.astype(np.float32) / 255.0, n_components=8)
    np.testing.assert_allclose(np.abs(features), np.abs(scaled), atol=1e-4)
    # more components than samples or pixels are clipped
    assert pixel_features(images[:5], n_components=50).shape == (5, 4)
    with pytest.raises(ValueError, match="n_components"):
        pixel_features(images, n_components=0)


def test_prefers_pixels_over_a_broken_encoder():
    """Noise features (an encoder that learned nothing) and collapsed features (every image
    mapped near one point) both lose to PCA pixels, and the weighted prior follows pixels."""
    images, y_true, y = _digits()
    pixels = pixel_features(images)
    rng = np.random.RandomState(0)
    broken = {"noise": rng.normal(size=(len(y), 32)),
              "collapsed": 1.0 + 1e-3 * rng.normal(size=(len(y), 32))}
    for name, encoder_features in broken.items():
        check = compare_feature_spaces({"f_fine": encoder_features, "pixels": pixels}, y,
                                       random_state=0)
        assert check.choice == "pixels", name
        assert check.weights["pixels"] > 0.9, (name, check.scores)
        pixels_alone = np.mean(np.asarray(check.priors["pixels"]).argmax(1)[y == -1]
                               == y_true[y == -1])
        assert _accuracy(check, y_true, y) >= pixels_alone - 0.02, name


def test_prefers_good_features_over_noisy_pixels():
    images, y_true, y = _digits()
    pixels = pixel_features(images)
    noisy = pixels + np.random.RandomState(1).normal(0, 3 * pixels.std(), pixels.shape)
    check = compare_feature_spaces({"f_fine": pixels, "pixels": noisy}, y, random_state=0)
    assert check.choice == "f_fine" and check.weights["f_fine"] > 0.8, check.scores
    assert check.scores["f_fine"]["stability"] > check.scores["pixels"]["stability"]
    np.testing.assert_allclose(check.label_distributions.sum(axis=1), 1.0)
    labeled = y != -1
    np.testing.assert_array_equal(check.transduction[labeled], y[labeled])


def test_held_out_likelihood_needs_two_labels_per_class():
    images, _, y_one = _digits(per_class=1)
    _, _, y_two = _digits(per_class=2)
    pixels = pixel_features(images)
    one = score_feature_space(pixels, y_one, random_state=0).scores
    two = score_feature_space(pixels, y_two, random_state=0).scores
    assert one["held_out_log_likelihood"] is None and one["n_held_out"] == 0
    assert two["n_held_out"] == 20 and two["held_out_log_likelihood"] < 0
    # digits on PCA pixels: most held-out labels come back (chance is 0.1)
    assert one["held_out_accuracy"] is None and 0.5 < two["held_out_accuracy"] <= 1
    assert 0 <= two["part_agreement"] <= 1 and 0 < two["confidence"] <= 1


def test_deterministic_with_random_state_and_other_propagators():
    images, _, y = _digits(200)
    pixels = pixel_features(images)
    first = propagation_stability(pixels, y, random_state=3)
    assert first == propagation_stability(pixels, y, random_state=3)
    assert 0 < first <= 1
    a = compare_feature_spaces({"a": pixels, "b": pixels[:, ::-1]}, y, random_state=2)
    b = compare_feature_spaces({"a": pixels, "b": pixels[:, ::-1]}, y, random_state=2)
    np.testing.assert_array_equal(a.label_distributions, b.label_distributions)
    # any propagator of the package: the graph of the resampling is LLGC's default then
    for propagator in (LLGCPropagator(), SeededKMeansPropagator(n_clusters=[10, 20],
                                                                random_state=0)):
        scores = score_feature_space(pixels, y, propagator=propagator, random_state=0).scores
        assert 0 < scores["stability"] <= 1 and scores["part_agreement"] is None


def test_three_spaces_weight_the_best_and_reduce_to_the_two_space_rule():
    from as3l_sklearn.diagnostics import _space_weights

    images, y_true, y = _digits(200)
    pixels = pixel_features(images)
    noise = np.random.RandomState(0).normal(size=(len(y), 20))
    check = compare_feature_spaces({"pixels": pixels, "noise": noise, "pixels_again": pixels},
                                   y, random_state=0)
    assert set(check.weights) == {"pixels", "noise", "pixels_again"}
    assert abs(sum(check.weights.values()) - 1) < 1e-9
    assert check.weights["noise"] < min(check.weights["pixels"], check.weights["pixels_again"])
    assert check.choice in ("pixels", "pixels_again")
    np.testing.assert_allclose(check.label_distributions.sum(axis=1), 1)
    mixed = sum(check.weights[name] * check.priors[name] for name in check.priors)
    np.testing.assert_allclose(check.uncalibrated, mixed)  # before the temperature
    # two spaces through the N-space formula give the two-space weight
    a, b = ({"stability": 0.8, "held_out_log_likelihood": -0.5},
            {"stability": 0.6, "held_out_log_likelihood": -0.7})
    pair = _space_weights([a, b], 1.0)
    totals = np.array([0.3, -0.1])
    general = np.clip(0.5 + 2 * (totals - totals.mean()), 0, 1)
    np.testing.assert_allclose(pair, general / general.sum())


def test_bad_arguments_are_named():
    images, _, y = _digits(60)
    pixels = pixel_features(images, n_components=5)
    with pytest.raises(ValueError, match="two or more"):
        compare_feature_spaces({"a": pixels}, y)
    with pytest.raises(ValueError, match="same samples"):
        compare_feature_spaces({"a": pixels, "b": pixels[:50]}, y)
    with pytest.raises(ValueError, match="sharpness"):
        compare_feature_spaces({"a": pixels, "b": pixels}, y, sharpness=-1)
    with pytest.raises(ValueError, match="n_rounds"):
        propagation_stability(pixels, y, n_rounds=0)
    with pytest.raises(ValueError, match="y"):
        score_feature_space(pixels, np.full(60, -1))
