"""Metrics for few-label learning: class coverage, prior accuracy, ECE, and -1-aware scorers.

Labels follow :mod:`sklearn.semi_supervised`: ``-1`` marks an unlabeled sample. Every function
here ignores samples whose true label is ``-1``, so they can be given the same partial label
vector the estimators are fitted on.

Examples
--------
>>> import numpy as np
>>> from as3l_sklearn.metrics import class_coverage, expected_calibration_error
>>> class_coverage([0, 0, 1, 2], [0, 1])
1
>>> round(expected_calibration_error([0, 1], [[0.9, 0.1], [0.8, 0.2]], n_bins=10), 4)
0.45
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import get_scorer, make_scorer
from sklearn.utils import _safe_indexing

from .utils._param_validation import Integral, Interval, validate_params
from .utils._validation import unlabeled_mask

__all__ = [
    "LabeledScorer",
    "class_coverage",
    "expected_calibration_error",
    "labeled_mask",
    "make_labeled_scorer",
    "prior_accuracy",
]

UNLABELED = -1


@validate_params({"y": ["array-like"], "name": [str]}, prefer_skip_nested_validation=True)
def labeled_mask(y, *, name: str = "y") -> np.ndarray:
    """Boolean mask of the labeled samples (``y != -1``).

    Works for integer and float labels and for string / ``object`` arrays of strings mixed
    with the integer ``-1`` (as :class:`sklearn.semi_supervised.SelfTrainingClassifier` takes
    them); the string ``"-1"`` (spaces ignored) also marks an unlabeled sample, as in
    :func:`as3l_sklearn.utils.check_partial_labels`.

    Examples
    --------
    >>> import numpy as np
    >>> labeled_mask(np.array(["cat", -1, "dog", "-1"], dtype=object)).tolist()
    [True, False, True, False]
    """
    y = _check_labels_1d(y, name)
    if y.dtype == object or y.dtype.kind in "iufUS":
        return ~unlabeled_mask(y)
    raise TypeError(f"{name} must hold class labels (and -1 for unlabeled), got dtype {y.dtype}")


def _check_labels_1d(y, name):
    """``y`` as a 1-D array (a column vector is flattened); any other shape raises."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per sample), got shape {y.shape}")
    return y


def _check_indices(indices, n_samples, name="indices"):
    indices = np.asarray(indices)
    if indices.dtype == bool:
        if indices.shape != (n_samples,):
            raise ValueError(f"{name} as a boolean mask must have shape ({n_samples},), "
                             f"got {indices.shape}")
        return np.flatnonzero(indices)
    if indices.size == 0:
        return np.zeros(0, dtype=np.int64)
    if indices.ndim != 1 or indices.dtype.kind not in "iu":
        raise ValueError(f"{name} must be a 1-D array of integer indices or a boolean mask, "
                         f"got dtype {indices.dtype} and shape {indices.shape}")
    if indices.min() < -n_samples or indices.max() >= n_samples:
        raise ValueError(f"{name} holds indices outside [0, {n_samples}) "
                         f"(y_true has {n_samples} samples)")
    return indices.astype(np.int64)


