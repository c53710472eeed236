"""The ``as3l`` command's errors and exit statuses."""

from __future__ import annotations

#: exit status of a finished run (and of ``-h``)
EXIT_OK = 0
#: exit status of a user error (argparse's)
EXIT_USAGE = 2
#: exit status of a run stopped by Ctrl-C (128 + SIGINT, the shell's convention)
EXIT_INTERRUPTED = 130


class UserError(Exception):
    """A problem with what the user asked for, found during the work (a label that is not a
    class, a budget above the pool size): printed as ``as3l: error: ...`` without a
    traceback, exit status :data:`EXIT_USAGE`."""


class UsageError(Exception):
    """A flag value that fails a check argparse cannot make (a folder that does not exist,
    two flags that exclude each other), found before any work.

    The sub-command's parser reports it like its own errors: its usage, then
    ``as3l: error: ...`` (``as3l predict: error: ...``), exit status :data:`EXIT_USAGE`.
    """


def exit_status(exc: SystemExit) -> int:
    """The exit status an argparse ``SystemExit`` stands for (0 after ``-h``)."""
    if isinstance(exc.code, int):
        return exc.code
    return EXIT_OK if exc.code is None else EXIT_USAGE
