"""AS3L's single-shot selection from the stable groups of several k-means runs (Sec. 3.2.2)."""

from __future__ import annotations

import numpy as np

from ..cluster import kmeans
from ..utils import check_positive_int
from ._base import BaseSelector, closest_to, draw_seeds, kcenter_greedy, resolve_n_clusters


class MultiClusterSelector(BaseSelector):
    """Choose the samples to annotate as the medoids of stable multi-k-means groups (AS3L).

    Section 3.2.2 of the AS3L paper runs k-means ``C`` times on the fine-tuned features
    ``f_fine`` and selects the "medians" of the samples that are assigned together in all
    ``C`` clusterings. The paper's Algorithm 1 lives in an appendix that is not available and
    no official code is public, so this class implements the following reading of it:

    1. run k-means ``n_runs`` times (``C = 6``) with ``K = n_budget`` clusters (Sec. 4.1: "the
       number of classes in each cluster, K, is equal to the number of selected samples"),
       each run with its own seed drawn from ``random_state``;
    2. a **stable group** is a set of samples that share the same tuple of cluster labels
       across all ``C`` runs (the intersection of the ``C`` partitions);
    3. groups are ranked by size, largest first (ties: the group whose first member has the
       lowest index first);
    4. from each of the ``n_budget`` largest groups, the **medoid** is selected: the member
       closest (Euclidean) to the group's mean;
    5. fallback: with ``K = n_budget`` there are always at least ``n_budget`` groups unless
       k-means leaves clusters empty (duplicate points) or ``n_clusters`` is set below the
       budget; the remaining picks are then made by k-center greedy (the sample farthest
       from all picks so far), so that exactly ``n_budget`` distinct indices come back.

    Parameters
    ----------
    n_runs : int, default=6
        Number of k-means runs, the paper's ``C``.
    n_clusters : int or None, default=None
        Clusters per run ``K``. ``None`` uses ``K = n_budget`` (the paper); an int overrides it.
    max_iter : int, default=50
        Lloyd iterations per k-means run.
    random_state : int, RandomState instance or None, default=None
        Seeds the ``n_runs`` k-means runs. The same value gives the same indices.
    verbose : int, default=0
        Print one progress line per k-means run when > 0.

    Attributes
    ----------
    features_ : ndarray of shape (n_samples, n_features), float32
        The validated features seen in ``fit``.
    n_features_in_ : int
        Number of features seen in ``fit``.
    n_clusters_ : int
        ``K`` used by the last ``select``.
    run_labels_ : ndarray of shape (n_runs, n_samples), int64
        Cluster label of every sample in every k-means run of the last ``select``.
    groups_ : ndarray of shape (n_samples,), int64
        Stable group of every sample, numbered by rank: group 0 is the largest.
    group_sizes_ : ndarray of shape (n_groups,), int64
        Size of each stable group (non-increasing).
    selected_indices_ : ndarray of shape (n_budget,), int64
        Result of the last ``select``, best first.
    selected_groups_ : ndarray of shape (n_budget,), int64
        Stable group of each selected index (``-1`` for a k-center fallback pick).
    selected_group_sizes_ : ndarray of shape (n_budget,), int64
        Size of that group (``0`` for a fallback pick): why each index was chosen.
    selection_info_ : dict
        ``n_groups``, ``n_clusters``, ``n_fallback`` (picks made by the fallback) and the
        k-means ``seeds`` of the last ``select``.

    See Also
    --------
    KMedoidsSelector : One k-means run, one medoid per cluster (the paper's ablation).
    TypiClustSelector, ProbCoverSelector : Typicality- and coverage-based rivals.

    Notes
    -----
    The k-means runs use :func:`as3l_sklearn.cluster.kmeans` (faiss when installed, with all
    points used for the centers). Selecting 10 of 50,000 128-d samples takes about a second
    on two CPU cores (see ``benchmarks/bench_selection.py``).

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn import MultiClusterSelector
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))]
    >>> selector = MultiClusterSelector(n_runs=3, random_state=0).fit(X)
    >>> idx = selector.select(2)
    >>> sorted(int(i) // 20 for i in idx)  # one sample from each blob
    [0, 1]
    >>> selector.selected_group_sizes_.tolist()
    [20, 20]
    """

    def __init__(self, n_runs=6, n_clusters=None, max_iter=50, random_state=None, verbose=0):
        self.n_runs = n_runs
        self.n_clusters = n_clusters
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose

    def _select(self, n_budget):
        X = self.features_
        n_samples = X.shape[0]
        n_runs = check_positive_int(self.n_runs, "n_runs")
        max_iter = check_positive_int(self.max_iter, "max_iter")
        n_clusters = resolve_n_clusters(self.n_clusters, n_budget, n_samples)

        seeds = draw_seeds(self.random_state, n_runs)
        run_labels = np.empty((n_runs, n_samples), dtype=np.int64)
        for run, seed in enumerate(seeds):
            result = kmeans(X, n_clusters, max_iter=max_iter, random_state=int(seed))
            run_labels[run] = result.labels
            self._log(f"k-means run {run + 1}/{n_runs} (K={n_clusters}): "
                      f"inertia {result.inertia:.4g}")

        groups, group_sizes = _stable_groups(run_labels)
        n_groups = group_sizes.size
        self._log(f"{n_groups} stable groups; largest sizes {group_sizes[:5].tolist()}")

        # members of each group, grouped by rank without a Python loop over all samples
        order = np.argsort(groups, kind="stable")
        bounds = np.r_[0, np.cumsum(group_sizes)]
        picked, picked_groups = [], []
        for rank in range(min(n_budget, n_groups)):
            members = order[bounds[rank]:bounds[rank + 1]]
            picked.append(closest_to(X, members, X[members].mean(axis=0)))
            picked_groups.append(rank)
        n_fallback = n_budget - len(picked)
        if n_fallback:
            self._log(f"only {n_groups} stable groups for n_budget={n_budget}: "
                      f"{n_fallback} picks by k-center greedy")
            picked = kcenter_greedy(X, n_budget, picked)
            picked_groups += [-1] * n_fallback

        self.n_clusters_ = n_clusters
        self.run_labels_ = run_labels
        self.groups_ = groups
        self.group_sizes_ = group_sizes
        self.selected_groups_ = np.asarray(picked_groups, dtype=np.int64)
        self.selected_group_sizes_ = np.where(
            self.selected_groups_ >= 0, group_sizes[np.maximum(self.selected_groups_, 0)], 0
        ).astype(np.int64)
        self.selection_info_ = {
            "n_groups": int(n_groups),
            "n_clusters": int(n_clusters),
            "n_fallback": int(n_fallback),
            "seeds": [int(s) for s in seeds],
        }
        return np.asarray(picked, dtype=np.int64)


def _stable_groups(run_labels: np.ndarray):
    """Group samples by their tuple of labels over the runs; rank groups by size.

    Returns the rank of each sample's group (0 = largest; ties broken by the lowest member
    index) and the group sizes in rank order.
    """
    _, first_index, inverse, counts = np.unique(
        run_labels.T, axis=0, return_index=True, return_inverse=True, return_counts=True
    )
    inverse = inverse.ravel()
    order = np.lexsort((first_index, -counts))  # by size descending, then first member
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    return rank[inverse].astype(np.int64), counts[order].astype(np.int64)
