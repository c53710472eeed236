"""Metrics against hand-computed values."""

import pickle

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.metrics import f1_score

from as3l_sklearn.metrics import (
    class_coverage,
    expected_calibration_error,
    labeled_mask,
    make_labeled_scorer,
    prior_accuracy,
)


# ------------------------------------------------------------------------------ coverage

def test_class_coverage_counts_and_fraction():
    y = np.array([0, 0, 1, 1, 2, 2, 3, -1])
    assert class_coverage(y, [0, 1]) == 1
    assert class_coverage(y, [0, 2, 4]) == 3
    assert class_coverage(y, [7]) == 0  # an unlabeled sample covers nothing
    assert class_coverage(y, []) == 0
    assert class_coverage(y, [0, 2, 4], normalize=True) == pytest.approx(3 / 4)
    assert class_coverage(y, [0, 2], normalize=True, classes=range(10)) == pytest.approx(2 / 10)
    mask = np.zeros(8, dtype=bool)
    mask[[1, 6]] = True
    assert class_coverage(y, mask) == 2
    strings = np.array(["a", "b", "b", -1], dtype=object)
    assert class_coverage(strings, [1, 2, 3]) == 1
    assert class_coverage(strings, [0, 1], normalize=True) == 1.0


def test_class_coverage_bad_indices():
    with pytest.raises(ValueError, match="indices"):
        class_coverage([0, 1, 2], [5])
    with pytest.raises(ValueError, match="indices"):
        class_coverage([0, 1, 2], [0.5])
    with pytest.raises(ValueError, match="indices"):
        class_coverage([0, 1, 2], np.array([True, False]))
    with pytest.raises(ValueError, match="y_true"):
        class_coverage(np.zeros((2, 2)), [0])


# ------------------------------------------------------------------------------ prior accuracy

def test_prior_accuracy_hand_computed():
    y = np.array([0, 1, 2, 1, -1])
    proba = np.array([
        [0.7, 0.2, 0.1],  # 0 right
        [0.1, 0.8, 0.1],  # 1 right
        [0.5, 0.3, 0.2],  # 0 wrong
        [0.3, 0.3, 0.4],  # 2 wrong
        [0.0, 0.0, 1.0],  # unlabeled: never scored
    ])
    assert prior_accuracy(y, proba) == pytest.approx(0.5)
    assert prior_accuracy(y, proba, mask=[0, 2]) == pytest.approx(0.5)
    mask = np.array([1, 1, 0, 0, 1], dtype=bool)
    assert prior_accuracy(y, proba, mask=mask) == pytest.approx(1.0)
    # columns labelled by classes_: argmax column 0 means class "a"
    names = np.array(["a", "b", "c", "b", -1], dtype=object)
    classes = np.array(["a", "b", "c"], dtype=object)
    assert prior_accuracy(names, proba, classes=classes) == pytest.approx(0.5)
    two = [[0.1, 0.9], [0.2, 0.8]]
    assert prior_accuracy([10, 20], two, classes=[10, 20]) == pytest.approx(0.5)


def test_prior_accuracy_errors():
    with pytest.raises(ValueError, match="proba"):
        prior_accuracy([0, 1], [0.2, 0.8])
    with pytest.raises(ValueError, match="proba has 1 rows"):
        prior_accuracy([0, 1], [[0.2, 0.8]])
    with pytest.raises(ValueError, match="NaN"):
        prior_accuracy([0, 1], [[np.nan, 1], [0, 1]])
    with pytest.raises(ValueError, match="classes"):
        prior_accuracy([0, 1], [[0.2, 0.8], [0.5, 0.5]], classes=[0, 1, 2])
    with pytest.raises(ValueError, match="no sample to score"):
        prior_accuracy([-1, -1], [[0.2, 0.8], [0.5, 0.5]])
    with pytest.raises(ValueError, match="mask"):
        prior_accuracy([0, 1], [[0.2, 0.8], [0.5, 0.5]], mask=[True])


# ------------------------------------------------------------------------------ ECE

def test_ece_hand_computed():
    y = np.array([0, 1, 1, 0, 1])
    proba = np.array([
        [0.95, 0.05],  # conf .95 correct      -> bin (0.9, 1.0]
        [0.90, 0.10],  # conf .90 wrong        -> bin (0.8, 0.9] (right-closed bins)
        [0.15, 0.85],  # conf .85 correct      -> bin (0.8, 0.9]
        [0.40, 0.60],  # conf .60 wrong        -> bin (0.5, 0.6]
        [0.45, 0.55],  # conf .55 correct      -> bin (0.5, 0.6]
    ])
    # bins of 10: (0.9,1]: |1 - .95| * 1; (0.8,0.9]: |0.5 - .875| * 2; (0.5,0.6]: |0.5 - .575| * 2
    expected = (0.05 + 0.375 * 2 + 0.075 * 2) / 5
    assert expected_calibration_error(y, proba, n_bins=10) == pytest.approx(expected)
    # one bin: |mean accuracy - mean confidence|
    assert expected_calibration_error(y, proba, n_bins=1) == pytest.approx(abs(3 / 5 - 0.77))


