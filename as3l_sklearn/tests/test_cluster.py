"""The shared k-means / nearest-neighbour backend: faiss and scikit-learn agree."""

import numpy as np
import pytest
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from as3l_sklearn import cluster
from as3l_sklearn.cluster import (
    KMeansResult,
    available_backend,
    kmeans,
    knn_search,
    nearest_centers,
)

HAS_FAISS = cluster._faiss() is not None
needs_faiss = pytest.mark.skipif(not HAS_FAISS, reason="faiss is not installed")
BACKENDS = ["sklearn", pytest.param("faiss", marks=needs_faiss)]


@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=600, centers=6, n_features=8, cluster_std=0.5, center_box=(-20, 20),
                      random_state=0)
    return X.astype(np.float32), y


@pytest.mark.parametrize("backend", BACKENDS)
def test_recovers_well_separated_blobs(blobs, backend):
    X, y = blobs
    result = kmeans(X, 6, n_init=3, random_state=0, backend=backend)
    assert isinstance(result, KMeansResult)
    assert result.centers.shape == (6, 8) and result.centers.dtype == np.float32
    assert result.labels.shape == (600,) and result.labels.dtype == np.int64
    assert adjusted_rand_score(y, result.labels) == pytest.approx(1.0)
    # inertia is the sum of squared distances to the assigned centers
    manual = ((X - result.centers[result.labels]) ** 2).sum()
    assert result.inertia == pytest.approx(manual, rel=1e-4)


@needs_faiss
def test_faiss_and_sklearn_agree(blobs):
    X, _ = blobs
    with_faiss = kmeans(X, 6, n_init=3, random_state=1, backend="faiss")
    with_sklearn = kmeans(X, 6, n_init=3, random_state=1, backend="sklearn")
    assert adjusted_rand_score(with_faiss.labels, with_sklearn.labels) == pytest.approx(1.0)
    # same seeded k-means++ starts, same Lloyd steps: same centers in the same order
    np.testing.assert_allclose(with_faiss.centers, with_sklearn.centers, atol=1e-3)
    assert with_faiss.inertia == pytest.approx(with_sklearn.inertia, rel=1e-4)


@pytest.mark.parametrize("backend", BACKENDS)
def test_deterministic_under_random_state(backend):
    X = np.random.RandomState(0).normal(size=(300, 5)).astype(np.float32)  # no cluster structure
    first = kmeans(X, 7, random_state=42, backend=backend)
    second = kmeans(X, 7, random_state=42, backend=backend)
    np.testing.assert_array_equal(first.centers, second.centers)
    np.testing.assert_array_equal(first.labels, second.labels)
    other = kmeans(X, 7, random_state=43, backend=backend)
    assert not np.array_equal(first.centers, other.centers)


