"""torch helpers: ``device="auto"`` resolution, seeding from ``random_state``, pickling that
survives a move from a CUDA machine to a CPU-only one, and fixed CPU thread settings.

torch is imported inside the functions so that the light parts of the package
(selection, propagation, metrics) never pay its import time.
"""

from __future__ import annotations

import contextlib
import io
import numbers
import warnings

import numpy as np
from sklearn.utils import check_random_state


def resolve_device(device: str | None = "auto") -> str:
    """Turn ``"auto"`` into ``"cuda"`` when CUDA is available, else ``"cpu"``.

    Parameters
    ----------
    device : str or None
        ``"auto"``/``None``, or any string ``torch.device`` accepts (``"cpu"``, ``"cuda:1"``).

    Returns
    -------
    device : str

    Examples
    --------
    >>> resolve_device("cpu")
    'cpu'
    """
    import torch

    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda', got {device!r}")
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return device


def check_random_state_or_generator(random_state, name: str = "random_state") -> np.random.RandomState:
    """``check_random_state`` that also accepts a :class:`numpy.random.Generator`.

    A ``Generator`` cannot seed a ``RandomState`` directly, so one 31-bit seed is drawn from
    it (advancing it, as drawing from a ``RandomState`` instance would) and seeds a fresh
    ``RandomState``. Anything else goes to :func:`sklearn.utils.check_random_state`, with
    the argument named in the error.

    Examples
    --------
    >>> import numpy as np
    >>> rs = check_random_state_or_generator(np.random.default_rng(0))
    >>> isinstance(rs, np.random.RandomState)
    True
    """
    if isinstance(random_state, np.random.Generator):
        return np.random.RandomState(int(random_state.integers(0, 2**31 - 1)))
    try:
        return check_random_state(random_state)
    except ValueError as exc:
        raise ValueError(
            f"{name} must be None, an int, a numpy RandomState or a numpy Generator, got {random_state!r}"
        ) from exc


def _seed_from(random_state) -> int:
    """Draw a 31-bit seed from anything ``check_random_state_or_generator`` accepts."""
    return int(check_random_state_or_generator(random_state).randint(0, 2**31 - 1))


def seed_torch(random_state) -> int:
    """Seed torch's global generators (CPU and CUDA) from ``random_state``.

    Returns the integer seed used, so callers can derive further generators from it.
    """
    import torch

    seed = _seed_from(random_state)
    torch.manual_seed(seed)
    return seed


def torch_generator(random_state, device: str = "cpu"):
    """A ``torch.Generator`` seeded from ``random_state`` (an int, None, a RandomState or a Generator)."""
    import torch

    generator = torch.Generator(device=device)
    generator.manual_seed(_seed_from(random_state))
    return generator



# --------------------------------------------------------------------------- threads
#: the most CPU threads ``n_threads="auto"`` uses. A fixed number per machine (not torch's
#: current setting, which joblib lowers inside its workers) makes a fit independent of the
#: caller's thread settings; 4 keeps most of the speed of small CNNs on larger machines.
AUTO_MAX_THREADS = 4


def resolve_n_threads(n_threads, name: str = "n_threads"):
    """The number of torch CPU threads a fit uses, or ``None`` to keep torch's current setting.

    ``"auto"`` is ``min(4, os.cpu_count())``: it depends on the machine only, so the same
    seed gives the same weights whether the caller set ``torch.set_num_threads(1)`` or runs
    inside a ``GridSearchCV(n_jobs=2)`` worker (where joblib limits threads).

    Examples
    --------
    >>> resolve_n_threads(2)
    2
    >>> resolve_n_threads(None) is None
    True
    """
    import os

    if n_threads is None:
        return None
    if isinstance(n_threads, str):
        if n_threads != "auto":
            raise ValueError(f"{name} must be a positive int, 'auto' or None, got {n_threads!r}")
        return max(1, min(AUTO_MAX_THREADS, os.cpu_count() or 1))
    if isinstance(n_threads, (bool, np.bool_)) or not isinstance(n_threads, numbers.Integral) or n_threads < 1:
        raise ValueError(f"{name} must be a positive int, 'auto' or None, got {n_threads!r}")
    return int(n_threads)


