"""The local executor splits the CPU cores between its workers and records each one's threads."""

from __future__ import annotations

import pandas as pd
import pytest
from test_sweep import plugin, plugin_dir, tiny_spec  # noqa: F401 - fixtures

from benchmark import executors
from benchmark.__main__ import main
from benchmark.executors import threads_per_worker


def test_threads_per_worker_splits_the_cores():
    assert threads_per_worker(1, cores=2, limit="") == 2
    assert threads_per_worker(2, cores=2, limit="") == 1
    assert threads_per_worker(3, cores=2, limit="") == 1  # never zero
    assert threads_per_worker(2, cores=16, limit="") == 8
    assert threads_per_worker(4, cores=18, limit="") == 4  # cores // workers
    # $OMP_NUM_THREADS, when set, caps every worker.
    assert threads_per_worker(1, cores=16, limit="4") == 4
    assert threads_per_worker(1, cores=2, limit="8") == 2
    assert threads_per_worker(1, cores=2, limit="x") == 2  # not a number: ignored


@pytest.mark.usefixtures("plugin")
@pytest.mark.parametrize(("workers", "cores", "threads"), [(1, 2, 2), (2, 2, 1), (2, 4, 2)])
def test_cpu_workers_record_their_thread_count(tmp_path, monkeypatch, workers, cores, threads):
    """1 worker on 2 cores runs in this process with 2 threads; 2 workers get 1 each (2 each
    on 4 cores); every result.json says so in cpu_threads."""
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(executors, "available_cores", lambda: cores)
    extra = f"[local]\ncpu_workers = {workers}\n"
    spec = tiny_spec(tmp_path / "t.toml", models=("ns",), seeds=2, steps=2, eval_every=2,
                     extra=extra)  # fmt: skip
    assert main(["sweep", str(spec), "--no-progress", "--no-report"]) == 0
    frame = pd.read_csv(tmp_path / "t" / "results.csv")
    assert list(frame["status"]) == ["ok", "ok"]
    assert list(frame["cpu_threads"]) == [threads, threads]
