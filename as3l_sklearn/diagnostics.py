"""Label-free checks of a feature space for label propagation, and the choice between two.

A learned encoder can lose to raw pixels (a SimSiam run too short, too few images, a collapsed
encoder) and nothing in the labels says so: with one label per class there is nothing to
hold out. These functions score a feature space for propagating the labels it is given,
without any label of an unlabeled sample, and combine the priors of two spaces (typically
``f_fine`` and PCA of the pixels) by those scores:

* :func:`pixel_features` -- the fallback space: PCA of the raw pixels;
* :func:`propagation_stability` -- how much of the propagated partition survives moving
  every label to another sample of its predicted class;
* :func:`score_feature_space` -- that stability, the leave-one-out log-likelihood of the
  labels where a class has two or more, and descriptive statistics;
* :func:`compare_feature_spaces` -- the weighted prior of two spaces and the weights,
  calibrated by a label-free temperature
  (:func:`~as3l_sklearn.propagation.calibrate_confidence`).

The rule and its constant were chosen on tuning splits (the tuning half of scikit-learn's
digits and Fashion-MNIST training images 50,000-59,999) and validated on others;
``benchmarks/bench_prior_checks.py`` and ``docs/results.md`` give the figures.

Examples
--------
>>> import numpy as np
>>> from as3l_sklearn.diagnostics import compare_feature_spaces
>>> rng = np.random.RandomState(0)
>>> y_true = np.repeat([0, 1, 2], 40)
>>> good = np.eye(3)[y_true] * 4 + rng.normal(0, 1, (120, 3))
>>> noise = rng.normal(0, 1, (120, 3))
>>> y = np.full(120, -1)
>>> y[[0, 40, 80]] = [0, 1, 2]
>>> check = compare_feature_spaces({"good": good, "noise": noise}, y, random_state=0)
>>> check.choice, check.weights["good"] > 0.75
('good', True)
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.base import clone
from sklearn.decomposition import PCA
from sklearn.utils import Bunch

from .propagation import CombinedPropagator, LLGCPropagator, calibrate_confidence
from .propagation._base import UNLABELED, _validate_partial_labels
from .propagation._combined import _columns
from .propagation._llgc import _conjugate_gradient, _l2_normalise, auto_alpha, spreading_system
from .utils import check_features, check_random_state_or_generator
from .utils._param_validation import (
    RANDOM_STATE,
    HasMethods,
    Integral,
    Interval,
    Real,
    StrOptions,
    validate_params,
)
from .utils._validation import unlabeled_mask

__all__ = [
    "compare_feature_spaces",
    "pixel_features",
    "propagation_stability",
    "score_feature_space",
]

#: ``compare_feature_spaces``: weight of the first space ``= 0.5 + SHARPNESS * difference``
#: of the scores, clipped to [0, 1]. Chosen on the tuning splits (24 scenario x seed cells
#: per budget, ``docs/results/prior_checks_tuning.md``): with 1 the weighted prior fell more
#: than 2 points below the better space in 2 cells of 24 at 10 labels (worst 4.1 points) and
#: 1 at 40 (worst 2.4); the plain average (0) in 3 and 4 cells, 2 in 2 and 2 (worst 5.9),
#: 4 in 1 and 1 (worst 8.3), a hard choice in 2 and 2 (worst 8.6): 1 had the smallest worst
#: case at 40 labels and the second smallest at 10.
SHARPNESS = 1.0


@validate_params(
    {"images": ["array-like"], "n_components": [Interval(Integral, 1, None, closed="left")],
     "random_state": RANDOM_STATE},
    prefer_skip_nested_validation=True,
)
def pixel_features(images, *, n_components=50, random_state=0):
    """PCA of the raw pixels: the feature space the learned features are checked against.

    Each image is flattened (``uint8`` values divided by 255, other dtypes used as they are)
    and projected on its first ``n_components`` principal axes, not whitened: on the tuning
    half of scikit-learn's digits whitened PCA-50 gave priors 16 points less accurate at 10
    labels (61.5 against 77.3 %, ``benchmarks/bench_prior_checks.py``), since whitening
    scales the noisy low-variance axes up to the size of the others.

    Parameters
    ----------
    images : array-like of shape (n_samples, ...)
        Images (any trailing shape, e.g. ``(n, h, w, c)``) or already-flat pixel rows.
    n_components : int, default=50
        Principal axes kept (at most ``min(n_samples - 1, n_pixels)``).
    random_state : int, RandomState instance or None, default=0
        Seeds the randomized SVD scikit-learn may use on large inputs.

    Returns
    -------
    features : ndarray of shape (n_samples, n_components_used), float32

    Examples
    --------
    >>> import numpy as np
    >>> images = np.random.RandomState(0).randint(0, 256, (20, 8, 8, 1), dtype=np.uint8)
    >>> pixel_features(images, n_components=5).shape
    (20, 5)
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"images must have one row per sample, got shape {images.shape}")
    flat = images.reshape(images.shape[0], -1)
    flat = flat.astype(np.float32) / 255.0 if flat.dtype == np.uint8 else flat
    flat = check_features(flat, name="images", min_samples=2)
    n_components = min(n_components, flat.shape[0] - 1, flat.shape[1])
    pca = PCA(n_components=n_components, random_state=random_state)
    return pca.fit_transform(flat).astype(np.float32)


