"""Tests of SeededKMeansPropagator: priors, constraints, bad input, grid search over K lists."""

import pickle
import warnings

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.metrics import accuracy_score
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from as3l_sklearn.metrics import make_labeled_scorer
from as3l_sklearn.model_selection import SemiSupervisedKFold, SemiSupervisedStratifiedKFold
from as3l_sklearn.propagation import LLGCPropagator, SeededKMeansPropagator

CENTERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def make_blobs(n_per_blob=30, seed=0, centers=CENTERS):
    rng = np.random.RandomState(seed)
    X = np.concatenate([rng.normal(c, 1.0, (n_per_blob, centers.shape[1])) for c in centers])
    y_true = np.repeat(np.arange(len(centers)), n_per_blob)
    return X, y_true


def one_seed_per_blob(y_true, n_per_blob):
    y = np.full(len(y_true), -1)
    seeds = np.arange(0, len(y_true), n_per_blob)
    y[seeds] = y_true[seeds]
    return y




# --------------------------------------------------------------------------------------
# behaviour
# --------------------------------------------------------------------------------------
def test_one_seed_per_blob_gives_the_correct_prior_everywhere():
    X, y_true = make_blobs(30)
    y = one_seed_per_blob(y_true, 30)
    prop = SeededKMeansPropagator(n_clusters=[3, 6, 10], random_state=0).fit(X, y)
    assert prop.covered_.all()
    np.testing.assert_array_equal(prop.transduction_, y_true)
    np.testing.assert_array_equal(prop.predict(X), y_true)
    # clusters never straddle blobs: every vote a sample receives is for its true class, and
    # the mass of clusterings that leave it in a cluster without labels is spread uniformly
    n_reached = prop.n_reached_
    expected = n_reached / 3 + (3 - n_reached) / 3 / 3
    np.testing.assert_allclose(prop.label_distributions_[np.arange(len(y)), y_true][y == -1],
                               expected[y == -1])
    received = SeededKMeansPropagator(n_clusters=[3, 6, 10], vote_normalization="received",
                                      random_state=0).fit(X, y)
    np.testing.assert_allclose(received.label_distributions_[np.arange(len(y)), y_true], 1.0)


def test_paper_k_list_on_tiny_data_and_rows_sum_to_one():
    X, y_true = make_blobs(20)  # 60 samples: K=60 is exactly 3 seeds + 57 unlabeled
    y = one_seed_per_blob(y_true, 20)
    prop = SeededKMeansPropagator(random_state=0).fit(X, y)
    assert prop.n_clusters_ == [10, 20, 30, 40, 50, 60]
    assert prop.cluster_assignments_.shape == (60, 6)
    np.testing.assert_allclose(prop.label_distributions_.sum(axis=1), 1.0)
    np.testing.assert_allclose(prop.predict_proba(X + 0.1).sum(axis=1), 1.0)
    # one label per blob and K up to 60 on 60 samples: the large K leave most clusters
    # without a label, so some samples are reached by no clustering (uniform prior)
    assert 0 < prop.covered_.sum() < 60
    np.testing.assert_allclose(prop.label_distributions_[~prop.covered_], 1.0 / 3)
    assert accuracy_score(y_true[prop.covered_], prop.transduction_[prop.covered_]) > 0.9


def test_labeled_samples_keep_their_label_in_transduction():
    X, y_true = make_blobs(30)
    y = one_seed_per_blob(y_true, 30)
    # a labeled sample whose label disagrees with its blob keeps that label
    y[45] = 2
    prop = SeededKMeansPropagator(n_clusters=[3, 5], random_state=0).fit(X, y)
    labeled = y != -1
    np.testing.assert_array_equal(prop.transduction_[labeled], y[labeled])
    np.testing.assert_array_equal(prop.label_distributions_[labeled], np.eye(3)[y[labeled]])


