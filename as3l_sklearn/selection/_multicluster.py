"""AS3L's single-shot selection from the stable groups of several k-means runs (Sec. 3.2.2)."""

from __future__ import annotations

import numpy as np

from ..cluster import kmeans
from ..utils._param_validation import StrOptions
from ._base import COUNT, BaseSelector, closest_to, draw_seeds, kcenter_continue, resolve_n_clusters

GROUP_POLICIES = ("one_per_cluster", "largest")


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
    4. ``n_budget`` groups are chosen by ``group_policy``:

       * ``"one_per_cluster"``: greedily, each time the group whose clusters are least used
         by the groups already chosen -- the fewest runs in which its cluster already holds a
         pick -- and among those the largest. Every pick then lies in a cluster of its own in
         each run whenever the stable groups allow it (``K = n_budget`` clusters per run,
         ``n_budget`` picks: one per cluster), and the rule degrades gracefully when they do
         not;
       * ``"largest"``: the ``n_budget`` largest groups, whatever their clusters. Several
         large groups are often pieces of one big cluster of the first run, so several picks
         can land in one cluster (on Fashion-MNIST PCA features, 3 of 10 picks on average);

    5. from each chosen group, the **medoid** is selected: the member closest (Euclidean) to
       the group's mean;
    6. fallback: with ``K = n_budget`` there are always at least ``n_budget`` groups unless
       k-means leaves clusters empty (duplicate points) or ``n_clusters`` is set below the
       budget; the remaining picks are then made by k-center greedy (the sample farthest
       from all picks so far), so that exactly ``n_budget`` distinct indices come back.

    **Labeled samples** (``select(n_budget, labeled=...)``; the paper selects once, so this
    is our extension): each run makes ``K + len(labeled)`` clusters, so the labeled samples
    have clusters of their own; a stable group holding a labeled sample is never chosen, and
    the clusters of the labeled samples count as used from the start, so under
    ``"one_per_cluster"`` the new picks go first to groups whose clusters hold no label in
    any run (largest first), and under ``"largest"`` to the largest groups without a label.
    The k-center fallback counts the labeled samples as centers.

    Parameters
    ----------
    n_runs : int, default=6
        Number of k-means runs, the paper's ``C``.
    n_clusters : int or None, default=None
        Clusters per run ``K``. ``None`` uses ``K = n_budget`` (the paper); an int overrides it.
    group_policy : {"one_per_cluster", "largest"}, default="one_per_cluster"
        Which stable groups give the picks (step 4 above): at most one pick per cluster of
        each run where possible, largest groups first, or simply the largest groups. See
        :doc:`/selection` for the measurement behind the default.
    max_iter : int, default=50
        Lloyd iterations per k-means run.
    random_state : int, RandomState instance, numpy Generator or None, default=None
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
    selected_shared_runs_ : ndarray of shape (n_budget,), int64
        For each pick, the number of k-means runs in which its cluster already held an
        earlier pick or a labeled sample (``0``: a cluster of its own in every run; ``-1``
        for a fallback pick).
    selection_info_ : dict
        ``n_groups``, ``n_labeled_groups`` (groups holding a labeled sample),
        ``n_clusters``, ``n_fallback`` (picks made by the fallback),
        ``n_shared_first_run`` (picks whose cluster in the first run already held an earlier
        pick) and the k-means ``seeds`` of the last ``select``.

    See Also
    --------
    KMedoidsSelector : One k-means run, one medoid per cluster (the paper's ablation).
    TypiClustSelector, ProbCoverSelector : Typicality- and coverage-based rivals.

    Notes
    -----
    The k-means runs use :func:`as3l_sklearn.cluster.kmeans` (faiss when installed, with all
    points used for the centers). Selecting 10 of 50,000 128-d samples takes about 4 s of CPU
    on one core, almost all of it in the six k-means runs; the group choice is negligible
    (see ``benchmarks/bench_selection.py``). Each run seeds k-means++ on a random sample of
    ``max(10,000, 20 K)`` samples when there are more
    (:func:`as3l_sklearn.cluster.seeding_sample_size`): seeding on all points dominated
    ``select(1000)`` at 50,000 samples (31 s of each run); the Lloyd iterations still use
    every sample.

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

    _parameter_constraints: dict = {
        **BaseSelector._parameter_constraints,
        "n_runs": [COUNT],
        "n_clusters": [COUNT, None],
        "group_policy": [StrOptions(set(GROUP_POLICIES))],
        "max_iter": [COUNT],
    }

    def __init__(self, n_runs=6, n_clusters=None, group_policy="one_per_cluster", max_iter=50,
                 random_state=None, verbose=0):
        self.n_runs = n_runs
        self.n_clusters = n_clusters
        self.group_policy = group_policy
        self.max_iter = max_iter
        self.random_state = random_state
        self.verbose = verbose

    def _select(self, n_budget, labeled):
        X = self.features_
        n_samples = X.shape[0]
        n_runs, max_iter = int(self.n_runs), int(self.max_iter)
        n_clusters = resolve_n_clusters(self.n_clusters, n_budget, n_samples)
        # labeled samples take clusters of their own: K grows by their number
        n_clusters = min(n_clusters + labeled.size, n_samples)

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
        # the tuple of cluster labels of each group (all its members share it)
        group_run_labels = run_labels[:, order[bounds[:-1]]].T
        labeled_groups = np.unique(groups[labeled])
        n_open = n_groups - labeled_groups.size
        chosen, shared = _choose_groups(group_run_labels, min(n_budget, n_open), n_clusters,
                                        self.group_policy, labeled_groups)
        picked, picked_groups = [], []
        for rank in chosen:
            members = order[bounds[rank]:bounds[rank + 1]]
            picked.append(closest_to(X, members, X[members].mean(axis=0)))
            picked_groups.append(int(rank))
        n_fallback = n_budget - len(picked)
        if n_fallback:
            self._log(f"only {n_groups} stable groups for n_budget={n_budget}: "
                      f"{n_fallback} picks by k-center greedy")
            picked = kcenter_continue(X, n_budget, labeled, picked)
            picked_groups += [-1] * n_fallback

        self.n_clusters_ = n_clusters
        self.run_labels_ = run_labels
        self.groups_ = groups
        self.group_sizes_ = group_sizes
        self.selected_groups_ = np.asarray(picked_groups, dtype=np.int64)
        self.selected_group_sizes_ = np.where(
            self.selected_groups_ >= 0, group_sizes[np.maximum(self.selected_groups_, 0)], 0
        ).astype(np.int64)
        self.selected_shared_runs_ = np.r_[shared.sum(axis=1), [-1] * n_fallback].astype(np.int64)
        self.selection_info_ = {
            "n_groups": int(n_groups),
            "n_labeled_groups": int(labeled_groups.size),
            "n_clusters": int(n_clusters),
            "n_fallback": int(n_fallback),
            "n_shared_first_run": int(shared[:, 0].sum()) if shared.size else 0,
            "seeds": [int(s) for s in seeds],
        }
        return np.asarray(picked, dtype=np.int64)


def _choose_groups(group_run_labels, n_picks, n_clusters, policy, labeled_groups=()):
    """Ranks of the ``n_picks`` stable groups to take, in pick order.

    ``group_run_labels[g, r]`` is the cluster of group ``g`` (rank order: 0 is the largest) in
    run ``r``. The ``labeled_groups`` (groups holding a labeled sample) are never taken and
    their clusters count as used from the start. Returns the chosen ranks and, for each pick,
    a boolean row over the runs: True where the pick's cluster already held a labeled sample
    or an earlier pick.
    """
    n_groups, n_runs = group_run_labels.shape
    runs = np.arange(n_runs)
    used = np.zeros((n_runs, n_clusters), dtype=bool)
    available = np.ones(n_groups, dtype=bool)
    labeled_groups = np.asarray(labeled_groups, dtype=np.int64)
    for rank in labeled_groups:
        used[runs, group_run_labels[rank]] = True
    available[labeled_groups] = False
    chosen, shared = [], []
    for _ in range(n_picks):
        if policy == "largest":
            rank = int(np.argmax(available))  # the largest group still open
        else:
            n_used = used[runs, group_run_labels].sum(axis=1)
            # fewest runs with an already-used cluster first, then the largest (lowest rank):
            # one integer key, so a single argmin over the groups
            key = np.where(available, n_used * n_groups + np.arange(n_groups),
                           np.iinfo(np.int64).max)
            rank = int(np.argmin(key))
        labels = group_run_labels[rank]
        shared.append(used[runs, labels].copy())
        used[runs, labels] = True
        available[rank] = False
        chosen.append(rank)
    return np.asarray(chosen, dtype=np.int64), np.asarray(shared, dtype=bool).reshape(-1, n_runs)


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
