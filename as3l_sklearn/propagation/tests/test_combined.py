"""Tests of CombinedPropagator and of LLGCPropagator's leave-one-out temperature."""

import pickle

import numpy as np
import pytest
from sklearn.base import clone

from as3l_sklearn.propagation import CombinedPropagator, LLGCPropagator, SeededKMeansPropagator


def make_data(n_per_class=40, n_labels_per_class=1, seed=0):
    rng = np.random.RandomState(seed)
    centers = np.eye(3) * 4 + 1
    X = np.concatenate([rng.normal(c, 1.5, (n_per_class, 3)) for c in centers])
    y_true = np.repeat(np.arange(3), n_per_class)
    y = np.full(len(y_true), -1)
    for c in range(3):
        y[c * n_per_class:c * n_per_class + n_labels_per_class] = c
    return X, y_true, y


def test_prior_is_the_weighted_average_of_the_parts():
    X, _, y = make_data()
    cluster = SeededKMeansPropagator(n_clusters=[3, 6], random_state=0)
    graph = LLGCPropagator(n_neighbors=8)
    prop = CombinedPropagator(cluster, graph, graph_weight=0.25).fit(X, y)
    expected = (0.75 * clone(cluster).fit(X, y).label_distributions_
                + 0.25 * clone(graph).fit(X, y).label_distributions_)
    np.testing.assert_allclose(prop.label_distributions_, expected)
    np.testing.assert_allclose(prop.predict_proba(X).sum(axis=1), 1.0)
    only_graph = CombinedPropagator(cluster, graph, graph_weight=1.0).fit(X, y)
    np.testing.assert_allclose(only_graph.label_distributions_,
                               clone(graph).fit(X, y).label_distributions_)


def test_string_labels_pickle_and_bad_weight():
    X, y_true, y = make_data()
    labels = np.array(["a", "b", "c"], dtype=object)
    y_str = np.where(y == -1, -1, labels[np.maximum(y, 0)]).astype(object)
    prop = CombinedPropagator(random_state=0).fit(X, y_str)
    assert list(prop.classes_) == ["a", "b", "c"]
    assert (prop.transduction_ == labels[y_true]).mean() > 0.9
    restored = pickle.loads(pickle.dumps(prop))
    np.testing.assert_array_equal(restored.predict(X), prop.predict(X))
    for bad in (-0.1, 1.5, "half", True):
        with pytest.raises(ValueError, match="graph_weight"):
            CombinedPropagator(graph_weight=bad).fit(X, y)


def test_same_random_state_same_priors():
    X, _, y = make_data()
    a = CombinedPropagator(random_state=3).fit(X, y).label_distributions_
    b = CombinedPropagator(random_state=3).fit(X, y).label_distributions_
    np.testing.assert_array_equal(a, b)


def test_llgc_temperature_stays_one_with_one_label_per_class():
    X, _, y = make_data(n_labels_per_class=1)
    prop = LLGCPropagator(n_neighbors=8).fit(X, y)
    assert prop.temperature_ == 1.0
    assert prop.n_calibration_samples_ == 0


def test_llgc_leave_one_out_temperature_sharpens_flat_scores():
    """With several labels per class the raw spread scores are flat; the temperature fitted on
    held-out labeled samples sharpens them (t < 1) without changing any arg-max."""
    X, _, y = make_data(n_labels_per_class=5)
    raw = LLGCPropagator(n_neighbors=8, calibrate=False).fit(X, y)
    calibrated = LLGCPropagator(n_neighbors=8).fit(X, y)
    assert raw.temperature_ == 1.0
    assert calibrated.n_calibration_samples_ == 15
    assert calibrated.temperature_ < 1.0
    unlabeled = y == -1
    np.testing.assert_array_equal(calibrated.transduction_, raw.transduction_)
    assert (calibrated.label_distributions_[unlabeled].max(axis=1).mean()
            > raw.label_distributions_[unlabeled].max(axis=1).mean())


def test_llgc_leave_one_out_scores_match_a_refit_without_the_label():
    """The closed-form leave-one-out scores equal a real refit with that label removed."""
    from as3l_sklearn.propagation import _llgc

    X, _, y = make_data(n_labels_per_class=4)
    captured = {}
    original = _llgc._fit_temperature

    def capture(scores, classes):
        captured["scores"], captured["classes"] = scores.copy(), classes.copy()
        return original(scores, classes)

    _llgc._fit_temperature = capture
    try:
        LLGCPropagator(n_neighbors=8, max_iter=300, tol=1e-12).fit(X, y)
    finally:
        _llgc._fit_temperature = original
    held_out = 0  # the first labeled sample is held out first
    y_without = y.copy()
    y_without[held_out] = -1
    refit = LLGCPropagator(n_neighbors=8, max_iter=300, tol=1e-12, calibrate=False).fit(X, y_without)
    expected = refit.label_distributions_[held_out]
    loo = captured["scores"][0] / captured["scores"][0].sum()
    np.testing.assert_allclose(loo, expected, atol=1e-6)
