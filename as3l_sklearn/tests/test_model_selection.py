"""Splitters that keep unlabeled samples in training, on their own and inside GridSearchCV."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold, cross_val_score
from sklearn.semi_supervised import LabelSpreading

from as3l_sklearn.metrics import make_labeled_scorer
from as3l_sklearn.model_selection import SemiSupervisedKFold, SemiSupervisedStratifiedKFold

SPLITTERS = [SemiSupervisedKFold, SemiSupervisedStratifiedKFold]


def _partial_labels(n=40, n_classes=4, fraction_hidden=0.5, seed=0):
    rng = np.random.RandomState(seed)
    y = np.arange(n) % n_classes
    hidden = rng.permutation(n)[: int(n * fraction_hidden)]
    y_partial = y.copy()
    y_partial[hidden] = -1
    return y, y_partial


@pytest.mark.parametrize("splitter", SPLITTERS)
@pytest.mark.parametrize("shuffle", [False, True])
def test_folds_partition_labeled_and_keep_unlabeled_in_train(splitter, shuffle):
    _, y = _partial_labels()
    X = np.zeros((len(y), 3))
    cv = splitter(n_splits=4, shuffle=shuffle, random_state=0 if shuffle else None)
    labeled = np.flatnonzero(y != -1)
    unlabeled = np.flatnonzero(y == -1)
    folds = list(cv.split(X, y))
    assert len(folds) == cv.get_n_splits(X, y) == 4
    tested = np.concatenate([test for _, test in folds])
    np.testing.assert_array_equal(np.sort(tested), labeled)  # every labeled sample tested once
    for train, test in folds:
        assert np.all(y[test] != -1)
        assert set(unlabeled) <= set(train)
        assert not set(train) & set(test)
        assert len(train) + len(test) == len(y)
        np.testing.assert_array_equal(train, np.sort(train))


def test_matches_sklearn_on_the_labeled_subset():
    _, y = _partial_labels(seed=1)
    labeled = np.flatnonzero(y != -1)
    ours = SemiSupervisedStratifiedKFold(3, shuffle=True, random_state=5).split(np.zeros(len(y)), y)
    theirs = StratifiedKFold(3, shuffle=True, random_state=5).split(np.zeros(len(labeled)),
                                                                    y[labeled])
    for (_, test_ours), (_, test_theirs) in zip(ours, theirs):
        np.testing.assert_array_equal(test_ours, labeled[test_theirs])
    # stratified: each test fold of 20 labeled samples in 4 balanced classes... holds every class
    for _, test in SemiSupervisedStratifiedKFold(2).split(None, y):
        assert len(np.unique(y[test])) == 4


def test_deterministic_shuffle():
    _, y = _partial_labels()
    def tests(seed):
        cv = SemiSupervisedKFold(3, shuffle=True, random_state=seed)
        return [t.tolist() for _, t in cv.split(None, y)]

    first, second, other = tests(7), tests(7), tests(8)
    assert first == second and first != other


def test_string_labels_in_object_arrays():
    y = np.array(["a", -1, "b", "a", -1, "b", "a", "b"], dtype=object)
    for splitter in SPLITTERS:
        for train, test in splitter(n_splits=3).split(np.zeros((8, 1)), y):
            assert {1, 4} <= set(train)
            assert all(isinstance(v, str) for v in y[test])


@pytest.mark.parametrize("splitter", SPLITTERS)
def test_errors(splitter):
    y = np.array([0, 1, -1, -1, -1])
    with pytest.raises(ValueError, match="n_splits=3 is larger than the number of labeled samples"):
        list(splitter(n_splits=3).split(np.zeros((5, 1)), y))
    with pytest.raises(ValueError, match="needs y"):
        list(splitter(n_splits=2).split(np.zeros((5, 1)), None))
    with pytest.raises(ValueError, match="X has 4 samples but y has 5"):
        list(splitter(n_splits=2).split(np.zeros((4, 1)), y))
    with pytest.raises(ValueError, match="y must be 1-D"):
        list(splitter(n_splits=2).split(None, np.zeros((5, 2))))


def test_repr_and_pickle():
    import pickle

    cv = SemiSupervisedKFold(3, shuffle=True, random_state=1)
    assert repr(cv) == "SemiSupervisedKFold(n_splits=3, random_state=1, shuffle=True)"
    _, y = _partial_labels()
    again = pickle.loads(pickle.dumps(cv))
    folds_again = [t.tolist() for _, t in again.split(None, y)]
    assert folds_again == [t.tolist() for _, t in cv.split(None, y)]


@pytest.fixture(scope="module")
def digits_partial():
    digits = load_digits()
    X = digits.data / 16.0
    rng = np.random.RandomState(0)
    y = digits.target.copy()
    y[rng.rand(len(y)) < 0.9] = -1  # 90% of the labels hidden
    return X, y, digits.target


def test_grid_search_label_spreading_never_tests_unlabeled(digits_partial):
    X, y, y_true = digits_partial
    cv = SemiSupervisedStratifiedKFold(n_splits=3, shuffle=True, random_state=0)
    unlabeled = set(np.flatnonzero(y == -1))
    for train, test in cv.split(X, y):
        assert not unlabeled & set(test)
        assert unlabeled <= set(train)

    search = GridSearchCV(
        LabelSpreading(kernel="knn", max_iter=100),
        {"n_neighbors": [10, 20]},
        cv=cv,
        scoring=make_labeled_scorer("accuracy"),
        error_score="raise",
    ).fit(X, y)
    scores = search.cv_results_["mean_test_score"]
    assert np.all(np.isfinite(scores)) and np.all(scores > 0.5), scores
    assert search.best_params_["n_neighbors"] in (10, 20)
    # the refitted transductive model labels the hidden 90% well too
    hidden = y == -1
    assert np.mean(search.best_estimator_.transduction_[hidden] == y_true[hidden]) > 0.8


def test_plain_kfold_would_score_unlabeled(digits_partial):
    """Why the splitter exists: plain K-fold puts -1 samples in test folds, the scorer refuses."""
    X, y, _ = digits_partial
    scorer = make_labeled_scorer("accuracy")
    plain = next(KFold(5).split(X, y))[1]
    assert np.any(y[plain] == -1)
    model = LabelSpreading(kernel="knn", n_neighbors=10)
    scores = cross_val_score(model, X, y, cv=SemiSupervisedKFold(3), scoring=scorer)
    assert np.all(scores > 0.5)
    # a fold made only of unlabeled samples cannot be scored: a clear error, not a silent 0
    only_unlabeled = np.flatnonzero(y == -1)[:10]
    labeled_and_rest = np.setdiff1d(np.arange(len(y)), only_unlabeled)
    with pytest.raises(ValueError, match="no labeled sample"):
        cross_val_score(model, X, y, cv=[(labeled_and_rest, only_unlabeled)],
                        scoring=scorer, error_score="raise")


def test_string_minus_one_stays_out_of_test_folds():
    # "-1" as a string (pandas, CSV) used to be a labeled "class" and land in test folds
    y = np.array(["a", "b", "-1", "a", "b", "-1", "a", "b", "-1"], dtype=object)
    for _, test in SemiSupervisedKFold(3).split(np.zeros((9, 1)), y):
        assert "-1" not in set(y[test].tolist())
