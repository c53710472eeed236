"""Progress of an ``as3l`` run: a line at the start and end of each stage, its wall time,
and Ctrl-C."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager

#: set by the SIGINT handler; stages check it after returning, because the torch estimators
#: catch KeyboardInterrupt themselves (they stop training and keep their weights)
interrupt_requested = threading.Event()


def _on_sigint(signum, frame):
    interrupt_requested.set()
    raise KeyboardInterrupt


@contextmanager
def sigint_handled():
    """While the block runs, Ctrl-C sets :data:`interrupt_requested` before it raises
    ``KeyboardInterrupt`` (in the main thread; elsewhere Python delivers no signal)."""
    interrupt_requested.clear()
    previous_handler = None
    if threading.current_thread() is threading.main_thread():
        previous_handler = signal.signal(signal.SIGINT, _on_sigint)
    try:
        yield
    finally:
        if previous_handler is not None:
            signal.signal(signal.SIGINT, previous_handler)
        interrupt_requested.clear()


class StageTimer:
    """Runs the timed steps of the stages: one line at the start and end of each (unless
    ``quiet``), and the wall time of each.

    Attributes
    ----------
    seconds : dict of str to float
        Seconds per step name, in the order the steps ran.
    cached : list of str
        The steps served from the stage cache.
    current : str or None
        The step that runs (or ran last): where a Ctrl-C stopped the run.
    """

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.seconds: dict[str, float] = {}
        self.cached: list[str] = []
        self.current: str | None = None

    def say(self, message: str) -> None:
        """Print ``[as3l] message`` unless quiet."""
        if not self.quiet:
            print(f"[as3l] {message}", flush=True)

    def run(self, name: str, function, *args, cached: bool = False, **kwargs):
        """``function(*args, **kwargs)``, timed as ``name``; ``cached``: served from the cache.

        Raises ``KeyboardInterrupt`` after the call when Ctrl-C came during it, even if the
        function caught it.
        """
        self.current = name
        self.say(f"{name} ..." + (" (from the cache)" if cached else ""))
        start = time.perf_counter()
        result = function(*args, **kwargs)
        elapsed = time.perf_counter() - start
        self.seconds[name] = self.seconds.get(name, 0.0) + elapsed
        if cached:
            self.cached.append(name)
        if interrupt_requested.is_set():
            # the stage caught Ctrl-C itself (a torch estimator stops early and keeps its
            # weights); the run must stop here, not carry on as if the stage had finished
            raise KeyboardInterrupt
        self.say(f"{name} done in {elapsed:.1f} s")
        return result