def _graph_settings(fitted, n_samples):
    """(n_neighbors, alpha, gamma, cosine, index, max_iter, tol) of a fitted propagator's
    graph: its LLGC part when it has one, LLGCPropagator's defaults otherwise."""
    graph = getattr(fitted, "graph_propagator_", fitted)
    if not isinstance(graph, LLGCPropagator) or not hasattr(graph, "alpha_"):
        graph = LLGCPropagator()
        n_neighbors, alpha = min(graph.n_neighbors, n_samples - 1), auto_alpha(n_samples)
    else:
        n_neighbors, alpha = graph.n_neighbors_, graph.alpha_
    return (n_neighbors, alpha, float(graph.gamma), bool(graph.normalize),
            graph.neighbor_index, int(graph.max_iter), float(graph.tol))


def _stability(X, y_encoded, predicted, fitted, n_rounds, rng):
    """Mean agreement of the resampled spreadings with ``predicted`` (unlabeled samples)."""
    n_samples, n_classes = X.shape[0], len(fitted.classes_)
    n_neighbors, alpha, gamma, cosine, index, max_iter, tol = _graph_settings(fitted, n_samples)
    unlabeled = y_encoded == UNLABELED
    if n_neighbors < 1 or not unlabeled.any():
        return 1.0
    features = _l2_normalise(X) if cosine else X
    system, _ = spreading_system(features, n_neighbors, alpha=alpha, gamma=gamma,
                                 cosine=cosine, neighbor_index=index)
    pools = [np.flatnonzero(unlabeled & (predicted == c)) for c in range(n_classes)]
    # a class no unlabeled sample is predicted as keeps its own labeled samples as seeds
    pools = [pool if pool.size else np.flatnonzero(y_encoded == c) for c, pool in enumerate(pools)]
    agreement = []
    for _ in range(n_rounds):
        seeds = np.array([rng.choice(pool) if pool.size else -1 for pool in pools])
        targets = np.zeros((n_samples, n_classes))
        present = seeds >= 0
        targets[seeds[present], np.flatnonzero(present)] = 1.0
        scores, _ = _conjugate_gradient(system, targets, max_iter=max_iter, tol=tol)
        agreement.append(np.mean(np.argmax(scores[unlabeled], axis=1) == predicted[unlabeled]))
    return float(np.mean(agreement))


def _fit_prior(X, y, propagator, random_state):
    """The fitted propagator (a clone of ``propagator``, or ``CombinedPropagator``) and the
    labels encoded as indices into its ``classes_`` (``-1`` unlabeled)."""
    model = (CombinedPropagator(random_state=random_state) if propagator is None
             else clone(propagator))
    with warnings.catch_warnings():
        # the propagators' own warnings about y (no unlabeled sample, one class) stand
        model.fit(X, y)
        warnings.simplefilter("ignore", UserWarning)
        classes, y_encoded = _validate_partial_labels(model, y, len(model.label_distributions_))
    if not np.array_equal(np.asarray(classes), np.asarray(model.classes_)):
        raise ValueError("the propagator's classes_ are not the labels of y; pass a propagator "
                         "that keeps the classes of y (as this package's propagators do)")
    return model, y_encoded


