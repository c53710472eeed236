"""torch helpers: ``device="auto"`` resolution, seeding from ``random_state``, pickling that
survives a move from a CUDA machine to a CPU-only one, and fixed CPU thread settings.

torch is imported inside the functions so that the light parts of the package
(selection, propagation, metrics) never pay its import time. The checks that need no torch
live in ``_validation.py``, which this module builds on (never the reverse).
"""

from __future__ import annotations

import contextlib
import io
import warnings

from ._param_validation import N_THREADS, validate_params
from ._validation import check_random_state_or_generator


@validate_params({"device": [str, None]}, prefer_skip_nested_validation=True)
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
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device") from exc
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was requested but CUDA is not available; use 'auto' or 'cpu'")
    return device


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


@validate_params({"n_threads": N_THREADS}, prefer_skip_nested_validation=True)
def resolve_n_threads(n_threads):
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
    if isinstance(n_threads, str):  # "auto"
        return max(1, min(AUTO_MAX_THREADS, os.cpu_count() or 1))
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