def test_constrained_keeps_labeled_samples_in_their_class_cluster():
    X, y_true = make_blobs(30)
    y = one_seed_per_blob(y_true, 30)
    y[45] = 2  # lies in blob 1 but is labeled 2
    constrained = SeededKMeansPropagator(n_clusters=3, random_state=0).fit(X, y)
    free = SeededKMeansPropagator(n_clusters=3, constrained=False, random_state=0).fit(X, y)
    # cluster j is seeded by class j
    assert constrained.cluster_assignments_[45, 0] == 2
    assert free.cluster_assignments_[45, 0] == 1
    # unconstrained, its label votes in blob 1's cluster: blob 1's prior is split 1:1
    np.testing.assert_allclose(free.label_distributions_[31], [0, 0.5, 0.5])
    np.testing.assert_allclose(constrained.label_distributions_[31], [0, 1, 0])


def test_samples_no_clustering_reaches_get_the_uniform_prior():
    X, y_true = make_blobs(10)
    y = one_seed_per_blob(y_true, 10)
    n_unlabeled = int((y == -1).sum())
    # one extra center per unlabeled sample: k-means++ picks each of them, so every unlabeled
    # sample sits alone in a cluster without labels
    prop = SeededKMeansPropagator(n_clusters=3 + n_unlabeled, random_state=0).fit(X, y)
    unlabeled = y == -1
    assert not prop.covered_[unlabeled].any()
    assert prop.covered_[~unlabeled].all()
    np.testing.assert_allclose(prop.label_distributions_[unlabeled], 1.0 / 3)


def test_covered_matches_the_cluster_histograms():
    X, y_true = make_blobs(20)
    y = one_seed_per_blob(y_true, 20)
    prop = SeededKMeansPropagator(n_clusters=[3, 40, 57], random_state=0).fit(X, y)
    votes = sum(d[prop.cluster_assignments_[:, i]]
                for i, d in enumerate(prop.cluster_distributions_))
    np.testing.assert_array_equal(prop.covered_, (votes.sum(axis=1) > 0) | (y != -1))


def test_prior_is_the_sum_over_clusterings_divided_by_their_number():
    X, y_true = make_blobs(20)
    y = one_seed_per_blob(y_true, 20)
    prop = SeededKMeansPropagator(n_clusters=[3, 12, 24], random_state=1).fit(X, y)
    votes = sum(d[prop.cluster_assignments_[:, i]]
                for i, d in enumerate(prop.cluster_distributions_))
    n_reached = sum(
        (d[prop.cluster_assignments_[:, i]].sum(axis=1) > 0)
        for i, d in enumerate(prop.cluster_distributions_))
    np.testing.assert_array_equal(prop.n_reached_, n_reached)
    unlabeled = y == -1
    expected = votes / 3 + (3 - n_reached)[:, None] / 3 / 3
    np.testing.assert_allclose(prop.label_distributions_[unlabeled], expected[unlabeled])
    np.testing.assert_allclose(prop.predict_proba(X)[unlabeled].sum(axis=1), 1.0)

    received = SeededKMeansPropagator(n_clusters=[3, 12, 24], vote_normalization="received",
                                      random_state=1).fit(X, y)
    covered = unlabeled & received.covered_
    np.testing.assert_allclose(received.label_distributions_[covered],
                               votes[covered] / votes[covered].sum(axis=1, keepdims=True))


def test_a_sample_reached_once_is_not_one_hot():
    """Issue 11: a sample that one clustering of several reaches must not get a one-hot prior;
    its confidence is 1/C of the vote plus its uniform share, and it rises with the number
    of clusterings that reach it."""
    X, y_true = make_blobs(20)
    y = one_seed_per_blob(y_true, 20)
    prop = SeededKMeansPropagator(n_clusters=[3, 40, 50, 57], random_state=0).fit(X, y)
    unlabeled = y == -1
    once = unlabeled & (prop.n_reached_ == 1)
    assert once.any()
    confidence = prop.label_distributions_.max(axis=1)
    np.testing.assert_allclose(confidence[once], 1 / 4 + (3 / 4) / 3)
    # more clusterings agreeing on a sample -> more confidence (votes of one class here)
    by_reach = [confidence[unlabeled & (prop.n_reached_ == r)].mean()
                for r in range(1, 5) if (unlabeled & (prop.n_reached_ == r)).any()]
    assert np.all(np.diff(by_reach) > 0)
    received = SeededKMeansPropagator(n_clusters=[3, 40, 50, 57], vote_normalization="received",
                                      random_state=0).fit(X, y)
    assert np.allclose(received.label_distributions_[once].max(axis=1), 1.0)


