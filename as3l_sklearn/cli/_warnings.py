"""Warnings as the ``as3l`` command prints them: one line each, ``as3l: warning: ...``.

Python's default format adds the file and line that raised the warning and that source
line (``cli.py:604: UserWarning: ...`` and the code under it), which tells a user of the
command nothing. While the command runs, :func:`one_line_warnings` prints each warning as
one line, and rewrites the estimators' advice meant for Python users (``fit again with
warm_start=True``) in terms of the command.
"""

from __future__ import annotations

import re
import sys
import warnings
from contextlib import contextmanager

#: the estimators' messages meant for Python users -> what a command-line user can do
_REWORDED = (
    (re.compile(r"training interrupted at step (\d+): keeping the (.+?) weights; fit again "
                r"with warm_start=True to resume"),
     r"training interrupted at step \1: the model keeps the \2 weights reached so far (saved "
     r"in --output); run the same command again to resume: the finished stages come from "
     r"the stage cache and training starts over"),
)


def command_text(message: str) -> str:
    """``message`` on one line, with advice for Python users reworded for the command."""
    text = " ".join(str(message).split())
    for pattern, replacement in _REWORDED:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def one_line_warnings(prefix: str = "as3l"):
    """While the block runs, print each warning as ``{prefix}: warning: message`` (one line,
    no source line) on stderr; the previous behaviour is restored afterwards."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        stream = sys.stderr if file is None else file
        try:
            print(f"{prefix}: warning: {command_text(message)}", file=stream, flush=True)
        except OSError:
            pass  # a closed stderr: nothing to tell

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
