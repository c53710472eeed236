"""Label-free checks of a classifier against the prior pseudo-labels that guided it.

A user's pool has no test set, so a classifier trained from a few labels is checked against
what it started from: the prior (one distribution per training image, from label
propagation). Where the prior is sure, it is nearly always right: with a calibrated prior,
its accuracy on its surest half is ``mean max(prior_i)`` over that half. A classifier that
disagrees with it there more often than that share of errors allows (plus ``tolerance``)
has lost what the prior knew; one that changes its mind only where the prior is unsure may be
improving on it, and passes. A classifier that collapsed onto a few classes fails whatever
it agrees with.

The prior's expected accuracy of a classifier, ``mean_i prior_i[prediction_i]``, is
reported beside it but decides nothing: the prior's own arg-max maximises it by
construction, so any change where the prior is unsure lowers it, including the changes that
make a trained model better (measured: a FlexMatch model at 98.0 % test accuracy scored 0.819
against the prior's own 0.847, while its prior-fitted start was at 94.4 %).

The checks only compare predictions with the prior: they cannot tell that a classifier is
*better* than its prior (no label-free measure can), only that it has not lost the prior's
confident part and has not collapsed onto a few classes.
"""

from __future__ import annotations

import numpy as np

#: a classifier predicting fewer than this share of the classes the prior predicts, or whose
#: largest class is more than COLLAPSE_SHARE_FACTOR times the prior's largest (and more than
#: half the pool), has collapsed
COLLAPSE_CLASS_SHARE = 0.7
COLLAPSE_SHARE_FACTOR = 2.0
#: the share of the pool, most confident by the prior first, on which agreement is reported
CONFIDENT_QUANTILE = 0.5


def expected_accuracy(prior, predicted) -> float:
    """``mean_i prior[i, predicted[i]]``: the accuracy of ``predicted`` (class indices into the
    prior's columns) if the prior's beliefs were right.

    Examples
    --------
    >>> import numpy as np
    >>> prior = np.array([[0.9, 0.1], [0.6, 0.4]])
    >>> expected_accuracy(prior, np.array([0, 0])), expected_accuracy(prior, np.array([0, 1]))
    (0.75, 0.65)
    """
    prior = np.asarray(prior, dtype=np.float64)
    predicted = np.asarray(predicted, dtype=np.int64)
    return float(np.mean(prior[np.arange(len(prior)), predicted]))


def confident_agreement(prior, predicted, quantile: float = CONFIDENT_QUANTILE) -> float:
    """Share of the ``quantile`` most confident prior rows whose argmax is ``predicted``.

    Examples
    --------
    >>> import numpy as np
    >>> prior = np.array([[0.9, 0.1], [0.2, 0.8], [0.55, 0.45], [0.5, 0.5]])
    >>> confident_agreement(prior, np.array([0, 1, 1, 1]))   # the two surest rows agree
    1.0
    """
    prior = np.asarray(prior, dtype=np.float64)
    surest = _surest(prior.max(axis=1), quantile)
    return float(np.mean(prior[surest].argmax(axis=1) == np.asarray(predicted)[surest]))


def _surest(confidence, quantile: float) -> np.ndarray:
    """Indices of the ``quantile`` most confident rows (ties in row order)."""
    n_kept = max(1, int(round(quantile * len(confidence))))
    return np.argsort(-confidence, kind="stable")[:n_kept]


def class_spread(prior, predicted, n_classes: int) -> dict:
    """How the predictions spread over the classes, beside the prior's argmax.

    Returns a dict with ``n_classes_predicted``, ``largest_class_share`` and the prior's
    ``prior_n_classes_predicted``, ``prior_largest_class_share``, and ``collapsed``: fewer
    than :data:`COLLAPSE_CLASS_SHARE` of the classes the prior predicts, or a largest class
    over half the pool and :data:`COLLAPSE_SHARE_FACTOR` times the prior's largest.
    """
    predicted = np.asarray(predicted, dtype=np.int64)
    prior_predicted = np.asarray(prior).argmax(axis=1)
    counts = np.bincount(predicted, minlength=n_classes)
    prior_counts = np.bincount(prior_predicted, minlength=n_classes)
    largest, prior_largest = counts.max() / len(predicted), prior_counts.max() / len(predicted)
    n_predicted, prior_n_predicted = int((counts > 0).sum()), int((prior_counts > 0).sum())
    collapsed = (n_predicted < COLLAPSE_CLASS_SHARE * prior_n_predicted
                 or (largest > 0.5 and largest > COLLAPSE_SHARE_FACTOR * prior_largest))
    return {"n_classes_predicted": n_predicted, "largest_class_share": round(float(largest), 4),
            "prior_n_classes_predicted": prior_n_predicted,
            "prior_largest_class_share": round(float(prior_largest), 4), "collapsed": bool(collapsed)}


def check_against_prior(prior, candidates: dict, tolerance: float) -> dict:
    """Rank the ``candidates`` (name -> predicted class indices, most trained first) by the
    label-free checks against ``prior``; the first that passes is chosen.

    A candidate passes when it has not collapsed (:func:`class_spread`) and its
    :func:`confident_agreement` with the prior's surest half is at most ``tolerance`` below
    the prior's own expected accuracy there (``confident_reference``: the mean largest
    probability of that half). The last candidate (the fallback, e.g. the model fitted to the
    prior) is chosen when none passes.

    Returns
    -------
    dict
        ``prior_expected_accuracy`` (``mean max prior``), ``confident_reference``, per
        candidate its ``expected_accuracy`` (reported only), ``confident_agreement``, class
        spread and ``passed``, and ``chosen`` (a name).

    Examples
    --------
    >>> import numpy as np
    >>> prior = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8]])
    >>> checks = check_against_prior(prior, {"trained": np.array([0, 0, 0, 0]),
    ...                                      "start": np.array([0, 0, 1, 1])}, tolerance=0.02)
    >>> checks["chosen"], checks["candidates"]["trained"]["passed"]
    ('start', False)
    """
    prior = np.asarray(prior, dtype=np.float64)
    confidence = prior.max(axis=1)
    surest = _surest(confidence, CONFIDENT_QUANTILE)
    confident_reference = float(np.mean(confidence[surest]))
    result = {"prior_expected_accuracy": round(float(np.mean(confidence)), 4),
              "confident_reference": round(confident_reference, 4), "tolerance": float(tolerance),
              "candidates": {}}
    chosen = None
    for name, predicted in candidates.items():
        agreement = confident_agreement(prior, predicted)
        entry = {"expected_accuracy": round(expected_accuracy(prior, predicted), 4),
                 "confident_agreement": round(agreement, 4),
                 **class_spread(prior, predicted, prior.shape[1])}
        entry["passed"] = bool(not entry["collapsed"] and agreement >= confident_reference - tolerance)
        result["candidates"][name] = entry
        if chosen is None and entry["passed"]:
            chosen = name
    result["chosen"] = chosen if chosen is not None else list(candidates)[-1]
    return result
