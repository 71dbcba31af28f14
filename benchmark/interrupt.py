"""Stopping on SIGTERM and SIGINT at a safe point: the run ends resumable, never `failed`.

SIGTERM is how SLURM preempts a job or ends it at its time limit, how `docker stop` and
systemd stop a process, and what Ctrl-C becomes under many launchers. The first SIGTERM or
SIGINT only sets a flag; the trainer checks it between training steps (after any checkpoint
of that step is written) and before a population starts, and raises `Interrupted`, which no
`except Exception` records as a failure. A second signal ends the process at once: every
file is written atomically, so that leaves what a SIGKILL would (a complete checkpoint or
none, and a temporary file the rerun removes).
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

# The exit status of a run stopped by a signal: EX_TEMPFAIL of sysexits.h, "try again later".
EXIT_INTERRUPTED = 75
SIGNALS = (signal.SIGTERM, signal.SIGINT)

_requested: int | None = None  # the first signal received, if any
# Exceptions (not BaseExceptions) that other code raises to stop a run, never a trial's own
# error: the trainer lets them through unrecorded. The slurm executor adds submitit's.
STOP_ERRORS: list[type[Exception]] = []


class Interrupted(BaseException):  # noqa: N818 - a stop request, like KeyboardInterrupt
    """A stop was requested; the running trials are resumable. A BaseException, so that the
    handlers that record a trial's own errors (`except Exception`) let it through."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    def __str__(self) -> str:
        return f"interrupted by {signal.Signals(self.signum).name}"


def _handle(signum: int, frame: object) -> None:
    global _requested
    if _requested is not None:  # the second signal: stop now
        os._exit(EXIT_INTERRUPTED)
    _requested = signum


def requested() -> int | None:
    """The signal that asked this process to stop, or None."""
    return _requested


def request(signum: int = signal.SIGTERM) -> None:
    """Ask this process to stop at its next safe point (as the first signal does)."""
    global _requested
    if _requested is None:
        _requested = signum


def check() -> None:
    """Raise `Interrupted` if a stop was requested; call it only where stopping is safe."""
    if _requested is not None:
        raise Interrupted(_requested)


def install() -> None:
    """Handle SIGTERM and SIGINT in this process (a worker process calls it once)."""
    for signum in SIGNALS:
        signal.signal(signum, _handle)


@contextmanager
def handling() -> Iterator[None]:
    """SIGTERM and SIGINT handled for the body (in the main thread; elsewhere a no-op), the
    previous handlers and a clear flag restored after it. A request made while these handlers
    were already installed (`python -m benchmark` installs them before its imports) is kept."""
    global _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}
    if any(handler is not _handle for handler in previous.values()):
        _requested = None
    install()
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _requested = None


def watch_parent(parent: int, every: float = 0.5) -> threading.Thread:
    """In a worker process: end it at once when `parent` is gone (killed, or stopped by a
    second signal), so that no worker trains on, or starts a trial, for a parent that cannot
    collect it. Ending at once is safe for the same reason a second signal is."""

    def watch() -> None:
        event = threading.Event()
        while not event.wait(every):
            if os.getppid() != parent:
                os._exit(EXIT_INTERRUPTED)

    thread = threading.Thread(target=watch, name="parent-watchdog", daemon=True)
    thread.start()
    return thread