def test_ece_perfect_and_worst_and_masked():
    y = np.array([0, 1, 0, 1])
    onehot = np.eye(2)[y]
    assert expected_calibration_error(y, onehot) == pytest.approx(0.0)
    assert expected_calibration_error(y, onehot[:, ::-1]) == pytest.approx(1.0)
    # unlabeled samples and masked-out samples do not count
    y_partial = np.array([0, 1, -1, -1])
    wrong_then_right = np.r_[onehot[:2, ::-1], onehot[2:]]
    assert expected_calibration_error(y_partial, wrong_then_right) == pytest.approx(1.0)
    only_last = [False, False, False, True]
    assert expected_calibration_error(y, onehot[:, ::-1], mask=only_last) == pytest.approx(1.0)


def test_ece_matches_reference_loop():
    """Against a direct transcription of Guo et al.'s binning loop, on random probabilities."""
    rng = np.random.RandomState(0)
    proba = rng.dirichlet(np.ones(4), size=200)
    y = rng.randint(0, 4, 200)
    confidence, predicted = proba.max(1), proba.argmax(1)
    edges = np.linspace(0, 1, 16)
    reference = 0.0
    for lower, upper in zip(edges[:-1], edges[1:]):
        in_bin = (confidence > lower) & (confidence <= upper)
        if in_bin.any():
            accuracy = (predicted[in_bin] == y[in_bin]).mean()
            reference += in_bin.mean() * abs(accuracy - confidence[in_bin].mean())
    assert expected_calibration_error(y, proba) == pytest.approx(reference)


def test_ece_errors():
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error([0], [[1.0, 0.0]], n_bins=0)
    with pytest.raises(ValueError, match="proba must hold probabilities"):
        expected_calibration_error([0], [[1.5, -0.5]])


# ------------------------------------------------------------------------------ scorer

class _Constant(ClassifierMixin, BaseEstimator):
    """Predicts fixed labels, whatever X is (X holds the row index to look up)."""

    def __init__(self, predictions=None):
        self.predictions = predictions

    def fit(self, X, y):
        self.classes_ = np.unique(np.asarray(self.predictions))
        return self

    def predict(self, X):
        return np.asarray(self.predictions)[np.asarray(X)[:, 0].astype(int)]


def test_labeled_scorer_drops_unlabeled():
    X = np.arange(6)[:, None]
    y = np.array([0, 1, -1, 1, -1, 0])
    clf = _Constant([0, 1, 1, 0, -1, 1]).fit(X, y)
    # labeled rows 0, 1, 3, 5: predictions 0, 1, 0, 1 vs 0, 1, 1, 0 -> 2 / 4
    assert make_labeled_scorer("accuracy")(clf, X, y) == pytest.approx(0.5)
    expected_f1 = f1_score([0, 1, 1, 0], [0, 1, 0, 1], average="macro")
    assert make_labeled_scorer("f1_macro")(clf, X, y) == pytest.approx(expected_f1)
    # a callable metric(y_true, y_pred)
    scorer = make_labeled_scorer(lambda t, p: float(np.sum(t == p)))
    assert scorer(clf, X, y) == pytest.approx(2.0)
    # extra keyword arguments reach the metric through make_scorer
    scorer = make_labeled_scorer(f1_score, average="micro")
    assert scorer(clf, X, y) == pytest.approx(0.5)
    # sample weights are masked alongside
    weights = np.array([3.0, 1.0, 100.0, 0.0, 100.0, 0.0])
    assert make_labeled_scorer("accuracy")(clf, X, y, sample_weight=weights) == pytest.approx(1.0)


def test_labeled_scorer_string_labels():
    X = np.arange(4)[:, None]
    y = np.array(["cat", -1, "dog", "dog"], dtype=object)
    clf = _Constant(np.array(["cat", "cat", "dog", "cat"], dtype=object)).fit(X, y)
    assert make_labeled_scorer("accuracy")(clf, X, y) == pytest.approx(2 / 3)


def test_labeled_scorer_errors_and_pickle():
    X = np.arange(2)[:, None]
    clf = _Constant([0, 1]).fit(X, [0, 1])
    scorer = make_labeled_scorer("accuracy")
    with pytest.raises(ValueError, match="no labeled sample"):
        scorer(clf, X, np.array([-1, -1]))
    with pytest.raises(ValueError, match="not a scikit-learn scorer name"):
        make_labeled_scorer("accuracy_of_everything")
    with pytest.raises(TypeError, match="keyword"):
        make_labeled_scorer("accuracy", average="macro")
    with pytest.raises(TypeError, match="metric"):
        make_labeled_scorer(3)
    assert "accuracy" in repr(scorer)
    again = pickle.loads(pickle.dumps(scorer))
    assert again(clf, X, np.array([0, -1])) == pytest.approx(1.0)


def test_labeled_mask_types():
    assert labeled_mask([0, -1, 2]).tolist() == [True, False, True]
    assert labeled_mask(np.array([0.0, -1.0])).tolist() == [True, False]
    assert labeled_mask(np.array(["a", -1, True], dtype=object)).tolist() == [True, False, True]
    with pytest.raises(ValueError, match="y"):
        labeled_mask(np.zeros((2, 2)))


def test_labeled_mask_string_minus_one_is_unlabeled():
    # "-1" in an object array (CSV, pandas) used to count as a labeled sample of class "-1"
    y = np.array(["a", "-1", " -1", -1, "b"], dtype=object)
    assert labeled_mask(y).tolist() == [True, False, False, False, True]
    assert labeled_mask(np.array(["a", " -1"])).tolist() == [True, False]
    with pytest.raises(TypeError, match="y"):
        labeled_mask(np.array([True, False]))
