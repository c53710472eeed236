"""LLGC label spreading (Zhou et al. 2004) on the weighted kNN graph of Iscen et al. (2019).

The graph baseline of section 4.3.3 / Table 5 of the AS3L paper, written here rather than
delegated to :class:`sklearn.semi_supervised.LabelSpreading` because the graph Iscen et al.
use differs from scikit-learn's (weighted, symmetric edges, solved to convergence) and because
the neighbour search must stay O(n k) memory on large data (faiss, see
:func:`as3l_sklearn.cluster.knn_search`).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
from scipy import sparse
from sklearn.utils.validation import check_is_fitted

from ..cluster import NEIGHBOR_INDEX, knn_search
from ..utils._param_validation import Integral, Interval, Real, StrOptions, fit_context
from ._base import UNLABELED, _BasePropagator, _normalise_rows, _validate_partial_labels, _validate_X

__all__ = ["LLGCPropagator"]


def _l2_normalise(X: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(X, axis=1, keepdims=True)
    return (X / np.maximum(norms, np.finfo(np.float32).tiny)).astype(np.float32)


def _neighbour_weights(squared_distances: np.ndarray, *, cosine: bool, gamma: float,
                       bandwidth: float) -> np.ndarray:
    """Edge weights from the squared distances of a kNN search.

    ``cosine``: the features are unit vectors, so ``cos = 1 - d^2 / 2``; the weight is
    ``max(cos, 0) ** gamma`` (Iscen et al.: negative similarities carry no evidence).
    Otherwise a Gaussian kernel ``exp(-d^2 / bandwidth)``.
    """
    squared_distances = squared_distances.astype(np.float64)
    if cosine:
        return np.maximum(1.0 - squared_distances / 2.0, 0.0) ** gamma
    return np.exp(-squared_distances / bandwidth)


def _conjugate_gradient(A, B: np.ndarray, *, max_iter: int, tol: float):
    """Solve ``A Z = B`` for every column of ``B`` at once (A symmetric positive definite).

    One sparse-times-dense product per iteration serves all classes. Stops when every
    column's residual is at most ``tol`` times its right-hand side's norm.
    Returns ``(Z, n_iter)``.
    """
    Z = np.zeros_like(B)
    residual = B.copy()
    direction = residual.copy()
    residual_sq = np.einsum("ij,ij->j", residual, residual)
    target = (tol * np.linalg.norm(B, axis=0)) ** 2
    n_iter = 0
    for n_iter in range(1, max_iter + 1):
        if np.all(residual_sq <= target):
            n_iter -= 1
            break
        A_direction = A @ direction
        curvature = np.einsum("ij,ij->j", direction, A_direction)
        step = np.divide(residual_sq, curvature, out=np.zeros_like(residual_sq),
                         where=curvature > 0)
        Z += direction * step
        residual -= A_direction * step
        new_residual_sq = np.einsum("ij,ij->j", residual, residual)
        ratio = np.divide(new_residual_sq, residual_sq, out=np.zeros_like(residual_sq),
                          where=residual_sq > 0)
        direction = residual + direction * ratio
        residual_sq = new_residual_sq
    return Z, n_iter


#: ``alpha="auto"``: ``1 - alpha = AUTO_ALPHA_SCALE / n_samples``, clipped to
#: ``[AUTO_ALPHA_MIN, AUTO_ALPHA_MAX]`` (see the class docstring: chosen on Fashion-MNIST
#: training images 50,000-59,999 subsampled to 900, 2,500, 5,000 and 10,000 images)
AUTO_ALPHA_SCALE = 100.0
AUTO_ALPHA_MIN = 0.9
AUTO_ALPHA_MAX = 0.99


def auto_alpha(n_samples: int) -> float:
    """The spreading factor ``alpha="auto"`` uses for a graph of ``n_samples`` samples.

    ``1 - alpha = 100 / n_samples`` between 0.9 and 0.99: the mean length of the random
    walks of the spreading, ``alpha / (1 - alpha)``, grows with the graph (about
    ``n_samples / 100`` steps), so that a small graph is not mixed completely (which makes
    every prior nearly uniform) and a large one keeps Iscen et al.'s 0.99.

    Examples
    --------
    >>> auto_alpha(900), auto_alpha(5_000), auto_alpha(50_000)
    (0.9, 0.98, 0.99)
    """
    alpha = 1.0 - AUTO_ALPHA_SCALE / max(int(n_samples), 1)
    return float(min(max(alpha, AUTO_ALPHA_MIN), AUTO_ALPHA_MAX))


#: labeled samples at most used for the leave-one-out calibration (one extra CG column each)
CALIBRATION_MAX_SAMPLES = 100
#: fewer leave-one-out predictions than this leave the temperature at 1
CALIBRATION_MIN_SAMPLES = 10
#: temperatures searched by the calibration (log grid; 1 = the raw spread scores)
CALIBRATION_TEMPERATURES = np.geomspace(0.1, 3.0, 61)


def spreading_system(features: np.ndarray, n_neighbors: int, *, alpha: float, gamma: float,
                     cosine: bool, neighbor_index="auto"):
    """The matrix ``I - alpha S`` of the spreading, and the Gaussian bandwidth.

    ``features`` are the (already L2-normalised when ``cosine``) samples; ``S`` is the
    symmetric, normalised kNN affinity of Iscen et al. (see :class:`LLGCPropagator`).
    Returns ``(system, bandwidth)``: ``system`` a CSR matrix, ``bandwidth`` the ``s`` of the
    Gaussian weights (``None`` when ``cosine``).
    """
    n_samples = features.shape[0]
    squared, neighbours = knn_search(features, features, n_neighbors + 1, index=neighbor_index)
    # drop each sample's own entry (the first one unless exact duplicates tie with it)
    own = neighbours == np.arange(n_samples)[:, None]
    keep = ~own
    keep[~own.any(axis=1), -1] = False  # no self hit: drop the farthest
    squared = squared[keep].reshape(n_samples, n_neighbors)
    neighbours = neighbours[keep].reshape(n_samples, n_neighbors)
    bandwidth = None
    if not cosine:
        positive = squared[squared > 0]
        bandwidth = float(np.median(positive)) if positive.size else 1.0
    weights = _neighbour_weights(squared, cosine=cosine, gamma=gamma, bandwidth=bandwidth or 1.0)
    rows = np.repeat(np.arange(n_samples), n_neighbors)
    affinity = sparse.csr_matrix((weights.ravel(), (rows, neighbours.ravel())),
                                 shape=(n_samples, n_samples))
    affinity = affinity + affinity.T
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    inv_sqrt = 1.0 / np.sqrt(np.where(degree > 0, degree, 1.0))
    normalised = sparse.diags(inv_sqrt) @ affinity @ sparse.diags(inv_sqrt)
    system = (sparse.identity(n_samples, format="csr") - alpha * normalised).tocsr()
    return system, bandwidth


def _sharpen(scores: np.ndarray, temperature: float) -> np.ndarray:
    """``scores ** (1 / temperature)``: below 1 sharpens, above 1 flattens; zeros stay zero."""
    return scores if temperature == 1.0 else np.power(scores, 1.0 / temperature)


def _held_out_log_loss(loo_scores: np.ndarray, loo_classes: np.ndarray,
                       temperature: float) -> float:
    """Mean negative log-likelihood of the held-out labels under ``loo_scores ** (1 / t)``."""
    proba, _ = _normalise_rows(_sharpen(loo_scores, temperature))
    return float(-np.mean(np.log(np.maximum(proba[np.arange(len(loo_classes)), loo_classes],
                                            1e-12))))


def _fit_temperature(loo_scores: np.ndarray, loo_classes: np.ndarray) -> float:
    """Temperature minimising the negative log-likelihood of the held-out labels."""
    best, best_nll = 1.0, np.inf
    for temperature in CALIBRATION_TEMPERATURES:
        nll = _held_out_log_loss(loo_scores, loo_classes, temperature)
        if nll < best_nll - 1e-12:
            best, best_nll = float(temperature), nll
    return best


class LLGCPropagator(_BasePropagator):
    """LLGC label spreading on a weighted, symmetric kNN graph (Zhou et al.; Iscen et al.).

    The graph propagator of the AS3L comparison (paper, section 4.3.3 and Table 5, with the
    LLGC settings of Iscen et al., 2019):

    1. **Graph.** Each sample is joined to its ``n_neighbors`` nearest neighbours (search
       through :func:`as3l_sklearn.cluster.knn_search`: faiss when installed, O(n k)
       memory; exact up to 100,000 samples, approximate above, see ``neighbor_index``) with
       weight ``max(cos(x_i, x_j), 0) ** gamma`` on L2-normalised features
       (``normalize=True``); the affinity is made symmetric, ``W = A + A^T``, and normalised,
       ``S = D^{-1/2} W D^{-1/2}``.
    2. **Spreading.** For every class ``c``, ``(I - alpha S) z_c = y_c`` (``alpha``: 0.9 to
       0.99 with the graph's size, see ``alpha``) is solved by conjugate
       gradient, with ``y_c`` the indicator of the labeled samples of class ``c`` divided by
       their number (so that a class with more labels does not dominate).
    3. **Prior.** Negative entries (numerical noise) are set to 0 and each row of ``Z`` is
       normalised into the prior pseudo-label of that sample; labeled samples keep their own
       label.
    4. **Calibration** (``calibrate=True``, beyond the paper). Row-normalised spreading scores
       are not probabilities: with several labels per class they are far too flat (mean
       confidence 0.47 for 70 % accuracy at 40 Fashion-MNIST labels). When at least
       ``10`` labeled samples belong to classes with two or more labels, each of them (at
       most 100) is held out in turn -- exactly, from one extra conjugate-gradient column
       per held-out sample, since the solution is linear in the labels -- and the
       temperature ``t`` of ``p ~ z ** (1 / t)`` that maximises the likelihood of the held-out
       labels is applied to every prior. With one label per class nothing can be held out
       and ``t = 1``.

    Unlabeled samples are marked ``-1`` in ``y``, as in :mod:`sklearn.semi_supervised`.

    Parameters
    ----------
    n_neighbors : int, default=20
        Neighbours per sample in the graph (Iscen et al. use 50). Capped at the number of
        fitted samples minus one.
    alpha : float or "auto", default="auto"
        Spreading factor in (0, 1): the weight of the graph against the given labels, or
        ``"auto"``: ``1 - alpha = 100 / n_samples`` between 0.9 and 0.99 (``auto_alpha`` in
        this module; 0.99, Iscen et al.'s value, from 10,000 samples up). Why: the random
        walks of the spreading have a mean length of ``alpha / (1 - alpha)`` steps (99 at
        0.99), which mixes a small graph completely, so that the label mass that reaches a
        sample is mostly the same everywhere and the priors become flat. On the tuning splits
        of ``benchmarks/bench_prior_checks.py`` (PCA-50 pixels, 10 labels,
        ``CombinedPropagator``) the ECE at 0.99 was 0.049 on 10,000 Fashion-MNIST images but
        0.137-0.147 on 900-2,500 and 0.329 on 899 digits images; the lowest ECE was at 0.98
        on 5,000 images, 0.97 on 2,500 and 0.8-0.98 below 1,000, with an accuracy as good as
        at 0.99 or better (digits: 0.329 -> 0.142 ECE and 76.0 -> 77.3 % at 0.9). ``alpha``
        is not a temperature: the arg-max of the priors can change (``docs/propagation.md``,
        "Calibration with one label per class"). Earlier releases used 0.99 at every size.
    gamma : float, default=3.0
        Power applied to the cosine similarities, > 0 (Iscen et al. use 3): larger values
        trust only the closest neighbours.
    max_iter : int, default=20
        Conjugate-gradient iterations (Iscen et al. use 20).
    tol : float, default=1e-6
        > 0. Conjugate gradient stops early once every class's residual norm is at most ``tol``
        times the norm of its right-hand side.
    calibrate : bool, default=True
        Fit the temperature of the priors by leave-one-out on the labeled samples (step 4).
        ``False`` keeps the raw row-normalised scores (Iscen et al.).
    normalize : bool, default=True
        ``True``: cosine similarities on L2-normalised features (Iscen et al.). ``False``:
        Euclidean neighbours with Gaussian weights ``exp(-d^2 / s)``, ``s`` the median squared
        distance to the neighbours (for low-dimensional, non-centred data).
    neighbor_index : {"auto", "flat", "hnsw", "ivf"}, default="auto"
        Index of the neighbour search (:func:`as3l_sklearn.cluster.knn_search`): ``"auto"``
        is exact up to 100,000 samples (faiss flat index; flat on the GPU with faiss-gpu) and
        approximate above (faiss IVF with float16 lists and exact distances of the neighbours
        found, recall@k measured in docs/results.md "Scale"), so
        the graph costs near-linear time at large ``n`` instead of O(n^2 d). ``"flat"``
        forces the exact search at any size; ``"ivf"`` and ``"hnsw"`` force an approximate
        one (they need faiss).
    verbose : int, default=0
        ``> 0`` prints one line with the iterations and time.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The distinct labels of the labeled samples.
    label_distributions_ : ndarray of shape (n_samples, n_classes)
        Prior pseudo-labels of the fitted samples; rows sum to 1. Labeled samples get the
        one-hot row of their own label; samples in a graph component without any label get
        the uniform row.
    transduction_ : ndarray of shape (n_samples,)
        Label of each fitted sample: its own label if labeled, the arg-max of its prior
        otherwise.
    covered_ : ndarray of shape (n_samples,), bool
        ``False`` for samples that no label reached (uniform prior).
    n_neighbors_ : int
        Neighbours actually used.
    n_iter_ : int
        Conjugate-gradient iterations run.
    alpha_ : float
        Spreading factor used (``alpha``, or the value ``"auto"`` chose).
    temperature_ : float
        Temperature applied to the scores (1 when not calibrated).
    n_calibration_samples_ : int
        Held-out labeled samples the temperature was fitted on (0 when not calibrated).
    calibration_log_loss_ : float or None
        Mean negative log-likelihood of the held-out labels under their leave-one-out
        priors at ``temperature_`` (``None`` when not calibrated): how well this graph
        predicts labels it was not given, which :func:`as3l_sklearn.diagnostics.score_feature_space`
        compares between feature spaces.
    calibration_accuracy_ : float or None
        Share of those held-out labels whose leave-one-out prior puts them first (``None``
        when not calibrated): a label-based check of the graph that needs no test set.
    bandwidth_ : float or None
        ``s`` of the Gaussian weights (``normalize=False`` only).
    fit_features_ : ndarray of shape (n_samples, n_features), float32
        The (normalised) fitted features, searched by :meth:`predict_proba`.
    n_features_in_ : int
        Number of features seen during ``fit``.
    feature_names_in_ : ndarray of shape (n_features,)
        Names of features seen during ``fit`` (only when ``X`` has string column names).

    See Also
    --------
    SeededKMeansPropagator : the AS3L propagation (cluster votes).
    CombinedPropagator : the average of the cluster votes and this graph prior.
    sklearn.semi_supervised.LabelSpreading : the same spreading on an unweighted kNN graph.

    Notes
    -----
    Differences from :class:`sklearn.semi_supervised.LabelSpreading` with ``kernel="knn"``:
    weighted edges (scikit-learn's are 0/1), a symmetric graph, labels normalised per class,
    and a solve to convergence where scikit-learn stops after ``max_iter=30`` propagation
    steps by default. Costs: one kNN search (O(n^2 d) exact, about O(n^1.5 d) with the IVF
    index ``neighbor_index="auto"`` uses above 100,000 samples; O(n k) memory) and
    ``max_iter`` sparse products with ``2 n k`` non-zeros.

    Simplification against Iscen et al.: they use the graph inside a training loop with
    per-sample and per-class weights; here it only produces the priors.

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
    >>> prop.predict([[8.0, 8.0]])
    array([1])
    """

    _parameter_constraints: dict = {
        "n_neighbors": [Interval(Integral, 1, None, closed="left")],
        "alpha": [Interval(Real, 0, 1, closed="neither"), StrOptions({"auto"})],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "tol": [Interval(Real, 0, None, closed="neither")],
        "calibrate": ["boolean"],
        "normalize": ["boolean"],
        "neighbor_index": [NEIGHBOR_INDEX],
        "verbose": ["verbose"],
    }

    def __init__(self, n_neighbors=20, *, alpha="auto", gamma=3.0, max_iter=20, tol=1e-6,
                 calibrate=True, normalize=True, neighbor_index="auto", verbose=0):
        self.n_neighbors = n_neighbors
        self.alpha = alpha
        self.gamma = gamma
        self.max_iter = max_iter
        self.tol = tol
        self.calibrate = calibrate
        self.normalize = normalize
        self.neighbor_index = neighbor_index
        self.verbose = verbose

    def _features(self, X):
        return _l2_normalise(X) if self.normalize else X

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y):
        """Spread the labels of ``y`` over the weighted kNN graph of ``X``.

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
        X = _validate_X(self, X, reset=True)
        classes, y_encoded = _validate_partial_labels(self, y, X.shape[0])
        start = time.perf_counter()
        n_samples, n_classes = X.shape[0], len(classes)
        features = self._features(X)
        self.n_neighbors_ = min(int(self.n_neighbors), n_samples - 1)

        self.alpha_ = (auto_alpha(n_samples) if isinstance(self.alpha, str)
                       else float(self.alpha))
        self.bandwidth_ = None
        self.n_iter_ = 0
        self.temperature_ = 1.0
        self.n_calibration_samples_ = 0
        self.calibration_log_loss_ = None
        self.calibration_accuracy_ = None
        if self.n_neighbors_ >= 1:
            system, self.bandwidth_ = spreading_system(
                features, self.n_neighbors_, alpha=self.alpha_, gamma=float(self.gamma),
                cosine=bool(self.normalize), neighbor_index=self.neighbor_index)
            scores = self._spread(system, y_encoded, n_classes, int(self.max_iter))
        else:
            scores = np.zeros((n_samples, n_classes))
            warnings.warn("LLGCPropagator was fitted on one sample: there is no graph",
                          UserWarning, stacklevel=3)

        self._set_priors(classes, y_encoded, scores)
        self.fit_features_ = features
        if self.verbose:
            print(
                f"[LLGCPropagator] {self.n_iter_} CG iterations, "
                f"{time.perf_counter() - start:.2f} s, {self.covered_.mean():.1%} of samples reached",
                flush=True,
            )
        return self

    def _spread(self, system, y_encoded, n_classes, max_iter):
        """Spreading scores of every class (step 2), tempered by the leave-one-out fit."""
        n_samples = system.shape[0]
        labeled_index = np.flatnonzero(y_encoded != UNLABELED)
        labeled_classes = y_encoded[labeled_index]
        class_sizes = np.bincount(labeled_classes, minlength=n_classes)
        targets = np.zeros((n_samples, n_classes))
        targets[labeled_index, labeled_classes] = 1.0 / class_sizes[labeled_classes]
        held_out = self._calibration_samples(labeled_index, class_sizes[labeled_classes])
        # one unit column per held-out sample: A^-1 e_j, its share of its class's solution
        unit = np.zeros((n_samples, held_out.size))
        unit[held_out, np.arange(held_out.size)] = 1.0
        solution, self.n_iter_ = _conjugate_gradient(
            system, np.hstack([targets, unit]), max_iter=max_iter, tol=float(self.tol))
        scores = np.maximum(solution[:, :n_classes], 0.0)
        if held_out.size:
            self.temperature_ = self._loo_temperature(
                solution, held_out, y_encoded[held_out], class_sizes, n_classes)
            scores = _sharpen(scores, self.temperature_)
        return scores

    def _calibration_samples(self, labeled_index, own_class_sizes):
        """Labeled samples to hold out: those of classes with >= 2 labels (at most 100,
        a fixed, evenly spread subset), or none when too few or ``calibrate=False``."""
        if not self.calibrate:
            return np.empty(0, dtype=np.int64)
        candidates = labeled_index[own_class_sizes >= 2]
        if candidates.size < CALIBRATION_MIN_SAMPLES:
            return np.empty(0, dtype=np.int64)
        if candidates.size > CALIBRATION_MAX_SAMPLES:
            picks = np.linspace(0, candidates.size - 1, CALIBRATION_MAX_SAMPLES).round()
            candidates = candidates[picks.astype(np.int64)]
        return candidates

    def _loo_temperature(self, solution, held_out, held_out_classes, class_sizes, n_classes):
        """Temperature fitted on the held-out labeled samples' leave-one-out scores.

        Z is linear in the labels: without sample ``j`` (class ``c``, ``n_c`` labels) column
        ``c`` becomes ``(n_c z_c - A^-1 e_j) / (n_c - 1)``; the other columns are unchanged.
        """
        rows = np.arange(held_out.size)
        loo_scores = solution[held_out, :n_classes].copy()
        sizes = class_sizes[held_out_classes].astype(np.float64)
        own_column = solution[held_out, held_out_classes]
        own_share = solution[held_out, n_classes + rows]
        loo_scores[rows, held_out_classes] = (sizes * own_column - own_share) / (sizes - 1)
        np.maximum(loo_scores, 0.0, out=loo_scores)
        self.n_calibration_samples_ = int(held_out.size)
        temperature = _fit_temperature(loo_scores, held_out_classes)
        self.calibration_log_loss_ = _held_out_log_loss(loo_scores, held_out_classes, temperature)
        self.calibration_accuracy_ = float(np.mean(loo_scores.argmax(axis=1) == held_out_classes))
        return temperature

    def predict_proba(self, X):
        """Priors of (new) samples: their neighbours' fitted priors, weighted like the graph.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1 (uniform where the neighbours carry no label or no weight).
        """
        check_is_fitted(self)
        X = _validate_X(self, X, reset=False)
        k = max(1, min(self.n_neighbors_, self.fit_features_.shape[0]))
        squared, neighbours = knn_search(self.fit_features_, self._features(X), k,
                                         index=self.neighbor_index)
        weights = _neighbour_weights(squared, cosine=bool(self.normalize),
                                     gamma=float(self.gamma), bandwidth=self.bandwidth_ or 1.0)
        scores = np.einsum("ik,ikc->ic", weights, self.label_distributions_[neighbours])
        proba, _ = _normalise_rows(scores)
        return proba
