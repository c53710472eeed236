"""Tests of LLGCPropagator, the weighted-graph label spreading (Zhou et al.; Iscen et al.)."""

import pickle

import numpy as np
import pytest

from as3l_sklearn.propagation import LLGCPropagator

CENTERS = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])


def make_blobs(n_per_blob=20, seed=0):
    rng = np.random.RandomState(seed)
    X = np.concatenate([rng.normal(c, 1.0, (n_per_blob, 2)) for c in CENTERS])
    y_true = np.repeat(np.arange(3), n_per_blob)
    y = np.full(len(y_true), -1)
    y[::n_per_blob] = y_true[::n_per_blob]
    return X, y_true, y



def test_one_label_per_blob_spreads_to_the_whole_blob():
    X, y_true, y = make_blobs()
    prop = LLGCPropagator(n_neighbors=7, normalize=False).fit(X, y)
    np.testing.assert_array_equal(prop.transduction_, y_true)
    np.testing.assert_allclose(prop.label_distributions_.sum(axis=1), 1.0)
    assert prop.covered_.all()
    np.testing.assert_array_equal(prop.predict(X + 0.05), y_true)
    assert 0 < prop.n_iter_ <= prop.max_iter


def _reference_llgc(X, y, n_neighbors, alpha, gamma):
    """Dense, literal Zhou et al. / Iscen et al. solve: Z = (I - alpha S)^-1 Y."""
    Xn = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = Xn @ Xn.T
    np.fill_diagonal(cos, -np.inf)
    A = np.zeros_like(cos)
    for i, row in enumerate(cos):
        nn = np.argsort(-row)[:n_neighbors]
        A[i, nn] = np.maximum(row[nn], 0) ** gamma
    W = A + A.T
    d = W.sum(axis=1)
    S = W / np.sqrt(np.outer(d, d))
    Y = np.zeros((len(X), y.max() + 1))
    for c in range(Y.shape[1]):
        Y[y == c, c] = 1.0 / (y == c).sum()
    Z = np.linalg.solve(np.eye(len(X)) - alpha * S, Y)
    return Z / Z.sum(axis=1, keepdims=True)


def test_matches_the_dense_closed_form_solution():
    rng = np.random.RandomState(0)
    X = np.r_[rng.normal([5, 0, 1], 1, (25, 3)), rng.normal([0, 5, 1], 1, (25, 3))]
    y = np.full(50, -1)
    y[[0, 1, 25]] = [0, 0, 1]
    prop = LLGCPropagator(n_neighbors=6, alpha=0.9, max_iter=500, tol=1e-10).fit(X, y)
    expected = _reference_llgc(X, y, 6, 0.9, 3.0)
    unlabeled = y == -1
    np.testing.assert_allclose(prop.label_distributions_[unlabeled], expected[unlabeled],
                               atol=1e-6)


def test_graph_is_symmetric_and_weighted():
    """A sample that is nobody's neighbour still receives its neighbours' labels (W + W^T),
    and closer neighbours weigh more than far ones (gamma)."""
    X = np.array([[1.0, 0.0], [0.99, 0.14], [0.0, 1.0], [0.14, 0.99], [0.7, 0.7]])
    y = np.array([0, -1, 1, -1, -1])
    prop = LLGCPropagator(n_neighbors=2, alpha=0.9, max_iter=100).fit(X, y)
    assert prop.covered_.all()
    np.testing.assert_array_equal(prop.transduction_[:4], [0, 0, 1, 1])
    # sharper weights give the point between the classes a less even prior, never a wrong one
    flat = LLGCPropagator(n_neighbors=2, alpha=0.9, gamma=1e-3).fit(X, y)
    assert abs(flat.label_distributions_[4, 0] - 0.5) < 0.05


def test_labeled_samples_keep_their_label_and_one_hot_row():
    X, y_true, y = make_blobs()
    y[5] = 1  # sits in blob 0, labeled 1
    prop = LLGCPropagator(n_neighbors=7, normalize=False).fit(X, y)
    labeled = y != -1
    np.testing.assert_array_equal(prop.transduction_[labeled], y[labeled])
    np.testing.assert_array_equal(prop.label_distributions_[5], [0, 1, 0])


def test_unreached_component_gets_uniform_prior():
    X, _, y = make_blobs()
    y[20] = -1  # blob 1 has no label; with 5 neighbours the blobs are disconnected
    prop = LLGCPropagator(n_neighbors=5, normalize=False).fit(X, y)
    assert list(prop.classes_) == [0, 2]
    assert not prop.covered_[20:40].any()
    np.testing.assert_allclose(prop.label_distributions_[20:40], 0.5)
    assert prop.covered_[:20].all()


def test_string_labels_and_neighbour_cap_and_pickle():
    X, y_true, _ = make_blobs(3)  # 9 samples: n_neighbors=50 is capped at the 8 others
    y = np.array(["a", "b", "c"], dtype=object)[y_true]
    y[[1, 2, 4, 5, 7, 8]] = -1
    prop = LLGCPropagator().fit(X, y)
    assert prop.n_neighbors_ == 8
    assert list(prop.classes_) == ["a", "b", "c"]
    assert set(prop.transduction_) <= {"a", "b", "c"}
    restored = pickle.loads(pickle.dumps(prop))
    np.testing.assert_array_equal(restored.predict(X), prop.predict(X))