@contextlib.contextmanager
def torch_threads(n_threads):
    """Run the block with ``torch.set_num_threads(n_threads)``, restoring the caller's setting after.

    ``n_threads=None`` leaves torch as it is. Results of CPU training depend on the thread
    count (reductions are split differently), so estimators fit inside this block.
    """
    import torch

    if n_threads is None:
        yield
        return
    previous = torch.get_num_threads()
    torch.set_num_threads(int(n_threads))
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def torch_settings(n_threads, device: str) -> dict:
    """What a torch fit ran with, for the fitted attribute ``torch_settings_``.

    ``n_threads`` is the resolved value (``None``: the caller's torch setting, recorded as
    the count in force).
    """
    import torch

    return {
        "n_threads": int(n_threads) if n_threads is not None else int(torch.get_num_threads()),
        "threads_fixed": n_threads is not None,
        "deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "device": str(device),
        "torch_version": str(torch.__version__),
    }


# --------------------------------------------------------------------------- input checks
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


# --------------------------------------------------------------------------- pickling
class CUDAToCPUWarning(UserWarning):
    """A model fitted on CUDA was unpickled on a machine without CUDA and now runs on the CPU."""


def _map_location():
    import torch

    return None if torch.cuda.is_available() else "cpu"


class TorchPickleMixin:
    """Pickle support for estimators holding torch objects, loadable where CUDA is missing.

    A plain pickle of a torch storage records its device; unpickling a CUDA storage on a
    machine without CUDA fails ("Attempting to deserialize object on a CUDA device").
    skorch maps its own ``module_`` to the CPU, but modules handed to a net as instances
    (and any module among the estimator's parameters or fitted attributes) pickle outside
    that block. So the whole instance state is written with :func:`torch.save` into bytes,
    and read back with ``torch.load(map_location="cpu")`` when CUDA is unavailable (no
    mapping otherwise). A model fitted on CUDA and loaded on the CPU warns with
    :class:`CUDAToCPUWarning` and sets its devices to ``"cpu"``.

    Loading such a pickle runs code, as any pickle does: only load files you trust.
    """

    def _torch_fit_device(self):
        net = self.__dict__.get("net_")
        return str(getattr(net, "device", "cpu")) if net is not None else None

    def __getstate__(self):
        import torch

        state = super().__getstate__()
        if state is None:
            state = self.__dict__.copy()
        version = state.pop("_sklearn_version", None)
        buffer = io.BytesIO()
        # protocol 4: torch's default (2) writes the bytes skorch nests in its nets at ~1.5x their size
        torch.save(state, buffer, pickle_protocol=4)
        packed = {"_torch_state": buffer.getvalue(), "_torch_device": self._torch_fit_device()}
        if version is not None:
            packed["_sklearn_version"] = version
        return packed

    def __setstate__(self, state):
        if "_torch_state" not in state:  # a pickle written before this mixin existed
            return super().__setstate__(state)
        import torch

        state = dict(state)
        blob = state.pop("_torch_state")
        device = state.pop("_torch_device", None)
        moved = bool(device) and device.startswith("cuda") and not torch.cuda.is_available()
        with warnings.catch_warnings():
            if moved:  # skorch warns per net; one warning from the estimator is clearer
                warnings.filterwarnings("ignore", message="Requested to load data to CUDA")
            inner = torch.load(io.BytesIO(blob), map_location=_map_location(), weights_only=False)
        state.update(inner)
        super().__setstate__(state)
        net = self.__dict__.get("net_")
        if moved:
            if net is not None:
                net.device = "cpu"
            if "device_" in self.__dict__:
                self.device_ = "cpu"
            warnings.warn(
                f"{type(self).__name__} was fitted on {device}, which is not available here (no CUDA): "
                "it was loaded on the CPU and runs there",
                CUDAToCPUWarning,
                stacklevel=2,
            )


def images_before_array_checks(X, name: str = "X"):
    """Send what numpy or scikit-learn would misreport through :func:`check_images` first.

    A list of PIL images is stacked by ``check_images`` (or refused with a ``ValueError`` naming
    ``name`` and the sizes when they differ: ``np.asarray`` would say "inhomogeneous shape"),
    a ragged list gets its message, and 1-D input gets scikit-learn's "Expected 2D array ...
    Reshape your data" naming ``name``. Anything else is returned unchanged for the caller's
    usual checks.
    """
    from ._validation import _is_pil_image, check_images

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
