"""Input validation shared by every estimator.

Conventions (the same as scikit-learn's semi-supervised module):

* features are a 2-D ``n_samples x n_features`` array; they are used as float32 (faiss needs
  it), so values too large for float32, or whose squared distances would overflow or
  underflow it, are rejected rather than silently rescaled (see :func:`check_features`);
* images are ``uint8`` arrays ``n x H x W x C`` (or ``n x H x W`` for grayscale), or floating
  arrays ``n x C x H x W`` (or ``n x H x W``); floating arrays whose *last* axis has 1, 2, 3 or
  4 entries and is the smallest (RGBA from ``matplotlib.pyplot.imread``) are read as
  ``n x H x W x C`` (see :func:`check_images`); a 2-D ``n x (C*H*W)`` array is accepted when
  the estimator is given ``image_shape=(C, H, W)``; a list of equally sized PIL images works;
* partial labels mark unlabeled samples with ``-1``: the number, or the string ``"-1"``
  (spaces ignored) as it comes back from CSV files and pandas; string class labels need an
  ``object`` array, as in :class:`sklearn.semi_supervised.SelfTrainingClassifier`, or a
  string array using ``"-1"`` for unlabeled samples;
* ``random_state`` may be None, an int, a :class:`numpy.random.RandomState` or a
  :class:`numpy.random.Generator` (see
  :func:`~as3l_sklearn.utils.check_random_state_or_generator`).

Every error is a ``ValueError`` or ``TypeError`` whose message names the argument. Nothing
here imports torch (``_torch.py`` builds on this module, never the reverse); the parameters of
the estimators are checked by their ``_parameter_constraints`` (``_param_validation.py``).
"""

from __future__ import annotations

import numbers
import warnings

import numpy as np
from sklearn.base import ClassifierMixin
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array

from ._param_validation import (
    RANDOM_STATE,
    ImageShape,
    ImageSize,
    IntSequence,
    Integral,
    Interval,
    check_param,
)

UNLABELED = -1

# Largest Euclidean row norm accepted by check_features. Squared distances between rows are
# at most (2 * norm)**2 = 4e36, and faiss computes them as |x|^2 + |y|^2 - 2 x.y in float32
# (max 3.4e38), which leaves a factor of about 85 for the sums k-means takes over them. Larger
# features made faiss abort the whole process (exit 134) and the selectors pick garbage.
MAX_FEATURE_NORM = 1e18
# Smallest largest-magnitude accepted (all-zero features aside). Below it squared distances
# fall under float32's smallest normal number (1.2e-38) and lose all precision -- float64
# features x1e-300 even become all zeros in float32 -- so k-means put every sample in one
# cluster and the selectors picked [172, 0, 1, 2] without a word.
MIN_FEATURE_SCALE = 1e-15


class UnlabeledInScoreWarning(UserWarning):
    """Warning: ``score`` was given a ``y`` holding ``-1`` (unlabeled) samples.

    ``score`` (scikit-learn's accuracy) compares predictions with every entry of ``y``, so
    each unlabeled sample counts as a wrong prediction of the "class" ``-1`` and the score is
    far too low. Score on the labeled samples only with
    :func:`as3l_sklearn.metrics.make_labeled_scorer`, and cross-validate with
    :class:`as3l_sklearn.model_selection.SemiSupervisedKFold`.
    """


def is_unlabeled_value(value) -> bool:
    """True for a value that marks an unlabeled sample: the number ``-1`` (not ``True``/
    ``False``), or the string ``"-1"`` (surrounding spaces ignored).

    The string form is accepted because ``-1`` read back from a CSV file, a pandas column of
    strings, or ``np.array(["cat", -1])`` arrives as ``"-1"``; treating it as a class name
    would silently add a class ``"-1"``.

    Examples
    --------
    >>> [is_unlabeled_value(v) for v in (-1, -1.0, "-1", " -1 ", "cat", 1, True)]
    [True, True, True, True, False, False, False]
    """
    if isinstance(value, (bool, np.bool_)):
        return False
    if isinstance(value, numbers.Number):
        return value == UNLABELED
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if isinstance(value, str):
        return value.strip() == str(UNLABELED)
    return False


def unlabeled_mask(y) -> np.ndarray:
    """Boolean mask of the entries of a 1-D label array that mark unlabeled samples.

    ``-1`` as a number, or as the string ``"-1"`` in string / ``object`` arrays (see
    :func:`is_unlabeled_value`).
    """
    y = np.asarray(y)
    if y.dtype.kind in "iuf":
        return y == UNLABELED
    if y.dtype.kind in "US":
        return np.char.strip(y.astype(str)) == str(UNLABELED)
    if y.dtype == object:
        return np.fromiter((is_unlabeled_value(v) for v in y.ravel()), dtype=bool,
                           count=y.size).reshape(y.shape)
    return np.zeros(y.shape, dtype=bool)