@pytest.mark.parametrize("backend", BACKENDS)
def test_init_is_respected(blobs, backend):
    X, y = blobs
    true_centers = np.stack([X[y == k].mean(0) for k in range(6)])
    order = np.array([3, 0, 5, 1, 4, 2])
    result = kmeans(X, 6, init=true_centers[order] + 0.1, random_state=0, backend=backend)
    # center i started next to blob order[i], so it ends there and its label is i
    np.testing.assert_array_equal(result.labels, np.argsort(order)[y])
    np.testing.assert_allclose(result.centers, true_centers[order], atol=1e-3)
    # the given start is where Lloyd begins: one step from shifted centers lands on the blob means
    start = true_centers[order] + 2.0
    one_step = kmeans(X, 6, init=start, max_iter=1, random_state=0, backend=backend)
    np.testing.assert_allclose(one_step.centers, true_centers[order], atol=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_knn_search_matches_brute_force(backend):
    rng = np.random.RandomState(0)
    database = rng.normal(size=(50, 6)).astype(np.float32)
    queries = rng.normal(size=(30, 6)).astype(np.float32)
    distances, indices = knn_search(database, queries, 4, backend=backend)
    assert distances.shape == indices.shape == (30, 4)
    assert distances.dtype == np.float32 and indices.dtype == np.int64
    brute = ((queries[:, None, :] - database[None, :, :]) ** 2).sum(-1)
    expected_indices = np.argsort(brute, axis=1)[:, :4]
    np.testing.assert_array_equal(indices, expected_indices)
    expected_distances = np.take_along_axis(brute, expected_indices, 1)
    np.testing.assert_allclose(distances, expected_distances, rtol=1e-4, atol=1e-4)
    assert np.all(np.diff(distances, axis=1) >= 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_centers(backend):
    centers = np.array([[0.0, 0.0], [10.0, 0.0]])
    points = [[1.0, 0.0], [9.0, 1.0], [4.0, 3.0]]
    labels, squared = nearest_centers(points, centers, backend=backend)
    assert labels.tolist() == [0, 1, 0]
    np.testing.assert_allclose(squared, [1.0, 2.0, 25.0], rtol=1e-5)


def test_sklearn_fallback_when_faiss_cannot_be_imported(monkeypatch, blobs):
    monkeypatch.setattr(cluster, "_faiss", lambda: None)
    assert available_backend() == "sklearn"
    X, y = blobs
    result = kmeans(X, 6, n_init=2, random_state=0)  # backend="auto"
    assert adjusted_rand_score(y, result.labels) == pytest.approx(1.0)
    result = kmeans(X, 6, random_state=0, backend="sklearn")
    assert result.centers.shape == (6, 8)
    distances, indices = knn_search(X[:20], X[:5], 1)
    assert indices[:, 0].tolist() == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="backend='faiss'.*not installed"):
        kmeans(X, 6, backend="faiss")


@needs_faiss
def test_available_backend_with_faiss():
    assert available_backend() in ("faiss-cpu", "faiss-gpu")


def test_faiss_uses_all_points(monkeypatch):
    """Centers are means over every point, not over faiss's default 256-per-centroid sample."""
    if not HAS_FAISS:
        pytest.skip("faiss is not installed")
    rng = np.random.RandomState(0)
    X = rng.normal(size=(2000, 2)).astype(np.float32)
    result = kmeans(X, 2, random_state=0, backend="faiss", max_iter=100)
    # at convergence each center is the mean of the points assigned to it (all of them)
    for k in range(2):
        np.testing.assert_allclose(result.centers[k], X[result.labels == k].mean(0), atol=1e-4)


@pytest.mark.parametrize("kwargs, error, match", [
    ({"X": np.zeros((5, 2)), "n_clusters": 6}, ValueError, "n_clusters=6"),
    ({"X": np.zeros((5, 2)), "n_clusters": 0}, ValueError, "'n_clusters' parameter of kmeans must be"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2.0}, TypeError, "'n_clusters' parameter of kmeans must be"),
    ({"X": np.zeros((5, 2)), "n_clusters": True}, TypeError, "'n_clusters' parameter of kmeans must be"),
    ({"X": np.array([[np.nan, 0.0]] * 5), "n_clusters": 2}, ValueError, "X"),
    ({"X": np.zeros(5), "n_clusters": 2}, ValueError, "X"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2, "backend": "gpu"}, ValueError, "backend"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2, "max_iter": 0}, ValueError, "max_iter"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2, "n_init": 0}, ValueError, "n_init"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2, "init": np.zeros((3, 2))}, ValueError, "init"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2, "init": np.zeros((2, 2)), "n_init": 2},
     ValueError, "n_init"),
    ({"X": np.zeros((5, 2)), "n_clusters": 2, "init": np.full((2, 2), np.inf)}, ValueError, "init"),
])
def test_kmeans_bad_input_names_the_argument(kwargs, error, match):
    with pytest.raises(error, match=match):
        kmeans(**kwargs)


