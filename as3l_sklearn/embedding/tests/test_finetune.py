"""Tests of ClusterFineTuner (AS3L section 3.2.1, Eq. 1)."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from as3l_sklearn.cluster import kmeans
from as3l_sklearn.embedding import ClusterFineTuner



def _blobs(n_per=40, dim=6, seed=0, noise=1.0):
    rng = np.random.RandomState(seed)
    centers = rng.normal(0, 4, size=(3, dim))
    X = np.concatenate([c + noise * rng.normal(size=(n_per, dim)) for c in centers])
    y = np.repeat(np.arange(3), n_per)
    return X.astype(np.float32), y


def _fast(**params):
    base = dict(n_clusters=3, n_runs=3, max_epochs=10, random_state=0, device="cpu")
    base.update(params)
    return ClusterFineTuner(**base)



def test_default_parameters_pass_a_full_fit():
    # the defaults (K=10, C=6, 40 epochs, whitening to 50 axes) on a small matrix
    X, _ = _blobs(n_per=20, dim=8)
    fine = ClusterFineTuner(random_state=0, device="cpu").fit(X)
    assert fine.cluster_centers_.shape == (6, 10, 8)  # 8 axes: n_components clipped to n_features
    assert fine.labels_.shape == (60, 6)
    assert len(fine.loss_curve_) == 41


def test_loss_falls_and_first_entry_is_eq1_of_identity_layer():
    X, _ = _blobs()
    fine = _fast(preprocessing="standardize").fit(X)
    G = fine._condition(X)
    targets = fine.cluster_centers_[np.arange(fine.n_runs)[None, :], fine.labels_]
    eq1_identity = ((G[:, None, :] - targets) ** 2).sum(axis=2).mean()
    np.testing.assert_allclose(fine.loss_curve_[0], eq1_identity, rtol=1e-4)
    assert fine.loss_curve_[-1] < 0.9 * fine.loss_curve_[0]


def test_loss_curve_is_eq1_of_the_transform():
    X, _ = _blobs()
    fine = _fast().fit(X)
    F = fine.transform(X)
    targets = fine.cluster_centers_[np.arange(fine.n_runs)[None, :], fine.labels_]
    eq1 = ((F[:, None, :] - targets) ** 2).sum(axis=2).mean()
    np.testing.assert_allclose(fine.loss_curve_[-1], eq1, rtol=1e-3)


def test_centers_are_kmeans_of_conditioned_input_and_fixed():
    X, _ = _blobs()
    fine = _fast().fit(X)
    G = fine._condition(X)
    # each run's centers are the means of their clusters in conditioned f_self space
    for run in range(fine.n_runs):
        for k in range(fine.n_clusters):
            members = fine.labels_[:, run] == k
            np.testing.assert_allclose(fine.cluster_centers_[run, k], G[members].mean(axis=0), atol=1e-4)


def test_fine_tuning_tightens_clusters_without_collapse():
    X, _ = _blobs(noise=2.5)
    fine = _fast(preprocessing="standardize", max_epochs=40).fit(X)
    G, F = fine._condition(X), fine.transform(X)

    def within_over_total(Z):
        labels = kmeans(Z, 3, random_state=0).labels
        within = sum(((Z[labels == k] - Z[labels == k].mean(0)) ** 2).sum() for k in range(3))
        return within / ((Z - Z.mean(0)) ** 2).sum()

    assert within_over_total(F) < within_over_total(G)
    # no collapse onto one point: the spread stays of the order of the centers' spread
    assert F.std(axis=0).sum() > 0.3 * fine.cluster_centers_.reshape(-1, F.shape[1]).std(axis=0).sum()


@pytest.mark.parametrize(
    "preprocessing, n_components, expected_dim",
    [("whiten", 3, 3), ("whiten", 50, 6), ("whiten", None, 6), ("standardize", 3, 6), ("l2", None, 6), (None, 2, 6)],
)
def test_preprocessing_options(preprocessing, n_components, expected_dim):
    X, _ = _blobs()
    fine = _fast(preprocessing=preprocessing, n_components=n_components, max_epochs=2).fit(X)
    F = fine.transform(X)
    assert F.shape == (X.shape[0], expected_dim) and F.dtype == np.float32
    assert fine.n_components_ == expected_dim
    assert len(fine.get_feature_names_out()) == expected_dim
    G = fine._condition(X)
    if preprocessing == "whiten":
        np.testing.assert_allclose(np.cov(G.T.astype(np.float64)), np.eye(expected_dim), atol=1e-3)
    if preprocessing == "l2":
        np.testing.assert_allclose(np.linalg.norm(G, axis=1), 1.0, rtol=1e-5)


def test_whiten_variance_fraction():
    X, _ = _blobs(dim=10)
    fine = _fast(n_components=0.5, max_epochs=1).fit(X)
    assert 1 <= fine.n_components_ < 10


def test_same_random_state_same_output_and_different_seed_differs():
    X, _ = _blobs()
    a = _fast(random_state=1).fit_transform(X)
    b = _fast(random_state=1).fit_transform(X)
    np.testing.assert_array_equal(a, b)
    c = _fast(random_state=2, n_clusters=5).fit_transform(X)
    assert not np.allclose(a[:, :3], c[:, :3])


def test_pickle_and_clone():
    X, _ = _blobs()
    fine = _fast().fit(X)
    restored = pickle.loads(pickle.dumps(fine))
    np.testing.assert_array_equal(restored.transform(X), fine.transform(X))
    fresh = clone(fine)
    assert not hasattr(fresh, "coef_") and fresh.get_params() == fine.get_params()


def test_set_output_pandas():
    pd = pytest.importorskip("pandas")
    X, _ = _blobs()
    out = _fast(max_epochs=1).set_output(transform="pandas").fit_transform(X)
    assert isinstance(out, pd.DataFrame)
    assert list(out.columns[:2]) == ["clusterfinetuner0", "clusterfinetuner1"]


@pytest.mark.parametrize(
    "params, match",
    [
        (dict(n_clusters=500), "n_clusters"),
        (dict(n_clusters=0), "n_clusters"),
        (dict(n_runs=0), "n_runs"),
        (dict(preprocessing="pca"), "preprocessing"),
        (dict(n_components=1.5), "n_components"),
        (dict(lr=-1.0), "lr"),
        (dict(max_epochs=0), "max_epochs"),
    ],
)
def test_bad_parameters(params, match):
    X, _ = _blobs()
    with pytest.raises(ValueError, match=match):
        _fast(**params).fit(X)


def test_bad_input():
    X, _ = _blobs()
    X_nan = X.copy()
    X_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        _fast().fit(X_nan)
    fine = _fast(max_epochs=1).fit(X)
    with pytest.raises(ValueError, match="features"):
        fine.transform(X[:, :3])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_gives_a_cpu_transform():
    X, _ = _blobs()
    fine = _fast(device="cuda").fit(X)
    assert isinstance(fine.coef_, np.ndarray)
    assert pickle.loads(pickle.dumps(fine)).transform(X).shape == (X.shape[0], X.shape[1])


def test_divergent_lr_restarts_with_a_smaller_step_and_warns():
    from sklearn.exceptions import ConvergenceWarning

    X, _ = _blobs()
    with pytest.warns(ConvergenceWarning, match="diverged"):
        fine = _fast(lr=50.0).fit(X)
    assert np.isfinite(fine.transform(X)).all()
    assert fine.loss_curve_[-1] < fine.loss_curve_[0]


def test_verbose_1_shows_one_bar_and_verbose_2_plain_lines(capsys):
    # before: verbose=1 printed a line per k-means run and per epoch (46 lines for a 0.2 s fit)
    X, _ = _blobs()
    _fast(verbose=1).fit(X)
    out, err = capsys.readouterr()
    assert out == "" and "\x1b[" not in err
    assert err.count("\n") == 1 and err.count("\r") <= 3 and "ClusterFineTuner" in err and "13/13" in err  # 3 runs + 10 epochs
    _fast(verbose=2).fit(X)
    out, err = capsys.readouterr()
    assert len(out.strip().splitlines()) == 3 + 10 and err == ""
