"""Parameter constraints the scikit-learn way: ``_parameter_constraints`` on every estimator,
checked by ``_validate_params`` at the start of ``fit`` (through :func:`fit_context`), and
:func:`validate_params` on public functions.

Like imbalanced-learn, the package reaches scikit-learn's private ``_param_validation``
module (and ``sklearn.base._fit_context``) in this one file only: should a release move
them, the fix is here. The error they raise, ``InvalidParameterError``, is both a
``ValueError`` and a ``TypeError`` and names the parameter:
``The 'max_iter' parameter of PriorGuidedFlexMatchClassifier must be an int in the range
[1, inf) or a str among {'auto'}. Got 0 instead.``

Conventions used across the package:

* counts: ``Interval(Integral, 1, None, closed="left")`` (0 allowed: ``closed="left"`` from 0);
* rates and probabilities: ``Interval(Real, 0, 1, closed=...)`` with the bounds the
  estimator's docstring states;
* ``"auto"``: ``StrOptions({"auto"})`` beside the numeric constraint;
* random states: :data:`RANDOM_STATE` (scikit-learn's, plus a numpy ``Generator``);
* torch devices: :data:`DEVICE`.
"""

from __future__ import annotations

import re
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_params,
)

__all__ = [
    "DEVICE",
    "HasMethods",
    "Hidden",
    "Interval",
    "Integral",
    "InvalidParameterError",
    "Options",
    "RANDOM_STATE",
    "Real",
    "StrOptions",
    "TorchDevice",
    "fit_context",
    "validate_params",
]


class TorchDevice(StrOptions):
    """A torch device string: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    A subclass of ``StrOptions`` so that scikit-learn's ``make_constraint`` takes it as it is;
    whether CUDA is really there is checked later, by :func:`as3l_sklearn.utils.resolve_device`.
    """

    _PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")

    def __init__(self):
        super().__init__({"auto", "cpu", "cuda"})

    def is_satisfied_by(self, val):
        return isinstance(val, str) and self._PATTERN.fullmatch(val) is not None

    def __str__(self):
        return "a str among 'auto', 'cpu', 'cuda' or 'cuda:N'"


#: ``device`` of the torch estimators
DEVICE = [TorchDevice()]
#: ``random_state``: None, an int in [0, 2**32 - 1], a ``RandomState`` or a numpy ``Generator``
RANDOM_STATE = ["random_state", np.random.Generator]


def fit_context(*, prefer_skip_nested_validation: bool = True):
    """Decorator for ``fit``-like methods: validates ``_parameter_constraints`` first.

    scikit-learn's ``_fit_context``: nested estimators (a ``prior`` Pipeline, an ``encoder``)
    are validated by their own ``fit`` when ``prefer_skip_nested_validation`` is False.
    """
    return _fit_context(prefer_skip_nested_validation=prefer_skip_nested_validation)
