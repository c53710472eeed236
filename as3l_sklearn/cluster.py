"""One k-means / nearest-neighbour backend for every estimator.

faiss is used when it can be imported (a GPU index when ``faiss.get_num_gpus() > 0``), and
scikit-learn otherwise. Both backends run the same algorithm so that they agree:

1. initial centers from k-means++ (:func:`sklearn.cluster.kmeans_plusplus`), seeded from
   ``random_state`` -- or centers given by the caller;
2. Lloyd iterations on *all* points: faiss subsamples to ``max_points_per_centroid * K``
   points by default, which would make centers (and so the AS3L selection and priors)
   depend on a random subset, so it is raised to the number of samples;
3. nearest-center assignment of every point.

Data is passed to faiss as C-contiguous float32, as it requires.

Examples
--------
>>> import numpy as np
>>> from as3l_sklearn.cluster import kmeans
>>> X = np.r_[np.zeros((5, 2)), np.ones((5, 2)) * 10]
>>> result = kmeans(X, 2, random_state=0)
>>> sorted(np.bincount(result.labels).tolist())
[5, 5]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import kmeans_plusplus

from .utils import check_features, check_positive_int
from .utils import check_random_state_or_generator

BACKENDS = ("auto", "faiss", "sklearn")


def _faiss():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return None
    return faiss


def available_backend() -> str:
    """Name of the backend ``backend="auto"`` resolves to.

    One of ``"faiss-gpu"``, ``"faiss-cpu"`` or ``"sklearn"``.
    """
    faiss = _faiss()
    if faiss is None:
        return "sklearn"
    return "faiss-gpu" if _num_gpus(faiss) > 0 else "faiss-cpu"


def _num_gpus(faiss) -> int:
    get = getattr(faiss, "get_num_gpus", None)
    return int(get()) if get is not None else 0


def _resolve_backend(backend: str) -> str:
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    if backend == "auto":
        return "faiss" if _faiss() is not None else "sklearn"
    if backend == "faiss" and _faiss() is None:
        raise ValueError("backend='faiss' was requested but faiss is not installed (pip install faiss-cpu)")
    return backend


@dataclass
class KMeansResult:
    """Outcome of :func:`kmeans`.

    Attributes
    ----------
    centers : ndarray of shape (n_clusters, n_features), float32
    labels : ndarray of shape (n_samples,), int64
        Index of each sample's nearest center.
    inertia : float
        Sum of squared distances of samples to their nearest center.
    """

    centers: np.ndarray
    labels: np.ndarray
    inertia: float


def kmeans(
    X,
    n_clusters: int,
    *,
    init=None,
    max_iter: int = 50,
    n_init: int = 1,
    random_state=None,
    backend: str = "auto",
    verbose: bool = False,
) -> KMeansResult:
    """k-means with seeded k-means++ initial centers and Lloyd iterations on all points.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features; NaN/inf raise a ``ValueError``.
    n_clusters : int
        Number of clusters K, ``1 <= K <= n_samples``.
    init : array-like of shape (n_clusters, n_features), optional
        Initial centers. When given, ``n_init`` must be 1.
    max_iter : int, default=50
        Lloyd iterations.
    n_init : int, default=1
        Restarts from different k-means++ draws; the lowest inertia wins.
    random_state : int, RandomState instance, numpy Generator or None
        Seeds the k-means++ draws (and faiss' own seed). Same value, same result.
    backend : {"auto", "faiss", "sklearn"}, default="auto"
        ``"auto"`` uses faiss when installed (on GPU when faiss sees one).
    verbose : bool, default=False

    Returns
    -------
    KMeansResult

    Examples
    --------
    >>> import numpy as np
    >>> X = np.random.RandomState(0).normal(size=(100, 4))
    >>> kmeans(X, 3, random_state=0).centers.shape
    (3, 4)
    """
    X = check_features(X, name="X")
    n_clusters = check_positive_int(n_clusters, "n_clusters")
    max_iter = check_positive_int(max_iter, "max_iter")
    n_init = check_positive_int(n_init, "n_init")
    n_samples = X.shape[0]
    if n_clusters > n_samples:
        raise ValueError(f"n_clusters={n_clusters} is larger than the number of samples ({n_samples})")
    backend = _resolve_backend(backend)
    rng = check_random_state_or_generator(random_state)

    if init is not None:
        if n_init != 1:
            raise ValueError("n_init must be 1 when init centers are given")
        init = check_features(init, name="init")
        if init.shape != (n_clusters, X.shape[1]):
            raise ValueError(f"init must have shape {(n_clusters, X.shape[1])}, got {init.shape}")
        inits = [init]
    else:
        inits = _kmeans_plusplus_starts(X, n_clusters, n_init, rng)

    best = None
    for start in inits:
        seed = int(rng.randint(2**31 - 1))
        if backend == "faiss":
            centers = _lloyd_faiss(X, start, max_iter, seed, verbose)
        else:
            centers = _lloyd_sklearn(X, start, max_iter, seed, verbose)
        labels, distances = nearest_centers(X, centers, backend=backend)
        # summed in float64: near the float32 limit of check_features the sum would overflow
        result = KMeansResult(centers=centers, labels=labels,
                              inertia=float(distances.sum(dtype=np.float64)))
        if best is None or result.inertia < best.inertia:
            best = result
    return best


# scikit-learn's kmeans_plusplus is several times slower on float32 than on float64 (it upcasts
# chunk by chunk); on a float64 copy it picks the same rows, so make one when it is affordable.
_UPCAST_MAX_BYTES = 1 << 30


def _kmeans_plusplus_starts(X, n_clusters, n_init, rng):
    X_search = X.astype(np.float64) if X.nbytes <= _UPCAST_MAX_BYTES else X
    starts = []
    for _ in range(n_init):
        indices = kmeans_plusplus(X_search, n_clusters, random_state=rng.randint(2**31 - 1))[1]
        starts.append(np.ascontiguousarray(X[indices]))
    return starts


def _lloyd_faiss(X, init, max_iter, seed, verbose):
    faiss = _faiss()
    n_samples, dim = X.shape
    k = init.shape[0]
    clustering = faiss.Kmeans(
        dim,
        k,
        niter=max_iter,
        seed=seed,
        verbose=bool(verbose),
        gpu=_num_gpus(faiss) > 0,
        # use every point: faiss otherwise subsamples to 256 * K points
        max_points_per_centroid=max(256, -(-n_samples // k)),
        min_points_per_centroid=1,
    )
    clustering.train(X, init_centroids=np.ascontiguousarray(init, dtype=np.float32))
    return np.ascontiguousarray(clustering.centroids, dtype=np.float32).reshape(k, dim)


def _lloyd_sklearn(X, init, max_iter, seed, verbose):
    from sklearn.cluster import KMeans

    model = KMeans(
        n_clusters=init.shape[0],
        init=init,
        n_init=1,
        max_iter=max_iter,
        algorithm="lloyd",
        random_state=seed,
        verbose=int(bool(verbose)),
    ).fit(X)
    return np.ascontiguousarray(model.cluster_centers_, dtype=np.float32)


def nearest_centers(X, centers, *, backend: str = "auto"):
    """Index of and squared distance to the nearest center for every row of ``X``.

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    squared_distances : ndarray of shape (n_samples,), float32
    """
    X = check_features(X, name="X")
    centers = check_features(centers, name="centers")
    if centers.shape[1] != X.shape[1]:
        raise ValueError(f"centers have {centers.shape[1]} features but X has {X.shape[1]}")
    # both are validated: search directly (k-means loops call this every iteration, and
    # re-checking all of X for NaN there doubled the cost of the check)
    distances, indices = _search(centers, X, 1, _resolve_backend(backend))
    return indices[:, 0], distances[:, 0]


def knn_search(database, queries, k: int, *, backend: str = "auto"):
    """Exact k-nearest-neighbour search under the Euclidean distance.

    Parameters
    ----------
    database : array-like of shape (n_database, n_features)
    queries : array-like of shape (n_queries, n_features)
    k : int
        Neighbours per query, ``1 <= k <= n_database``.

    Returns
    -------
    squared_distances : ndarray of shape (n_queries, k), float32, ascending
    indices : ndarray of shape (n_queries, k), int64, into ``database``
    """
    database = check_features(database, name="database")
    queries = check_features(queries, name="queries")
    k = check_positive_int(k, "k")
    if k > database.shape[0]:
        raise ValueError(f"k={k} is larger than the database ({database.shape[0]} rows)")
    if database.shape[1] != queries.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} features but database has {database.shape[1]}")
    return _search(database, queries, k, _resolve_backend(backend))


def _search(database: np.ndarray, queries: np.ndarray, k: int, backend: str):
    """Exact kNN on validated float32 C-contiguous arrays (``backend`` already resolved)."""
    if backend == "faiss":
        faiss = _faiss()
        index = faiss.IndexFlatL2(database.shape[1])
        if _num_gpus(faiss) > 0:
            index = faiss.index_cpu_to_all_gpus(index)
        index.add(database)
        distances, indices = index.search(queries, k)
        return np.maximum(distances, 0).astype(np.float32), indices.astype(np.int64)
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(database)
    distances, indices = search.kneighbors(queries)
    return (distances**2).astype(np.float32), indices.astype(np.int64)
