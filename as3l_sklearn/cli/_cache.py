"""The stage cache: ``joblib.Memory`` around the costly, deterministic stage computations
(SimSiam, fine-tuning, selection), so that the import run of the annotation round trip
reuses the export run's work."""

from __future__ import annotations

import inspect
from pathlib import Path

import torch
from joblib import Memory

from .. import _version


def code_version_folder() -> str:
    """The cache sub-folder of this package and torch version: joblib keys a stage on its own
    source only, so an upgraded package or torch would otherwise be served old results."""
    return f"as3l-{_version.__version__}-torch-{torch.__version__}"


def _never_cached(*args, **kwargs) -> bool:
    return False


class StageCache:
    """``joblib.Memory`` in ``location`` (a folder per code version, see
    :func:`code_version_folder`), or plain calls when ``location`` is None (``--no-cache``).

    The ``Memory`` (which creates its folder) is made on the first :meth:`wrap`, when the
    first cached stage starts, not before: a run that fails earlier leaves no folder.
    """

    def __init__(self, location):
        self.location = location
        self._memory: Memory | None = None

    def wrap(self, function):
        """``(cached function, hit)``: the function through the cache, and a function of the
        same arguments that tells whether the cache holds that call's result.

        ``function`` must be a module-level function (joblib keys it on its module, name and
        source) of picklable arguments; its ``verbose`` argument, if any, is left out of the key.
        """
        if self.location is None:
            return function, _never_cached
        if self._memory is None:
            self._memory = Memory(location=str(Path(self.location) / code_version_folder()),
                                  verbose=0)
        ignore = ["verbose"] if "verbose" in inspect.signature(function).parameters else []
        cached = self._memory.cache(function, ignore=ignore)

        def hit(*args, **kwargs) -> bool:
            try:
                return bool(cached.check_call_in_cache(*args, **kwargs))
            except Exception:  # a cache folder that cannot be read is a miss
                return False

        return cached, hit
