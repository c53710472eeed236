"""Label-free calibration of prior pseudo-labels: one temperature, fitted without labels.

A prior ``p`` is tempered as ``p ** (1 / T)``, rows renormalised: ``T < 1`` sharpens,
``T > 1`` softens, and the arg-max of every row -- hence the prior's accuracy -- is unchanged.
``T`` is chosen so that the mean largest probability of the unlabeled samples equals an
accuracy estimated without their labels: the mean probability that a *reference* prior (the
graph part of :class:`~as3l_sklearn.propagation.CombinedPropagator`) gives to the class the
prior predicts. Why the graph: with one label per class the cluster votes spread the mass of
every clustering that leaves a sample in a cluster without a label uniformly over the
classes, which is no evidence of confusion, and the averaged prior is underconfident where the
classes separate well (digits: 89 % accurate at a mean confidence of 0.71); the graph's
spreading mass reflects how contested a sample is by the other labels, and its expectation of
the prior's accuracy was the closest label-free estimate measured
(``benchmarks/bench_prior_calibration.py``, ``docs/propagation.md``).
"""

from __future__ import annotations

import numpy as np
from sklearn.utils import Bunch

from ..utils._param_validation import Interval, Real, validate_params

__all__ = ["calibrate_confidence", "temper"]

#: Range of the fitted temperature: beyond it the prior is one-hot or uniform for all purposes.
TEMPERATURE_BOUNDS = (0.05, 20.0)
_BISECTION_STEPS = 60


def _log_proba(proba):
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(proba, dtype=np.float64))


def _tempered(log_proba, temperature):
    scaled = log_proba / temperature
    scaled -= scaled.max(axis=1, keepdims=True)  # rows sum to 1: the max is finite
    out = np.exp(scaled)
    return out / out.sum(axis=1, keepdims=True)


@validate_params(
    {"proba": ["array-like"], "temperature": [Interval(Real, 0, None, closed="neither")]},
    prefer_skip_nested_validation=True,
)
def temper(proba, temperature):
    """Rows of ``proba`` raised to the power ``1 / temperature`` and renormalised.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        Non-negative rows summing to 1 (a prior or ``predict_proba`` output).
    temperature : float > 0
        ``1`` keeps ``proba``; below 1 sharpens, above 1 softens. The arg-max of every row
        (and which entries are zero) never changes.

    Returns
    -------
    tempered : ndarray of shape (n_samples, n_classes)

    Examples
    --------
    >>> temper([[0.6, 0.4]], 0.5).round(3)
    array([[0.692, 0.308]])
    """
    proba = np.asarray(proba, dtype=np.float64)
    if proba.ndim != 2 or proba.size == 0:
        raise ValueError(f"proba must be a non-empty 2-D array, got shape {proba.shape}")
    if not np.all(np.isfinite(proba)) or np.any(proba < 0) or np.any(proba.sum(axis=1) <= 0):
        raise ValueError("proba must hold finite, non-negative rows with a positive sum")
    return _tempered(_log_proba(proba / proba.sum(axis=1, keepdims=True)), float(temperature))


def _fit_temperature(log_proba, target):
    """The temperature whose tempered rows have a mean largest probability of ``target``
    (bisection in log space: the mean largest probability falls as the temperature rises)."""
    low, high = np.log(TEMPERATURE_BOUNDS[0]), np.log(TEMPERATURE_BOUNDS[1])
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if _tempered(log_proba, np.exp(middle)).max(axis=1).mean() > target:
            low = middle
        else:
            high = middle
    return float(np.exp(0.5 * (low + high)))


def _check_rows(array, name, shape=None):
    array = np.asarray(array, dtype=np.float64)
    if array.ndim != 2 or array.size == 0 or (shape is not None and array.shape != shape):
        expected = f" {shape}" if shape is not None else " (n_samples, n_classes)"
        raise ValueError(f"{name} must be a non-empty 2-D array of shape{expected}, "
                         f"got {array.shape}")
    if not np.all(np.isfinite(array)) or np.any(array < 0):
        raise ValueError(f"{name} must hold finite, non-negative probabilities")
    return array


@validate_params(
    {"proba": ["array-like"], "reference": ["array-like"], "sample_mask": ["array-like", None]},
    prefer_skip_nested_validation=True,
)
def calibrate_confidence(proba, reference, *, sample_mask=None):
    """Temper a prior so that its mean confidence is the accuracy a reference expects of it.

    No label is used. The estimated accuracy is the mean, over the samples of
    ``sample_mask`` (typically the unlabeled ones), of the probability ``reference`` gives to
    the class ``proba`` predicts; the temperature ``T`` (in [0.05, 20]) is then fitted so
    that the mean largest probability of :func:`temper` ``(proba, T)`` over the same samples
    equals that estimate. ``T < 1`` sharpens an underconfident prior, ``T > 1`` softens an
    overconfident one; the arg-max of every row is unchanged, so is the accuracy.

    Parameters
    ----------
    proba : array-like of shape (n_samples, n_classes)
        The prior to calibrate (rows summing to 1).
    reference : array-like of shape (n_samples, n_classes)
        The prior whose expectation estimates the accuracy, with the same columns (for
        :class:`~as3l_sklearn.propagation.CombinedPropagator`, its graph part).
    sample_mask : array-like of bool of shape (n_samples,) or None, default=None
        Samples the estimate and the fit use (``None``: all). Every row is tempered.

    Returns
    -------
    result : :class:`~sklearn.utils.Bunch`
        ``label_distributions`` (the tempered ``proba``), ``temperature`` (float) and
        ``estimated_accuracy`` (float; with no sample in ``sample_mask``, ``temperature`` is
        1 and ``estimated_accuracy`` ``None``).

    Examples
    --------
    >>> import numpy as np
    >>> from as3l_sklearn.propagation import calibrate_confidence
    >>> proba = np.array([[0.6, 0.4], [0.3, 0.7]])     # mean confidence 0.65
    >>> reference = np.array([[0.9, 0.1], [0.1, 0.9]])  # expects 90 % accuracy
    >>> result = calibrate_confidence(proba, reference)
    >>> round(result.estimated_accuracy, 2), bool(result.temperature < 1)
    (0.9, True)
    >>> round(float(result.label_distributions.max(axis=1).mean()), 3)
    0.9
    """
    proba = _check_rows(proba, "proba")
    reference = _check_rows(reference, "reference", shape=proba.shape)
    if np.any(proba.sum(axis=1) <= 0):
        raise ValueError("proba has a row of zeros; every row must have a positive sum")
    proba = proba / proba.sum(axis=1, keepdims=True)
    mask = (np.ones(len(proba), dtype=bool) if sample_mask is None
            else np.asarray(sample_mask))
    if mask.dtype != bool or mask.shape != (len(proba),):
        raise ValueError(f"sample_mask must be a boolean array of shape ({len(proba)},), got "
                         f"dtype {mask.dtype} and shape {mask.shape}")
    if not mask.any():
        return Bunch(label_distributions=proba, temperature=1.0, estimated_accuracy=None)
    totals = reference[mask].sum(axis=1)
    predicted = np.argmax(proba[mask], axis=1)
    expected = reference[mask][np.arange(len(predicted)), predicted]
    estimate = float(np.mean(np.divide(expected, totals, out=np.full_like(expected, 1.0
                                       / proba.shape[1]), where=totals > 0)))
    log_proba = _log_proba(proba)
    temperature = _fit_temperature(log_proba[mask], estimate)
    return Bunch(label_distributions=_tempered(log_proba, temperature), temperature=temperature,
                 estimated_accuracy=estimate)