class PartiallyLabeledClassifierMixin(ClassifierMixin):
    """``ClassifierMixin`` whose ``score`` warns when ``y`` holds ``-1`` (unlabeled).

    Shared by every classifier and propagator of the package, so that the warning and its
    advice are written once.
    """

    def score(self, X, y, sample_weight=None):
        """Mean accuracy on ``(X, y)``, as :meth:`sklearn.base.ClassifierMixin.score`.

        Every entry of ``y`` is scored, as scikit-learn does; a ``-1`` (unlabeled) in ``y``
        therefore counts as a wrong prediction of a class "-1" and lowers the score, so it
        warns with :class:`~as3l_sklearn.utils.UnlabeledInScoreWarning`. This happens with
        ``pipe.score(X, y)`` on partially labeled ``y`` or ``cross_val_score`` with a plain
        ``KFold``: score labeled samples only with
        :func:`as3l_sklearn.metrics.make_labeled_scorer` and split with
        :class:`as3l_sklearn.model_selection.SemiSupervisedKFold`.

        Parameters
        ----------
        X : array-like
            Images or features, as the estimator's ``predict`` takes them.
        y : array-like of shape (n_samples,)
            True labels.
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        score : float
        """
        warn_if_unlabeled_in_score(y, type(self).__name__)
        return super().score(X, y, sample_weight=sample_weight)


def warn_if_unlabeled_in_score(y, estimator_name: str, *, stacklevel: int = 3) -> bool:
    """Warn with :class:`UnlabeledInScoreWarning` when ``y`` given to ``score`` holds ``-1``.

    Call it at the top of an estimator's ``score(X, y)``: scikit-learn's accuracy counts
    ``-1`` as a class, so a partially labeled ``y`` (as passed by ``pipe.score(X, y)`` or by
    ``cross_val_score`` with a plain ``KFold``) gives a score that is silently far too low.

    Parameters
    ----------
    y : array-like
        The true labels given to ``score``.
    estimator_name : str
        Named in the message, e.g. ``type(self).__name__``.
    stacklevel : int, default=3
        Passed to :func:`warnings.warn`; 3 points at the caller of ``score``.

    Returns
    -------
    warned : bool
        Whether ``y`` held ``-1`` (and so whether the warning was given).

    Examples
    --------
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_if_unlabeled_in_score([0, 1, -1], "MyEstimator")
    True
    >>> caught[0].category.__name__
    'UnlabeledInScoreWarning'
    """
    try:
        mask = unlabeled_mask(np.asarray(y))
    except Exception:  # an odd y is score's business to reject, not this warning's
        return False
    n_unlabeled = int(mask.sum())
    if n_unlabeled == 0:
        return False
    warnings.warn(
        f"y passed to {estimator_name}.score holds {n_unlabeled} of {mask.size} samples marked "
        "-1 (unlabeled); score counts -1 as a class, so the score is too low. Score the "
        "labeled samples only: pass scoring=as3l_sklearn.metrics.make_labeled_scorer('accuracy') "
        "(or call it as scorer(estimator, X, y)), and cross-validate with "
        "as3l_sklearn.model_selection.SemiSupervisedKFold",
        UnlabeledInScoreWarning,
        stacklevel=stacklevel,
    )
    return True


def check_random_state_or_generator(random_state, name: str = "random_state") -> np.random.RandomState:
    """``check_random_state`` that also accepts a :class:`numpy.random.Generator`.

    A ``Generator`` cannot seed a ``RandomState`` directly, so one 31-bit seed is drawn from
    it (advancing it, as drawing from a ``RandomState`` instance would) and seeds a fresh
    ``RandomState``. Anything else goes to :func:`sklearn.utils.check_random_state`; a value
    that is none of these raises ``InvalidParameterError`` naming ``name``.

    Examples
    --------
    >>> import numpy as np
    >>> rs = check_random_state_or_generator(np.random.default_rng(0))
    >>> isinstance(rs, np.random.RandomState)
    True
    """
    check_param(random_state, name, RANDOM_STATE)
    if isinstance(random_state, np.random.Generator):
        return np.random.RandomState(int(random_state.integers(0, 2**31 - 1)))
    return check_random_state(random_state)


def check_features(F, *, name: str = "X", min_samples: int = 1, estimator=None) -> np.ndarray:
    """Validate a 2-D feature matrix and return it as C-contiguous float32.

    Raises a ``ValueError`` naming ``name`` for NaN/inf, an ndim other than 2, fewer than
    ``min_samples`` rows, and for values float32 cannot hold safely: features are used as
    float32 (faiss requires it), so finiteness is checked *after* the cast (``1e300`` is a
    finite float64 but infinite in float32), and a row whose Euclidean norm exceeds
    :data:`MAX_FEATURE_NORM` (``1e18``) is rejected because squared distances between such
    rows overflow float32 (faiss aborted the process on them). At the other end, features
    whose largest magnitude is below :data:`MIN_FEATURE_SCALE` (``1e-15``, all zeros aside)
    are rejected because their squared distances underflow float32 (float64 ``x1e-300``
    becomes all zeros). Such features are rejected rather than rescaled in place, so that
    what an estimator stores and returns is in the caller's units: scale them first (e.g.
    :class:`sklearn.preprocessing.StandardScaler`).

    Examples
    --------
    >>> check_features([[0, 1], [2, 3]]).dtype
    dtype('float32')
    """
    shape = _shape_or_none(F)
    if shape is not None and len(shape) != 2:
        # "Reshape your data" is the phrase scikit-learn (and its estimator checks) use
        hint = (f". Reshape your data: {name}.reshape(-1, 1) for a single feature, "
                f"{name}.reshape(1, -1) for a single sample") if len(shape) < 2 else ""
        raise ValueError(
            f"{name} must be a 2-D array of shape (n_samples, n_features), got a "
            f"{len(shape)}-D input of shape {shape}{hint}"
        )
    # finiteness is checked once, after the cast, in _check_float32_range
    F = _check_array_named(F, name=name, min_samples=min_samples, estimator=estimator,
                           ensure_all_finite=False)
    with np.errstate(over="ignore"):  # an overflowing cast is reported below, by name
        F32 = np.ascontiguousarray(F, dtype=np.float32)
    _check_float32_range(F, F32, name, min_samples=min_samples, estimator=estimator)
    return F32


