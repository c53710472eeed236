"""The stage cache: results of the costly, deterministic stage computations (SimSiam,
fine-tuning, selection) kept on disk, so that the import run of the annotation round trip,
and a run resumed after an interruption, reuse the earlier run's work.

An entry is the pickled result (``joblib``) of a module-level function, keyed by a hash of
the function's module, name and source and of its arguments (``verbose`` left out), in a
folder per version of this package and torch. Entries are written to a temporary name and
renamed, so a killed run leaves no partial entry.

The cache never stops a run: a folder that cannot be written (full, read-only) is one
warning and the run carries on uncached; an entry that cannot be read (truncated, corrupt)
is one warning, is removed, and its stage is recomputed -- and reported as computed, not as
a cache hit.
"""

from __future__ import annotations

import inspect
import json
import sys
from pathlib import Path

import joblib
import torch

from .. import _version
from ._atomic import atomic_path

#: sub-folder of the records naming the images an embedding was trained on
POOLS = "pools"


def code_version_folder() -> str:
    """The cache sub-folder of this package and torch version: an entry is keyed on its
    function's own source only, so an upgraded package or torch would otherwise be served
    old results."""
    return f"as3l-{_version.__version__}-torch-{torch.__version__}"


def _source(function) -> str:
    try:
        return inspect.getsource(function)
    except (OSError, TypeError):
        return repr(function.__code__.co_code)


def warn(message: str) -> None:
    """One ``as3l: warning: ...`` line on stderr."""
    print(f"as3l: warning: {message}", file=sys.stderr, flush=True)


def _store(path: Path, value) -> None:
    """Write ``value`` to ``path`` whole (a temporary file renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path, "--cache-dir") as temp:
        joblib.dump(value, temp)


class StageCache:
    """The stage cache in ``location`` (a folder per code version, see
    :func:`code_version_folder`), or no cache when ``location`` is None (``--no-cache``).

    Nothing is created before the first entry is stored: a run that fails earlier leaves no
    folder.
    """

    def __init__(self, location):
        self.location = location
        #: set after the first failed write: the rest of the run does not try again
        self.write_failed = False

    @property
    def enabled(self) -> bool:
        return self.location is not None

    @property
    def folder(self) -> Path:
        return Path(self.location) / code_version_folder()

    def key(self, function, *args, **kwargs) -> str:
        """The key of ``function(*args, **kwargs)``: its module, name and source and the
        arguments but ``verbose``."""
        bound = inspect.signature(function).bind(*args, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k != "verbose"}
        return joblib.hash([function.__module__, function.__qualname__, _source(function),
                            arguments])

    def _entry(self, function, key: str) -> Path:
        return self.folder / function.__qualname__ / f"{key}.pkl"

    def load_key(self, function, key: str, what: str):
        """``(True, value)`` of the entry ``key`` of ``function``, ``(False, None)`` when there
        is none or it cannot be read (then one warning, and the entry is removed)."""
        if not self.enabled:
            return False, None
        path = self._entry(function, key)
        try:
            if not path.is_file():
                return False, None
            return True, joblib.load(path)
        except Exception as exc:  # unpickling a damaged file raises many types
            warn(f"the cached result of {what} could not be read ({type(exc).__name__}: "
                 f"{exc}; {path}); it is computed again")
            try:
                path.unlink()
            except OSError:
                pass
            return False, None

    def load(self, function, *args, what: str = "a stage"):
        """``(True, value)`` when the cache holds ``function(*args)`` and it reads back."""
        if not self.enabled:
            return False, None
        return self.load_key(function, self.key(function, *args), what)

    def save_key(self, function, key: str, value) -> None:
        """Store ``value`` as the entry ``key`` of ``function``; a failure is a warning (the
        first only) and the run carries on uncached."""
        if not self.enabled or self.write_failed:
            return
        try:
            _store(self._entry(function, key), value)
        except Exception as exc:  # OSError, or the OutputWriteError it became
            self.write_failed = True
            warn(f"the stage cache --cache-dir {self.location} cannot be written ({exc}); "
                 "this run carries on without caching")

    def save(self, function, args: tuple, value) -> None:
        self.save_key(function, self.key(function, *args), value)

    # ----------------------------------------------------------------------------------------
    # records: small JSON files under a name (the images an embedding was trained on)

    def load_record(self, name: str) -> dict | None:
        """The record ``name`` (a dict), None when there is none or it cannot be read."""
        if not self.enabled:
            return None
        path = self.folder / POOLS / f"{name}.json"
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            warn(f"the stage cache record {path} could not be read ({exc}); it is ignored")
            return None
        return record if isinstance(record, dict) else None

    def save_record(self, name: str, record: dict) -> None:
        if not self.enabled or self.write_failed:
            return
        path = self.folder / POOLS / f"{name}.json"
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path, "--cache-dir") as temp:
                temp.write_text(json.dumps(record), encoding="utf-8")
        except Exception as exc:
            self.write_failed = True
            warn(f"the stage cache --cache-dir {self.location} cannot be written ({exc}); "
                 "this run carries on without caching")
