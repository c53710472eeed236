"""Baseline and rival single-shot selectors with the same API as MultiClusterSelector.

* :class:`RandomSelector` -- uniform, or stratified by class when labels are given;
* :class:`KMedoidsSelector` -- one k-means with ``K = n_budget``, the medoid of each cluster
  (the paper's "K-medoids" baseline and ablation);
* :class:`CoresetSelector` -- k-center greedy (Sener & Savarese, 2018);
* :class:`TypiClustSelector` -- the most typical sample of the largest clusters, round after
  round (Hacohen et al., 2022), as the authors' code does it;
* :class:`ProbCoverSelector` -- greedy maximum coverage of delta-balls (Yehuda et al., 2022),
  as the authors' code does it.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from sklearn.utils.validation import column_or_1d

from ..cluster import NEIGHBOR_INDEX, kmeans, knn_search
from ..utils import check_random_state_or_generator
from ..utils._param_validation import Interval, Real, StrOptions
from ._base import (
    COUNT,
    BaseSelector,
    closest_to,
    draw_seeds,
    kcenter_continue,
    kcenter_greedy,
    resolve_n_clusters,
)


class RandomSelector(BaseSelector):
    """Uniform random selection, or stratified by class (the usual SSL protocol).

    Parameters
    ----------
    stratified : bool, default=False
        If True, ``fit`` needs the true labels ``y`` of every sample and the budget is split
        over classes in proportion to their frequency (largest remainders first; with balanced
        classes and a budget divisible by the number of classes, exactly ``n_budget /
        n_classes`` per class). This is the "stratified random sampling" baseline of SSL
        papers; it needs labels a real user does not have, so it is a reference only. With
        ``select(n_budget, labeled=...)`` the picks are drawn from the unlabeled samples (in
        proportion to the unlabeled class sizes when stratified).
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the draw. The same value gives the same indices.
    verbose : int, default=0
        Unused (selection is instantaneous); kept for a uniform API.

    Attributes
    ----------
    features_ : ndarray of shape (n_samples, n_features), float32
        The validated features seen in ``fit``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    classes_ : ndarray
        Classes of ``y`` (only when ``stratified=True``).
    selected_indices_ : ndarray of shape (n_budget,), int64
        Result of the last ``select`` (in draw order).

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn import RandomSelector
    >>> X = np.arange(20.0).reshape(10, 2)
    >>> RandomSelector(random_state=0).fit(X).select(3).shape
    (3,)
    >>> y = np.repeat([0, 1], 5)
    >>> idx = RandomSelector(stratified=True, random_state=0).fit_select(X, 4, y=y)
    >>> np.bincount(y[idx]).tolist()
    [2, 2]
    """

    _parameter_constraints: dict = {**BaseSelector._parameter_constraints, "stratified": ["boolean"]}

    def __init__(self, stratified=False, random_state=None, verbose=0):
        self.stratified = stratified
        self.random_state = random_state
        self.verbose = verbose

    def _fit_labels(self, y):
        if not self.stratified:
            return
        if y is None:
            raise ValueError(
                "stratified=True needs the class labels: call fit(X, y) with y of length n_samples "
                "(stratified sampling is an oracle baseline; use stratified=False without labels)"
            )
        y = column_or_1d(np.asarray(y), warn=True)
        if y.shape[0] != self.features_.shape[0]:
            raise ValueError(
                f"y has {y.shape[0]} labels but X has {self.features_.shape[0]} samples")
        if y.dtype.kind == "f" and not np.isfinite(y).all():
            raise ValueError("y contains NaN or infinity")
        self.classes_, self._y_encoded = np.unique(y, return_inverse=True)

    def _select(self, n_budget, labeled):
        rng = check_random_state_or_generator(self.random_state)
        n_samples = self.features_.shape[0]
        unlabeled = np.ones(n_samples, dtype=bool)
        unlabeled[labeled] = False
        if not self.stratified:
            # the same permutation as without labels, with the labeled samples passed over
            order = rng.permutation(n_samples)
            return order[unlabeled[order]][:n_budget]
        counts = np.bincount(self._y_encoded[unlabeled], minlength=self.classes_.size)
        quota = _proportional_quota(counts, n_budget, rng)
        picked = []
        for label, take in enumerate(quota):
            if take:
                members = np.flatnonzero((self._y_encoded == label) & unlabeled)
                picked.append(rng.choice(members, size=take, replace=False))
        return rng.permutation(np.concatenate(picked))


def _proportional_quota(counts, n_budget, rng):
    """Split ``n_budget`` over classes proportionally to ``counts`` (largest remainder)."""
    share = counts * (n_budget / counts.sum())
    quota = np.minimum(np.floor(share).astype(np.int64), counts)
    # random jitter below 1e-9 only breaks exact ties in the remainders (balanced classes)
    remainder = share - quota + rng.uniform(0, 1e-9, size=counts.size)
    while quota.sum() < n_budget:
        room = quota < counts
        label = int(np.argmax(np.where(room, remainder, -np.inf)))
        quota[label] += 1
        remainder[label] = -1.0
    return quota


class KMedoidsSelector(BaseSelector):
    """One k-means with ``K = n_budget`` and the medoid of each cluster, largest first.

    The paper's "K-medoids" baseline (Sener & Savarese, 2018) and its single-run ablation of
    :class:`MultiClusterSelector` (Table 4). The medoid here is the member closest to the
    k-means center (not the PAM medoid minimising the sum of distances).

    With ``select(n_budget, labeled=...)``, k-means makes ``K + len(labeled)`` clusters and
    only the clusters holding no labeled sample give medoids, largest first (TypiClust's
    rule for labeled sets); k-center greedy, counting the labeled samples as centers, makes
    any picks still missing.

    Parameters
    ----------
    n_clusters : int or None, default=None
        ``K``; ``None`` uses ``K = n_budget``. With ``K < n_budget`` the remaining picks come
        from k-center greedy. Labeled samples add their number to ``K``.
    max_iter : int, default=50
        Lloyd iterations.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds k-means. The same value gives the same indices.
    verbose : int, default=0
        Print a progress line when > 0.

    Attributes
    ----------
    features_ : ndarray of shape (n_samples, n_features), float32
        The validated features seen in ``fit``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    labels_ : ndarray of shape (n_samples,), int64
        k-means cluster of every sample in the last ``select``.
    cluster_centers_ : ndarray of shape (n_clusters, n_features)
        k-means centers of the last ``select``.
    selected_cluster_sizes_ : ndarray of shape (n_budget,), int64
        Size of the cluster each selected index represents (``0`` for fallback picks).
    selected_indices_ : ndarray of shape (n_budget,), int64
        Result of the last ``select``, best first.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn import KMedoidsSelector
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 0.1, (30, 2)), rng.normal(5, 0.1, (10, 2))]
    >>> selector = KMedoidsSelector(random_state=0).fit(X)
    >>> [int(i) < 30 for i in selector.select(2)]  # the larger blob first
    [True, False]
    """

    _parameter_constraints: dict = {
        **BaseSelector._parameter_constraints,
        "n_clusters": [COUNT, None],
        "max_iter": [COUNT],
    }

    def __init__(self, n_clusters=None, max_iter=50, random_state=None, verbose=0):
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose

    def _select(self, n_budget, labeled):
        X = self.features_
        n_clusters = resolve_n_clusters(self.n_clusters, n_budget, X.shape[0])
        # labeled samples take clusters of their own: K grows by their number
        n_clusters = min(n_clusters + labeled.size, X.shape[0])
        result = self._kmeans_once(n_clusters)
        self._log(f"k-means K={n_clusters}: inertia {result.inertia:.4g}")
        sizes = np.bincount(result.labels, minlength=n_clusters)
        holds_label = np.zeros(n_clusters, dtype=bool)
        holds_label[result.labels[labeled]] = True
        picked, picked_sizes = [], []
        for cluster in _clusters_by_size(result.labels, sizes):
            if len(picked) == n_budget:
                break
            if holds_label[cluster]:
                continue
            members = np.flatnonzero(result.labels == cluster)
            picked.append(closest_to(X, members, result.centers[cluster]))
            picked_sizes.append(sizes[cluster])
        picked = kcenter_continue(X, n_budget, labeled, picked)
        self.labels_ = result.labels
        self.cluster_centers_ = result.centers
        n_fallback = n_budget - len(picked_sizes)
        self.selected_cluster_sizes_ = np.r_[picked_sizes, np.zeros(n_fallback)].astype(np.int64)
        return picked


def _clusters_by_size(labels, sizes):
    """Non-empty cluster ids by size descending; ties by the lowest member index."""
    first = np.full(sizes.size, labels.size, dtype=np.int64)
    np.minimum.at(first, labels, np.arange(labels.size))
    order = np.lexsort((first, -sizes))
    return [int(c) for c in order if sizes[c] > 0]


class CoresetSelector(BaseSelector):
    """k-center greedy coreset selection (Sener & Savarese, 2018).

    Starting from one sample, repeatedly add the sample farthest (Euclidean) from all samples
    chosen so far, which minimises the largest distance from any sample to its nearest chosen
    one up to a factor 2. Distances are updated with one vectorised pass per pick. With
    ``select(n_budget, labeled=...)`` the labeled samples are the first centers and ``init``
    is not used: the first pick is the sample farthest from them.

    Parameters
    ----------
    init : {"random", "mean"}, default="random"
        First center: a sample drawn with ``random_state``, or the sample closest to the mean
        of all features (then ``random_state`` is unused).
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the first center when ``init="random"``.
    verbose : int, default=0
        Unused (selection takes one pass per pick); kept for a uniform API.

    Attributes
    ----------
    features_ : ndarray of shape (n_samples, n_features), float32
        The validated features seen in ``fit``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    selected_indices_ : ndarray of shape (n_budget,), int64
        Result of the last ``select`` in pick order.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn import CoresetSelector
    >>> X = np.array([[0.0], [0.1], [5.0], [10.0]])
    >>> CoresetSelector(init="mean").fit(X).select(3).tolist()
    [2, 0, 3]
    """

    _parameter_constraints: dict = {**BaseSelector._parameter_constraints,
                                    "init": [StrOptions({"random", "mean"})]}

    def __init__(self, init="random", random_state=None, verbose=0):
        self.init = init
        self.random_state = random_state
        self.verbose = verbose

    def _select(self, n_budget, labeled):
        X = self.features_
        if self.init == "random":
            first = int(check_random_state_or_generator(self.random_state).randint(X.shape[0]))
        else:  # "mean"
            first = closest_to(X, np.arange(X.shape[0]), X.mean(axis=0))
        if labeled.size:
            # the labeled samples are the first centers: k-center greedy goes on from them
            return kcenter_continue(X, n_budget, labeled)
        return kcenter_greedy(X, n_budget, first=first)


class TypiClustSelector(BaseSelector):
    """TypiClust (Hacohen et al., 2022): the most typical sample of the largest clusters.

    Follows the authors' implementation (``deep-al/pycls/al/typiclust.py`` in the
    ``avihu111/TypiClust`` repository, Sec. 3 and Alg. 1 of "Active Learning on a Budget:
    Opposite Strategies Suit High and Low Budgets", ICML 2022):

    1. the features are L2-normalised (the authors load them with ``normalized=True``);
    2. k-means splits the pool into ``K = min(|L| + B, 500)`` clusters; a single-shot
       selection has no labeled set, so ``K = min(n_budget, max_clusters)``;
    3. clusters of fewer than ``min_cluster_size`` samples are skipped (the authors keep
       clusters of more than 5 samples); the rest are sorted by size, largest first (the
       authors sort by labeled count, then size; no sample is labeled yet), ties by the lowest
       member index;
    4. the ``i``-th pick comes from cluster ``i mod (number of clusters)`` of that order: one
       per cluster, then round again;
    5. each pick is the most **typical** not-yet-selected member of its cluster, recomputed
       among those members at every pick::

           typicality(x) = 1 / (mean_{x' in kNN(x)} ||x - x'||^2 + 1e-5)

       with squared Euclidean distances (faiss ``IndexFlatL2``, as the authors use) to the
       ``k = min(n_neighbors, m // 2)`` nearest other members, ``m`` the number of members
       still unselected.

    Fallbacks, where the authors' code would fail: when no cluster reaches
    ``min_cluster_size`` (tiny data sets), every non-empty cluster takes part; when the
    budget outnumbers the members of the kept clusters, the skipped clusters are visited next
    in the same order; a cluster whose members are all selected is passed over; a cluster
    with one unselected member (``k = 0``) gives that member.

    Departure: k-means is the package's (k-means++ start, Lloyd iterations on all points,
    faiss when installed); the authors use scikit-learn's ``KMeans`` (``MiniBatchKMeans``
    above 50 clusters).

    Parameters
    ----------
    n_neighbors : int, default=20
        The authors' ``K_NN``: neighbours used for typicality (clipped to half the cluster's
        unselected members).
    n_clusters : int or None, default=None
        ``K``; ``None`` uses ``K = min(n_budget, max_clusters)``. An int is used as given;
        with ``K < n_budget`` clusters are visited again, round after round.
    max_clusters : int, default=500
        Cap on ``K`` when ``n_clusters`` is None (the authors' ``MAX_NUM_CLUSTERS``).
    min_cluster_size : int, default=6
        Clusters with fewer samples are skipped while larger ones remain (6 keeps the
        authors' rule, "more than ``MIN_CLUSTER_SIZE = 5``"); ``1`` skips none.
    normalize : bool, default=True
        L2-normalise each feature vector before clustering and typicality, as the authors do
        (all-zero rows stay zero).
    max_iter : int, default=50
        Lloyd iterations.
    neighbor_index : {"auto", "flat", "hnsw", "ivf"}, default="auto"
        Index of the typicality kNN search inside each cluster
        (:func:`as3l_sklearn.cluster.knn_search`): ``"auto"`` is exact for clusters of up to
        100,000 samples and approximate (faiss IVF, float16 lists) above; ``"flat"`` is
        always exact.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds k-means. The same value gives the same indices.
    verbose : int, default=0
        Print a progress line when > 0.

    Attributes
    ----------
    features_ : ndarray of shape (n_samples, n_features), float32
        The validated features seen in ``fit`` (not normalised).
    n_features_in_ : int
        Number of features seen in ``fit``.
    n_clusters_ : int
        ``K`` used by the last ``select``.
    labels_ : ndarray of shape (n_samples,), int64
        k-means cluster of every sample in the last ``select``.
    typicality_ : ndarray of shape (n_samples,)
        Typicality of every sample among all members of its cluster, as computed at the
        cluster's first visit (``nan`` for clusters never visited).
    selected_clusters_ : ndarray of shape (n_budget,), int64
        Cluster of each selected index.
    selection_info_ : dict
        ``n_clusters``, ``n_kept_clusters`` (clusters of at least ``min_cluster_size``
        samples) and ``n_from_small_clusters`` (picks made by the fallbacks above).
    selected_indices_ : ndarray of shape (n_budget,), int64
        Result of the last ``select``, best first.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn import TypiClustSelector
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal([1, 0], 0.1, (30, 2)), rng.normal([0, 1], 0.1, (30, 2))]
    >>> idx = TypiClustSelector(random_state=0).fit_select(X, 2)
    >>> sorted(int(i) // 30 for i in idx)
    [0, 1]
    """

    _parameter_constraints: dict = {
        **BaseSelector._parameter_constraints,
        "n_neighbors": [COUNT],
        "n_clusters": [COUNT, None],
        "max_clusters": [COUNT],
        "min_cluster_size": [COUNT],
        "normalize": ["boolean"],
        "max_iter": [COUNT],
        "neighbor_index": [NEIGHBOR_INDEX],
    }

    def __init__(self, n_neighbors=20, n_clusters=None, max_clusters=500, min_cluster_size=6,
                 normalize=True, max_iter=50, neighbor_index="auto", random_state=None,
                 verbose=0):
        self.n_neighbors = n_neighbors
        self.n_clusters = n_clusters
        self.max_clusters = max_clusters
        self.min_cluster_size = min_cluster_size
        self.normalize = normalize
        self.max_iter = max_iter
        self.neighbor_index = neighbor_index
        self.random_state = random_state
        self.verbose = verbose

    def _select(self, n_budget, labeled):
        n_neighbors, min_cluster_size = int(self.n_neighbors), int(self.min_cluster_size)
        index = self.neighbor_index
        F = _maybe_l2_normalize(self.features_, self.normalize)
        n_samples = F.shape[0]
        if self.n_clusters is None:
            # the authors' K = min(|L| + B, MAX_NUM_CLUSTERS)
            n_clusters = min(labeled.size + n_budget, int(self.max_clusters), n_samples)
        else:
            n_clusters = resolve_n_clusters(self.n_clusters, n_budget, n_samples)
        result = kmeans(F, n_clusters, max_iter=self.max_iter,
                        random_state=int(draw_seeds(self.random_state, 1)[0]))
        labels = result.labels
        sizes = np.bincount(labels, minlength=n_clusters)
        by_size = _clusters_by_size(labels, sizes)
        kept = [c for c in by_size if sizes[c] >= min_cluster_size]
        small = [c for c in by_size if sizes[c] < min_cluster_size]
        if not kept:
            kept, small = by_size, []
        self._log(f"k-means K={n_clusters}: {len(kept)} clusters of >= {min_cluster_size} "
                  f"samples; largest {[int(sizes[c]) for c in kept[:5]]}")

        picked, picked_clusters, typicality = _typiclust_picks(
            F, labels, kept + small, len(kept), labeled, n_budget, (n_neighbors, index))
        n_from_small = int(np.sum(np.isin(picked_clusters, small)))
        self.n_clusters_ = n_clusters
        self.labels_ = labels
        self.typicality_ = typicality
        self.selected_clusters_ = np.asarray(picked_clusters, dtype=np.int64)
        self.selection_info_ = {"n_clusters": int(n_clusters), "n_kept_clusters": len(kept),
                                "n_from_small_clusters": int(n_from_small)}
        return picked


def _typiclust_picks(F, labels, order, n_kept, labeled, n_budget, typicality_args):
    """TypiClust's pick loop: each pick from the cluster with the fewest labeled and picked
    samples (the authors' sort key), kept clusters before skipped ones, then in ``order``
    (largest first); its most typical unlabeled, unselected member.

    With no labeled sample this is the authors' round robin, "cluster i mod len(clusters)"
    for the i-th pick, passing over clusters whose members are all selected. Returns the
    picks, their clusters and the typicality of each sample at its cluster's first visit.
    """
    taken = np.zeros(F.shape[0], dtype=bool)
    taken[labeled] = True
    counts = np.bincount(labels[labeled], minlength=labels.max() + 1)[order]
    unselected = [np.flatnonzero((labels == c) & ~taken) for c in order]
    # visit order: kept clusters before skipped ones, fewest labels, then largest
    tier = np.r_[np.zeros(n_kept), np.ones(len(order) - n_kept)].astype(np.int64)
    typicality = np.full(F.shape[0], np.nan)
    picked, picked_clusters = [], []
    while len(picked) < n_budget:
        available = np.array([m.size > 0 for m in unselected])
        if not available.any():
            break
        key = np.where(available, (tier * (labels.size + 1) + counts) * len(order)
                       + np.arange(len(order)), np.iinfo(np.int64).max)
        slot = int(np.argmin(key))
        members = unselected[slot]
        scores = _typicality(F[members], *typicality_args)
        if np.isnan(typicality[members]).all():  # first visit: the cluster's typicality
            typicality[members] = scores
        best = int(np.argmax(scores))  # ties: the lowest index
        picked.append(int(members[best]))
        picked_clusters.append(order[slot])
        counts[slot] += 1
        unselected[slot] = np.delete(members, best)
    return picked, picked_clusters, typicality


def _maybe_l2_normalize(F, normalize):
    """``F`` with unit-norm rows when ``normalize`` (zero rows stay zero), else ``F``."""
    if not normalize:
        return F
    norms = np.linalg.norm(F, axis=1, keepdims=True)
    return (F / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def _typicality(F, n_neighbors, index="auto"):
    """The authors' typicality: 1 / (mean squared L2 distance to the k nearest others + 1e-5),
    ``k = min(n_neighbors, len(F) // 2)``; a single point gets typicality 1."""
    k = min(n_neighbors, F.shape[0] // 2)
    if k < 1:
        return np.ones(F.shape[0])
    squared, _ = knn_search(F, F, k + 1, index=index)
    # the first neighbour is the point itself (or an exact duplicate, also at distance 0)
    return 1.0 / (squared[:, 1:].astype(np.float64).mean(axis=1) + 1e-5)


class ProbCoverSelector(BaseSelector):
    """ProbCover (Yehuda et al., 2022): greedy maximum coverage of delta-balls.

    Follows "Active Learning Through a Covering Lens" (NeurIPS 2022, Sec. 4 and Alg. 1) and
    the authors' code (``deep-al/pycls/al/prob_cover.py`` in the ``avihu111/TypiClust``
    repository):

    1. the features are L2-normalised (the authors load them with ``normalized=True``);
    2. every sample covers the samples closer than ``delta`` to it (an open ball, itself
       included); repeatedly, the sample whose ball holds the most not-yet-covered samples is
       selected and its ball marked covered;
    3. once every sample is covered, the remaining picks are drawn uniformly at random from
       the samples not selected yet, seeded by ``random_state`` (the paper: "if all points
       are covered, we choose at random"; scikit-activeml's ``ProbCover`` does the same);
    4. with ``select(n_budget, labeled=...)`` the balls of the labeled samples are covered
       before the first pick (Alg. 1 starts from the labeled set) and labeled samples are
       never picked.

    **Choosing delta** (``delta=None``; a departure): k-means with ``K = n_classes``
    clusters gives pseudo-labels, and delta is the largest radius at which at least
    ``purity_threshold`` (the paper's ``alpha = 0.95``) of the *(ball, member) pairs* share
    the pseudo-label of their ball's center -- the mean purity of the balls, weighted by
    their sizes (:func:`pair_purity_radius`; exact from the kNN lists, no grid of radii).
    The paper instead asks that ``alpha`` of the balls be *entirely* pure. That rule breaks
    on features whose classes touch (raw pixels, PCA, unwhitened or unnormalised
    embeddings): a sample at a k-means boundary has a sample of the other pseudo-label very
    close, more than 5% of the samples do, so the all-pure rule ends near the typical
    nearest-neighbour distance -- on PCA-50 of the 1,797 digits' pixels, a median ball of
    3-5 samples, 10 balls covering 12-16% of the pool -- and the greedy then takes the
    ``n_budget`` densest spots, a few classes (7 of 10 digits at budget 10, seeds 0-2).
    Weighting by pairs keeps boundary samples from deciding the radius, yet one ball that
    swallows a neighbouring cluster is many disagreeing pairs, so clusters are not merged
    (same data: a median ball of 40-50 samples, 52-57% covered, 9 of 10 digits; on well
    separated blobs both rules give nearly the same radius). The pseudo-labels and
    the balls use the same (L2-normalised) features. Pass the number of classes as
    ``n_classes``: the paper sets ``K`` to it, and ``K = n_budget`` (the fallback) splits
    classes into pieces at large budgets, which shrinks delta.

    **Bounded memory** (a departure): the delta-graph used for the degrees is built from a
    k-nearest-neighbour search with at most ``max_neighbors`` neighbours per sample (memory
    ``n * max_neighbors``; the authors keep every edge). A ball holding more samples than
    that counts only its ``max_neighbors`` nearest -- in its degree and in the purity --
    so degrees saturate at the cap; ties in degree go to the densest sample (smallest
    distance to its farthest kept neighbour). Coverage itself is exact: when a sample is
    selected, every sample within ``delta`` of it is marked covered (one distance pass over
    the data).

    **Large n.** The one kNN search (``max_neighbors`` per sample) gives both the
    delta-graph and the purity. The graph is a sparse matrix (memory ``O(n * average
    degree)``) and the greedy lowers degrees as samples are covered instead of recounting
    them. The search is exact up to 100,000 samples and approximate above
    (``neighbor_index``), where missed neighbours can make a few balls look smaller; above
    4,194,304 listed neighbours the purity is read on 65,536 quantile bins of their
    distances.

    Parameters
    ----------
    delta : float or None, default=None
        Ball radius, > 0 (Euclidean, in units of the L2-normalised features when
        ``normalize=True``). ``None`` chooses it from purity.
    purity_threshold : float, default=0.95
        The paper's ``alpha``, in ``(0, 1]``: the pair purity delta must keep.
    n_classes : int or None, default=None
        Clusters ``K`` of the pseudo-labels used to choose delta: pass the number of classes
        (the paper's setting). ``None`` falls back to ``K = n_budget``, a guess for when the
        number of classes is unknown.
    normalize : bool, default=True
        L2-normalise each feature vector first, as the authors do (all-zero rows stay zero).
    max_neighbors : int, default=100
        Cap on neighbours per sample in the delta-graph (clipped to the number of samples).
    max_iter : int, default=50
        Lloyd iterations of the pseudo-label k-means.
    neighbor_index : {"auto", "flat", "hnsw", "ivf"}, default="auto"
        Index of the kNN search behind the delta-graph and the purity distances
        (:func:`as3l_sklearn.cluster.knn_search`): ``"auto"`` is exact up to 100,000 samples
        and approximate (faiss IVF, float16 lists) above; ``"flat"`` is exact at any size.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the pseudo-label k-means and the random picks made once everything is covered.
        The same value gives the same indices.
    verbose : int, default=0
        Print progress lines when > 0.

    Attributes
    ----------
    features_ : ndarray of shape (n_samples, n_features), float32
        The validated features seen in ``fit`` (not normalised).
    n_features_in_ : int
        Number of features seen in ``fit``.
    delta_ : float
        Radius used by the last ``select``.
    purity_ : float or None
        Pair purity of the balls at ``delta_`` (``None`` when ``delta`` was given).
    coverage_ : float
        Fraction of samples within ``delta_`` of a labeled sample or of a sample selected by
        the greedy (random picks excluded).
    selected_gains_ : ndarray of shape (n_budget,), int64
        Newly covered samples each pick brought (``0`` for random picks).
    n_random_picks_ : int
        Picks drawn at random because every sample was already covered.
    selected_indices_ : ndarray of shape (n_budget,), int64
        Result of the last ``select``, best first.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn import ProbCoverSelector
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal([1, 0], 0.1, (30, 2)), rng.normal([0, 1], 0.1, (30, 2))]
    >>> selector = ProbCoverSelector(n_classes=2, random_state=0).fit(X)
    >>> sorted(int(i) // 30 for i in selector.select(2))
    [0, 1]
    >>> selector.coverage_
    1.0
    """

    _parameter_constraints: dict = {
        **BaseSelector._parameter_constraints,
        "delta": [Interval(Real, 0, None, closed="neither"), None],
        "purity_threshold": [Interval(Real, 0, 1, closed="right")],
        "n_classes": [COUNT, None],
        "normalize": ["boolean"],
        "max_neighbors": [COUNT],
        "max_iter": [COUNT],
        "neighbor_index": [NEIGHBOR_INDEX],
    }

    def __init__(self, delta=None, purity_threshold=0.95, n_classes=None, normalize=True,
                 max_neighbors=100, max_iter=50, neighbor_index="auto", random_state=None,
                 verbose=0):
        self.delta = delta
        self.purity_threshold = purity_threshold
        self.n_classes = n_classes
        self.normalize = normalize
        self.max_neighbors = max_neighbors
        self.max_iter = max_iter
        self.neighbor_index = neighbor_index
        self.random_state = random_state
        self.verbose = verbose

    def _select(self, n_budget, labeled):
        X = _maybe_l2_normalize(self.features_, self.normalize)
        n_samples = X.shape[0]
        rng = check_random_state_or_generator(self.random_state)
        if self.delta is None:  # n_classes against the samples, before the search
            resolve_n_clusters(self.n_classes, n_budget, n_samples, name="n_classes")

        # one capped kNN search serves both the purity-chosen delta and the delta-graph
        k = min(int(self.max_neighbors), n_samples)
        squared, neighbors = knn_search(X, X, k, index=self.neighbor_index)
        if self.delta is None:
            delta, purity = self._delta_from_purity(X, n_budget, rng, squared, neighbors)
        else:
            delta, purity = float(self.delta), None
        self._log(f"delta = {delta:.4g}" + ("" if purity is None else f" (purity {purity:.3f})"))

        holders, degree = _delta_graph(squared, neighbors, delta)
        # ties in degree go to the densest sample: smaller radius of its kept neighbourhood
        density_rank = np.empty(n_samples, dtype=np.int64)
        densest_first = np.lexsort((np.arange(n_samples), squared[:, -1]))
        density_rank[densest_first] = np.arange(n_samples)[::-1]
        del squared, neighbors
        self._log(f"delta-graph: {holders.nnz} edges (cap {k} neighbours per sample)")
        picked, gains, covered, chosen = _greedy_cover(X, delta, holders, degree, density_rank,
                                                       labeled, n_budget)
        n_random = n_budget - len(picked)
        if n_random:
            self._log(f"all samples covered after {len(picked)} picks: {n_random} random picks")
            picked += rng.choice(np.flatnonzero(~chosen), n_random, replace=False).tolist()
            gains += [0] * n_random
        self.delta_ = delta
        self.purity_ = purity
        self.coverage_ = float(covered.mean())
        self.selected_gains_ = np.asarray(gains, dtype=np.int64)
        self.n_random_picks_ = int(n_random)
        return picked

    def _delta_from_purity(self, X, n_budget, rng, squared, neighbors):
        threshold = float(self.purity_threshold)
        n_classes = resolve_n_clusters(self.n_classes, n_budget, X.shape[0], name="n_classes")
        result = kmeans(X, n_classes, max_iter=self.max_iter,
                        random_state=int(rng.randint(np.iinfo(np.int32).max)))
        labels = result.labels
        if np.unique(labels).size == 1:
            # one pseudo-class: every ball is pure; a radius past the data's diameter covers all
            return float(2 * np.sqrt(((X - X.mean(axis=0)) ** 2).sum(axis=1).max()) + 1.0), 1.0
        return pair_purity_radius(squared, neighbors, labels, threshold)


def _delta_graph(squared, neighbors, delta):
    """The balls of radius ``delta`` from the kNN lists: for each sample, the balls it lies in
    (CSR, row ``j`` lists the centers whose ball holds ``j``), and each ball's size.

    Covering a sample lowers exactly the degrees of the balls it lies in, so the greedy
    updates degrees instead of recounting them; memory ``O(n * average degree)``.
    """
    n_samples = squared.shape[0]
    inside = (squared < delta**2) & (neighbors != np.arange(n_samples)[:, None])
    counts = inside.sum(axis=1) + 1
    indptr = np.r_[0, np.cumsum(counts)]
    indices = np.empty(indptr[-1], dtype=np.int64)
    indices[indptr[:-1]] = np.arange(n_samples)  # each ball holds its center first
    rest = np.ones(indptr[-1], dtype=bool)
    rest[indptr[:-1]] = False
    indices[rest] = neighbors[inside]
    balls = sparse.csr_matrix((np.ones(indices.size, dtype=np.int8), indices, indptr),
                              shape=(n_samples, n_samples))
    return balls.T.tocsr(), counts.astype(np.int64)


def _greedy_cover(X, delta, holders, degree, density_rank, labeled, n_budget):
    """ProbCover's greedy from the labeled samples' balls on: picks, their gains, and the
    covered and chosen masks. Stops early once no ball covers anything new."""
    n_samples = X.shape[0]
    sq_norms = np.einsum("ij,ij->i", X, X, dtype=np.float64)
    covered = np.zeros(n_samples, dtype=bool)
    chosen = np.zeros(n_samples, dtype=bool)

    def cover(center):
        # cover the whole ball exactly (one pass over the data), not just the capped edges,
        # so that a truncated ball does not attract the next pick to the same region
        in_ball = _ball(X, sq_norms, center, delta**2)
        newly = in_ball[~covered[in_ball]]
        covered[newly] = True
        chosen[center] = True
        # only the balls holding a newly covered sample lose degree (no O(n) recount)
        np.subtract.at(degree, holders[newly].indices, 1)
        return int(newly.size)

    for center in labeled:  # the paper: the balls of labeled samples are already covered
        cover(center)
    picked, gains = [], []
    while len(picked) < n_budget:
        score = np.where(chosen, -1, degree) * (n_samples + 1) + density_rank
        best = int(np.argmax(score))
        if chosen[best] or degree[best] <= 0:
            break
        gains.append(cover(best))
        picked.append(best)
    return picked, gains, covered, chosen


def _ball(X, sq_norms, center, radius_sq, chunk=1 << 16):
    """Indices of the samples closer than ``sqrt(radius_sq)`` to sample ``center``.

    A float32 matrix-vector product screens the candidates (one BLAS pass, no n x d
    temporary); their distances are then recomputed as the exact float64 sums of squared
    differences, so membership is decided exactly as by a full float64 pass. The screen's
    margin is far above float32 rounding of ``|x|^2 + |c|^2 - 2 x.c``.
    """
    point = X[center]
    approx = sq_norms + sq_norms[center] - 2.0 * (X @ point).astype(np.float64)
    margin = 1e-4 * (sq_norms + sq_norms[center]) + 1e-30
    candidates = np.flatnonzero(approx < radius_sq + margin)
    exact = np.empty(candidates.size, dtype=np.float64)
    for start in range(0, candidates.size, chunk):
        rows = candidates[start:start + chunk]
        diff = X[rows] - point[None, :]
        exact[start:start + chunk] = np.einsum("ij,ij->i", diff, diff, dtype=np.float64)
    inside = candidates[exact < radius_sq]
    if not np.any(inside == center):
        inside = np.sort(np.r_[inside, center])
    return inside


#: up to this many listed neighbours (n * max_neighbors) the purity radius is exact; above,
#: it is exact to within one of ``PURITY_BINS`` quantile bins of the listed distances
EXACT_PURITY_EVENTS = 1 << 22
PURITY_BINS = 1 << 16


def pair_purity_radius(squared, neighbors, labels, threshold):
    """Largest radius at which ``threshold`` of the (ball, member) pairs agree.

    Each ball ``B(x, r)`` holds ``x`` and its listed neighbours closer than ``r``; the *pair
    purity* is the fraction of all (center, member) pairs over all balls whose pseudo-labels
    agree -- the mean purity of the balls, weighted by their sizes. It starts at 1 (balls
    of one sample) and changes only where ``r`` passes a listed neighbour distance; the
    radius stops halfway between the last distance kept and the first one whose pairs take
    the purity below ``threshold``. Balls are read from the kNN lists (``squared``
    ascending per row, ``neighbors``), so a ball larger than the list counts its listed
    members only.

    Returns ``(delta, purity)``: the radius and the pair purity at it.
    """
    n_samples = squared.shape[0]
    other = neighbors != np.arange(n_samples)[:, None]
    events = squared[other]
    if events.size == 0:  # lists of the sample itself only (max_neighbors=1)
        return float(np.finfo(np.float32).eps), 1.0
    if events.size <= EXACT_PURITY_EVENTS:
        edges = np.unique(events)
    else:
        sample = np.random.RandomState(0).choice(events, EXACT_PURITY_EVENTS, replace=False)
        edges = np.unique(np.r_[np.quantile(sample, np.linspace(0, 1, PURITY_BINS)),
                                events.max()])
    where = np.searchsorted(edges, events, side="left")
    del events
    agree = (labels[neighbors] == labels[:, None])[other]
    # the centers are pairs of their own balls: n agreeing pairs at every radius
    pairs = n_samples + np.cumsum(np.bincount(where, minlength=edges.size))
    agreeing = n_samples + np.cumsum(np.bincount(where, weights=agree, minlength=edges.size))
    purity = agreeing / pairs
    below = np.flatnonzero(purity < threshold - 1e-12)
    if below.size == 0:
        # pure up to the lists' end: just past the farthest listed neighbour
        return float(np.sqrt(edges[-1]) * (1 + 1e-6) + 1e-12), float(purity[-1])
    first = int(below[0])
    if first == 0:
        # impure at the smallest distance (duplicates across pseudo-labels): balls of one sample
        radius_sq = edges[0] / 2 if edges[0] > 0 else float(np.finfo(np.float32).eps) ** 2
        return float(np.sqrt(radius_sq)), 1.0
    # halfway between the last distance kept and the first left out: robust to rounding
    radius_sq = (float(edges[first - 1]) + float(edges[first])) / 2
    return float(np.sqrt(radius_sq)), float(purity[first - 1])