def _check_array_named(F, *, name, min_samples, estimator, ensure_all_finite):
    """:func:`sklearn.utils.check_array` for a 2-D float array; a ``ValueError`` names ``name``."""
    try:
        return check_array(
            F,
            dtype=[np.float32, np.float64],
            ensure_2d=True,
            ensure_min_samples=min_samples,
            ensure_all_finite=ensure_all_finite,
            input_name=name,
            estimator=estimator,
        )
    except ValueError as exc:
        message = str(exc)
        if name not in message:
            message = f"{name}: {message}"
        raise ValueError(message) from exc


def _shape_or_none(X):
    """Shape of an array, a scalar or a regular nested list; None when it has none (ragged
    lists, data frames and the like are left to :func:`sklearn.utils.check_array`)."""
    if isinstance(X, np.ndarray):
        return X.shape
    if np.isscalar(X) or isinstance(X, (list, tuple)):
        try:
            return np.shape(X)
        except ValueError:  # ragged
            return None
    return None


def _check_float32_range(original: np.ndarray, F: np.ndarray, name: str, **check) -> None:
    """Raise unless float32 ``F`` is finite and its squared distances cannot overflow.

    One max and one min over ``F`` settle it for almost every input: NaN propagates through
    both and an overflowing cast shows as inf, so this also replaces scikit-learn's
    finiteness pass (whose messages are kept for NaN and inf given by the caller).
    """
    if F.size == 0:
        return
    largest = max(abs(float(F.max())), abs(float(F.min())))
    if not np.isfinite(largest):
        if not np.isfinite(original).all():  # NaN or inf in the input: scikit-learn's message
            _check_array_named(original, name=name, ensure_all_finite=True, **check)
        biggest = float(np.abs(original).max())
        raise ValueError(
            f"{name} has values up to {biggest:.3g} in magnitude, which overflow float32 (max "
            f"{np.finfo(np.float32).max:.3g}; features are used as float32). Scale the features "
            "first, e.g. with sklearn.preprocessing.StandardScaler"
        )
    if largest < MIN_FEATURE_SCALE:
        biggest = float(np.abs(original).max())  # float64 input may have become all zeros
        if biggest > 0:
            raise ValueError(
                f"{name} has values of at most {biggest:.3g} in magnitude; their squared "
                "distances underflow float32 (features are used as float32, and a largest "
                f"magnitude below {MIN_FEATURE_SCALE:.0e} is not accepted). Scale the features "
                "first, e.g. with sklearn.preprocessing.StandardScaler"
            )
        return  # all zeros: degenerate, but exactly representable
    # |row| <= largest * sqrt(d) settles almost every input; only near the limit are the
    # row norms computed (in float64, where they cannot overflow)
    if largest * np.sqrt(F.shape[1]) <= MAX_FEATURE_NORM:
        return
    norms = np.sqrt(np.einsum("ij,ij->i", F, F, dtype=np.float64))
    worst = float(norms.max())
    if worst > MAX_FEATURE_NORM:
        raise ValueError(
            f"{name} has rows of Euclidean norm up to {worst:.3g}; squared distances between "
            f"them overflow float32 (features are used as float32, and norms above "
            f"{MAX_FEATURE_NORM:.0e} are not accepted). Scale the features first, e.g. with "
            "sklearn.preprocessing.StandardScaler"
        )


