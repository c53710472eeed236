"""Validation and output handling shared by the propagators.

Both propagators take ``y`` with ``-1`` for unlabeled samples, turn per-sample class scores
into prior pseudo-labels (rows normalised, labeled samples clamped to their own label) and
predict by the arg-max of :meth:`predict_proba`; that common part lives here.
"""

# The shape of the estimators (validation, fitted attributes, -1 handling) follows
# sklearn.semi_supervised.LabelSpreading.

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import BaseEstimator
from sklearn.utils.multiclass import type_of_target
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from ..utils import check_features, check_partial_labels
from ..utils._validation import PartiallyLabeledClassifierMixin

UNLABELED = -1


def _validate_partial_labels(estimator, y, n_samples: int):
    """Validate ``y`` (``-1`` = unlabeled) for a propagator and warn like scikit-learn.

    Returns ``(classes, y_encoded)`` as :func:`as3l_sklearn.utils.check_partial_labels`.
    """
    name = type(estimator).__name__
    if y is None:
        raise ValueError(
            f"{name} requires y to be passed, but the target y is None; pass class labels with "
            "-1 for unlabeled samples"
        )
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        # a column vector: accepted, with scikit-learn's DataConversionWarning
        y = column_or_1d(y, warn=True)
    if y.dtype.kind in "US":
        # plain string labels: check_partial_labels reads "-1" as unlabeled (a -1 mixed into
        # np.array(["cat", -1]) becomes "-1"), so it never turns into a class
        y = y.astype(str).astype(object)
    if y.dtype.kind in "fiu" and y.ndim == 1:
        target_type = type_of_target(y, input_name="y")
        if target_type == "continuous" and np.isfinite(y).all():
            raise ValueError(
                f"y: Unknown label type: {target_type!r}. {name} expects discrete class labels "
                "(and -1 for unlabeled samples), not a regression target"
            )
    classes, y_encoded = check_partial_labels(y, n_samples, name="y", min_labeled=1)
    if not np.any(y_encoded == UNLABELED):
        warnings.warn(
            "y contains no unlabeled samples (marked -1); every sample is labeled, so the "
            "propagated labels are the given ones",
            UserWarning,
            stacklevel=3,
        )
    if len(classes) == 1:
        warnings.warn(
            f"y has labeled samples of one class only ({classes[0]!r}); every prior "
            "pseudo-label will be that class",
            UserWarning,
            stacklevel=3,
        )
    return classes, y_encoded


def _validate_X(estimator, X, *, reset: bool) -> np.ndarray:
    """Validate features with the project's checks and keep scikit-learn's bookkeeping
    (``n_features_in_``, ``feature_names_in_``) on the estimator."""
    features = check_features(X, name="X", estimator=estimator)
    validate_data(estimator, X, skip_check_array=True, reset=reset)
    return features


def _normalise_rows(scores: np.ndarray):
    """Rows divided by their sums; all-zero rows become uniform and are flagged uncovered."""
    totals = scores.sum(axis=1)
    covered = totals > 0
    distributions = np.full_like(scores, 1.0 / scores.shape[1], dtype=np.float64)
    distributions[covered] = scores[covered] / totals[covered, None]
    return distributions, covered


class _BasePropagator(PartiallyLabeledClassifierMixin, BaseEstimator):
    """Common part of the propagators: fitted priors from scores, ``predict`` and tags.

    Subclasses implement ``fit`` (calling :meth:`_set_priors`) and ``predict_proba``.
    """

    def _set_priors(self, classes, y_encoded, scores, covered=None):
        """Set ``classes_``, ``label_distributions_``, ``covered_`` and ``transduction_``.

        ``scores`` are non-negative per-class scores of the fitted samples; rows are
        normalised (all-zero rows become uniform and uncovered) and labeled samples keep
        their own label. ``covered`` overrides which samples count as reached by a label
        (for scores that already hold mass given back to unreached samples).
        """
        labeled = y_encoded != UNLABELED
        distributions, reached = _normalise_rows(scores)
        covered = reached if covered is None else np.array(covered, dtype=bool)
        distributions[labeled] = 0.0
        distributions[labeled, y_encoded[labeled]] = 1.0
        covered[labeled] = True

        self.classes_ = classes
        self.label_distributions_ = distributions
        self.covered_ = covered
        self.transduction_ = classes[np.argmax(distributions, axis=1)]
        self.transduction_[labeled] = classes[y_encoded[labeled]]

    def predict(self, X):
        """Most probable class of each sample (arg-max of :meth:`predict_proba`).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        y : ndarray of shape (n_samples,)
        """
        check_is_fitted(self)
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False
        return tags
