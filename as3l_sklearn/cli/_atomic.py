"""Files written whole: each result goes to a temporary name in its own folder and is renamed
over the final name once complete (a rename within a folder is atomic on POSIX file
systems), so that a full disk, a crash or SIGKILL never leaves a truncated ``model.joblib``
or a half-written CSV under a result's name.

A failed write is an :class:`OutputWriteError` (a :class:`~._errors.UserError`) naming the
file and the flag of its folder; the temporary file is removed first.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path

from ._errors import UserError

#: temporary files and folders start with this; a run removes leftovers of killed runs
TEMP_PREFIX = ".as3l-tmp-"


class OutputWriteError(UserError):
    """A result file could not be written: the message names the file and the flag of its
    folder (``--output``, ``--export-annotations``); nothing half-written is left behind."""


def temp_name(name: str) -> str:
    """A temporary name for ``name`` in the same folder, unique to this write."""
    return f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}-{name}"


def write_error(path, flag: str, exc: OSError) -> OutputWriteError:
    """The :class:`OutputWriteError` of ``exc`` raised while writing ``path``."""
    path = Path(path)
    reason = exc.strerror or str(exc)
    code = f" [Errno {exc.errno}]" if exc.errno else ""
    if exc.errno == errno.ENOSPC:
        advice = f"free some space, or choose another {flag}"
    elif exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        advice = f"the folder is not writable: choose another {flag}"
    else:
        advice = f"check the folder, or choose another {flag}"
    return OutputWriteError(f"{flag} {path.parent}: could not write {path.name}: {reason}{code}; "
                            f"nothing half-written was left ({advice})")


def _remove(path: Path) -> None:
    try:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink()
    except FileNotFoundError:
        pass
    except OSError:
        pass  # the write error that got us here is the one to report


def _fsync(path: Path) -> None:
    """Flush ``path``'s bytes to the disk before the rename makes it the result (so that a
    power cut does not leave an empty file under the final name either)."""
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


@contextmanager
def atomic_path(path, flag: str = "--output"):
    """Yield a temporary path beside ``path`` for a writer to fill (``joblib.dump``,
    ``csv.writer``, ``PIL.Image.save``); rename it to ``path`` when the block ends normally.

    An ``OSError`` in the block (or in the rename) removes the temporary file and raises
    :class:`OutputWriteError` naming ``path`` and ``flag``; any other exception removes it
    and propagates. ``path``'s folder must exist.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> target = Path(tempfile.mkdtemp()) / "numbers.txt"
    >>> with atomic_path(target) as temp:
    ...     _ = temp.write_text("1 2 3")
    >>> target.read_text(), sorted(p.name for p in target.parent.iterdir())
    ('1 2 3', ['numbers.txt'])
    """
    path = Path(path)
    temp = path.parent / temp_name(path.name)
    try:
        yield temp
        _fsync(temp)
        os.replace(temp, path)
    except OSError as exc:
        _remove(temp)
        raise write_error(path, flag, exc) from exc
    except BaseException:
        _remove(temp)
        raise


def atomic_write_bytes(path, data: bytes, flag: str = "--output") -> Path:
    """Write ``data`` to ``path`` whole (see :func:`atomic_path`)."""
    with atomic_path(path, flag) as temp:
        temp.write_bytes(data)
    return Path(path)


def atomic_write_text(path, text: str, flag: str = "--output", encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` whole (see :func:`atomic_path`)."""
    with atomic_path(path, flag) as temp:
        temp.write_text(text, encoding=encoding)
    return Path(path)


def remove_leftovers(folder) -> list[str]:
    """Remove the temporary files and folders that runs killed while writing left in
    ``folder``; return their names."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for entry in folder.iterdir():
        if entry.name.startswith(TEMP_PREFIX):
            _remove(entry)
            removed.append(entry.name)
    return removed


@contextmanager
def staged_folder(folder, flag: str):
    """Yield a fresh temporary folder inside ``folder`` for writers that fill a folder
    (``export_for_annotation``); when the block ends normally, move its files into
    ``folder`` one rename each, ``selection.csv`` last (the file the next step reads), and
    remove the temporary folder.

    An ``OSError`` removes the temporary folder and raises :class:`OutputWriteError` naming
    the file and ``flag``; ``folder``'s earlier files are then left as they were.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    remove_leftovers(folder)  # of a run killed while exporting (the folder is locked now)
    staging = folder / temp_name("staging")
    try:
        staging.mkdir()
        yield staging
        names = sorted((p.name for p in staging.iterdir()), key=lambda n: n == "selection.csv")
        for name in names:
            _fsync(staging / name)
            os.replace(staging / name, folder / name)
    except OSError as exc:
        failed = Path(exc.filename) if exc.filename else staging / "?"
        raise write_error(folder / failed.name, flag, exc) from exc
    finally:
        _remove(staging)