def test_predict_proba_on_new_samples_uses_nearest_centers():
    X, y_true = make_blobs(30)
    y = one_seed_per_blob(y_true, 30)
    prop = SeededKMeansPropagator(n_clusters=[3, 4], random_state=0).fit(X, y)
    new = np.array([[0.5, 0.2], [9.5, -0.3], [0.1, 10.4]])
    np.testing.assert_array_equal(prop.predict(new), [0, 1, 2])
    np.testing.assert_allclose(prop.predict_proba(new), np.eye(3))


@pytest.mark.parametrize("n_clusters", [1, 2, [1, 2, 3], [5, 100, 1000]])
def test_any_k_list_works_on_tiny_data(n_clusters):
    X, y_true = make_blobs(3)  # 9 samples, 3 classes
    y = one_seed_per_blob(y_true, 3)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="n_clusters asks for more clusters")
        prop = SeededKMeansPropagator(n_clusters=n_clusters, random_state=0).fit(X, y)
    assert all(1 <= k <= 9 for k in prop.n_clusters_)
    np.testing.assert_allclose(prop.label_distributions_.sum(axis=1), 1.0)
    assert prop.predict(X).shape == (9,)


def test_k_larger_than_the_data_warns_and_clips():
    X, y_true = make_blobs(3)
    y = one_seed_per_blob(y_true, 3)
    with pytest.warns(UserWarning, match="K=50 uses 9"):
        prop = SeededKMeansPropagator(n_clusters=[2, 50], random_state=0).fit(X, y)
    assert prop.n_clusters_ == [2, 9]


def test_k_smaller_than_the_number_of_classes_seeds_the_largest_classes():
    X, y_true = make_blobs(10, centers=np.array([[0.0, 0], [10, 0], [0, 10], [10, 10]]))
    y = np.full(40, -1)
    y[[0, 1, 2, 10, 20, 30]] = y_true[[0, 1, 2, 10, 20, 30]]  # class 0 has 3 labels
    prop = SeededKMeansPropagator(n_clusters=2, random_state=0).fit(X, y)
    assert prop.n_clusters_ == [2]
    # cluster 0 is seeded by class 0, the largest; its labeled samples stay there
    assert (prop.cluster_assignments_[[0, 1, 2], 0] == 0).all()
    # the labels of unseeded classes still vote: some prior is not one-hot
    assert (prop.label_distributions_.max(axis=1) < 1).any()
    np.testing.assert_allclose(prop.label_distributions_.sum(axis=1), 1.0)


def test_string_labels_in_object_array():
    X, y_true = make_blobs(20)
    names = np.array(["cat", "dog", "eel"], dtype=object)
    y = names[y_true].copy()
    y[np.setdiff1d(np.arange(60), [0, 20, 40])] = -1
    prop = SeededKMeansPropagator(n_clusters=[3, 6], random_state=0).fit(X, y)
    assert list(prop.classes_) == ["cat", "dog", "eel"]
    np.testing.assert_array_equal(prop.transduction_, names[y_true])
    assert set(prop.predict(X)) <= {"cat", "dog", "eel"}


def test_string_minus_one_marks_unlabeled_samples():
    # a -1 mixed into string labels arrives as "-1" (np.array(["cat", -1]), CSV files,
    # pandas): it marks an unlabeled sample, never a class "-1" (issue 12 item 7)
    X, _ = make_blobs(2)
    for y in (np.array(["cat", "-1", "dog", "-1", "eel", "-1"]),
              np.array(["cat", "-1", "dog", " -1", "eel", -1], dtype=object)):
        prop = SeededKMeansPropagator(n_clusters=[3], random_state=0).fit(X, y)
        assert prop.classes_.tolist() == ["cat", "dog", "eel"]
        assert "-1" not in set(prop.transduction_.tolist())


