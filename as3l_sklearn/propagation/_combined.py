"""Prior pseudo-labels that average the cluster votes of AS3L and a graph propagation."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ..utils._param_validation import (
    RANDOM_STATE,
    HasMethods,
    Interval,
    Real,
    StrOptions,
    fit_context,
)
from ._base import UNLABELED, _BasePropagator, _validate_partial_labels, _validate_X
from ._calibration import _log_proba, _tempered, calibrate_confidence
from ._llgc import LLGCPropagator
from ._seeded_kmeans import SeededKMeansPropagator

__all__ = ["CombinedPropagator"]


class CombinedPropagator(_BasePropagator):
    """Average of AS3L's cluster votes and LLGC graph spreading (beyond the paper).

    Fits a cluster propagator (:class:`SeededKMeansPropagator`, section 3.3 of the AS3L
    paper) and a graph propagator (:class:`LLGCPropagator`, Zhou et al. / Iscen et al.) on
    the same features and labels, and returns ``(1 - graph_weight) * p_cluster +
    graph_weight * p_graph``.

    Why: the two err in opposite directions. Cluster votes are less accurate and tend to be
    underconfident where several clusterings leave a sample in clusters without labels; the
    graph is more accurate, but its leave-one-out temperature, fitted on selected (typical)
    samples, can make it overconfident, and with one label per class it cannot be fitted at
    all. The weight 0.65 was chosen on a Fashion-MNIST split held out from the reported one
    (training images 50,000-59,999, PCA-50 pixels, 3 seeds, 10 and 40 labels, multi-cluster
    and random selection): there the average stayed within about one point of the graph's
    accuracy while its ECE fell from 0.07-0.13 to 0.05-0.10. Results on the reported split
    are in ``docs/results.md`` (``benchmarks/bench_propagation.py``); it is the recommended
    prior and the default of the ``as3l`` command.

    Calibration with one label per class: nothing can be held out, so the graph keeps its
    raw scores; the default graph part, ``LLGCPropagator(alpha="auto")``, spreads less far on
    graphs under 10,000 samples, which on scikit-learn's digits (898 images, 10 multi-cluster
    labels) lowered the ECE from 0.33 (PCA pixels) and 0.28 (``f_fine``) to 0.16, with the
    accuracy within 0.4 points of before (``benchmarks/bench_prior_checks.py``). The rest is
    samples of classes that got no label (confidently wrong) and underconfidence on the
    others. ``calibration="auto"`` corrects the second without labels: one temperature makes
    the mean confidence of the unlabeled samples equal to the accuracy the graph part expects
    of the average (:func:`~as3l_sklearn.propagation.calibrate_confidence`); the arg-max,
    hence the accuracy, is unchanged. ``docs/propagation.md`` ("Calibration with one label
    per class") has the measurements.

    Unlabeled samples are marked ``-1`` in ``y``, as in :mod:`sklearn.semi_supervised`.

    Parameters
    ----------
    cluster_propagator : estimator or None, default=None
        A propagator exposing ``label_distributions_``, ``covered_`` and ``predict_proba``;
        ``None`` uses ``SeededKMeansPropagator(random_state=random_state)`` (the paper's K
        list, one seed per labeled sample). Cloned at fit.
    graph_propagator : estimator or None, default=None
        Same for the graph part; ``None`` uses ``LLGCPropagator()``. Cloned at fit.
    graph_weight : float, default=0.65
        Weight of the graph prior in [0, 1] (0: cluster votes only, 1: graph only).
    calibration : {"auto"} or None, default=None
        ``"auto"``: temper the average by the label-free temperature of
        :func:`~as3l_sklearn.propagation.calibrate_confidence`, with the graph part as the
        reference (the ``as3l`` command calibrates the weighted prior of its two feature
        spaces the same way, in :func:`~as3l_sklearn.diagnostics.compare_feature_spaces`).
        ``None``: the plain average.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the default cluster propagator (a given one keeps its own ``random_state``).
    verbose : int, default=0
        Passed to the default propagators.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
    label_distributions_ : ndarray of shape (n_samples, n_classes)
        Prior pseudo-labels of the fitted samples (rows sum to 1; labeled samples one-hot).
    transduction_ : ndarray of shape (n_samples,)
    covered_ : ndarray of shape (n_samples,), bool
        ``True`` where either part reached the sample with a label.
    cluster_propagator_, graph_propagator_ : estimators
        The fitted parts.
    estimated_accuracy_ : float or None
        Label-free estimate of the prior's accuracy on the unlabeled samples: the mean
        probability the graph part gives to the predicted class (``None`` when every sample
        is labeled). Computed whatever ``calibration`` is.
    temperature_ : float
        Temperature applied to the average (``1.0`` with ``calibration=None``); also applied
        by :meth:`predict_proba`.
    n_features_in_ : int
    feature_names_in_ : ndarray of shape (n_features,)
        Only when ``X`` has string column names.

    See Also
    --------
    SeededKMeansPropagator, LLGCPropagator : the two parts.

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn.propagation import CombinedPropagator
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal([5, 0], 1, (50, 2)), rng.normal([0, 5], 1, (50, 2))]
    >>> y = np.full(100, -1)
    >>> y[0], y[50] = 0, 1
    >>> prop = CombinedPropagator(random_state=0).fit(X, y)
    >>> (prop.transduction_ == np.repeat([0, 1], 50)).mean()
    np.float64(1.0)
    >>> prop.predict_proba([[5.0, 0.0]]).round(2).shape
    (1, 2)
    >>> calibrated = CombinedPropagator(calibration="auto", random_state=0).fit(X, y)
    >>> bool(calibrated.temperature_ < 1)  # the average was underconfident: sharpened
    True
    >>> (calibrated.transduction_ == prop.transduction_).all()
    np.True_
    """

    _parameter_constraints: dict = {
        "cluster_propagator": [HasMethods(["fit", "predict_proba"]), None],
        "graph_propagator": [HasMethods(["fit", "predict_proba"]), None],
        "graph_weight": [Interval(Real, 0, 1, closed="both")],
        "calibration": [StrOptions({"auto"}), None],
        "random_state": RANDOM_STATE,
        "verbose": ["verbose"],
    }

    def __init__(self, cluster_propagator=None, graph_propagator=None, *, graph_weight=0.65,
                 calibration=None, random_state=None, verbose=0):
        self.cluster_propagator = cluster_propagator
        self.graph_propagator = graph_propagator
        self.graph_weight = graph_weight
        self.calibration = calibration
        self.random_state = random_state
        self.verbose = verbose

    def _parts(self):
        cluster = (SeededKMeansPropagator(random_state=self.random_state, verbose=self.verbose)
                   if self.cluster_propagator is None else clone(self.cluster_propagator))
        graph = (LLGCPropagator(verbose=self.verbose) if self.graph_propagator is None
                 else clone(self.graph_propagator))
        return cluster, graph

    # the parts are fitted inside fit and check their own parameters there
    @fit_context(prefer_skip_nested_validation=False)
    def fit(self, X, y):
        """Fit both propagators on ``(X, y)`` and average their priors.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
            Features of labeled and unlabeled samples (e.g. ``f_fine``).
        y : array-like of shape (n_samples,)
            Class labels, ``-1`` for unlabeled samples (string labels in an ``object`` array).

        Returns
        -------
        self : CombinedPropagator
        """
        weight = float(self.graph_weight)
        X = _validate_X(self, X, reset=True)
        classes, y_encoded = _validate_partial_labels(self, y, X.shape[0])
        cluster, graph = self._parts()
        with warnings.catch_warnings():
            # the label warnings were raised once above; the parts would repeat them
            warnings.filterwarnings("ignore", message=r"y (contains no unlabeled|has labeled "
                                    r"samples of one class)", category=UserWarning)
            cluster.fit(X, y_encoded)
            graph.fit(X, y_encoded)
        reference = _columns(graph, len(classes), graph.label_distributions_)
        proba = ((1 - weight) * _columns(cluster, len(classes), cluster.label_distributions_)
                 + weight * reference)
        calibrated = calibrate_confidence(proba, reference, sample_mask=y_encoded == UNLABELED)
        self.estimated_accuracy_ = calibrated.estimated_accuracy
        if self.calibration == "auto":
            proba, self.temperature_ = calibrated.label_distributions, calibrated.temperature
        else:
            self.temperature_ = 1.0
        self._set_priors(classes, y_encoded, proba, covered=cluster.covered_ | graph.covered_)
        self.cluster_propagator_, self.graph_propagator_ = cluster, graph
        return self

    def predict_proba(self, X):
        """Average of the two parts' priors for (new) samples, tempered by ``temperature_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        check_is_fitted(self)
        X = _validate_X(self, X, reset=False)
        weight = float(self.graph_weight)
        n_classes = len(self.classes_)
        cluster, graph = self.cluster_propagator_, self.graph_propagator_
        proba = ((1 - weight) * _columns(cluster, n_classes, cluster.predict_proba(X))
                 + weight * _columns(graph, n_classes, graph.predict_proba(X)))
        return proba if self.temperature_ == 1.0 else _tempered(_log_proba(proba),
                                                                  self.temperature_)


def _columns(part, n_classes, proba):
    """``proba`` of a part fitted on encoded labels, laid out on the ``n_classes`` columns."""
    out = np.zeros((proba.shape[0], n_classes))
    out[:, np.asarray(part.classes_, dtype=np.int64)] = proba
    return out