@pytest.mark.parametrize(
    "params, error, match",
    [
        ({"alpha": 1.0}, ValueError, "alpha"),
        ({"alpha": 0}, ValueError, "alpha"),
        ({"n_neighbors": 0}, ValueError, "n_neighbors"),
        ({"max_iter": 0}, ValueError, "max_iter"),
        ({"gamma": 0}, ValueError, "gamma"),
        ({"tol": -1.0}, ValueError, "tol"),
        ({"normalize": "yes"}, TypeError, "normalize"),
    ],
)
def test_bad_parameters_raise_naming_them(params, error, match):
    X, _, y = make_blobs(5)
    with pytest.raises(error, match=match):
        LLGCPropagator(**params).fit(X, y)


def test_bad_labels():
    X, y_true, y = make_blobs(5)
    with pytest.raises(ValueError, match="y has 0 labeled samples"):
        LLGCPropagator().fit(X, np.full(15, -1))
    with pytest.warns(UserWarning, match="no unlabeled samples"):
        LLGCPropagator().fit(X, y_true)
    y_one = np.full(15, -1)
    y_one[0] = 4
    with pytest.warns(UserWarning, match="one class only"):
        prop = LLGCPropagator().fit(X, y_one)
    assert (prop.transduction_ == 4).all()
    with pytest.raises(ValueError, match="y has 14 labels but X has 15 samples"):
        LLGCPropagator().fit(X, y[:-1])


# --- neighbour index (issue 14: scale) ------------------------------------------------------


def test_neighbor_index_is_passed_to_the_search(monkeypatch):
    from as3l_sklearn.propagation import _llgc

    X, y_true, y = make_blobs(n_per_blob=40)
    seen = []
    real = _llgc.knn_search
    monkeypatch.setattr(_llgc, "knn_search",
                        lambda *a, **kw: seen.append(kw.get("index")) or real(*a, **kw))
    exact = LLGCPropagator(n_neighbors=7, normalize=False).fit(X, y)
    forced = LLGCPropagator(n_neighbors=7, normalize=False, neighbor_index="flat").fit(X, y)
    # "auto" is exact on small data: the same priors as the forced flat index
    np.testing.assert_array_equal(exact.label_distributions_, forced.label_distributions_)
    hnsw = LLGCPropagator(n_neighbors=7, normalize=False, neighbor_index="hnsw").fit(X, y)
    hnsw.predict(X[:5])
    assert seen == ["auto", "flat", "hnsw", "hnsw"]
    assert (hnsw.transduction_ == y_true).mean() > 0.95


@pytest.mark.parametrize("bad", ["exact", None])
def test_bad_neighbor_index_is_named(bad):
    X, _, y = make_blobs()
    with pytest.raises(ValueError, match="'neighbor_index' parameter of LLGCPropagator must be a str among"):
        LLGCPropagator(neighbor_index=bad).fit(X, y)


def test_auto_alpha_grows_with_the_graph_up_to_iscen_et_al_value():
    from as3l_sklearn.propagation._llgc import auto_alpha

    assert [auto_alpha(n) for n in (1, 300, 1_000, 5_000, 10_000, 10**6)] == [
        0.9, 0.9, 0.9, 0.98, 0.99, 0.99]
    X, _, y = make_blobs()
    assert LLGCPropagator().fit(X, y).alpha_ == 0.9
    assert LLGCPropagator(alpha=0.95).fit(X, y).alpha_ == 0.95
    with pytest.raises(ValueError, match="The 'alpha' parameter of LLGCPropagator must be .* or a str among {'auto'}"):
        LLGCPropagator(alpha="half").fit(X, y)


def test_auto_alpha_lowers_the_ece_of_a_small_graph_without_losing_accuracy():
    """With one label per class on 300 samples, alpha=0.99 mixes the graph completely and
    the priors are far too flat; alpha="auto" (0.9 here) keeps the accuracy (the arg-max may
    change: alpha is not a temperature) and cuts the ECE, alone and inside the combination."""
    from as3l_sklearn.metrics import expected_calibration_error, prior_accuracy
    from as3l_sklearn.propagation import CombinedPropagator

    rng = np.random.RandomState(2)
    centers = rng.normal(0, 3, (4, 5))
    X = np.concatenate([rng.normal(c, 2.0, (75, 5)) for c in centers])
    y_true = np.repeat(np.arange(4), 75)
    y = np.full(300, -1)
    y[::75] = y_true[::75]
    unlabeled = y == -1
    for make in (lambda alpha: LLGCPropagator(alpha=alpha),
                 lambda alpha: CombinedPropagator(graph_propagator=LLGCPropagator(alpha=alpha),
                                                  random_state=0)):
        fixed = make(0.99).fit(X, y).label_distributions_
        auto = make("auto").fit(X, y).label_distributions_
        assert (prior_accuracy(y_true, auto, mask=unlabeled)
                >= prior_accuracy(y_true, fixed, mask=unlabeled))
        assert (expected_calibration_error(y_true, auto, mask=unlabeled)
                < expected_calibration_error(y_true, fixed, mask=unlabeled) - 0.1)