def check_images(X, *, image_shape=None, name: str = "X", min_samples: int = 1, lazy: bool = False):
    """Validate images and return them as float32 ``n x C x H x W``.

    ``uint8`` input is read as ``n x H x W x C`` (or ``n x H x W``) and scaled to ``[0, 1]``;
    floating input is kept as it is and read as ``n x C x H x W`` (or ``n x H x W``), except
    that a 4-D floating array is read as channels-last ``n x H x W x C`` when its last axis
    has 1, 2, 3 or 4 entries and both other image axes are larger (as ``plt.imread`` gives
    RGBA pictures). When both readings fit (both end axes have the same count of 1 to 4,
    e.g. shape ``(n, 3, 32, 3)``, or the last axis is smaller than both image axes without
    being a channel count of 1 to 4, e.g. ``(n, 32, 32, 5)``) a ``ValueError`` asks for the
    unambiguous flattened form instead of guessing. A 2-D array is reshaped to
    ``(n,) + image_shape`` with ``image_shape = (C, H, W)`` (and scaled to ``[0, 1]`` when it
    is ``uint8``). A list of PIL images of one size and mode is stacked (palette and other
    modes are converted to RGB or RGBA, bilevel to grayscale); a list of images of different
    sizes raises a ``ValueError`` naming the sizes.

    Parameters
    ----------
    X : array-like
        The images.
    image_shape : tuple of 3 ints, optional
        ``(C, H, W)`` used to un-flatten 2-D input; required for 2-D input.
    name : str
        Name of the argument in error messages.
    min_samples : int
        Minimum number of images.
    lazy : bool, default=False
        Keep ``uint8`` images (3-D or 4-D: an ndarray, a ``np.memmap`` or an array-like such
        as :class:`~as3l_sklearn.datasets.ImageFolderArray`) as they are and return a
        :class:`~as3l_sklearn.utils._image_source.Uint8Images` view that converts on
        indexing, instead of a float32 copy 4x their size. Other input is converted as usual.

    Returns
    -------
    images : ndarray of shape (n, C, H, W), float32, C-contiguous
        Or, with ``lazy=True`` and uint8 images, a ``Uint8Images`` of that shape and dtype.

    Examples
    --------
    >>> import numpy as np
    >>> check_images(np.zeros((2, 8, 8, 3), dtype=np.uint8)).shape
    (2, 3, 8, 8)
    >>> check_images(np.zeros((2, 8, 8, 4), dtype=np.float32)).shape  # RGBA, channels-last
    (2, 4, 8, 8)
    >>> check_images(np.zeros((2, 12)), image_shape=(3, 2, 2)).shape
    (2, 3, 2, 2)
    """
    X = _unwrap_images(X, name)
    if lazy:
        from ._image_source import Uint8Images  # imports torch: only the estimators ask for lazy

        if isinstance(X, Uint8Images):  # checked already (handed on by another estimator)
            return X
        if getattr(X, "dtype", None) == np.uint8 and len(getattr(X, "shape", ())) in (3, 4):
            return _lazy_uint8_images(X, name, min_samples)
    X = _numeric_image_array(X, name)
    X, channels_last = _as_4d(X, image_shape, name)
    if X.shape[0] < min_samples:
        raise ValueError(f"{name} has {X.shape[0]} images but at least {min_samples} are required")
    return _float32_channels_first(X, channels_last, name)


def _unwrap_images(X, name: str):
    """A torch tensor as a numpy array, a list of PIL images stacked; a single PIL image refused."""
    if hasattr(X, "detach") and hasattr(X, "cpu"):  # a torch tensor
        X = X.detach().cpu().numpy()
    if _is_pil_image(X):
        raise ValueError(
            f"{name} is a single PIL image; pass a list of images (e.g. [image]), one per sample"
        )
    if isinstance(X, (list, tuple)) and len(X) > 0 and all(_is_pil_image(v) for v in X):
        X = _stack_pil_images(X, name)
    return X


def _numeric_image_array(X, name: str) -> np.ndarray:
    """``X`` as an ndarray of uint8, of another unambiguous integer layout, or of floats."""
    if not isinstance(X, np.ndarray):
        try:
            X = np.asarray(X)
        except Exception as exc:  # ragged lists and the like
            _raise_if_images_of_different_shapes(X, name)
            raise TypeError(f"{name} must be an array of images, got {type(X).__name__}") from exc
    if X.dtype == object or X.dtype.kind in "USMmV" or X.dtype == bool:
        _raise_if_images_of_different_shapes(X, name)
        raise TypeError(f"{name} must hold numbers (uint8 or float images), got dtype {X.dtype}")
    if X.dtype.kind == "c":
        raise TypeError(f"{name} must hold real numbers, got complex dtype {X.dtype}")
    if X.ndim in (3, 4) and X.dtype.kind in "iu" and X.dtype != np.uint8:
        # int64 images (e.g. from nested lists) are ambiguous: 0..255 channels-last, or
        # channels-first values? Guessing would silently give wrong images.
        raise TypeError(
            f"{name} has integer dtype {X.dtype}; pass uint8 images (n x H x W x C, 0..255) or "
            "float images (n x C x H x W), e.g. X.astype(np.uint8)"
        )
    return X


def _as_4d(X: np.ndarray, image_shape, name: str):
    """``(images, channels_last)``: 2-D input un-flattened with ``image_shape`` (uint8 scaled
    to [0, 1]), 3-D grayscale given a channel axis, 4-D read channels-first or -last."""
    if X.ndim == 2:
        if image_shape is None:
            raise ValueError(
                f"{name} is 2-D with shape {X.shape}; pass image_shape=(C, H, W) to use flattened "
                "images, or pass images as n x H x W x C (uint8) or n x C x H x W (float)"
            )
        shape = tuple(int(s) for s in check_param(image_shape, "image_shape", [ImageShape()]))
        if X.shape[1] != int(np.prod(shape)):
            raise ValueError(
                f"{name} has {X.shape[1]} features per sample but image_shape={tuple(shape)} "
                f"needs {int(np.prod(shape))}"
            )
        X = X.reshape((X.shape[0],) + shape)
        if X.dtype == np.uint8:  # flattened pixel values: same 0..1 scale as uint8 images
            X = X.astype(np.float32) / 255.0
        return X, False
    if X.ndim == 3:
        X = X[:, None, :, :] if X.dtype != np.uint8 else X[..., None]
        return X, X.dtype == np.uint8
    if X.ndim == 4:
        return X, X.dtype == np.uint8 or _float_layout_is_channels_last(X.shape, name)
    raise ValueError(
        f"{name} must be 4-D images (n x H x W x C uint8 or n x C x H x W float), 3-D grayscale "
        f"images, or 2-D flattened images with image_shape; got an array of shape {X.shape}"
    )


