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
  :class:`Interval` is scikit-learn's, except that a bool is not a number (``max_iter=True``
  or ``graph_weight=True`` is refused, as the package's checks always did);
* rates and probabilities: ``Interval(Real, 0, 1, closed=...)`` with the bounds the
  estimator's docstring states;
* ``"auto"``: ``StrOptions({"auto"})`` beside the numeric constraint;
* random states: :data:`RANDOM_STATE` (scikit-learn's, plus a numpy ``Generator``);
* torch devices: :data:`DEVICE`; torch CPU threads: :data:`N_THREADS`;
* shapes the constraint language has no word for (an image size, a ``(C, H, W)`` shape, a
  list of cluster counts, skorch callbacks, a torch module): the constraints below, each a
  test and the words the error uses for it.

A value checked outside ``fit`` (an argument of a method such as ``select(n_budget)``) goes
through :func:`check_param`, which raises the same error.
"""

from __future__ import annotations

import re
import sys
from numbers import Integral, Real

import numpy as np
from sklearn.base import _fit_context
from sklearn.utils._param_validation import (
    HasMethods,
    Hidden,
    InvalidParameterError,
    Options,
    RealNotInt,
    StrOptions,
    validate_parameter_constraints,
    validate_params,
)
from sklearn.utils._param_validation import Interval as _SklearnInterval

__all__ = [
    "DEVICE",
    "Fitted",
    "HasMethods",
    "Hidden",
    "ImageShape",
    "ImageSize",
    "IntSequence",
    "Interval",
    "Integral",
    "InvalidParameterError",
    "MeanStd",
    "NamedCallbacks",
    "N_THREADS",
    "Options",
    "RANDOM_STATE",
    "Real",
    "RealNotInt",
    "StrOptions",
    "TorchDevice",
    "TorchModule",
    "check_param",
    "fit_context",
    "validate_params",
]


class Interval(_SklearnInterval):
    """scikit-learn's ``Interval``, but ``True`` and ``False`` are not numbers in it.

    ``isinstance(True, numbers.Integral)`` holds, so scikit-learn accepts ``max_iter=True``
    as 1; here a bool is refused (it is almost always a parameter given in the wrong place).
    """

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


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


class _Test(Options):
    """A constraint given by a test (``_test``) and the words for it (``_words``).

    A subclass of ``Options`` only because scikit-learn's ``make_constraint`` accepts its own
    constraint types and no other. ``generate_invalid_param_val`` has no invalid value for
    it, so ``check_param_validation`` tries such a parameter with its wrong-type object only;
    the package's tests give the invalid values.
    """

    def __init__(self):
        super().__init__(object, set())

    def is_satisfied_by(self, val):
        return self._test(val)

    def __str__(self):
        return self._words()


def _is_int(value, minimum) -> bool:
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_)) and value >= minimum


def _sequence(value):
    """``value`` as a list when it is a sequence of values (not a string, not a mapping), else None."""
    if isinstance(value, (str, bytes, dict)):
        return None
    if not hasattr(value, "__len__") or not hasattr(value, "__iter__"):
        return None
    if getattr(value, "ndim", 1) != 1:  # a 0-d or n-d array
        return None
    return list(value)


class ImageSize(_Test):
    """An image size: an int ``>= minimum`` (square) or a pair ``(height, width)`` of them.

    Any length-2 sequence of ints is a pair: a tuple, a list, a ``torch.Size``, a 1-D array.
    """

    def __init__(self, minimum: int = 1):
        super().__init__()
        self.minimum = minimum

    def _test(self, val):
        pair = _sequence(val)
        if pair is None:
            return _is_int(val, self.minimum)
        return len(pair) == 2 and all(_is_int(side, self.minimum) for side in pair)

    def _words(self):
        return f"an int >= {self.minimum} or a pair (height, width) of ints >= {self.minimum}"


class ImageShape(_Test):
    """A ``(C, H, W)`` image shape: three ints ``>= 1``; with ``inferred=True`` one may be
    ``-1``, inferred from the number of features as in ``numpy.reshape``."""

    def __init__(self, inferred: bool = False):
        super().__init__()
        self.inferred = inferred

    def _test(self, val):
        shape = _sequence(val)
        if shape is None or len(shape) != 3 or not all(isinstance(s, Integral) for s in shape):
            return False
        unknown = [s for s in shape if s == -1] if self.inferred else []
        return len(unknown) <= 1 and all(_is_int(s, 1) for s in shape if not (unknown and s == -1))

    def _words(self):
        inferred = " (one may be -1)" if self.inferred else ""
        return f"a tuple (C, H, W) of 3 positive ints{inferred}"


class IntSequence(_Test):
    """A non-empty sequence of ints ``>= minimum`` (a list of cluster counts)."""

    def __init__(self, minimum: int = 1):
        super().__init__()
        self.minimum = minimum

    def _test(self, val):
        values = _sequence(val)
        return bool(values) and all(_is_int(v, self.minimum) for v in values)

    def _words(self):
        return f"a non-empty sequence of ints >= {self.minimum}"


class NamedCallbacks(_Test):
    """skorch callbacks as skorch takes them: a list of ``(name, callback)`` pairs, each
    callback a ``skorch.callbacks.Callback`` instance or subclass."""

    def _test(self, val):
        from skorch.callbacks import Callback  # only the torch estimators take callbacks

        def is_callback(obj):
            return isinstance(obj, Callback) or (isinstance(obj, type) and issubclass(obj, Callback))

        return isinstance(val, list) and all(
            isinstance(item, (tuple, list)) and len(item) == 2 and isinstance(item[0], str)
            and is_callback(item[1]) for item in val)

    def _words(self):
        return "a list of (name, skorch.callbacks.Callback) pairs"


class MeanStd(_Test):
    """Per-channel statistics ``(mean, std)``: two numbers, or two equally long sequences of
    numbers; finite means and positive, finite stds."""

    def _test(self, val):
        pair = _sequence(val)
        if pair is None or len(pair) != 2:
            return False
        try:
            mean, std = (np.atleast_1d(np.asarray(v, dtype=np.float64)) for v in pair)
        except (TypeError, ValueError):
            return False
        return (mean.ndim == 1 and mean.shape == std.shape and mean.size > 0 and bool(np.isfinite(mean).all())
                and bool(np.isfinite(std).all()) and bool((std > 0).all()))

    def _words(self):
        return ("a pair (mean, std) of numbers or of equally long sequences, with finite means "
                "and positive stds")


class Fitted(_Test):
    """An estimator fitted already: it holds the fitted attribute ``attribute`` (``what`` names
    the kind of estimator in the message)."""

    def __init__(self, attribute: str, what: str):
        super().__init__()
        self.attribute = attribute
        self.what = what

    def _test(self, val):
        return hasattr(val, self.attribute)

    def _words(self):
        return f"a fitted {self.what} (with {self.attribute})"


class TorchModule(_Test):
    """A ``torch.nn.Module`` instance (tested without importing torch: a module can only exist
    once torch is imported)."""

    def _test(self, val):
        torch = sys.modules.get("torch")
        return torch is not None and isinstance(val, torch.nn.Module)

    def _words(self):
        return "a torch.nn.Module"


#: ``device`` of the torch estimators
DEVICE = [TorchDevice()]
#: ``random_state``: None, an int in [0, 2**32 - 1], a ``RandomState`` or a numpy ``Generator``
RANDOM_STATE = ["random_state", np.random.Generator]
#: ``n_threads`` of the torch estimators: a count, ``"auto"`` or None (torch's setting)
N_THREADS = [Interval(Integral, 1, None, closed="left"), StrOptions({"auto"}), None]


def check_param(value, name: str, constraints: list, caller_name: str | None = None):
    """Check one value against ``constraints`` and return it, or raise ``InvalidParameterError``.

    For arguments checked outside ``fit`` and outside a :func:`validate_params` function (a
    method argument such as ``select(n_budget)``, a helper's argument), with scikit-learn's
    message: ``The 'n_budget' parameter of RandomSelector.select must be an int in the range
    [1, inf). Got 0 instead.`` Without ``caller_name`` the message starts with the name:
    ``image_size must be ... Got ... instead.`` It checks whatever scikit-learn's
    ``skip_parameter_validation`` setting says: these checks are cheap, and the code after
    them relies on them.

    Examples
    --------
    >>> check_param(3, "n_budget", [Interval(Integral, 1, None, closed="left")])
    3
    >>> try:
    ...     check_param(0, "n_budget", [Interval(Integral, 1, None, closed="left")],
    ...                 "RandomSelector.select")
    ... except ValueError as exc:
    ...     print(exc)
    The 'n_budget' parameter of RandomSelector.select must be an int in the range [1, inf). Got 0 instead.
    """
    placeholder = caller_name or "<caller>"
    try:
        validate_parameter_constraints({name: constraints}, {name: value}, caller_name=placeholder)
    except InvalidParameterError as exc:
        if caller_name is not None:
            raise
        message = str(exc).replace(f"The {name!r} parameter of {placeholder} must be", f"{name} must be", 1)
        raise InvalidParameterError(message) from None
    return value


def fit_context(*, prefer_skip_nested_validation: bool = True):
    """Decorator for ``fit``-like methods: validates ``_parameter_constraints`` first.

    scikit-learn's ``_fit_context``: nested estimators (a ``prior`` Pipeline, an ``encoder``)
    are validated by their own ``fit`` when ``prefer_skip_nested_validation`` is False.
    """
    return _fit_context(prefer_skip_nested_validation=prefer_skip_nested_validation)