_SPACE_PARAMS = {
    "X": ["array-like"],
    "y": ["array-like"],
    "propagator": [HasMethods(["fit"]), None],
    "n_rounds": [Interval(Integral, 1, None, closed="left")],
    "random_state": RANDOM_STATE,
}


@validate_params(_SPACE_PARAMS, prefer_skip_nested_validation=True)
def propagation_stability(X, y, *, propagator=None, n_rounds=8, random_state=None):
    """Share of the propagated labels that survive moving every label elsewhere in its class.

    The labels of ``y`` are propagated over ``X`` (``propagator``, by default
    :class:`~as3l_sklearn.propagation.CombinedPropagator`); then, ``n_rounds`` times, every
    class gets one new seed drawn at random among the unlabeled samples predicted as that
    class, the seeds are spread over the same weighted kNN graph as
    :class:`~as3l_sklearn.propagation.LLGCPropagator`'s, and the unlabeled samples whose
    label is unchanged are counted. No label of an unlabeled sample is used.

    Why it scores a feature space: where classes are regions of the space, any member of a
    region labels it the same way; where the space does not separate them (noise, a weak
    encoder), the partition follows whichever samples happen to carry the labels and changes
    with them. It measures consistency, not accuracy: two classes merged into one region are
    stable and wrong, so compare spaces with it rather than reading it as an accuracy.

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
        Features of labeled and unlabeled samples.
    y : array-like of shape (n_samples,)
        Class labels, ``-1`` for unlabeled samples.
    propagator : estimator or None, default=None
        Propagator whose priors are checked (cloned); ``None`` uses
        ``CombinedPropagator(random_state=random_state)``. The graph of the resampling is
        its LLGC part's (``LLGCPropagator``'s defaults for other propagators).
    n_rounds : int, default=8
        Resamplings; each costs one conjugate-gradient solve with one column per class.
    random_state : int, RandomState instance, numpy Generator or None, default=None
        Seeds the draws (and the default propagator).

    Returns
    -------
    stability : float in [0, 1]
        Mean over rounds and unlabeled samples of "same label as the propagated prior"
        (1.0 when there is no unlabeled sample).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal([5, 0], 1, (40, 2)), rng.normal([0, 5], 1, (40, 2))]
    >>> y = np.full(80, -1)
    >>> y[[0, 40]] = [0, 1]
    >>> propagation_stability(X, y, random_state=0) > 0.9
    True
    """
    rng = check_random_state_or_generator(random_state)
    fitted, y_encoded = _fit_prior(X, y, propagator, rng)
    predicted = np.argmax(fitted.label_distributions_, axis=1)
    return _stability(check_features(X, name="X"), y_encoded, predicted, fitted, n_rounds, rng)


def _describe(fitted, y_encoded):
    """Label-free statistics of a fitted prior over the unlabeled samples."""
    unlabeled = y_encoded == UNLABELED
    proba = fitted.label_distributions_[unlabeled]
    stats = {"confidence": float(proba.max(axis=1).mean()) if proba.size else 1.0,
             "part_agreement": None}
    cluster = getattr(fitted, "cluster_propagator_", None)
    graph = getattr(fitted, "graph_propagator_", None)
    if cluster is not None and graph is not None and unlabeled.any():
        # the parts are fitted on encoded labels: their columns are class indices
        votes = np.asarray(cluster.classes_)[np.argmax(cluster.label_distributions_, axis=1)]
        spread = np.asarray(graph.classes_)[np.argmax(graph.label_distributions_, axis=1)]
        stats["part_agreement"] = float(np.mean(votes[unlabeled] == spread[unlabeled]))
    return stats