def test_same_random_state_same_priors_and_pickle_roundtrip():
    X, y_true = make_blobs(20)
    y = one_seed_per_blob(y_true, 20)
    a = SeededKMeansPropagator(random_state=3).fit(X, y)
    b = SeededKMeansPropagator(random_state=3).fit(X, y)
    np.testing.assert_array_equal(a.label_distributions_, b.label_distributions_)
    np.testing.assert_array_equal(a.cluster_assignments_, b.cluster_assignments_)
    restored = pickle.loads(pickle.dumps(a))
    np.testing.assert_array_equal(restored.predict_proba(X), a.predict_proba(X))


def test_usable_in_a_pipeline_and_clonable_with_a_list_parameter():
    X, y_true = make_blobs(20)
    y = one_seed_per_blob(y_true, 20)
    pipe = Pipeline([("scale", StandardScaler()),
                     ("prop", SeededKMeansPropagator(n_clusters=[3, 6], random_state=0))])
    pipe.fit(X, y)
    np.testing.assert_array_equal(pipe.predict(X), y_true)
    twin = clone(pipe)
    assert twin.get_params()["prop__n_clusters"] == [3, 6]


def test_verbose_prints_one_line_per_clustering(capsys):
    X, y_true = make_blobs(10)
    SeededKMeansPropagator(n_clusters=[3, 4], verbose=1, random_state=0).fit(
        X, one_seed_per_blob(y_true, 10))
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("[SeededKMeansPropagator] K=3")


# --------------------------------------------------------------------------------------
# bad input
# --------------------------------------------------------------------------------------
def test_all_unlabeled_y_raises():
    X, _ = make_blobs(5)
    with pytest.raises(ValueError, match="y has 0 labeled samples"):
        SeededKMeansPropagator(n_clusters=2).fit(X, np.full(15, -1))


def test_fully_labeled_y_warns():
    X, y_true = make_blobs(5)
    with pytest.warns(UserWarning, match="y contains no unlabeled samples"):
        prop = SeededKMeansPropagator(n_clusters=3, random_state=0).fit(X, y_true)
    np.testing.assert_array_equal(prop.transduction_, y_true)


def test_one_labeled_class_works_with_a_warning():
    X, _ = make_blobs(5)
    y = np.full(15, -1)
    y[[0, 3]] = 7
    with pytest.warns(UserWarning, match="one class only"):
        prop = SeededKMeansPropagator(n_clusters=[1, 3], random_state=0).fit(X, y)
    assert list(prop.classes_) == [7]
    assert (prop.predict(X) == 7).all()


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"n_clusters": 0}, ValueError, "'n_clusters' parameter of SeededKMeansPropagator must be an int"),
        ({"n_clusters": [10, -2]}, ValueError, "'n_clusters' parameter .* non-empty sequence of ints >= 1"),
        ({"n_clusters": []}, ValueError, "'n_clusters' parameter .* non-empty sequence of ints >= 1"),
        ({"n_clusters": "ten"}, TypeError, "n_clusters"),
        ({"n_clusters": 2.5}, TypeError, "n_clusters"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"constrained": "yes"}, TypeError, "constrained"),
        ({"vote_normalization": "votes"}, ValueError, "vote_normalization"),
    ],
)
def test_bad_parameters_raise_naming_them(params, error, match):
    X, y_true = make_blobs(5)
    y = one_seed_per_blob(y_true, 5)
    with pytest.raises(error, match=match):
        SeededKMeansPropagator(**params).fit(X, y)