def _float32_channels_first(X: np.ndarray, channels_last: bool, name: str) -> np.ndarray:
    """4-D images as C-contiguous float32 ``n x C x H x W`` (uint8 scaled to [0, 1]), checked
    finite after the cast and non-empty."""
    from_uint8 = X.dtype == np.uint8
    if channels_last:
        if X.shape[-1] not in _CHANNEL_COUNTS:
            _raise_uint8_channel_count(X.shape[-1], name)
        with np.errstate(over="ignore"):  # reported just below
            images = X.transpose(0, 3, 1, 2).astype(np.float32)
        if from_uint8:
            images /= 255.0
    else:
        with np.errstate(over="ignore"):  # float64 beyond float32's range: reported just below
            images = X.astype(np.float32, copy=False)
    if not from_uint8 and not np.isfinite(images).all():
        # checked after the cast: float64 pixels beyond float32's range become infinite
        raise ValueError(f"{name} contains NaN or infinity (checked as float32)")
    if min(images.shape[2], images.shape[3]) < 1:
        raise ValueError(f"{name} has empty images of shape {images.shape[1:]}")
    return np.ascontiguousarray(images)


def _lazy_uint8_images(X, name: str, min_samples: int):
    """uint8 ``n x H x W (x C)`` images checked by their shape only, kept unconverted."""
    shape = tuple(int(s) for s in X.shape)
    if shape[0] < min_samples:
        raise ValueError(f"{name} has {shape[0]} images but at least {min_samples} are required")
    if len(shape) == 4 and shape[-1] not in _CHANNEL_COUNTS:
        _raise_uint8_channel_count(shape[-1], name)
    if min(shape[1], shape[2]) < 1:
        raise ValueError(f"{name} has empty images of shape {shape[1:]}")
    from ._image_source import Uint8Images  # imports torch: only the estimators ask for lazy

    return Uint8Images(X)


# channels-last counts: gray, gray + alpha (LA), RGB, RGBA
_CHANNEL_COUNTS = (1, 2, 3, 4)


def _raise_uint8_channel_count(channels: int, name: str) -> None:
    raise ValueError(
        f"{name} is uint8 so it is read as n x H x W x C, but it has {channels} channels; "
        "expected 1, 2, 3 or 4 (float images are read as n x C x H x W)"
    )


def _float_layout_is_channels_last(shape, name: str) -> bool:
    """Whether a 4-D float array of ``shape`` is ``n x H x W x C`` rather than ``n x C x H x W``.

    The channel axis is the end axis (second or last) that has 1 to 4 entries and is
    strictly smaller than the two image axes beside it; the last axis being that axis means
    channels-last, anything else keeps the documented float default, channels-first. Two
    shapes read both ways, and a wrong guess would give scrambled images and no error, so
    they raise instead: both end axes have the same count of 1 to 4 and the middle axis is
    larger (``(n, 3, 32, 3)``: 3 channels of 32 x 3, or 3 x 32 pixels of 3 channels?), or
    the last axis is smaller than both image axes without being such a count
    (``(n, 32, 32, 5)``: 5 channels, or 32 channels of 32 x 5?).
    """
    _, a, b, c = shape
    same_count_at_both_ends = a == c and a in _CHANNEL_COUNTS and b > a
    smallest_last_not_a_count = c not in _CHANNEL_COUNTS and a > c and b > c
    if same_count_at_both_ends or smallest_last_not_a_count:
        raise ValueError(
            f"{name} has shape {tuple(shape)}, which reads both as n x C x H x W and as "
            "n x H x W x C float images; pass them flattened to 2-D with image_shape=(C, H, W): "
            "X.reshape(len(X), -1) for channels-first data, "
            "X.transpose(0, 3, 1, 2).reshape(len(X), -1) for channels-last data"
        )
    return c in _CHANNEL_COUNTS and a > c and b > c


def _raise_if_images_of_different_shapes(X, name: str) -> None:
    """A list of arrays of different shapes gets a ``ValueError`` naming the shapes seen
    (numpy's own error speaks of "an inhomogeneous shape after 2 dimensions")."""
    if not isinstance(X, (list, tuple, np.ndarray)) or len(X) == 0:
        return
    shapes = []
    for item in X:
        if not hasattr(item, "shape") and not isinstance(item, (list, tuple)):
            return
        try:
            shapes.append(tuple(np.shape(item)))
        except ValueError:  # ragged inside one image
            return
    seen = sorted(set(shapes))
    if len(seen) > 1:
        shown = ", ".join(str(shape) for shape in seen[:5]) + (", ..." if len(seen) > 5 else "")
        raise ValueError(
            f"{name} is a list of images of {len(seen)} different shapes ({shown}); resize them "
            "to one size first, e.g. with as3l_sklearn.datasets.load_image_folder(image_size=...)"
        )


