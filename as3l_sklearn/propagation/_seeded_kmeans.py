"""Prior pseudo-labels from constrained seeded k-means over a list of cluster counts.

Section 3.3 of the AS3L paper: the labels of the annotated samples are propagated to every
sample of their cluster, with one clustering per entry of a list of cluster counts ``K``
(``[10, 20, 30, 40, 50, 60]`` in the paper), and the propagated labels are normalised into
the prior pseudo-labels ``y_prior``.
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy import sparse
from sklearn.cluster import kmeans_plusplus
from sklearn.utils.validation import check_is_fitted

from ..cluster import nearest_centers, seeding_sample_size
from ..utils import check_features, check_random_state_or_generator
from ..utils._param_validation import (
    RANDOM_STATE,
    IntSequence,
    Integral,
    Interval,
    Real,
    StrOptions,
    fit_context,
)
from ._base import UNLABELED, _BasePropagator, _normalise_rows, _validate_partial_labels, _validate_X

# unlabeled samples drawn at most as k-means++ candidates for the extra (unseeded) centers,
# for the default K lists (at most 500 extra centers); larger K uses 20 per center, the rule
# of as3l_sklearn.cluster.seeding_sample_size shared with every k-means of the package
KMEANS_PLUSPLUS_MAX_SAMPLES = 10_000

__all__ = ["SeededKMeansPropagator"]


# --------------------------------------------------------------------------------------
# constrained seeded k-means
# --------------------------------------------------------------------------------------
def _update_centers(X, assignment, previous_centers):
    """Means of the assigned points; an empty cluster keeps its previous center."""
    n_clusters = previous_centers.shape[0]
    membership = sparse.csr_matrix(
        (np.ones(X.shape[0], dtype=np.float32), (assignment, np.arange(X.shape[0]))),
        shape=(n_clusters, X.shape[0]),
    )
    sums = np.asarray(membership @ X, dtype=np.float64)
    counts = np.bincount(assignment, minlength=n_clusters)
    centers = previous_centers.copy()
    nonempty = counts > 0
    centers[nonempty] = (sums[nonempty] / counts[nonempty, None]).astype(np.float32)
    return centers


def seeded_kmeans(X, y_encoded, seeded_classes, n_extra, *, constrained=True, max_iter=50,
                  tol=1e-4, random_state=None, seed_of_sample=None, feature_variance=None):
    """One run of (constrained) seeded k-means (Basu, Banerjee & Mooney, 2002).

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features), float32
    y_encoded : ndarray of shape (n_samples,)
        Class indices, ``-1`` for unlabeled samples.
    seeded_classes : ndarray of int
        Class indices that get a seeded cluster (cluster ``j`` is seeded by class
        ``seeded_classes[j]`` and starts at the mean of its labeled samples). Ignored when
        ``seed_of_sample`` is given.
    n_extra : int
        Clusters beyond the seeded ones; they start from k-means++ on the unlabeled samples.
    constrained : bool
        Keep the labeled samples of seeded classes in their class's cluster at every iteration.
    max_iter : int
    tol : float
        Stop once the summed squared center shift of an iteration is at most ``tol`` times
        the mean per-feature variance of ``X`` (scikit-learn's rule), or the assignment is
        stable.
    random_state : int, RandomState instance, numpy Generator or None
    seed_of_sample : ndarray of shape (n_samples,), optional
        Seeded cluster of each sample (``-1`` for unlabeled or unseeded ones), for seedings
        other than one cluster per class (e.g. one cluster per labeled sample).
    feature_variance : float, optional
        ``np.mean(np.var(X, axis=0))`` for the ``tol`` rule, computed from ``X`` when not
        given; a caller running several clusterings of the same ``X`` computes it once
        (a full pass over ``X`` each time otherwise).

    Returns
    -------
    centers : ndarray of shape (len(seeded_classes) + n_extra, n_features), float32
    assignment : ndarray of shape (n_samples,), int64
    n_iter : int
    """
    rng = check_random_state_or_generator(random_state)
    # validated once here, not by every assignment step below (the same array when X is
    # float32 and C-contiguous, as fit passes it)
    X_search = check_features(X, name="X")
    n_classes = int(y_encoded.max()) + 1
    labeled = y_encoded != UNLABELED
    if seed_of_sample is None:
        n_seeded = len(seeded_classes)
        class_to_cluster = np.full(n_classes, -1, dtype=np.int64)
        class_to_cluster[seeded_classes] = np.arange(n_seeded)
        # cluster of each labeled sample of a seeded class, -1 for every other sample
        fixed = np.where(labeled, class_to_cluster[np.where(labeled, y_encoded, 0)], -1)
    else:
        fixed = np.asarray(seed_of_sample, dtype=np.int64)
        n_seeded = int(fixed.max()) + 1
    fixed_mask = fixed >= 0

    seed_sums = np.zeros((n_seeded, X.shape[1]), dtype=np.float64)
    np.add.at(seed_sums, fixed[fixed_mask], X[fixed_mask])
    seed_counts = np.bincount(fixed[fixed_mask], minlength=n_seeded)
    centers = (seed_sums / seed_counts[:, None]).astype(np.float32)
    if n_extra > 0:
        seed = rng.randint(2**31 - 1)
        unlabeled_index = np.flatnonzero(~labeled)
        sample_size = max(KMEANS_PLUSPLUS_MAX_SAMPLES, seeding_sample_size(n_extra))
        if len(unlabeled_index) > sample_size:
            # k-means++ sweeps all candidates once per center: on large data a random subset
            # places the initial centers as well, at a fraction of the time
            unlabeled_index = np.sort(np.random.RandomState(seed).choice(
                unlabeled_index, sample_size, replace=False))
        # plain k-means++ (one candidate per step): the greedy variant's 2 + log(K) candidate
        # distance sweeps dominate the run time on large data
        extra, _ = kmeans_plusplus(X[unlabeled_index], n_extra, random_state=seed,
                                   n_local_trials=1)
        centers = np.vstack([centers, extra.astype(np.float32)])

    def assign(centers):
        assignment, _ = nearest_centers(X_search, centers, check_input=False)
        if constrained:
            assignment[fixed_mask] = fixed[fixed_mask]
        return assignment

    if tol > 0 and feature_variance is None:
        feature_variance = float(np.mean(np.var(X, axis=0)))
    shift_tol = tol * feature_variance if tol > 0 else 0.0
    assignment = assign(centers)
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        new_centers = _update_centers(X, assignment, centers)
        shift = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        new_assignment = assign(centers)
        if np.array_equal(new_assignment, assignment) or shift <= shift_tol:
            assignment = new_assignment
            break
        assignment = new_assignment
    return np.ascontiguousarray(centers, dtype=np.float32), assignment, n_iter


def combine_votes(votes, n_reached, n_clusterings, vote_normalization):
    """Prior pseudo-labels from the summed cluster votes of ``n_clusterings`` clusterings.

    ``votes[i]`` is the sum of the label histograms sample ``i`` received and ``n_reached[i]``
    the number of clusterings that gave it one. ``"clusterings"`` divides by the number of
    clusterings and gives each clustering that did not reach the sample a uniform vote, so
    a sample reached by one clustering of six holds at most ``1/6 + 5/(6 n_classes)`` of
    confidence; ``"received"`` divides by the votes received (a sample reached once is
    one-hot). Returns ``(proba, covered)``; ``covered`` marks samples reached at least once.
    """
    n_classes = votes.shape[1]
    covered = n_reached > 0
    if vote_normalization == "received":
        proba, _ = _normalise_rows(votes)
        return proba, covered
    unreached_share = (n_clusterings - n_reached) / n_clusterings
    proba = votes / n_clusterings + unreached_share[:, None] / n_classes
    return proba, covered


def _sum_votes(distributions, assignments, n_samples):
    """Summed label histograms each sample receives over the clusterings, and the number of
    clusterings that reached it (put it in a cluster with labeled members)."""
    votes = np.zeros((n_samples, distributions[0].shape[1]), dtype=np.float64)
    n_reached = np.zeros(n_samples, dtype=np.int64)
    for cluster_distributions, assignment in zip(distributions, assignments):
        received = cluster_distributions[assignment]
        votes += received
        n_reached += received.sum(axis=1) > 0
    return votes, n_reached


def _cluster_label_histograms(assignment, y_encoded, n_clusters, n_classes):
    """Normalised label histogram of the labeled members of each cluster (zeros if none)."""
    labeled = y_encoded != UNLABELED
    counts = np.zeros((n_clusters, n_classes), dtype=np.float64)
    np.add.at(counts, (assignment[labeled], y_encoded[labeled]), 1.0)
    totals = counts.sum(axis=1, keepdims=True)
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


class SeededKMeansPropagator(_BasePropagator):
    """Prior pseudo-labels by constrained seeded k-means over a list of cluster counts.

    The label propagation of AS3L (section 3.3 of the paper): for each cluster count ``K`` in
    ``n_clusters``, the samples are clustered by constrained seeded k-means (Basu, Banerjee &
    Mooney, 2002); every member of a cluster receives the normalised histogram of the labels
    of the labeled samples in that cluster, and the prior pseudo-label of a sample is the
    normalised sum of what it received over all clusterings. Small ``K`` covers every sample
    with a label; large ``K`` gives purer clusters but leaves clusters without labels, so a
    list of ``K`` trades accuracy for coverage and lowers the confidence of samples on which
    the clusterings disagree (Table 6 of the paper).

    Unlabeled samples are marked ``-1`` in ``y``, as in :mod:`sklearn.semi_supervised`.

    Parameters
    ----------
    n_clusters : int or sequence of int, default=(10, 20, 30, 40, 50, 60)
        One clustering per entry (the paper's ``K`` list, C = 6 clusterings). Repeated values
        are allowed (e.g. ``[10] * 5``); each repetition draws its own extra centers.
    constrained : bool, default=True
        ``True``: constrained seeded k-means -- the labeled samples stay in their class's
        cluster at every iteration (the paper). ``False``: seeded k-means -- labeled samples
        only place the initial centers and are then assigned like any other sample.
    max_iter : int, default=20
        Maximum Lloyd iterations per clustering. Constrained clusterings converge slowly
        (about 100 iterations on 50,000 Fashion-MNIST PCA features) while the priors barely
        change after 10-20 (``benchmarks/bench_propagation.py``), so the default favours time.
    tol : float, default=1e-4
        A clustering stops early once its assignment is stable or the summed squared shift
        of its centers in one iteration is at most ``tol`` times the mean per-feature
        variance of ``X`` (the rule of :class:`sklearn.cluster.KMeans`). ``0`` waits for a
        stable assignment.
    seeding : {"sample", "class"}, default="sample"
        ``"sample"``: when ``K`` is at least the number of labeled samples, one seeded cluster
        per labeled sample, so that a class with several labels keeps several clusters at
        large ``K`` (the paper's remark that clusters without labels appear "when K is
        greater than the number of labeled samples" fits this reading); smaller ``K`` falls
        back to one cluster per class. ``"class"``: always one seeded cluster per class,
        started at the mean of its labeled samples (Basu et al.). On a Fashion-MNIST split
        held out from the reported one, with 40 multi-cluster labels, ``"sample"`` gave
        65.0 % prior accuracy (ECE 0.079) against 61.5 % (ECE 0.183) for ``"class"``.
    vote_normalization : {"clusterings", "received"}, default="clusterings"
        How the votes become a distribution (see Notes): ``"clusterings"`` divides by the
        number of clusterings and spreads the share of the clusterings that did not reach a
        sample uniformly (calibrated); ``"received"`` divides by the votes received
        (overconfident for samples few clusterings reached; kept for comparison).
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the k-means++ draws of the extra centers (and the choice of seeded classes when
        ``K`` is smaller than the number of classes). Same value, same priors.
    verbose : int, default=0
        ``> 0`` prints one line per clustering.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The distinct labels of the labeled samples.
    label_distributions_ : ndarray of shape (n_samples, n_classes)
        Prior pseudo-labels of the fitted samples; rows sum to 1. Labeled samples get the
        one-hot row of their own label; samples that no clustering reached get the uniform
        row (see ``covered_``).
    n_reached_ : ndarray of shape (n_samples,), int64
        Number of clusterings that put each fitted sample in a cluster with labels.
    transduction_ : ndarray of shape (n_samples,)
        Label of each fitted sample: its own label if labeled, the arg-max of its prior
        otherwise.
    covered_ : ndarray of shape (n_samples,), bool
        ``False`` for samples that no clustering reached with a label (uniform prior).
    n_clusters_ : list of int
        Number of clusters actually used per clustering (see Notes).
    cluster_centers_ : list of ndarray of shape (K_i, n_features)
        Final centers of each clustering, used by :meth:`predict_proba` on new samples.
    cluster_distributions_ : list of ndarray of shape (K_i, n_classes)
        Normalised label histogram of each cluster (all-zero rows for clusters with no
        labeled member).
    cluster_assignments_ : ndarray of shape (n_samples, n_clusterings), int64
        Cluster of each fitted sample in each clustering.
    n_iter_ : list of int
        Lloyd iterations run per clustering.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    LLGCPropagator : the label-spreading baseline of the paper (LLGC, Zhou et al. 2004).
    sklearn.semi_supervised.LabelSpreading : graph label spreading.

    Notes
    -----
    How each clustering is built:

    * Cluster ``j < n_seeded`` starts at the mean of the labeled samples of one class; the
      remaining ``K - n_seeded`` clusters start from k-means++
      (:func:`sklearn.cluster.kmeans_plusplus`, one candidate per step) on the unlabeled
      samples (on a random subset of ``max(10,000, 20 (K - n_seeded))`` of them when there
      are more, as :func:`as3l_sklearn.cluster.seeding_sample_size`). Assignment uses
      the project's single nearest-center backend (:func:`as3l_sklearn.cluster.nearest_centers`);
      an empty cluster keeps its previous center.
    * ``K`` at least the number of labeled classes: every class is seeded. ``K`` smaller than
      the number of classes: the ``K`` classes with the most labeled samples are seeded (ties
      broken at random from ``random_state``, so the entries of a ``K`` list seed different
      subsets); labeled samples of the other classes are assigned like unlabeled ones but
      still vote in their cluster's histogram. (The paper does not say what it does here; it
      uses ``K >= 10`` classes on CIFAR-10.)
    * There cannot be more extra clusters than unlabeled samples, so a clustering uses
      ``min(K, n_seeded + n_unlabeled)`` clusters (``n_clusters_``) -- ``K`` larger than the
      data never fails, it warns.

    Reading of the paper's "propagated ... and then normalized": a cluster passes the
    normalised histogram of its labeled members to every member (with constrained seeding
    on ``K >= n_classes`` a seeded cluster holds one class only, so this is a one-hot vote);
    clusters without labeled members pass nothing. With ``vote_normalization="clusterings"``
    (the default) the prior is the sum of the votes divided by the number of clusterings
    ``C``, and each clustering that left the sample in a cluster without labels gives back
    a uniform ``1 / C``: clusterings that disagree *and* clusterings that do not reach the
    sample lower its confidence, so confidence falls with the distance from the labels, as
    section 3.3 asks ("those farther away from any labeled samples will have lower
    confidence"). ``"received"`` divides by the votes the sample received instead, which
    makes a sample reached by a single clustering one-hot; it was the default before 0.2
    and was measured overconfident (ECE 0.37, ``benchmarks/bench_propagation.py``). A
    sample no clustering reached gets the uniform prior and ``covered_[i] = False``.

    ``predict_proba`` on new samples sends each sample to its nearest center in every
    clustering and combines those clusters' histograms the same way. As in
    :class:`~sklearn.semi_supervised.LabelSpreading`, ``fit(X, y).predict(X)`` may differ
    from ``transduction_`` (constrained labeled samples need not be nearest to their
    cluster's center).

    References
    ----------
    S. Basu, A. Banerjee, R. Mooney. Semi-supervised clustering by seeding. ICML 2002.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn.propagation import SeededKMeansPropagator
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(8, 1, (50, 2))]
    >>> y = np.full(100, -1)
    >>> y[0], y[50] = 0, 1
    >>> prop = SeededKMeansPropagator(n_clusters=[2, 4], random_state=0).fit(X, y)
    >>> prop.label_distributions_.shape
    (100, 2)
    >>> (prop.transduction_ == np.repeat([0, 1], 50)).mean()
    np.float64(1.0)
    >>> prop.predict([[8.0, 8.0]])
    array([1])
    """

    _parameter_constraints: dict = {
        "n_clusters": [Interval(Integral, 1, None, closed="left"), IntSequence(1)],
        "constrained": ["boolean"],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="left")],
        "vote_normalization": [StrOptions({"clusterings", "received"})],
        "seeding": [StrOptions({"sample", "class"})],
        "random_state": RANDOM_STATE,
        "verbose": ["verbose"],
    }

    def __init__(self, n_clusters=(10, 20, 30, 40, 50, 60), *, constrained=True, max_iter=20,
                 tol=1e-4, vote_normalization="clusterings", seeding="sample", random_state=None,
                 verbose=0):
        self.n_clusters = n_clusters
        self.constrained = constrained
        self.seeding = seeding
        self.vote_normalization = vote_normalization
        self.max_iter = max_iter
        self.tol = tol
        self.random_state = random_state
        self.verbose = verbose

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Cluster ``X`` once per entry of ``n_clusters`` and propagate the labels of ``y``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of labeled and unlabeled samples (e.g. ``f_fine``).
        y : array-like of shape (n_samples,)
            Class labels, ``-1`` for unlabeled samples. String labels need an ``object``
            array (with the integer ``-1``).

        Returns
        -------
        self : SeededKMeansPropagator
        """
        n_clusters_list = [int(k) for k in np.atleast_1d(self.n_clusters)]
        max_iter = int(self.max_iter)
        X = _validate_X(self, X, reset=True)
        classes, y_encoded = _validate_partial_labels(self, y, X.shape[0])
        rng = check_random_state_or_generator(self.random_state)

        n_samples, n_classes = X.shape[0], len(classes)
        labeled = y_encoded != UNLABELED
        n_unlabeled = int((~labeled).sum())
        class_sizes = np.bincount(y_encoded[labeled], minlength=n_classes)
        # the tol rule's scale, once for all clusterings (one full pass over X each)
        feature_variance = float(np.mean(np.var(X, axis=0))) if self.tol > 0 else None

        self.n_clusters_, self.cluster_centers_, self.cluster_distributions_ = [], [], []
        self.n_iter_, assignments, reduced = [], [], []
        for k in n_clusters_list:
            start = time.perf_counter()
            seeded_classes, seed_of_sample, n_seeded = self._seeds(k, class_sizes, labeled, rng)
            n_extra = min(k - n_seeded, n_unlabeled)
            if n_seeded + n_extra < k:
                reduced.append((k, n_seeded + n_extra))
            centers, assignment, n_iter = seeded_kmeans(
                X, y_encoded, seeded_classes, n_extra, constrained=bool(self.constrained),
                max_iter=max_iter, tol=float(self.tol), random_state=rng.randint(2**31 - 1),
                seed_of_sample=seed_of_sample, feature_variance=feature_variance,
            )
            distributions = _cluster_label_histograms(
                assignment, y_encoded, centers.shape[0], n_classes
            )
            self.n_clusters_.append(int(centers.shape[0]))
            self.cluster_centers_.append(centers)
            self.cluster_distributions_.append(distributions)
            self.n_iter_.append(int(n_iter))
            assignments.append(assignment)
            if self.verbose:
                reached = distributions[assignment].sum(axis=1) > 0
                print(
                    f"[SeededKMeansPropagator] K={centers.shape[0]}: {n_iter} iterations, "
                    f"{time.perf_counter() - start:.2f} s, {reached.mean():.1%} of samples reached"
                )
        if reduced:
            warnings.warn(
                "n_clusters asks for more clusters than seeded classes plus unlabeled samples; "
                + ", ".join(f"K={k} uses {used}" for k, used in reduced),
                UserWarning,
                stacklevel=2,
            )

        votes, n_reached = _sum_votes(self.cluster_distributions_, assignments, n_samples)
        proba, covered = combine_votes(votes, n_reached, len(n_clusters_list),
                                       self.vote_normalization)
        self._set_priors(classes, y_encoded, proba, covered=covered)
        self.n_reached_ = n_reached
        self.cluster_assignments_ = np.stack(assignments, axis=1)
        return self

    def _seeds(self, k, class_sizes, labeled, rng):
        """``(seeded_classes, seed_of_sample, n_seeded)`` of one clustering with ``k`` clusters.

        The ``k`` largest classes when ``k`` is below the number of classes (ties broken from
        ``rng``); with ``seeding="sample"`` and ``k`` at least the number of labeled samples,
        one seeded cluster per labeled sample (``seed_of_sample``, else None).
        """
        n_classes = class_sizes.shape[0]
        n_seeded = min(k, n_classes)
        if n_seeded < n_classes:
            # largest classes first, random tie-break
            order = np.lexsort((rng.permutation(n_classes), -class_sizes))
            seeded_classes = np.sort(order[:n_seeded])
        else:
            seeded_classes = np.arange(n_classes)
        n_labeled = int(labeled.sum())
        if self.seeding != "sample" or k < n_labeled:
            return seeded_classes, None, n_seeded
        # one cluster per labeled sample: large K splits a class into its labels'
        # neighbourhoods instead of leaving the extra clusters without labels
        seed_of_sample = np.full(labeled.shape[0], -1, dtype=np.int64)
        seed_of_sample[labeled] = np.arange(n_labeled)
        return seeded_classes, seed_of_sample, n_labeled

    def predict_proba(self, X):
        """Prior pseudo-labels of (new) samples from their nearest center in each clustering.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1; a sample whose nearest clusters hold no label gets the uniform row.
            Combined over the clusterings as in :meth:`fit` (``vote_normalization``).
        """
        check_is_fitted(self)
        X = _validate_X(self, X, reset=False)
        nearest = [nearest_centers(X, centers)[0] for centers in self.cluster_centers_]
        votes, n_reached = _sum_votes(self.cluster_distributions_, nearest, X.shape[0])
        proba, _ = combine_votes(votes, n_reached, len(self.cluster_centers_),
                                 self.vote_normalization)
        return proba