def test_bad_data_raise_naming_the_argument():
    X, y_true = make_blobs(5)
    y = one_seed_per_blob(y_true, 5)
    prop = SeededKMeansPropagator(n_clusters=3)
    with pytest.raises(ValueError, match="y has 14 labels but X has 15 samples"):
        prop.fit(X, y[:-1])
    X_nan = X.copy()
    X_nan[3, 1] = np.nan
    with pytest.raises(ValueError, match="X"):
        prop.fit(X_nan, y)
    y_nan = y.astype(float)
    y_nan[2] = np.nan
    with pytest.raises(ValueError, match="y contains NaN"):
        prop.fit(X, y_nan)
    with pytest.raises(ValueError, match="requires y to be passed"):
        prop.fit(X, None)
    prop.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        prop.predict(np.zeros((2, 3)))


# --------------------------------------------------------------------------------------
# honest grid search over K lists (Table 6 of the paper)
# --------------------------------------------------------------------------------------
def test_grid_search_over_k_lists_scores_only_held_out_labeled_samples():
    X, y_true = make_blobs(40)  # 120 samples
    rng = np.random.RandomState(0)
    labeled_index = np.sort(np.concatenate(
        [rng.choice(np.flatnonzero(y_true == c), 4, replace=False) for c in range(3)]))
    y = np.full(len(y_true), -1)
    y[labeled_index] = y_true[labeled_index]

    scored = []

    def spy_accuracy(y_seen, y_pred):
        scored.append(np.asarray(y_seen).copy())
        return accuracy_score(y_seen, y_pred)

    grid = {"prop__n_clusters": [[3, 6, 9], [3] * 3, [3, 9, 9]]}
    search = GridSearchCV(
        Pipeline([("scale", StandardScaler()), ("prop", SeededKMeansPropagator(random_state=0))]),
        grid,
        scoring=make_labeled_scorer(spy_accuracy),
        cv=SemiSupervisedKFold(n_splits=3, shuffle=True, random_state=0),
    ).fit(X, y)

    assert len(search.cv_results_["params"]) == 3
    assert search.best_params_["prop__n_clusters"] in grid["prop__n_clusters"]
    assert search.best_score_ == pytest.approx(1.0)
    # 3 candidates x 3 folds; every fold scores labeled samples only, and over the folds
    # of one candidate each labeled sample is scored exactly once
    assert len(scored) == 9
    assert all((s != -1).all() for s in scored)
    per_candidate = np.concatenate(scored[:3])
    assert len(per_candidate) == len(labeled_index)
    np.testing.assert_array_equal(np.sort(per_candidate), np.sort(y[labeled_index]))


def test_grid_search_also_runs_over_the_llgc_baseline():
    X, y_true = make_blobs(20)
    y = one_seed_per_blob(y_true, 20)
    y[[1, 21, 41]] = y_true[[1, 21, 41]]
    # stratified folds: every training fold keeps a label of every class
    search = GridSearchCV(
        LLGCPropagator(normalize=False), {"n_neighbors": [5, 10]},
        scoring=make_labeled_scorer("accuracy"), cv=SemiSupervisedStratifiedKFold(n_splits=2),
    ).fit(X, y)
    assert search.best_score_ == pytest.approx(1.0)


def test_sample_seeding_gives_each_labeled_sample_its_own_cluster():
    """seeding='sample': with K >= n_labeled, two labels of one class start two clusters (one
    each); seeding='class' merges them into one cluster at their mean."""
    X, y_true = make_blobs(20, centers=np.array([[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]]))
    y = np.full(len(y_true), -1)
    y[[0, 1, 20, 40]] = y_true[[0, 1, 20, 40]]
    per_sample = SeededKMeansPropagator(n_clusters=[4, 8], random_state=0).fit(X, y)
    per_class = SeededKMeansPropagator(n_clusters=[4, 8], seeding="class", random_state=0).fit(X, y)
    assert per_sample.cluster_assignments_[0, 0] != per_sample.cluster_assignments_[1, 0]
    assert per_class.cluster_assignments_[0, 0] == per_class.cluster_assignments_[1, 0]
    # both keep every labeled sample's cluster voting for its class
    for prop in (per_sample, per_class):
        np.testing.assert_array_equal(prop.transduction_[y != -1], y[y != -1])
    with pytest.raises(ValueError, match="seeding"):
        SeededKMeansPropagator(seeding="cluster").fit(X, y)