def _held_out(fitted):
    """(mean log-likelihood of held-out labels, their number, the share predicted right)
    from the fitted graph."""
    graph = getattr(fitted, "graph_propagator_", fitted)
    log_loss = getattr(graph, "calibration_log_loss_", None)
    if log_loss is None:
        return None, 0, None
    return -float(log_loss), int(graph.n_calibration_samples_), graph.calibration_accuracy_


@validate_params(_SPACE_PARAMS, prefer_skip_nested_validation=True)
def score_feature_space(X, y, *, propagator=None, n_rounds=8, random_state=None):
    """Label-free scores of a feature space for propagating the labels of ``y``.

    Fits ``propagator`` (default :class:`~as3l_sklearn.propagation.CombinedPropagator`) on
    ``(X, y)`` and measures, without any label of an unlabeled sample:

    * ``stability`` -- :func:`propagation_stability`: the share of propagated labels that
      survive moving every label to another sample of its predicted class;
    * ``held_out_log_likelihood`` -- where at least 10 labeled samples belong to classes with
      two or more labels: the mean log-likelihood of those labels, each predicted by the
      graph from the others (the leave-one-out of
      :class:`~as3l_sklearn.propagation.LLGCPropagator`'s calibration, at its fitted
      temperature); ``None`` otherwise (e.g. one label per class);
    * ``n_held_out`` -- how many labels that leave-one-out held out;
    * ``held_out_accuracy`` -- the share of them the graph puts first (``None`` without them);
    * ``confidence`` -- the mean largest prior of the unlabeled samples (descriptive);
    * ``part_agreement`` -- for ``CombinedPropagator``: how often its cluster votes and
      graph spreading agree on the unlabeled samples (descriptive; ``None`` otherwise).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,)
        Class labels, ``-1`` for unlabeled samples.
    propagator : estimator or None, default=None
        Propagator to score the space with (cloned); ``None`` uses
        ``CombinedPropagator(random_state=random_state)``.
    n_rounds : int, default=8
        Resamplings of :func:`propagation_stability`.
    random_state : int, RandomState instance, numpy Generator or None, default=None

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``scores`` (the dict above), ``propagator`` (the fitted propagator),
        ``label_distributions`` (its priors) and ``classes`` (its ``classes_``).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> X = np.r_[rng.normal([5, 0], 1, (40, 2)), rng.normal([0, 5], 1, (40, 2))]
    >>> y = np.full(80, -1)
    >>> y[[0, 40]] = [0, 1]
    >>> result = score_feature_space(X, y, random_state=0)
    >>> sorted(result.scores)
    ['confidence', 'held_out_accuracy', 'held_out_log_likelihood', 'n_held_out', 'part_agreement', 'stability']
    >>> result.scores["held_out_log_likelihood"] is None  # one label per class
    True
    """
    rng = check_random_state_or_generator(random_state)
    fitted, y_encoded = _fit_prior(X, y, propagator, rng)
    predicted = np.argmax(fitted.label_distributions_, axis=1)
    stability = _stability(check_features(X, name="X"), y_encoded, predicted, fitted,
                           n_rounds, rng)
    log_likelihood, n_held_out, held_out_accuracy = _held_out(fitted)
    scores = {"stability": stability, "held_out_log_likelihood": log_likelihood,
              "n_held_out": n_held_out, "held_out_accuracy": held_out_accuracy,
              **_describe(fitted, y_encoded)}
    return Bunch(scores=scores, propagator=fitted, label_distributions=fitted.label_distributions_,
                 classes=fitted.classes_)


def _calibration_reference(fitted):
    """The prior whose expectation estimates a fitted propagator's accuracy: its graph part's
    (laid on its columns) where it has one, its own otherwise."""
    graph = getattr(fitted, "graph_propagator_", None)
    if graph is None:
        return fitted.label_distributions_
    return _columns(graph, len(fitted.classes_), graph.label_distributions_)


