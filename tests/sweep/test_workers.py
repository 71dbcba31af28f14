"""The local sweep's worker processes (benchmark/sweep/workers.py): outcomes, errors sent
back by type, a worker that dies, and the project's errors surviving the trip."""

from __future__ import annotations

import errno
import os
import pickle
import signal

import pytest

from benchmark.errors import ConfigError, DamagedFile, WriteFailed
from benchmark.sweep.workers import WorkerDied, Workers, describe_exit


def _setup(slot) -> None:  # a worker's init: nothing to set up here
    pass


def _square(x: int) -> int:
    return x * x


def _raise(error: BaseException) -> None:
    raise error


class _Unpicklable(Exception):
    def __init__(self, a: int, b: int) -> None:  # pickle passes only args back: one value
        super().__init__(f"{a}+{b}")


def _raise_unpicklable() -> None:
    raise _Unpicklable(1, 2)


def _die(code: int) -> None:
    os._exit(code)


def _kill_self() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def test_the_projects_errors_survive_a_pickle():
    errors = [
        ConfigError("lr", 0, "a number > 0", "spec.toml"),
        DamagedFile("/x/result.json", "truncated", "delete it"),
        WriteFailed("/x/checkpoint.pt", OSError(errno.ENOSPC, "No space left on device")),
    ]
    for error in errors:
        back = pickle.loads(pickle.dumps(error))
        assert type(back) is type(error) and str(back) == str(error)
        assert back.__dict__ == error.__dict__
    assert pickle.loads(pickle.dumps(errors[2])).errno == errno.ENOSPC


@pytest.mark.slow
def test_workers_return_raise_and_survive_a_death():
    workers = Workers([0, 1], _setup, ())
    try:
        jobs = [(k, _square, (k,)) for k in range(4)]
        assert sorted(workers.run(jobs)) == [(0, 0), (1, 1), (2, 4), (3, 9)]
        with pytest.raises(WriteFailed, match="cannot write /x: No space"):
            error = WriteFailed("/x", OSError(errno.ENOSPC, "No space left on device"))
            list(workers.run([("w", _raise, (error,))]))
        with pytest.raises(RuntimeError, match=r"_Unpicklable: 1\+2"):
            list(workers.run([("u", _raise_unpicklable, ())]))
        # A death costs its own job only; its slot gets a fresh worker for the rest.
        jobs = [
            ("exit", _die, (3,)),
            ("kill", _kill_self, ()),
            *[(k, _square, (k,)) for k in (5, 6)],
        ]
        outcomes = dict(workers.run(jobs))
        assert isinstance(outcomes["exit"], WorkerDied) and outcomes["exit"].exitcode == 3
        assert "killed by SIGKILL (signal 9)" in str(outcomes["kill"])
        assert (outcomes[5], outcomes[6]) == (25, 36)
    finally:
        workers.close()


def test_exits_are_described():
    assert describe_exit(-9) == "killed by SIGKILL (signal 9)"
    assert describe_exit(3) == "exit code 3"
    assert describe_exit(None) == "exit code unknown"