def _is_pil_image(value) -> bool:
    """Duck-typed PIL image test, so PIL is not imported unless the caller used it."""
    return hasattr(value, "getbands") and hasattr(value, "mode") and hasattr(value, "size")


def _stack_pil_images(images, name: str) -> np.ndarray:
    """Stack PIL images of one size into ``n x H x W x C`` uint8 (``n x H x W`` grayscale).

    Palette, CMYK and other modes become RGB (RGBA when they carry transparency), bilevel
    becomes grayscale; sizes and (converted) modes must agree, and a mismatch names them.
    """
    sizes = sorted({tuple(image.size) for image in images})
    if len(sizes) > 1:
        shown = ", ".join(f"{w}x{h}" for w, h in sizes[:5]) + (", ..." if len(sizes) > 5 else "")
        raise ValueError(
            f"{name} is a list of PIL images of {len(sizes)} different sizes (width x height: "
            f"{shown}); resize them to one size first, e.g. image.resize((32, 32)), or load "
            "them with as3l_sklearn.datasets.load_image_folder(image_size=...)"
        )
    converted = []
    for image in images:
        mode = image.mode
        if mode in ("L", "RGB", "RGBA", "F"):
            pass
        elif mode == "1":
            image = image.convert("L")
        elif mode.startswith("I"):
            raise ValueError(
                f"{name} holds PIL images of mode {mode!r} (16/32-bit integers), which have no "
                "fixed 0..255 scale; convert them, e.g. to float images in [0, 1] as a numpy "
                "array n x C x H x W, or with image.convert('L')"
            )
        else:
            has_alpha = "A" in mode or (mode == "P" and "transparency" in image.info)
            image = image.convert("RGBA" if has_alpha else "RGB")
        converted.append(image)
    modes = sorted({image.mode for image in converted})
    if len(modes) > 1:
        raise ValueError(
            f"{name} is a list of PIL images of different modes {modes}; convert them to one, "
            "e.g. image.convert('RGB')"
        )
    return np.stack([np.asarray(image) for image in converted])


def check_image_size(image_size, *, minimum: int = 1, name: str = "image_size") -> tuple:
    """Validate an image size given as an int or a pair ``(height, width)``.

    Any length-2 sequence of ints is accepted (tuple, list, ``torch.Size``, 1-D array);
    anything else, or a side below ``minimum``, raises ``InvalidParameterError`` (a
    ``ValueError`` and a ``TypeError``) naming ``name``.

    Examples
    --------
    >>> check_image_size(28)
    (28, 28)
    >>> check_image_size([32, 16])
    (32, 16)
    """
    check_param(image_size, name, [ImageSize(minimum)])
    if isinstance(image_size, Integral):
        return (int(image_size), int(image_size))
    height, width = image_size
    return (int(height), int(width))


# --------------------------------------------------------------------------- image inputs of fitted models
class ImageRangeWarning(UserWarning):
    """Images given to ``transform``/``predict`` are on a different value scale than in ``fit``.

    ``uint8`` images are scaled to [0, 1]; float images are used as they are. A model fitted on
    uint8 images and given float images in 0..255 (or the reverse) sees inputs about 255 times
    off and returns wrong features or predictions without any error.
    """


def image_range(images: np.ndarray, X) -> dict:
    """What ``fit`` records about its input scale: the raw dtype kind and the value range after validation."""
    dtype = getattr(X, "dtype", None)
    return {
        "uint8": dtype == np.uint8,
        "min": float(images.min()) if images.size else 0.0,
        "max": float(images.max()) if images.size else 0.0,
    }


def warn_on_image_range(fitted_range, images: np.ndarray, X, estimator_name: str, *, name: str = "X") -> bool:
    """Warn with :class:`ImageRangeWarning` when ``X``'s scale differs from the one seen in ``fit``.

    Two cases are flagged (both are a factor of 255 off): the model was fitted on images in
    [0, 1] (uint8, or float in [0, 1]) and ``X`` is float with values above 1.5 (e.g. 0..255
    floats); or the model was fitted on float images above 1.5 and ``X`` is uint8 (scaled to
    [0, 1]). Nothing is rescaled: the images are used as given.
    """
    if not fitted_range or not images.size:
        return False
    fit_max = float(fitted_range["max"])
    x_uint8 = getattr(X, "dtype", None) == np.uint8
    # uint8 input is in [0, 1] once scaled: no pass over it (a memory map would be read whole)
    x_max = 1.0 if x_uint8 else float(images.max())
    fit_kind = "uint8 images (scaled to [0, 1])" if fitted_range.get("uint8") else f"float images with values up to {fit_max:.3g}"
    message = None
    if fit_max <= 1.5 and x_max > 1.5 and not x_uint8:
        message = (
            f"{name} holds float images with values up to {x_max:.3g}, but {estimator_name} was fitted on "
            f"{fit_kind}: the inputs are on a different scale and the output will be wrong. Pass uint8 "
            f"images, or divide float images by 255"
        )
    elif fit_max > 1.5 and x_uint8:
        message = (
            f"{name} holds uint8 images, which are scaled to [0, 1], but {estimator_name} was fitted on "
            f"{fit_kind}: the inputs are on a different scale and the output will be wrong. Pass the images "
            f"as float in the range used in fit"
        )
    if message is None:
        return False
    warnings.warn(message, ImageRangeWarning, stacklevel=3)
    return True