@validate_params(
    {"y_true": ["array-like"], "indices": ["array-like"], "normalize": ["boolean"],
     "classes": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def class_coverage(y_true, indices, *, normalize: bool = False, classes=None):
    """Number (or fraction) of classes that the samples ``indices`` cover.

    The quantity the paper's selection is judged by at tiny budgets: a class with no selected
    sample cannot be learned from labels.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels of all samples; ``-1`` entries are ignored.
    indices : array-like of int, or boolean mask of shape (n_samples,)
        The selected samples (e.g. the output of a selector's ``select``).
    normalize : bool, default=False
        If True, return the fraction of ``classes`` covered instead of the count.
    classes : array-like, optional
        All classes, the denominator of the fraction. Default: the distinct labels of ``y_true``
        (without ``-1``).

    Returns
    -------
    coverage : int or float
        Count of distinct classes among ``y_true[indices]``, or that count over ``len(classes)``.

    Examples
    --------
    >>> y = [0, 0, 1, 1, 2, 2]
    >>> class_coverage(y, [0, 1, 2])
    2
    >>> round(class_coverage(y, [0, 1, 2], normalize=True), 4)
    0.6667
    """
    y_true = _check_labels_1d(y_true, "y_true")
    indices = _check_indices(indices, y_true.shape[0])
    selected = y_true[indices]
    selected = selected[labeled_mask(selected, name="y_true")]
    covered = set(np.unique(selected).tolist()) if selected.size else set()
    if not normalize:
        return len(covered)
    if classes is None:
        all_classes = y_true[labeled_mask(y_true, name="y_true")]
        classes = np.unique(all_classes) if all_classes.size else np.array([])
    classes = set(np.asarray(classes).tolist())
    if not classes:
        raise ValueError("classes is empty (y_true has no labeled sample); "
                         "cannot normalize the coverage")
    return len(covered & classes) / len(classes)


def _check_proba(proba, n_samples, name="proba"):
    proba = np.asarray(proba)
    if proba.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numeric, got dtype {proba.dtype}")
    proba = proba.astype(np.float64, copy=False)
    if proba.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_classes), got shape {proba.shape}")
    if proba.shape[0] != n_samples:
        raise ValueError(f"{name} has {proba.shape[0]} rows but y_true has {n_samples} samples")
    if proba.shape[1] < 1:
        raise ValueError(f"{name} has no column")
    if not np.isfinite(proba).all():
        raise ValueError(f"{name} contains NaN or infinity")
    return proba


def _check_classes(classes, n_columns):
    if classes is None:
        return np.arange(n_columns)
    classes = np.asarray(classes)
    if classes.ndim != 1 or classes.shape[0] != n_columns:
        raise ValueError(f"classes must list one label per column of proba ({n_columns}), "
                         f"got shape {classes.shape}")
    return classes


def _scored_samples(y_true, mask, n_samples):
    keep = labeled_mask(y_true, name="y_true")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.dtype == bool:
            if mask.shape != (n_samples,):
                raise ValueError(f"mask must have shape ({n_samples},), got {mask.shape}")
            keep &= mask
        else:
            chosen = np.zeros(n_samples, dtype=bool)
            chosen[_check_indices(mask, n_samples, name="mask")] = True
            keep &= chosen
    if not keep.any():
        raise ValueError("no sample to score: every sample is unlabeled (y_true == -1) "
                         "or masked out")
    return keep


@validate_params(
    {"y_true": ["array-like"], "proba": ["array-like"], "classes": ["array-like", None],
     "mask": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def prior_accuracy(y_true, proba, *, classes=None, mask=None) -> float:
    """Accuracy of the arg-max of prior pseudo-labels (the paper's "accuracy of y_prior").

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels; samples with ``-1`` are not scored.
    proba : array-like of shape (n_samples, n_classes)
        Prior class probabilities (e.g. ``SeededKMeansPropagator.predict_proba``).
    classes : array-like of shape (n_classes,), optional
        The label of each column; default ``0 .. n_classes - 1`` (pass the propagator's
        ``classes_`` when labels are not those integers).
    mask : boolean mask of shape (n_samples,) or integer indices, optional
        Score only these samples, e.g. the unlabeled ones (``y_partial == -1``) or those a
        prior covers.

    Returns
    -------
    accuracy : float

    Examples
    --------
    >>> prior_accuracy([0, 1, 1, -1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.5, 0.5]])
    0.6666666666666666
    >>> prior_accuracy([0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], mask=[False, True, True])
    0.5
    """
    y_true = _check_labels_1d(y_true, "y_true")
    proba = _check_proba(proba, y_true.shape[0])
    classes = _check_classes(classes, proba.shape[1])
    keep = _scored_samples(y_true, mask, y_true.shape[0])
    predicted = classes[np.argmax(proba[keep], axis=1)]
    return float(np.mean(predicted == y_true[keep]))


@validate_params(
    {"y_true": ["array-like"], "proba": ["array-like"],
     "n_bins": [Interval(Integral, 1, None, closed="left")], "classes": ["array-like", None],
     "mask": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def expected_calibration_error(y_true, proba, *, n_bins: int = 15, classes=None,
                               mask=None) -> float:
    """Expected calibration error with equal-width confidence bins (Naeini 2015; Guo 2017).

    Each sample's confidence is its largest probability; samples are binned by confidence into
    ``n_bins`` equal-width bins ``(0, 1/n_bins], ..., ((n_bins-1)/n_bins, 1]`` and

    ``ECE = sum_b |B_b| / n * |accuracy(B_b) - mean confidence(B_b)|``,

    the measure of the paper's Table 6.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        True labels; samples with ``-1`` are not scored.
    proba : array-like of shape (n_samples, n_classes)
        Class probabilities in ``[0, 1]``.
    n_bins : int, default=15
    classes : array-like of shape (n_classes,), optional
        The label of each column; default ``0 .. n_classes - 1``.
    mask : boolean mask of shape (n_samples,) or integer indices, optional
        Score only these samples.

    Returns
    -------
    ece : float in [0, 1]

    Examples
    --------
    >>> round(expected_calibration_error([0, 0], [[0.9, 0.1], [0.7, 0.3]], n_bins=10), 4)
    0.2
    """
    y_true = _check_labels_1d(y_true, "y_true")
    proba = _check_proba(proba, y_true.shape[0])
    if proba.min() < 0 or proba.max() > 1:
        raise ValueError("proba must hold probabilities in [0, 1]")
    classes = _check_classes(classes, proba.shape[1])
    keep = _scored_samples(y_true, mask, y_true.shape[0])
    proba, y_true = proba[keep], y_true[keep]
    confidence = proba.max(axis=1)
    correct = (classes[proba.argmax(axis=1)] == y_true).astype(np.float64)
    # bin b holds confidences in (edge_b, edge_b+1] with the edges of np.linspace(0, 1, n_bins + 1),
    # as in Guo et al.'s code; a confidence of exactly 0 goes to bin 0
    inner_edges = np.linspace(0.0, 1.0, n_bins + 1)[1:-1]
    bins = np.searchsorted(inner_edges, confidence, side="left")
    count = np.bincount(bins, minlength=n_bins).astype(np.float64)
    gap = np.abs(np.bincount(bins, weights=correct, minlength=n_bins)
                 - np.bincount(bins, weights=confidence, minlength=n_bins))
    # sum_b |B_b|/n * |acc_b - conf_b| = sum_b |sum(correct) - sum(conf)| / n
    return float(gap.sum() / count.sum())


class LabeledScorer:
    """A scorer ``scorer(estimator, X, y)`` that scores only the labeled samples (``y != -1``).

    Built by :func:`make_labeled_scorer`; see there.
    """

    def __init__(self, scorer, name: str):
        self.scorer = scorer
        self.name = name

    def __call__(self, estimator, X, y, sample_weight=None, **kwargs):
        if y is None:
            raise ValueError(f"{self!r} needs the true labels y; got y=None")
        keep = labeled_mask(y)
        if not keep.any():
            raise ValueError(
                "this split's test fold holds no labeled sample (every y is -1), so "
                f"{self.name!r} cannot be computed; use a splitter that keeps unlabeled samples "
                "out of the test folds, e.g. as3l_sklearn.model_selection.SemiSupervisedKFold"
            )
        index = np.flatnonzero(keep)
        y_labeled = _safe_indexing(np.asarray(y).ravel() if np.ndim(y) == 2 else y, index)
        if isinstance(y_labeled, np.ndarray) and y_labeled.dtype == object:
            y_labeled = _tidy_object_labels(y_labeled)
        if sample_weight is not None:
            kwargs["sample_weight"] = _safe_indexing(np.asarray(sample_weight), index)
        return self.scorer(estimator, _safe_indexing(X, index), y_labeled, **kwargs)

    def __repr__(self) -> str:
        return f"make_labeled_scorer({self.name!r})"


def _tidy_object_labels(y):
    """Object labels without -1 are plain strings or ints: give them a plain dtype if uniform."""
    kinds = {type(v) for v in y}
    if kinds and all(issubclass(k, str) for k in kinds):
        return y.astype(str)
    return y


@validate_params({"metric": [str, callable]}, prefer_skip_nested_validation=True)
def make_labeled_scorer(metric="accuracy", **kwargs) -> LabeledScorer:
    """Make a scorer that ignores unlabeled samples (``y == -1``), for ``GridSearchCV`` and co.

    scikit-learn's search tools score every sample of a test fold, so with partial labels
    ``-1`` would be scored as if it were a class (scikit-learn issue #2593). This scorer drops
    those samples first. Pair it with :class:`as3l_sklearn.model_selection.SemiSupervisedKFold`
    so that every test fold has labeled samples and the unlabeled ones stay in training.

    Parameters
    ----------
    metric : str or callable, default="accuracy"
        A scikit-learn scorer name (``"accuracy"``, ``"f1_macro"``, ``"balanced_accuracy"``,
        ``"neg_log_loss"``, ... as :func:`sklearn.metrics.get_scorer` resolves it), or a metric
        ``metric(y_true, y_pred, **kwargs)``.
    **kwargs
        With a callable ``metric``: passed to :func:`sklearn.metrics.make_scorer` (e.g.
        ``greater_is_better``, ``response_method``) and from there to the metric. Not allowed
        with a scorer name.

    Returns
    -------
    scorer : LabeledScorer
        Callable as ``scorer(estimator, X, y)``; usable as ``scoring=`` in
        :class:`~sklearn.model_selection.GridSearchCV` and
        :func:`~sklearn.model_selection.cross_val_score`. Raises a ``ValueError`` when a test
        fold holds no labeled sample.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.dummy import DummyClassifier
    >>> X = np.zeros((4, 1)); y = np.array([0, 0, 1, -1])
    >>> clf = DummyClassifier(strategy="constant", constant=0).fit(X, [0, 0, 1, 1])
    >>> round(make_labeled_scorer("accuracy")(clf, X, y), 4)
    0.6667
    """
    if isinstance(metric, str):
        if kwargs:
            raise TypeError(f"make_labeled_scorer got keyword arguments {sorted(kwargs)} with the "
                            f"scorer name {metric!r}; pass a metric callable to use them")
        try:
            scorer = get_scorer(metric)
        except ValueError as exc:
            raise ValueError(f"metric={metric!r} is not a scikit-learn scorer name; see "
                             "sklearn.metrics.get_scorer_names()") from exc
        return LabeledScorer(scorer, metric)
    name = getattr(metric, "__name__", repr(metric))
    return LabeledScorer(make_scorer(metric, **kwargs), name)