def _weight_of_first(first, second, sharpness):
    """Weight of the first space's prior from the two score dicts (see compare_feature_spaces)."""
    difference = first["stability"] - second["stability"]
    first_ll, second_ll = first["held_out_log_likelihood"], second["held_out_log_likelihood"]
    if first_ll is not None and second_ll is not None:
        difference += first_ll - second_ll
    if difference == 0:  # also keeps a hard choice (sharpness=inf) defined on a tie
        return 0.5
    return float(np.clip(0.5 + sharpness * difference, 0.0, 1.0))


def _space_weights(score_dicts, sharpness) -> np.ndarray:
    """Weight of each space's prior (summing to 1), from their score dicts.

    Two spaces: :func:`_weight_of_first`. More: each space's total score (``stability``,
    plus ``held_out_log_likelihood`` when every space has one) against the mean of the totals,
    ``w_i = clip(1/N + 2 * sharpness * (total_i - mean), 0, 1)``, renormalised: the same rule
    as for two spaces (where ``2 * (total_1 - mean)`` is the difference ``d``).
    """
    if len(score_dicts) == 2:
        first = _weight_of_first(score_dicts[0], score_dicts[1], sharpness)
        return np.array([first, 1.0 - first])
    totals = np.array([scores["stability"] for scores in score_dicts], dtype=np.float64)
    likelihoods = [scores["held_out_log_likelihood"] for scores in score_dicts]
    if all(value is not None for value in likelihoods):
        totals = totals + np.asarray(likelihoods, dtype=np.float64)
    weights = np.clip(1.0 / len(totals) + 2.0 * sharpness * (totals - totals.mean()), 0.0, 1.0)
    return weights / weights.sum()  # the best space keeps at least 1/N: the sum is > 0


