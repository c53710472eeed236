"""LLGC label spreading (Zhou et al. 2004) with the settings of Iscen et al. 2019.

The baseline of section 4.3.3 / Table 5 of the AS3L paper. All graph work is delegated to
:class:`sklearn.semi_supervised.LabelSpreading`; this module only fixes the settings, handles
``-1`` and string labels, and exposes the same attributes as
:class:`~as3l_sklearn.propagation.SeededKMeansPropagator`.
"""

from __future__ import annotations

import numbers
import time
import warnings

import numpy as np
from sklearn.preprocessing import normalize as l2_normalize
from sklearn.semi_supervised import LabelSpreading
from sklearn.utils.validation import check_is_fitted

from ..utils import check_positive_int
from ._base import _BasePropagator, _normalise_rows, _validate_partial_labels, _validate_X

__all__ = ["LLGCPropagator"]


class LLGCPropagator(_BasePropagator):
    """LLGC label spreading on a kNN graph, the label-propagation baseline of AS3L.

    A thin estimator over :class:`sklearn.semi_supervised.LabelSpreading` with
    ``kernel="knn"`` and ``alpha=0.99``, following the LLGC settings of Iscen et al. (2019)
    that the AS3L paper uses for its comparison (Table 5): a k-nearest-neighbour graph
    (``k = 50``) on L2-normalised features and ``alpha = 0.99``. It has the attributes of
    :class:`~as3l_sklearn.propagation.SeededKMeansPropagator`, so the two compare under one
    API.

    Parameters
    ----------
    n_neighbors : int, default=50
        Neighbours per sample in the kNN graph (Iscen et al. use 50). Capped at the number of
        fitted samples.
    alpha : float, default=0.99
        Clamping factor of label spreading, in (0, 1).
    max_iter : int, default=1000
        Maximum spreading iterations. With ``alpha = 0.99`` each iteration shrinks the change
        by a factor of about 0.99, so several hundred iterations are needed to converge.
    tol : float, default=1e-3
        Convergence tolerance of :class:`~sklearn.semi_supervised.LabelSpreading`.
    normalize : bool, default=True
        L2-normalise the features first, so that Euclidean neighbours are cosine neighbours
        (Iscen et al. build the graph on normalised features).
    n_jobs : int, default=None
        Parallel jobs of the neighbour search.
    verbose : int, default=0
        ``> 0`` prints one line with the iterations and time.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The distinct labels of the labeled samples.
    label_distributions_ : ndarray of shape (n_samples, n_classes)
        Prior pseudo-labels of the fitted samples; rows sum to 1. Labeled samples get the
        one-hot row of their own label (label spreading clamps them only softly); samples in
        a graph component without any label get the uniform row.
    transduction_ : ndarray of shape (n_samples,)
        Label of each fitted sample: its own label if labeled, the arg-max of its prior
        otherwise.
    covered_ : ndarray of shape (n_samples,), bool
        ``False`` for samples that no label reached (uniform prior).
    label_spreading_ : sklearn.semi_supervised.LabelSpreading
        The fitted inner estimator (on class indices ``0 .. n_classes - 1``).
    n_neighbors_ : int
        Neighbours actually used.
    n_iter_ : int
        Spreading iterations run.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    SeededKMeansPropagator : the AS3L propagation.

    Notes
    -----
    Simplifications against Iscen et al. (2019): scikit-learn's kNN graph has 0/1 edge
    weights, where they weight edges by the cosine similarity raised to the power 3; and the
    spreading is iterated rather than solved by conjugate gradient. No graph code is written
    here: both would need a custom graph.

    References
    ----------
    D. Zhou, O. Bousquet, T. N. Lal, J. Weston, B. Schoelkopf. Learning with local and global
    consistency. NeurIPS 2004.
    A. Iscen, G. Tolias, Y. Avrithis, O. Chum. Label propagation for deep semi-supervised
    learning. CVPR 2019.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn.propagation import LLGCPropagator
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal(0, 1, (50, 2)), rng.normal(8, 1, (50, 2))]
    >>> y = np.full(100, -1)
    >>> y[0], y[50] = 0, 1
    >>> prop = LLGCPropagator(n_neighbors=10, normalize=False).fit(X, y)
    >>> (prop.transduction_ == np.repeat([0, 1], 50)).mean()
    np.float64(1.0)
    """

    def __init__(self, n_neighbors=50, *, alpha=0.99, max_iter=1000, tol=1e-3, normalize=True,
                 n_jobs=None, verbose=0):
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.normalize = normalize
        self.n_jobs = n_jobs
        self.verbose = verbose

    def _features(self, X):
        return l2_normalize(X) if self.normalize else X

    def fit(self, X, y):
        """Spread the labels of ``y`` over the kNN graph of ``X``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of labeled and unlabeled samples.
        y : array-like of shape (n_samples,)
            Class labels, ``-1`` for unlabeled samples (string labels in an ``object``
            array).

        Returns
        -------
        self : LLGCPropagator
        """
        n_neighbors = check_positive_int(self.n_neighbors, "n_neighbors")
        max_iter = check_positive_int(self.max_iter, "max_iter")
        if not isinstance(self.alpha, numbers.Real) or not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be a float in (0, 1), got {self.alpha!r}")
        X = _validate_X(self, X, reset=True)
        classes, y_encoded = _validate_partial_labels(self, y, X.shape[0])
        self.n_neighbors_ = min(n_neighbors, X.shape[0])

        start = time.perf_counter()
        self.label_spreading_ = LabelSpreading(
            kernel="knn", n_neighbors=self.n_neighbors_, alpha=float(self.alpha),
            max_iter=max_iter, tol=self.tol, n_jobs=self.n_jobs,
        )
        with warnings.catch_warnings():
            # a graph component with no label divides 0 by 0; those rows are handled below
            warnings.simplefilter("ignore", RuntimeWarning)
            self.label_spreading_.fit(self._features(X), y_encoded)
        self.n_iter_ = int(self.label_spreading_.n_iter_)

        # LabelSpreading's classes are the encoded ones present in y: 0 .. n_classes - 1
        scores = np.nan_to_num(self.label_spreading_.label_distributions_, nan=0.0)
        self._set_priors(classes, y_encoded, scores)
        if self.verbose:
            print(
                f"[LLGCPropagator] {self.n_iter_} iterations, {time.perf_counter() - start:.2f} s, "
                f"{self.covered_.mean():.1%} of samples reached"
            )
        return self

    def predict_proba(self, X):
        """Sum of the fitted label distributions of each sample's neighbours, normalised.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1 (uniform where the neighbours carry no label).
        """
        check_is_fitted(self)
        X = _validate_X(self, X, reset=False)
        neighbours = self.label_spreading_.nn_fit.kneighbors(
            self._features(X), n_neighbors=self.n_neighbors_, return_distance=False
        )
        scores = self.label_distributions_[neighbours].sum(axis=1)
        proba, _ = _normalise_rows(scores)
        return proba