def check_channels(images: np.ndarray, expected: int, estimator_name: str, *, name: str = "X",
                   fitted_on: str = "fitted on") -> None:
    """Raise a ``ValueError`` naming ``name`` when the images' channel count differs from ``expected``.

    Caught before any torch layer sees the batch (which would fail with a convolution
    ``RuntimeError`` about weight sizes).
    """
    got = int(images.shape[1])
    if got == int(expected):
        return

    def describe(c):
        return {1: "1 channel (grayscale)", 3: "3 channels (RGB)", 4: "4 channels (RGBA)"}.get(c, f"{c} channels")

    hint = ""
    if got == 1 and expected == 3:
        hint = "; repeat the gray channel three times (np.repeat(X, 3, axis=-1) for uint8 n x H x W x 1 images)"
    elif got in (3, 4) and expected == 1:
        hint = "; convert the images to grayscale first (e.g. PIL's Image.convert('L'))"
    elif got == 4 and expected == 3:
        hint = "; drop the alpha channel first"
    raise ValueError(
        f"{name} has images of shape (C, H, W) = {tuple(int(s) for s in images.shape[1:])}, with "
        f"{describe(got)}, but {estimator_name} was {fitted_on} images with {describe(int(expected))}{hint}"
    )


def images_before_array_checks(X, name: str = "X"):
    """Send what numpy or scikit-learn would misreport through :func:`check_images` first.

    A list of PIL images is stacked by ``check_images`` (or refused with a ``ValueError`` naming
    ``name`` and the sizes when they differ: ``np.asarray`` would say "inhomogeneous shape"),
    a ragged list gets its message, and 1-D input gets scikit-learn's "Expected 2D array ...
    Reshape your data" naming ``name``. Anything else is returned unchanged for the caller's
    usual checks.
    """
    if isinstance(X, (list, tuple)):
        if len(X) and any(_is_pil_image(v) for v in X):
            return check_images(X, name=name)
        try:
            array = np.asarray(X)
        except (TypeError, ValueError):
            return check_images(X, name=name)  # raises, naming X (ragged images, odd objects)
        if array.dtype == object and array.ndim == 1 and len(array) and hasattr(array[0], "__len__"):
            return check_images(X, name=name)  # a ragged list numpy kept as objects
        shape = array.shape
    else:
        shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 1:
        raise ValueError(
            f"Expected 2D array, got 1D array instead: {name} has shape {tuple(shape)}; images are "
            "n x H x W x C (uint8), n x C x H x W (float) or 2-D flattened with image_shape. Reshape your "
            "data either using array.reshape(-1, 1) if your data has a single feature or "
            "array.reshape(1, -1) if it contains a single sample."
        )
    return X


def infer_image_shape(image_shape, n_features: int):
    """``image_shape`` (a valid ``ImageShape(inferred=True)``, or None) with its ``-1`` entry,
    if any, inferred from ``n_features`` as ``numpy.reshape`` does; a ``ValueError`` when the
    features do not fill whole images.

    Examples
    --------
    >>> infer_image_shape((1, 1, -1), 12)
    (1, 1, 12)
    """
    if image_shape is None:
        return None
    shape = [int(s) for s in image_shape]
    if -1 in shape:
        known = int(np.prod([s for s in shape if s != -1]))
        if n_features % known:
            raise ValueError(
                f"image_shape={tuple(image_shape)} cannot un-flatten X with {n_features} features per sample"
            )
        shape[shape.index(-1)] = n_features // known
    return tuple(shape)


def check_image_shape_consistent(images: np.ndarray, fitted_shape, *, name: str = "X") -> None:
    """Raise a ``ValueError`` when images differ in (C, H, W) from those seen in ``fit``."""
    if tuple(images.shape[1:]) != tuple(fitted_shape):
        raise ValueError(
            f"{name} has images of shape (C, H, W) = {tuple(images.shape[1:])}, but the estimator "
            f"was fitted on images of shape {tuple(fitted_shape)}"
        )


