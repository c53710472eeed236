"""Tests of the label-free calibration of priors (calibrate_confidence, temper, and the
``calibration`` parameters of CombinedPropagator and compare_feature_spaces)."""

import numpy as np
import pytest

from as3l_sklearn.diagnostics import compare_feature_spaces
from as3l_sklearn.propagation import (
    CombinedPropagator,
    LLGCPropagator,
    SeededKMeansPropagator,
    calibrate_confidence,
    temper,
)


def make_data(seed=0, n_per_class=30):
    rng = np.random.RandomState(seed)
    centers = np.eye(3) * 4
    X = np.concatenate([rng.normal(c, 1.2, (n_per_class, 3)) for c in centers])
    y_true = np.repeat(np.arange(3), n_per_class)
    y = np.full(len(y_true), -1)
    y[::n_per_class] = [0, 1, 2]  # one label per class
    return X, y_true, y


def small_propagator():
    return CombinedPropagator(SeededKMeansPropagator(n_clusters=[3, 9], random_state=0),
                              LLGCPropagator(n_neighbors=8))


def test_temper_keeps_argmax_and_moves_confidence_both_ways():
    proba = np.random.RandomState(0).dirichlet(np.ones(4), size=50)
    for temperature in (0.3, 1.0, 3.0):
        tempered = temper(proba, temperature)
        np.testing.assert_allclose(tempered.sum(axis=1), 1.0)
        np.testing.assert_array_equal(tempered.argmax(axis=1), proba.argmax(axis=1))
    confidence = proba.max(axis=1).mean()
    sharpened, softened = temper(proba, 0.3), temper(proba, 3.0)
    assert sharpened.max(axis=1).mean() > confidence > softened.max(axis=1).mean()
    np.testing.assert_allclose(temper(proba, 1.0), proba)
    np.testing.assert_array_equal(temper([[1.0, 0.0]], 0.5), [[1.0, 0.0]])  # zeros stay zero


def test_underconfident_prior_is_sharpened_and_overconfident_softened():
    rng = np.random.RandomState(1)
    predicted = rng.randint(0, 3, size=200)
    flat = np.full((200, 3), 0.25)
    flat[np.arange(200), predicted] = 0.5           # confidence 0.5
    sharp = np.full((200, 3), 0.02)
    sharp[np.arange(200), predicted] = 0.96         # confidence 0.96
    reference = np.full((200, 3), 0.1)
    reference[np.arange(200), predicted] = 0.8      # expects 80 % accuracy
    for proba, sharpened in ((flat, True), (sharp, False)):
        result = calibrate_confidence(proba, reference)
        assert (result.temperature < 1) is sharpened
        assert result.estimated_accuracy == pytest.approx(0.8)
        assert result.label_distributions.max(axis=1).mean() == pytest.approx(0.8, abs=1e-6)
        np.testing.assert_array_equal(result.label_distributions.argmax(axis=1), predicted)


def test_sample_mask_restricts_the_fit_and_empty_mask_keeps_the_prior():
    proba = np.array([[0.6, 0.4], [0.6, 0.4], [1.0, 0.0]])
    reference = np.array([[0.9, 0.1], [0.9, 0.1], [0.0, 1.0]])
    masked = calibrate_confidence(proba, reference, sample_mask=np.array([True, True, False]))
    assert masked.estimated_accuracy == pytest.approx(0.9)
    np.testing.assert_allclose(masked.label_distributions[:2, 0], 0.9, atol=1e-6)
    np.testing.assert_array_equal(masked.label_distributions[2], [1.0, 0.0])
    empty = calibrate_confidence(proba, reference, sample_mask=np.zeros(3, dtype=bool))
    assert empty.temperature == 1.0 and empty.estimated_accuracy is None
    np.testing.assert_allclose(empty.label_distributions, proba)


def test_calibration_argmax_unchanged_and_predict_proba_tempered():
    X, _, y = make_data()
    plain = small_propagator().fit(X, y)
    calibrated = small_propagator().set_params(calibration="auto").fit(X, y)
    assert plain.temperature_ == 1.0
    assert calibrated.estimated_accuracy_ == plain.estimated_accuracy_
    np.testing.assert_array_equal(calibrated.transduction_, plain.transduction_)
    unlabeled = y == -1
    confidence = calibrated.label_distributions_[unlabeled].max(axis=1).mean()
    assert confidence == pytest.approx(calibrated.estimated_accuracy_, abs=1e-6)
    np.testing.assert_allclose(calibrated.predict_proba(X),
                               temper(plain.predict_proba(X), calibrated.temperature_))


def test_temperature_does_not_depend_on_the_labels_of_unlabeled_samples():
    """Two ground truths that agree on the seeds only: the same temperature and estimate."""
    X, y_true, y = make_data()
    other_truth = np.where(y == -1, (y_true + 1) % 3, y_true)
    pixels = X[:, ::-1] + np.random.RandomState(2).normal(0, 0.5, X.shape)
    results = []
    for truth in (y_true, other_truth):
        partial = np.where(y == -1, -1, truth)
        results.append(compare_feature_spaces({"a": X, "b": pixels}, partial,
                                              propagator=small_propagator(), random_state=0))
    assert results[0].temperature == results[1].temperature
    assert results[0].estimated_accuracy == results[1].estimated_accuracy
    np.testing.assert_array_equal(results[0].label_distributions, results[1].label_distributions)


def test_compare_feature_spaces_calibrates_the_weighted_prior():
    X, _, y = make_data()
    spaces = {"a": X, "b": X[:, ::-1] + np.random.RandomState(2).normal(0, 0.5, X.shape)}
    check = compare_feature_spaces(spaces, y, propagator=small_propagator(), random_state=0)
    raw = compare_feature_spaces(spaces, y, propagator=small_propagator(), calibration=None,
                                 random_state=0)
    assert raw.temperature == 1.0
    np.testing.assert_allclose(raw.label_distributions, raw.uncalibrated)
    np.testing.assert_allclose(check.uncalibrated, raw.uncalibrated)
    np.testing.assert_array_equal(check.label_distributions.argmax(axis=1),
                                  raw.label_distributions.argmax(axis=1))
    np.testing.assert_allclose(check.label_distributions, temper(raw.uncalibrated,
                                                                 check.temperature))
    unlabeled = y == -1
    assert check.label_distributions[unlabeled].max(axis=1).mean() == pytest.approx(
        check.estimated_accuracy, abs=1e-6)


def test_bad_parameters():
    X, _, y = make_data()
    with pytest.raises(ValueError, match="calibration"):
        CombinedPropagator(calibration="yes").fit(X, y)
    with pytest.raises(ValueError, match="calibration"):
        compare_feature_spaces({"a": X, "b": X}, y, calibration=True)
    with pytest.raises(ValueError, match="temperature"):
        temper([[0.5, 0.5]], 0)
    with pytest.raises(ValueError, match="reference"):
        calibrate_confidence([[0.5, 0.5]], [[0.5, 0.25, 0.25]])
    with pytest.raises(ValueError, match="proba"):
        calibrate_confidence([[0.5, -0.5]], [[0.5, 0.5]])
    with pytest.raises(ValueError, match="sample_mask"):
        calibrate_confidence([[0.5, 0.5]], [[0.5, 0.5]], sample_mask=[1])