@validate_params(
    {"spaces": [dict], "y": ["array-like"], "propagator": [HasMethods(["fit"]), None],
     "sharpness": [Interval(Real, 0, None, closed="left")],
     "n_rounds": [Interval(Integral, 1, None, closed="left")],
     "calibration": [StrOptions({"auto"}), None], "random_state": RANDOM_STATE},
    prefer_skip_nested_validation=True,
)
def compare_feature_spaces(spaces, y, *, propagator=None, sharpness=SHARPNESS, n_rounds=8,
                           calibration="auto", random_state=None):
    """Prior pseudo-labels from two (or more) feature spaces, weighted by label-free scores.

    Every space is scored by :func:`score_feature_space` with the same labels; the first
    space's prior gets the weight

    ``w = clip(0.5 + sharpness * d, 0, 1)``, with ``d`` the difference (first minus second)
    of the ``stability`` scores, plus the difference of the ``held_out_log_likelihood``
    scores when both spaces have one (classes with two or more labels),

    and the returned prior is ``w * p_first + (1 - w) * p_second``, tempered (by default)
    so that its mean confidence matches a label-free estimate of its accuracy (see
    ``calibration``). Equal scores give the
    plain average of the two priors, which on the tuning splits was often more accurate than
    either; a clearly better space takes all the weight. The use it was built for: the first
    space is the learned ``f_fine``, the second :func:`pixel_features` of the same images, so
    that an encoder worse than raw pixels (too short a training, too few images) is outvoted
    instead of silently used.

    With more than two spaces (the ``as3l`` command's pretrained encoder, SimSiam and pixels)
    each space's total score (the ``stability``, plus the ``held_out_log_likelihood`` when
    every space has one) is compared with the mean of the totals:
    ``w_i = clip(1/N + 2 * sharpness * (total_i - mean), 0, 1)``, renormalised to sum to 1;
    for two spaces this is the rule above.

    Parameters
    ----------
    spaces : dict of str -> array-like of shape (n_samples, n_features_i)
        Two or more feature spaces of the same samples, in order of preference (on equal
        weights the first is named the ``choice``).
    y : array-like of shape (n_samples,)
        Class labels, ``-1`` for unlabeled samples.
    propagator : estimator or None, default=None
        Propagator fitted in each space (cloned); ``None`` uses
        ``CombinedPropagator(random_state=random_state)``.
    sharpness : float, default=1.0
        How fast the weight moves with the score difference (``0``: always the average;
        large: a hard choice). 1 was chosen on the tuning splits (``SHARPNESS``).
    n_rounds : int, default=8
        Resamplings of :func:`propagation_stability` per space.
    calibration : {"auto"} or None, default="auto"
        ``"auto"``: temper the weighted prior so that the mean confidence of the unlabeled
        samples equals the accuracy the spaces' graph parts expect of it (their priors,
        weighted like the spaces', are the reference of
        :func:`~as3l_sklearn.propagation.calibrate_confidence`; a propagator without a
        ``graph_propagator_`` is its own reference). No label of an unlabeled sample is
        used, and the arg-max is unchanged. ``None``: the weighted prior as it is.
    random_state : int, RandomState instance, numpy Generator or None, default=None

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        * ``label_distributions`` -- ndarray (n_samples, n_classes), the weighted prior,
          calibrated (rows sum to 1; labeled samples one-hot);
        * ``uncalibrated`` -- the weighted prior before the temperature;
        * ``temperature`` -- the fitted temperature (1.0 with ``calibration=None``);
          ``estimated_accuracy`` -- the label-free estimate of the prior's accuracy on the
          unlabeled samples (computed whatever ``calibration`` is; ``None`` when every
          sample is labeled);
        * ``classes`` -- the labels of its columns; ``transduction`` -- its arg-max labels
          (labeled samples keep their own); ``covered`` -- bool per sample, reached by a
          label in any space (``covered_`` of the propagators);
        * ``weights`` -- dict name -> weight (summing to 1); ``choice`` -- the name with the
          larger weight (the first on a tie);
        * ``scores`` -- dict name -> the scores of :func:`score_feature_space`;
        * ``priors`` -- dict name -> that space's own prior; ``propagators`` -- dict name ->
          the fitted propagator.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.RandomState(0)
    >>> y_true = np.repeat([0, 1], 40)
    >>> good = np.eye(2)[y_true] * 5 + rng.normal(0, 1, (80, 2))
    >>> y = np.full(80, -1)
    >>> y[[0, 40]] = [0, 1]
    >>> check = compare_feature_spaces({"f_fine": good, "pixels": rng.normal(0, 1, (80, 4))}, y,
    ...                                random_state=0)
    >>> check.choice, bool((check.transduction == y_true).mean() > 0.9)
    ('f_fine', True)
    """
    if len(spaces) < 2:
        raise ValueError(f"spaces must hold two or more feature spaces, got {len(spaces)}")
    names = list(spaces)
    rows = {name: len(spaces[name]) for name in names}
    if len(set(rows.values()) | {len(y)}) != 1:
        raise ValueError(f"the spaces must hold the same samples as y ({len(y)}); got rows "
                         + ", ".join(f"{name}: {n}" for name, n in rows.items()))
    rng = check_random_state_or_generator(random_state)
    results = [score_feature_space(spaces[name], y, propagator=propagator, n_rounds=n_rounds,
                                   random_state=rng) for name in names]
    weights = _space_weights([r.scores for r in results], float(sharpness))
    proba = sum(w * r.label_distributions for w, r in zip(weights, results))
    reference = sum(w * _calibration_reference(r.propagator) for w, r in zip(weights, results))
    calibrated = calibrate_confidence(proba, reference, sample_mask=unlabeled_mask(y))
    classes = results[0].classes
    transduction = classes[np.argmax(proba, axis=1)]
    return Bunch(
        label_distributions=(proba if calibration is None else calibrated.label_distributions),
        uncalibrated=proba, estimated_accuracy=calibrated.estimated_accuracy,
        temperature=1.0 if calibration is None else calibrated.temperature,
        classes=classes, transduction=transduction,
        covered=np.logical_or.reduce([np.broadcast_to(getattr(r.propagator, "covered_", True),
                                                      (len(y),)) for r in results]),
        weights={name: float(w) for name, w in zip(names, weights)},
        choice=names[int(np.argmax(weights))],
        scores={name: r.scores for name, r in zip(names, results)},
        priors={name: r.label_distributions for name, r in zip(names, results)},
        propagators={name: r.propagator for name, r in zip(names, results)},
    )