def check_partial_labels(y, n_samples: int | None = None, *, name: str = "y", min_labeled: int = 1):
    """Validate a partial label vector where ``-1`` marks unlabeled samples.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Integer labels, or string labels (an ``object`` or string array, a pandas Series,
        categorical included). Unlabeled samples are marked ``-1``: the number, or the
        string ``"-1"`` (surrounding spaces ignored), because a ``-1`` read back from a CSV
        file or mixed into ``np.array(["cat", -1])`` arrives as a string, and it must not
        silently become a class ``"-1"``.
    n_samples : int, optional
        Expected length (the number of samples in ``X``).
    name : str
        Name of the argument in error messages.
    min_labeled : int
        Minimum number of labeled samples (``0`` allows an all-unlabeled vector).

    Returns
    -------
    classes : ndarray
        Sorted distinct labels of the labeled samples (original dtype).
    y_encoded : ndarray of int64
        Index into ``classes`` for labeled samples, ``-1`` for unlabeled ones.

    Examples
    --------
    >>> classes, encoded = check_partial_labels([3, -1, 5, 3])
    >>> classes.tolist(), encoded.tolist()
    ([3, 5], [0, -1, 1, 0])
    >>> classes, encoded = check_partial_labels(["cat", "-1", "dog"])
    >>> classes.tolist(), encoded.tolist()
    (['cat', 'dog'], [0, -1, 1])
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per sample), got shape {y.shape}")
    if n_samples is not None and y.shape[0] != n_samples:
        raise ValueError(f"{name} has {y.shape[0]} labels but X has {n_samples} samples")
    if y.dtype.kind in "US":
        # plain strings cannot hold the integer -1, so "-1" marks unlabeled samples here
        y = y.astype(str).astype(object)

    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError(f"{name} contains NaN or infinity; mark unlabeled samples with -1")
        if not np.all(y == np.round(y)):
            raise ValueError(f"{name} must hold integer class labels (and -1 for unlabeled), got non-integer floats")
        y = y.astype(np.int64)
    if y.dtype.kind == "b":
        raise TypeError(f"{name} must hold class labels with -1 for unlabeled, got a boolean array")

    if y.dtype == object:
        unlabeled = unlabeled_mask(y)
        labeled_values = y[~unlabeled]
        if any(_is_missing(v) for v in labeled_values):
            raise ValueError(f"{name} contains missing values (None, NaN or pandas NA); mark "
                             "unlabeled samples with -1")
        kinds = {type(v) for v in labeled_values}
        if len(kinds) > 1 and not all(issubclass(k, numbers.Integral) for k in kinds):
            raise TypeError(f"{name} mixes label types {sorted(k.__name__ for k in kinds)}; use one type (and -1 for unlabeled)")
    elif y.dtype.kind in "iu":
        unlabeled = y == UNLABELED
        labeled_values = y[~unlabeled]
    else:
        raise TypeError(f"{name} must hold integer or string class labels, got dtype {y.dtype}")

    n_labeled = int((~unlabeled).sum())
    if n_labeled < min_labeled:
        raise ValueError(
            f"{name} has {n_labeled} labeled samples (all others are -1) but at least "
            f"{min_labeled} are required"
        )
    classes, encoded_labeled = np.unique(labeled_values, return_inverse=True)
    encoded = np.full(y.shape[0], UNLABELED, dtype=np.int64)
    encoded[~unlabeled] = encoded_labeled.ravel()
    return classes, encoded


def _is_missing(value) -> bool:
    """None, a float NaN, or pandas' ``NA`` / ``NaT`` (by type name: pandas is optional)."""
    if value is None:
        return True
    if isinstance(value, (float, np.floating)):
        return bool(np.isnan(value))
    return type(value).__name__ in ("NAType", "NaTType")


#: a count of one or more (an annotation budget, a number of clusters)
_COUNT = Interval(Integral, 1, None, closed="left")


def check_budget(n_budget, n_samples: int, *, name: str = "n_budget", caller_name: str | None = None) -> int:
    """Validate an annotation budget: an int with ``1 <= n_budget <= n_samples``.

    A value that is not an int ``>= 1`` raises ``InvalidParameterError`` (scikit-learn's
    message, naming ``caller_name`` when given); one above ``n_samples`` a ``ValueError``.

    Examples
    --------
    >>> check_budget(10, 100)
    10
    """
    check_param(n_budget, name, [_COUNT], caller_name)
    if n_budget > n_samples:
        raise ValueError(f"{name}={n_budget} exceeds the number of fitted samples ({n_samples})")
    return int(n_budget)


def check_n_clusters(n_clusters, n_samples: int | None, *, name: str = "n_clusters") -> list:
    """Validate one cluster count or a list of them against the number of samples.

    Returns a list of ints. Each must be an int ``>= 1`` (else ``InvalidParameterError``)
    and ``<= n_samples`` (else ``ValueError``); with ``n_samples=None`` (an estimator that
    caps the counts itself) only the first is checked.

    Examples
    --------
    >>> check_n_clusters(10, 100)
    [10]
    >>> check_n_clusters([10, 20], 100)
    [10, 20]
    >>> check_n_clusters([10, 1000], None)
    [10, 1000]
    """
    check_param(n_clusters, name, [_COUNT, IntSequence(1)])
    checked = [int(n_clusters)] if isinstance(n_clusters, Integral) else [int(k) for k in n_clusters]
    too_many = [k for k in checked if n_samples is not None and k > n_samples]
    if too_many:
        raise ValueError(
            f"{name}={n_clusters!r} asks for {max(too_many)} clusters but only {n_samples} samples were given"
        )
    return checked
