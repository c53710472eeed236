"""One k-means / nearest-neighbour backend for every estimator.

faiss is used when it can be imported (a GPU index when ``faiss.get_num_gpus() > 0``), and
scikit-learn otherwise. Both backends run the same algorithm so that they agree:

1. initial centers from k-means++ (:func:`sklearn.cluster.kmeans_plusplus`), seeded from
   ``random_state`` -- or centers given by the caller;
2. Lloyd iterations on *all* points: faiss subsamples to ``max_points_per_centroid * K``
   points by default, which would make centers (and so the AS3L selection and priors)
   depend on a random subset, so it is raised to the number of samples;
3. nearest-center assignment of every point.

k-means++ seeding runs on a random sample of ``max(10_000, 20 * K)`` points when there are
more (:func:`seeding_sample_size`): seeding sweeps its candidates once per center, so on all
points it cost more than the Lloyd iterations at large ``K`` (31 s of a 50k-point run with
``K = 1000``); the Lloyd iterations still use every point.

Nearest neighbours (:func:`knn_search`) are exact (a flat index) up to
``EXACT_MAX_SAMPLES = 100_000`` database rows and approximate above (a faiss IVF index whose
lists hold float16 codes; the distances of the neighbours it returns are then recomputed
exactly, see :func:`resolve_neighbor_index`), so that kNN graphs stay near-linear in ``n``.

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

from .utils import check_features, check_random_state_or_generator
from .utils._param_validation import RANDOM_STATE, Integral, Interval, StrOptions, validate_params

BACKENDS = ("auto", "faiss", "sklearn")
NEIGHBOR_INDEXES = ("auto", "flat", "hnsw", "ivf")

#: largest database that ``index="auto"`` searches exactly on the CPU: below it every result
#: measured so far is unchanged; above it an exact search costs O(n^2 d) (hours at 1M)
EXACT_MAX_SAMPLES = 100_000
#: approximate index ``index="auto"`` uses above ``EXACT_MAX_SAMPLES`` (chosen by measuring
#: recall and seconds at 200k, docs/results.md "Scale")
AUTO_APPROXIMATE_INDEX = "ivf"
#: IVF: ``nlist = IVF_LISTS_PER_SQRT_N * sqrt(n)`` cells, ``IVF_NPROBE`` cells visited per
#: query, the coarse k-means trained on ``IVF_TRAIN_PER_LIST`` points per cell at most; the
#: lists store float16 residuals (half the bytes IVF-Flat scans per query)
IVF_LISTS_PER_SQRT_N = 4
IVF_NPROBE = 16
IVF_TRAIN_PER_LIST = 40
IVF_TRAIN_ITER = 10
#: float16 holds magnitudes up to 65504 and keeps 3 significant digits from about 6e-5 on:
#: data whose largest magnitude lies outside ``[2**IVF_FP16_MIN_EXPONENT,
#: 2**IVF_FP16_MAX_EXPONENT]`` is scaled by a power of two (exact in float32) before encoding
IVF_FP16_MIN_EXPONENT = -6
IVF_FP16_MAX_EXPONENT = 12
#: float32 values (16 MiB) of neighbour differences held at once while IVF's distances are
#: recomputed exactly: ``RERANK_CHUNK_VALUES // (k * d)`` queries at a time
RERANK_CHUNK_VALUES = 1 << 22
#: HNSW: links per node and the beam widths while building and searching
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 40
HNSW_EF_SEARCH = 64
#: k-means++ seeding sample: at least this many points, and this many per cluster
SEEDING_MIN_SAMPLES = 10_000
SEEDING_SAMPLES_PER_CLUSTER = 20

_COUNT = Interval(Integral, 1, None, closed="left")
_BACKEND = StrOptions(set(BACKENDS))
#: the ``index`` of :func:`knn_search`, the ``neighbor_index`` of the estimators that search
NEIGHBOR_INDEX = StrOptions(set(NEIGHBOR_INDEXES))


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
    """The backend ``"auto"`` stands for; ``"faiss"`` without faiss installed raises."""
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


@validate_params(
    {
        "X": ["array-like"],
        "n_clusters": [_COUNT],
        "init": ["array-like", None],
        "max_iter": [_COUNT],
        "n_init": [_COUNT],
        "random_state": RANDOM_STATE,
        "backend": [_BACKEND],
        "verbose": ["verbose"],
        "init_sample_size": [_COUNT, None],
    },
    prefer_skip_nested_validation=True,
)
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
    init_sample_size=None,
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
    init_sample_size : int or None, default=None
        Points the k-means++ seeding draws its centers from: ``None`` uses
        :func:`seeding_sample_size` (``max(10_000, 20 * n_clusters)``); with more samples than
        that a uniform random sample (drawn from ``random_state``) is seeded, otherwise all
        points, as before. Lloyd iterations always use every point. Ignored when ``init`` is
        given.

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
        if init_sample_size is None:
            sample_size = seeding_sample_size(n_clusters)
        else:
            sample_size = max(int(init_sample_size), n_clusters)
        inits = _kmeans_plusplus_starts(X, n_clusters, n_init, rng, sample_size)

    best = None
    for start in inits:
        seed = int(rng.randint(2**31 - 1))
        if backend == "faiss":
            centers = _lloyd_faiss(X, start, int(max_iter), seed, verbose)
        else:
            centers = _lloyd_sklearn(X, start, int(max_iter), seed, verbose)
        # X was validated above and the Lloyd runs return C-contiguous float32 centers
        labels, distances = nearest_centers(X, centers, backend=backend, check_input=False)
        # summed in float64: near the float32 limit of check_features the sum would overflow
        result = KMeansResult(centers=centers, labels=labels,
                              inertia=float(distances.sum(dtype=np.float64)))
        if best is None or result.inertia < best.inertia:
            best = result
    return best


# scikit-learn's kmeans_plusplus is several times slower on float32 than on float64 (it upcasts
# chunk by chunk); on a float64 copy it picks the same rows, so make one when it is affordable.
_UPCAST_MAX_BYTES = 1 << 30


@validate_params({"n_clusters": [_COUNT]}, prefer_skip_nested_validation=True)
def seeding_sample_size(n_clusters: int) -> int:
    """Points k-means++ seeding uses by default: ``max(10_000, 20 * n_clusters)``.

    Seeding costs ``O(sample * K * d * log K)`` (scikit-learn's greedy k-means++ sweeps
    ``2 + log K`` candidates over the points for each of the ``K`` centers); 20 points per
    center still lets every cluster holding more than a few hundredths of a percent of the
    data be hit, and the Lloyd iterations that follow move the centers on all points. On a
    Gaussian mixture the final inertia matched full seeding within a fraction of a percent
    (``as3l_sklearn/tests/test_cluster.py``, docs/results.md "Scale").
    """
    return max(SEEDING_MIN_SAMPLES, SEEDING_SAMPLES_PER_CLUSTER * int(n_clusters))


def _kmeans_plusplus_starts(X, n_clusters, n_init, rng, sample_size):
    n_samples = X.shape[0]
    if n_samples <= sample_size:
        # small data: every point, and no extra draw from rng (results as before sampling)
        X_search = X.astype(np.float64) if X.nbytes <= _UPCAST_MAX_BYTES else X
    starts = []
    for _ in range(n_init):
        rows = None
        if n_samples > sample_size:
            rows = np.sort(rng.choice(n_samples, sample_size, replace=False))
            X_search = X[rows].astype(np.float64)
        indices = kmeans_plusplus(X_search, n_clusters, random_state=rng.randint(2**31 - 1))[1]
        if rows is not None:
            indices = rows[indices]
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


@validate_params(
    {"X": ["array-like"], "centers": ["array-like"], "backend": [_BACKEND], "check_input": ["boolean"]},
    prefer_skip_nested_validation=True,
)
def nearest_centers(X, centers, *, backend: str = "auto", check_input: bool = True):
    """Index of and squared distance to the nearest center for every row of ``X``.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    centers : array-like of shape (n_clusters, n_features)
    backend : {"auto", "faiss", "sklearn"}, default="auto"
    check_input : bool, default=True
        ``False`` skips the validation of ``X`` and ``centers``, which must then be finite,
        C-contiguous float32 arrays with as many columns (as :func:`check_features` returns
        them): for k-means loops that validated ``X`` once, where the check of every
        iteration cost about a tenth of the run (``SeededKMeansPropagator`` at 200,000 x 128).

    Returns
    -------
    labels : ndarray of shape (n_samples,), int64
    squared_distances : ndarray of shape (n_samples,), float32
    """
    if check_input:
        X = check_features(X, name="X")
        centers = check_features(centers, name="centers")
        if centers.shape[1] != X.shape[1]:
            raise ValueError(f"centers have {centers.shape[1]} features but X has {X.shape[1]}")
    # validated here or by the caller: search directly (k-means loops call this every
    # iteration, and re-checking all of X for NaN there doubled the cost of the check)
    distances, indices = _search(centers, X, 1, _resolve_backend(backend))
    return indices[:, 0], distances[:, 0]


@validate_params(
    {"index": [NEIGHBOR_INDEX], "n_database": [Interval(Integral, 0, None, closed="left")],
     "backend": [_BACKEND], "name": [str]},
    prefer_skip_nested_validation=True,
)
def resolve_neighbor_index(index: str, n_database: int, *, backend: str = "auto",
                           name: str = "index") -> str:
    """The index :func:`knn_search` builds for ``n_database`` rows.

    Returns one of ``"flat"`` (exact; on the GPU when faiss sees one), ``"hnsw"``, ``"ivf"``
    or ``"brute"`` (exact scikit-learn search, when faiss is not installed).

    ``"auto"`` is exact up to ``EXACT_MAX_SAMPLES`` (100,000) rows, and with faiss on a GPU
    at any size (a flat GPU index is fast enough there; untested: no GPU was available);
    above it on the CPU, ``AUTO_APPROXIMATE_INDEX`` ("ivf"). Without faiss, ``"auto"`` and
    ``"flat"`` fall back to scikit-learn's exact brute force and the approximate indexes
    raise a ``ValueError``.

    Examples
    --------
    >>> from as3l_sklearn.cluster import resolve_neighbor_index
    >>> resolve_neighbor_index("auto", 50_000) in ("flat", "brute")
    True
    >>> resolve_neighbor_index("flat", 2_000_000) in ("flat", "brute")
    True
    """
    backend = _resolve_backend(backend)
    if backend != "faiss":
        if index in ("hnsw", "ivf"):
            raise ValueError(f"{name}={index!r} needs faiss (pip install faiss-cpu); "
                             "use 'flat' or 'auto' without it")
        return "brute"
    if index == "auto":
        if n_database <= EXACT_MAX_SAMPLES or _num_gpus(_faiss()) > 0:
            return "flat"
        return AUTO_APPROXIMATE_INDEX
    return index


@validate_params(
    {"database": ["array-like"], "queries": ["array-like"], "k": [_COUNT], "backend": [_BACKEND],
     "index": [NEIGHBOR_INDEX]},
    prefer_skip_nested_validation=True,
)
def knn_search(database, queries, k: int, *, backend: str = "auto", index: str = "auto"):
    """k-nearest-neighbour search under the Euclidean distance, exact or approximate.

    Parameters
    ----------
    database : array-like of shape (n_database, n_features)
    queries : array-like of shape (n_queries, n_features)
    k : int
        Neighbours per query, ``1 <= k <= n_database``.
    backend : {"auto", "faiss", "sklearn"}, default="auto"
        ``"auto"`` uses faiss when installed.
    index : {"auto", "flat", "hnsw", "ivf"}, default="auto"
        Which faiss index answers (see :func:`resolve_neighbor_index`):

        * ``"flat"``: exact (``IndexFlatL2``; every database row on a GPU when faiss sees one
          -- that path is written but untested, no GPU was available);
        * ``"ivf"``: ``IndexIVFScalarQuantizer`` with float16 codes (``QT_fp16``) and
          ``nlist = 4 sqrt(n)`` cells from a coarse k-means trained on at most 40 points per
          cell (seed 0, so repeatable), ``nprobe = 16`` cells searched per query. The
          float16 codes only pick the candidates: the squared distances of the ``k`` rows
          found are recomputed exactly from ``database`` and each row is re-sorted by them
          (stable, so equal distances keep the index's order). Data whose largest magnitude
          is outside about ``[0.016, 4096]`` is scaled by a power of two before encoding, so
          that float16 neither overflows nor loses its digits (neighbours do not depend on
          the scale). It replaced ``IndexIVFFlat`` (float32 lists, the same cells): float16
          lists halve the bytes scanned per query for nearly the same neighbours (time and
          agreement in docs/results.md "Scale");
        * ``"hnsw"``: ``IndexHNSWFlat`` with ``M = 32``, ``efConstruction = 40``,
          ``efSearch = max(64, 2 k)``; faster to query but its graph depends on the thread
          schedule, so results may differ between runs;
        * ``"auto"``: exact up to 100,000 database rows, ``"ivf"`` above on the CPU.

        Approximate results may miss true neighbours (recall@k in docs/results.md "Scale");
        any query for which an approximate index finds fewer than ``k`` rows is searched
        again exactly.

    Returns
    -------
    squared_distances : ndarray of shape (n_queries, k), float32, ascending
        With ``"ivf"`` the exact squared distances of the returned rows: sums of squared
        differences of the float32 data (as IVF-Flat's scan computed them), not the
        float16 codes' estimates.
    indices : ndarray of shape (n_queries, k), int64, into ``database``

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn.cluster import knn_search
    >>> X = np.random.RandomState(0).normal(size=(2000, 8)).astype(np.float32)
    >>> _, exact = knn_search(X, X[:50], 5, index="flat")
    >>> _, approx = knn_search(X, X[:50], 5, index="hnsw")
    >>> exact.shape == approx.shape == (50, 5)
    True
    """
    database = check_features(database, name="database")
    queries = check_features(queries, name="queries")
    k = int(k)
    if k > database.shape[0]:
        raise ValueError(f"k={k} is larger than the database ({database.shape[0]} rows)")
    if database.shape[1] != queries.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} features but database has {database.shape[1]}")
    backend = _resolve_backend(backend)
    kind = resolve_neighbor_index(index, database.shape[0], backend=backend)
    if kind in ("flat", "brute"):
        return _search(database, queries, k, backend)
    return _search_approximate(database, queries, k, kind)


def _search_approximate(database: np.ndarray, queries: np.ndarray, k: int, kind: str):
    """kNN through a faiss HNSW or IVF (float16 lists) index; rows it cannot fill are searched
    exactly; IVF distances are recomputed exactly and each row re-sorted by them."""
    faiss = _faiss()
    n_database, dim = database.shape
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.add(database)
        index.hnsw.efSearch = max(HNSW_EF_SEARCH, 2 * k)
        distances, indices = index.search(queries, k)
    else:
        nlist = _ivf_nlist(n_database)
        scale = _fp16_safe_scale(database, queries)
        encoded, encoded_queries = database, queries
        if scale != 1.0:
            encoded = database * scale
            # a kNN graph queries the database itself: one scaled copy serves both
            encoded_queries = encoded if queries is database else queries * scale
        quantizer = faiss.IndexFlatL2(dim)
        index = faiss.IndexIVFScalarQuantizer(quantizer, dim, nlist,
                                              faiss.ScalarQuantizer.QT_fp16)
        index.cp.niter = IVF_TRAIN_ITER
        index.cp.seed = 0
        n_train = min(n_database, IVF_TRAIN_PER_LIST * nlist)
        # a fixed-seed sample: the same data give the same cells, so the same neighbours
        rows = np.sort(np.random.RandomState(0).choice(n_database, n_train, replace=False))
        index.train(np.ascontiguousarray(encoded[rows]))
        index.add(encoded)
        del encoded  # the scaled copy, if any: the lists hold their own float16 codes
        index.nprobe = min(IVF_NPROBE, nlist)
        distances, indices = index.search(encoded_queries, k)
    missing = (indices < 0).any(axis=1)
    if missing.any():
        # a query whose visited cells (IVF) or beam (HNSW) held fewer than k rows
        exact_d, exact_i = _search(database, np.ascontiguousarray(queries[missing]), k, "faiss")
        distances[missing], indices[missing] = exact_d, exact_i
    indices = indices.astype(np.int64, copy=False)
    if kind == "hnsw":
        return np.maximum(distances, 0).astype(np.float32), indices
    return _rerank_exactly(database, queries, indices, distances)


def _fp16_safe_scale(database: np.ndarray, queries: np.ndarray) -> float:
    """A power of two that brings the largest magnitude of the data into float16's range.

    1.0 (no copy needed) when the largest magnitude is already within
    ``[2**IVF_FP16_MIN_EXPONENT, 2**IVF_FP16_MAX_EXPONENT]``; otherwise the power of two that
    maps it into ``[1, 2)``: multiplying by a power of two is exact in float32 and leaves the
    neighbours unchanged, while float16 would overflow above 65504 and keep few digits of
    residuals below about 6e-5.
    """
    # max and -min: no |x| temporary the size of the data (512 MB at 1M x 128)
    arrays = (database,) if queries is database else (database, queries)
    largest = max(max(float(a.max()), -float(a.min())) for a in arrays)
    if largest == 0 or 2.0**IVF_FP16_MIN_EXPONENT <= largest <= 2.0**IVF_FP16_MAX_EXPONENT:
        return 1.0
    # a Python float: numpy keeps float32 data float32 when multiplied by it
    return float(2.0 ** -np.floor(np.log2(largest)))


def _rerank_exactly(database: np.ndarray, queries: np.ndarray, indices: np.ndarray,
                    distances: np.ndarray):
    """Exact squared distances from each query to its ``indices`` rows, rows sorted by them.

    Written into ``distances`` and ``indices`` (both ``(n_queries, k)``, modified in place,
    a chunk of queries at a time: sorting whole copies of them cost ProbCover about 200 MB
    more at 200,000 points). Sums of squared float32 differences (the arithmetic of faiss'
    flat scans, free of the cancellation of ``|x|^2 + |y|^2 - 2 x.y``), in float32: a float64
    pass cost 2.6 times as long for digits beyond float32's. The sort is stable: equal
    distances keep the order the index returned, so the result is deterministic.
    """
    n_queries, k = indices.shape
    chunk = max(1, RERANK_CHUNK_VALUES // (k * database.shape[1]))
    for start in range(0, n_queries, chunk):
        stop = min(start + chunk, n_queries)
        neighbours = database[indices[start:stop]]  # a copy (fancy indexing): safe to modify
        neighbours -= queries[start:stop, None, :]
        exact = np.einsum("qkd,qkd->qk", neighbours, neighbours)
        order = np.argsort(exact, axis=1, kind="stable")
        distances[start:stop] = np.take_along_axis(exact, order, axis=1)
        indices[start:stop] = np.take_along_axis(indices[start:stop], order, axis=1)
    return distances, indices


def _ivf_nlist(n_database: int) -> int:
    """IVF cells for ``n_database`` rows: ``4 sqrt(n)``, at least 1 and at most n / 39 (faiss
    wants about 39 training points per cell)."""
    return int(max(1, min(IVF_LISTS_PER_SQRT_N * np.sqrt(n_database), n_database // 39)))


def _search(database: np.ndarray, queries: np.ndarray, k: int, backend: str):
    """Exact kNN on validated float32 C-contiguous arrays (``backend`` already resolved)."""
    if backend == "faiss":
        faiss = _faiss()
        index = faiss.IndexFlatL2(database.shape[1])
        if _num_gpus(faiss) > 0:
            # untested here (no GPU was available): faiss-gpu's flat index on every GPU
            index = faiss.index_cpu_to_all_gpus(index)
        index.add(database)
        distances, indices = index.search(queries, k)
        return np.maximum(distances, 0).astype(np.float32), indices.astype(np.int64)
    from sklearn.neighbors import NearestNeighbors

    search = NearestNeighbors(n_neighbors=k, algorithm="brute").fit(database)
    distances, indices = search.kneighbors(queries)
    return (distances**2).astype(np.float32), indices.astype(np.int64)