def test_knn_and_nearest_bad_input():
    with pytest.raises(ValueError, match="k=4 is larger than the database"):
        knn_search(np.zeros((3, 2)), np.zeros((1, 2)), 4)
    with pytest.raises(ValueError, match=r"The 'k' parameter of knn_search must be an int in the range \[1, inf\)"):
        knn_search(np.zeros((3, 2)), np.zeros((1, 2)), 0)
    with pytest.raises(ValueError, match="queries"):
        knn_search(np.zeros((3, 2)), np.full((1, 2), np.nan), 1)
    with pytest.raises(ValueError, match="centers"):
        nearest_centers(np.zeros((3, 2)), np.zeros((2, 3)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_centers_without_input_checks_gives_the_same_result(blobs, backend):
    X, _ = blobs
    centers = np.ascontiguousarray(X[:6])
    checked = nearest_centers(X, centers, backend=backend)
    unchecked = nearest_centers(X, centers, backend=backend, check_input=False)
    for a, b in zip(checked, unchecked):
        np.testing.assert_array_equal(a, b)


def test_knn_search_names_a_feature_mismatch():
    from as3l_sklearn.cluster import knn_search

    with pytest.raises(ValueError, match="queries have 3 features but database has 4"):
        knn_search(np.zeros((5, 4)), np.zeros((2, 3)), 1)


# --- approximate neighbours and sampled seeding (issue 14: scale) ---------------------------


def _clustered(n, dim=16, seed=0):
    X, y = make_blobs(n_samples=n, centers=20, n_features=dim, cluster_std=1.0,
                      center_box=(-10, 10), random_state=seed)
    return X.astype(np.float32), y


def _recall(found, truth):
    return np.mean([np.intersect1d(f, t).size / t.size for f, t in zip(found, truth)])


@needs_faiss
@pytest.mark.parametrize("index", ["hnsw", "ivf"])
def test_approximate_index_recall_on_a_small_problem(index):
    X, _ = _clustered(2000)
    _, exact = knn_search(X, X, 10, index="flat")
    distances, found = knn_search(X, X, 10, index=index)
    assert found.shape == (2000, 10) and found.dtype == np.int64
    assert distances.dtype == np.float32 and np.all(np.diff(distances, axis=1) >= 0)
    assert _recall(found, exact) > 0.9


@needs_faiss
def test_ivf_fills_queries_its_cells_cannot_answer():
    # k close to n: the 16 probed cells hold fewer than k rows for some queries, which are
    # searched again exactly, so no -1 index ever comes back
    X, _ = _clustered(2000, dim=4)
    distances, found = knn_search(X, X[:50], 1500, index="ivf")
    assert found.min() >= 0
    assert all(np.unique(row).size == 1500 for row in found)
    assert np.all(np.diff(distances, axis=1) >= 0)


@needs_faiss
def test_ivf_returns_the_exact_distances_of_its_neighbours():
    # the float16 lists only choose the candidates: the distances are recomputed from the
    # float32 data and every row is sorted by them
    X, _ = _clustered(3000)
    queries = X[::7]
    distances, found = knn_search(X, queries, 12, index="ivf")
    exact = ((X[found].astype(np.float64) - queries[:, None, :].astype(np.float64)) ** 2).sum(-1)
    np.testing.assert_allclose(distances, exact, rtol=1e-5, atol=1e-6)
    assert np.all(np.diff(distances, axis=1) >= 0)
    again_distances, again_found = knn_search(X, queries, 12, index="ivf")
    np.testing.assert_array_equal(found, again_found)
    np.testing.assert_array_equal(distances, again_distances)


@needs_faiss
@pytest.mark.parametrize("factor", [2.0**20, 1e-7])
def test_ivf_scales_data_float16_cannot_hold(factor):
    # values above float16's 65504, and residuals in its subnormal range (recall 0.85 here at
    # 1e-7 without the scaling): the data are scaled by a power of two before encoding, the
    # distances stay in the caller's units
    X, _ = _clustered(2000)
    assert cluster._fp16_safe_scale(X, X) == 1.0
    scaled = X * np.float32(factor)
    assert np.log2(cluster._fp16_safe_scale(scaled, scaled)).is_integer()
    _, exact = knn_search(scaled, scaled, 10, index="flat")
    distances, found = knn_search(scaled, scaled, 10, index="ivf")
    assert np.all(np.isfinite(distances))
    assert _recall(found, exact) > 0.9
    reference = ((scaled[found].astype(np.float64) - scaled[:, None, :]) ** 2).sum(-1)
    np.testing.assert_allclose(distances, reference, rtol=1e-5, atol=1e-6 * factor**2)


@needs_faiss
def test_auto_index_is_exact_up_to_the_threshold(monkeypatch):
    assert cluster.resolve_neighbor_index("auto", cluster.EXACT_MAX_SAMPLES) == "flat"
    if cluster._num_gpus(cluster._faiss()) == 0:
        assert (cluster.resolve_neighbor_index("auto", cluster.EXACT_MAX_SAMPLES + 1)
                == cluster.AUTO_APPROXIMATE_INDEX)
    assert cluster.resolve_neighbor_index("flat", 10 * cluster.EXACT_MAX_SAMPLES) == "flat"
    # below the threshold "auto" gives exactly the flat results; above it the approximate index
    X, _ = _clustered(600)
    np.testing.assert_array_equal(knn_search(X, X, 5)[1], knn_search(X, X, 5, index="flat")[1])
    calls = []
    real = cluster._search_approximate
    monkeypatch.setattr(cluster, "_search_approximate",
                        lambda *args: calls.append(args[3]) or real(*args))
    monkeypatch.setattr(cluster, "EXACT_MAX_SAMPLES", 500)
    monkeypatch.setattr(cluster, "_num_gpus", lambda faiss: 0)
    knn_search(X[:500], X[:10], 3)
    assert calls == []
    knn_search(X, X[:10], 3)
    assert calls == [cluster.AUTO_APPROXIMATE_INDEX]


@pytest.mark.parametrize("bad", ["exact", "HNSW", None, 3])
def test_bad_neighbor_index_is_named(bad):
    with pytest.raises(ValueError, match="The 'index' parameter of knn_search must be a str among"):
        knn_search(np.zeros((5, 2)), np.zeros((1, 2)), 1, index=bad)
    with pytest.raises(ValueError, match="The 'index' parameter of resolve_neighbor_index must be a str among"):
        cluster.resolve_neighbor_index(bad, 10)


def test_approximate_index_without_faiss_is_refused(monkeypatch):
    monkeypatch.setattr(cluster, "_faiss", lambda: None)
    assert cluster.resolve_neighbor_index("auto", 10**7) == "brute"
    assert cluster.resolve_neighbor_index("flat", 10) == "brute"
    with pytest.raises(ValueError, match="index='hnsw' needs faiss"):
        knn_search(np.zeros((5, 2)), np.zeros((1, 2)), 1, index="hnsw")


def _mixture(n, k, seed=0):
    rng = np.random.RandomState(seed)
    means = rng.normal(scale=4.0, size=(k, 8))
    component = rng.randint(0, k, size=n)
    X = means[component] + rng.normal(size=(n, 8))
    return X.astype(np.float32), component


@pytest.mark.parametrize("backend", BACKENDS)
def test_sampled_seeding_keeps_the_quality_of_full_seeding(backend):
    X, component = _mixture(4000, 12)
    ratios, aris = [], []
    for seed in range(3):
        full = kmeans(X, 12, random_state=seed, init_sample_size=X.shape[0], backend=backend)
        sampled = kmeans(X, 12, random_state=seed, init_sample_size=240, backend=backend)
        ratios.append(sampled.inertia / full.inertia)
        aris.append((adjusted_rand_score(component, full.labels),
                     adjusted_rand_score(component, sampled.labels)))
    assert np.mean(ratios) < 1.02
    full_ari, sampled_ari = np.mean(aris, axis=0)
    assert sampled_ari > full_ari - 0.03


def test_seeding_uses_every_point_on_small_data():
    # at most max(10_000, 20 K) points: no sample is drawn, results as before sampling existed
    assert cluster.seeding_sample_size(10) == 10_000
    assert cluster.seeding_sample_size(1000) == 20_000
    X, _ = _mixture(1500, 5)
    default = kmeans(X, 5, random_state=3)
    every = kmeans(X, 5, random_state=3, init_sample_size=X.shape[0])
    np.testing.assert_array_equal(default.centers, every.centers)
    again = kmeans(X, 5, random_state=3, init_sample_size=100)
    np.testing.assert_array_equal(again.labels, kmeans(X, 5, random_state=3,
                                                       init_sample_size=100).labels)
    with pytest.raises(ValueError, match="init_sample_size"):
        kmeans(X, 5, init_sample_size=0)
