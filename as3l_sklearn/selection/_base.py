"""Shared base class and helpers for the single-shot selectors.

Every selector follows one API:

* ``fit(X, y=None)`` validates the features and stores what selection needs (the budget is
  not known yet, and the clusterings of AS3L depend on it, so the work happens in ``select``);
* ``select(n_budget, labeled=None)`` returns ``n_budget`` distinct integer indices into the
  fitted samples, best first; ``labeled`` lists samples already labeled (an earlier round, or
  labels a person brought), which are never returned and count as already covered;
* ``fit_select(X, n_budget, y=None)`` does both.

Selectors are plain scikit-learn estimators (no ``transform``/``predict``), so they can be the
last step of a :class:`~sklearn.pipeline.Pipeline`: ``pipe.fit(X); pipe[-1].select(10)``.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted, validate_data

from ..cluster import KMeansResult, kmeans
from ..utils import check_budget, check_features, check_n_clusters, check_random_state_or_generator
from ..utils._param_validation import RANDOM_STATE, Integral, Interval, fit_context

#: a count of one or more
COUNT = Interval(Integral, 1, None, closed="left")


class BaseSelector(BaseEstimator):
    """Base class of the selectors: ``fit`` stores validated features, ``select`` picks.

    Subclasses implement ``_select(n_budget, labeled)`` returning indices (best first) outside
    ``labeled`` and declare their parameters in ``_parameter_constraints``; the base class
    checks them in ``fit`` and again in ``select`` (where they are used, after any
    ``set_params``), validates the budget and the labeled indices, checks that the result
    holds ``n_budget`` distinct valid unlabeled indices and records it as
    ``selected_indices_``.
    """

    _parameter_constraints: dict = {"random_state": RANDOM_STATE, "verbose": ["verbose"]}

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y=None):
        """Validate and store the features of the candidate pool.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the unlabeled pool (normally ``f_fine``). NaN or infinity raise a
            ``ValueError``.
        y : None
            Ignored; present for API consistency (``RandomSelector(stratified=True)`` uses it).

        Returns
        -------
        self : object
            The fitted selector.
        """
        # sets n_features_in_ (and feature_names_in_ for data frames); check_features validates
        validate_data(self, X, skip_check_array=True, reset=True)
        self.features_ = check_features(X, name="X", estimator=self)
        self.n_features_in_ = self.features_.shape[1]
        self._fit_labels(y)
        return self

    def _fit_labels(self, y):
        """Hook for selectors that use labels at fit time (stratified random)."""

    def select(self, n_budget: int, labeled=None) -> np.ndarray:
        """Indices of the next ``n_budget`` samples to annotate, best first.

        Parameters
        ----------
        n_budget : int
            Number of samples to select, ``1 <= n_budget <= n_samples - len(labeled)``
            (samples seen in ``fit``).
        labeled : array-like of int or None, default=None
            Indices (into the fitted samples) of samples already labeled. They are never
            returned, and each selector treats them as already chosen (its class docstring
            says how), so the new picks go where the labels are not.

        Returns
        -------
        indices : ndarray of shape (n_budget,), int64
            Distinct indices into the samples passed to ``fit``, none of them in ``labeled``.

        Raises
        ------
        InvalidParameterError
            (A ``ValueError`` and a ``TypeError``.) ``n_budget`` is not an int ``>= 1``, or a
            parameter of the selector is invalid (set with ``set_params`` after ``fit``).
        ValueError
            ``n_budget`` exceeds the number of unlabeled samples seen in ``fit``, or
            ``labeled`` holds invalid indices.
        """
        check_is_fitted(self, "features_")
        self._validate_params()
        n_samples = self.features_.shape[0]
        labeled = check_labeled(labeled, n_samples)
        n_budget = check_budget(n_budget, n_samples, caller_name=f"{type(self).__name__}.select")
        if n_budget > n_samples - labeled.size:
            raise ValueError(f"n_budget={n_budget} exceeds the {n_samples - labeled.size} "
                             f"unlabeled samples ({n_samples} fitted, {labeled.size} labeled)")
        indices = np.asarray(self._select(n_budget, labeled), dtype=np.int64)
        # a selector bug must never reach a person as a silent short or duplicated list
        if indices.shape != (n_budget,) or np.unique(indices).size != n_budget:
            raise RuntimeError(
                f"{type(self).__name__} produced {indices.size} indices "
                f"({np.unique(indices).size} distinct) for n_budget={n_budget}; "
                "please report this bug"
            )
        if indices.min() < 0 or indices.max() >= n_samples:
            raise RuntimeError(f"{type(self).__name__} produced an index outside [0, {n_samples})")
        if np.isin(indices, labeled).any():
            raise RuntimeError(f"{type(self).__name__} returned a labeled index; please report "
                               "this bug")
        self.n_budget_ = n_budget
        self.selected_indices_ = indices
        return indices.copy()

    def fit_select(self, X, n_budget: int, y=None, labeled=None) -> np.ndarray:
        """Fit on ``X`` and return ``select(n_budget, labeled=labeled)``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of the unlabeled pool.
        n_budget : int
            Number of samples to select.
        y : None
            Ignored except by ``RandomSelector(stratified=True)``.
        labeled : array-like of int or None, default=None
            Indices of samples already labeled (see :meth:`select`).

        Returns
        -------
        indices : ndarray of shape (n_budget,), int64
        """
        return self.fit(X, y).select(n_budget, labeled=labeled)

    def _select(self, n_budget: int, labeled: np.ndarray) -> np.ndarray:  # pragma: no cover
        """``n_budget`` distinct indices outside ``labeled`` (sorted, unique int64), best first."""
        raise NotImplementedError

    def _log(self, message: str) -> None:
        if self.verbose:
            print(f"[{type(self).__name__}] {message}", flush=True)

    def _kmeans_once(self, n_clusters: int) -> KMeansResult:
        """One k-means run on the fitted features with ``max_iter`` and one seed drawn from
        ``random_state`` (the single-run selectors all cluster this way)."""
        return kmeans(self.features_, n_clusters, max_iter=self.max_iter,
                      random_state=int(draw_seeds(self.random_state, 1)[0]))


def check_labeled(labeled, n_samples: int) -> np.ndarray:
    """``labeled`` as sorted unique int64 indices in ``[0, n_samples)`` (empty for None).

    Duplicates are merged; a float that is not a whole number, a boolean, a 2-D array or an
    index out of range raises a ``ValueError``/``TypeError`` naming ``labeled``.
    """
    if labeled is None:
        return np.zeros(0, dtype=np.int64)
    values = np.asarray(labeled)
    if values.ndim != 1:
        raise ValueError(f"labeled must be a 1-D list of sample indices, got shape {values.shape}")
    if values.size == 0:
        return np.zeros(0, dtype=np.int64)
    if values.dtype.kind == "b" or values.dtype.kind not in "iuf":
        raise TypeError(f"labeled must hold integer sample indices, got dtype {values.dtype}")
    if values.dtype.kind == "f" and not (np.isfinite(values).all()
                                         and np.array_equal(values, np.round(values))):
        raise ValueError("labeled must hold whole-number sample indices")
    values = values.astype(np.int64)
    if values.min() < 0 or values.max() >= n_samples:
        raise ValueError(f"labeled holds an index outside [0, {n_samples}) (the fitted samples)")
    return np.unique(values)


def l2_normalize(F: np.ndarray) -> np.ndarray:
    """``F`` with unit-norm rows (all-zero rows stay zero), float32."""
    norms = np.linalg.norm(F, axis=1, keepdims=True)
    return (F / np.where(norms > 0, norms, 1.0)).astype(np.float32)


def kcenter_continue(X: np.ndarray, n_new: int, labeled, picked=()) -> list:
    """``picked`` completed to ``n_new`` indices by k-center greedy, counting ``labeled`` and
    ``picked`` as centers; never returns a labeled index. Without labels or picks the first
    center is sample 0 (the fallback of the cluster-based selectors)."""
    start = [int(i) for i in labeled] + [int(i) for i in picked]
    return kcenter_greedy(X, len(labeled) + n_new, start)[len(labeled):]


def resolve_n_clusters(n_clusters, n_budget: int, n_samples: int, name: str = "n_clusters") -> int:
    """``n_budget`` when ``n_clusters`` is None, else ``n_clusters`` (an int ``>= 1`` by the
    selector's constraints) checked to be at most ``n_samples`` (the error names ``name``)."""
    if n_clusters is None:
        return n_budget
    return check_n_clusters(n_clusters, n_samples, name=name)[0]


def draw_seeds(random_state, n: int) -> np.ndarray:
    """``n`` integer seeds drawn from ``random_state`` (same state, same seeds)."""
    rng = check_random_state_or_generator(random_state)
    return rng.randint(np.iinfo(np.int32).max, size=n)


def closest_to(X: np.ndarray, members: np.ndarray, point: np.ndarray) -> int:
    """Index (into ``X``) of the member of ``members`` closest to ``point`` (ties: lowest)."""
    diff = X[members] - point[None, :]
    return int(members[np.argmin(np.einsum("ij,ij->i", diff, diff))])


def squared_distances_to(X: np.ndarray, point: np.ndarray) -> np.ndarray:
    """Squared Euclidean distance of every row of ``X`` to ``point`` (float64 for stable sums)."""
    diff = X - point[None, :]
    return np.einsum("ij,ij->i", diff, diff, dtype=np.float64)


def kcenter_greedy(X: np.ndarray, n_budget: int, selected=(), first: int | None = None) -> list:
    """Complete ``selected`` to ``n_budget`` distinct indices by k-center greedy (farthest first).

    Each new pick is the sample farthest from every sample picked so far (Sener & Savarese,
    2018); already-picked samples are never taken again, so duplicates in ``X`` are harmless.
    When ``selected`` is empty, ``first`` starts the sequence.

    Used by :class:`CoresetSelector`, and as the documented fallback of the cluster-based
    selectors when they run out of clusters or groups (empty k-means clusters, everything
    covered) before the budget is spent.
    """
    n_samples = X.shape[0]
    picked = [int(i) for i in selected]
    if len(picked) >= n_budget:
        return picked[:n_budget]
    taken = np.zeros(n_samples, dtype=bool)
    min_distance = np.full(n_samples, np.inf)
    if not picked:
        picked = [int(first if first is not None else 0)]
    for index in picked:
        taken[index] = True
        np.minimum(min_distance, squared_distances_to(X, X[index]), out=min_distance)
    while len(picked) < n_budget:
        # -1 keeps taken samples out even when all remaining distances are 0 (duplicates)
        candidate = np.where(taken, -1.0, min_distance)
        index = int(np.argmax(candidate))
        picked.append(index)
        taken[index] = True
        np.minimum(min_distance, squared_distances_to(X, X[index]), out=min_distance)
    return picked
