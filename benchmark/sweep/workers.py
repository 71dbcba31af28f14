"""Worker processes of a local sweep: each runs one job at a time, and one that dies takes
only its own job down.

concurrent.futures' ProcessPoolExecutor marks the whole pool broken when one worker dies
(a segfault in an extension, the OOM killer): every job still queued or running fails with
BrokenProcessPool, and a rerun meets the same death and the same end. Here each worker has
its own pipe, so the parent knows which job a dead worker held: that job's outcome is
`WorkerDied` (with the exit code or signal), a fresh worker takes the slot, and the other
jobs run on.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from contextlib import suppress
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

from benchmark import interrupt

Job = tuple[Any, Callable[..., Any], tuple]  # (key, function, arguments)


class WorkerDied(RuntimeError):
    """The worker running a job ended without returning its outcome."""

    def __init__(self, pid: int, exitcode: int | None) -> None:
        self.pid, self.exitcode = pid, exitcode
        super().__init__(f"its worker process {pid} died ({describe_exit(exitcode)})")


def describe_exit(exitcode: int | None) -> str:
    """'killed by SIGKILL (signal 9)' or 'exit code 3', from a multiprocessing exit code."""
    if exitcode is None:
        return "exit code unknown"
    if exitcode < 0:
        with suppress(ValueError):
            return f"killed by {signal.Signals(-exitcode).name} (signal {-exitcode})"
        return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"


def _serve(conn: Connection, init: Callable[..., None], init_args: tuple) -> None:
    """A worker: set itself up, then run each job it is sent until it is sent None (or the
    parent's end of the pipe closes)."""
    init(*init_args)
    while True:
        try:
            job = conn.recv()
        except EOFError:
            return
        if job is None:
            return
        function, args = job
        try:
            outcome = ("ok", function(*args))
        except BaseException as error:  # noqa: BLE001 - the parent decides what it means
            outcome = ("raised", _sendable(error))
        try:
            conn.send(outcome)
        except Exception as error:  # an outcome that does not pickle
            conn.send(("raised", RuntimeError(f"its outcome could not be sent back: {error}")))


def _sendable(error: BaseException) -> BaseException:
    """The error itself if the parent can rebuild it from a pickle, else a RuntimeError with
    its type and message (an exception whose __init__ takes other arguments than its args
    would fail in the parent's recv, far from its cause)."""
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return RuntimeError(f"{type(error).__name__}: {error}")
    return error


@dataclass
class _Worker:
    slot: Any
    process: multiprocessing.process.BaseProcess
    conn: Connection


class Workers:
    """One worker process per slot, started with `init(slot, *init_args)` (spawned: a forked
    child of a process that touched CUDA cannot use it)."""

    def __init__(self, slots: Iterable[Any], init: Callable[..., None], init_args: tuple) -> None:
        self._mp = multiprocessing.get_context("spawn")
        self._init, self._init_args = init, init_args
        self._workers = [self._start(slot) for slot in slots]

    def _start(self, slot: Any) -> _Worker:
        mine, theirs = self._mp.Pipe()
        process = self._mp.Process(
            target=_serve, args=(theirs, self._init, (slot, *self._init_args)), daemon=False
        )
        process.start()
        theirs.close()  # the child's end: kept open here, a dead child would never read as EOF
        return _Worker(slot, process, mine)

    def run(self, jobs: Iterable[Job], every: float = 0.2) -> Iterator[tuple[Any, Any]]:
        """Run the jobs, yielding (key, value) as each ends: what it returned, or WorkerDied.
        An exception it raised is raised here. A stop request (a signal) is noticed within
        `every` seconds."""
        queue = deque(jobs)
        idle = list(self._workers)
        busy: dict[int, tuple[_Worker, Any]] = {}  # id(worker) -> (worker, key)
        while queue or busy:
            while queue and idle:
                worker = idle.pop()
                key, function, args = queue.popleft()
                worker.conn.send((function, args))
                busy[id(worker)] = (worker, key)
            interrupt.check()
            handles = [h for w, _ in busy.values() for h in (w.conn, w.process.sentinel)]
            wait(handles, timeout=every)
            for worker, key in list(busy.values()):
                outcome = self._outcome(worker)
                if outcome is None:
                    continue  # still running
                del busy[id(worker)]
                kind, value = outcome
                if kind == "died":
                    worker = self._replace(worker)
                idle.append(worker)
                if kind == "raised":
                    raise value
                yield key, value

    def _outcome(self, worker: _Worker) -> tuple[str, Any] | None:
        """The worker's finished job's outcome, ("died", WorkerDied), or None if it runs on.
        The pipe is read first: a worker may have sent its outcome and then ended."""
        if worker.conn.poll():
            with suppress(EOFError, OSError):
                return worker.conn.recv()
        if worker.process.is_alive():
            return None
        worker.process.join()
        return "died", WorkerDied(worker.process.pid, worker.process.exitcode)

    def _replace(self, dead: _Worker) -> _Worker:
        dead.conn.close()
        fresh = self._start(dead.slot)
        self._workers[self._workers.index(dead)] = fresh
        return fresh

    def stop(self) -> None:
        """Ask every worker to stop its job at the next safe point (as a first SIGTERM does)."""
        for worker in self._workers:
            if worker.process.is_alive():
                with suppress(ProcessLookupError):  # it ended meanwhile
                    os.kill(worker.process.pid, signal.SIGTERM)

    def close(self) -> None:
        """Let each worker finish its job, then end; whatever they still send is dropped (read,
        so that no worker blocks on a full pipe)."""
        for worker in self._workers:
            with suppress(OSError):
                worker.conn.send(None)
        while any(worker.process.is_alive() for worker in self._workers):
            live = [w for w in self._workers if w.process.is_alive()]
            for conn in wait([h for w in live for h in (w.conn, w.process.sentinel)], timeout=1):
                if isinstance(conn, Connection):
                    with suppress(EOFError, OSError):
                        conn.recv()
        for worker in self._workers:
            worker.process.join()
            worker.conn.close()
