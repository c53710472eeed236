"""Progress output of the torch estimators: one tqdm bar per fit, plain text when not a terminal.

``verbose=1`` shows a single bar with the total and an ETA for a whole ``fit`` (not one line
per epoch); ``verbose>=2`` adds per-epoch logs. When the stream is not a terminal (a log
file, a CI job, a captured notebook cell) nothing writes ANSI escape codes and the bar
refreshes rarely, so a log holds a handful of updates instead of one per step.
"""

from __future__ import annotations

import re
import sys

#: ANSI escape sequences (colours, cursor moves) as skorch's PrintLog writes them
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: seconds between bar refreshes: often on a terminal, rarely in a log file
REFRESH_TERMINAL = 0.5
REFRESH_LOG = 30.0


def is_terminal(stream=None) -> bool:
    """Whether ``stream`` (default: ``sys.stderr``) is an interactive terminal.

    Examples
    --------
    >>> import io
    >>> is_terminal(io.StringIO())
    False
    """
    stream = sys.stderr if stream is None else stream
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


def strip_ansi(text: str) -> str:
    r"""``text`` without ANSI escape sequences.

    Examples
    --------
    >>> strip_ansi("\x1b[32m0.5\x1b[0m")
    '0.5'
    """
    return ANSI_ESCAPE.sub("", text)


def progress_bar(total: int, desc: str, *, enabled: bool = True, unit: str = "step", file=None):
    """One tqdm bar (total and ETA) written to ``file`` (default: ``sys.stderr``).

    Disabled (``enabled=False``) it is a silent stand-in with the same methods. Off a
    terminal it uses ASCII characters, a fixed width and refreshes every 30 seconds.
    """
    from tqdm import tqdm

    file = sys.stderr if file is None else file
    terminal = is_terminal(file)
    return tqdm(
        total=int(total),
        desc=desc,
        unit=unit,
        disable=not enabled,
        file=file,
        leave=True,
        mininterval=REFRESH_TERMINAL if terminal else REFRESH_LOG,
        ascii=None if terminal else True,
        dynamic_ncols=terminal,
        ncols=None if terminal else 100,
    )


def print_line(text: str, file=None) -> None:
    """Print a log line, without ANSI codes unless the stream is a terminal."""
    file = sys.stdout if file is None else file
    print(text if is_terminal(file) else strip_ansi(text), file=file, flush=True)
