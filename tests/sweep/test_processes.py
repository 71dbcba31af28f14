"""Real `python -m benchmark sweep` processes: SIGKILL and restart, two sweeps at once."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmark.files import read_json
from benchmark.sweep.executors import threads_per_worker
from tests.helpers import REPO, marker_counts, start_sweep, subprocess_env, tiny_spec


def check_complete(directory: Path, n_trials: int, steps: int) -> None:
    """Every trial finished once, every stored file readable, results.csv complete."""
    trials = sorted((directory / "trials").iterdir())
    assert len(trials) == n_trials
    for trial in trials:
        result = read_json(trial / "result.json")
        assert read_json(trial / "trial.json")["steps"] == steps
        assert (result["status"], result["d_steps"]) == ("ok", steps)
        torch.load(trial / "generator.pt", weights_only=True)
        lines = (trial / "metrics.jsonl").read_text().splitlines()
        assert lines and all(line.startswith("{") and line.endswith("}") for line in lines)
    assert {ends for _, ends in marker_counts(directory).values()} == {1}
    frame = pd.read_csv(directory / "results.csv")
    assert sorted(frame["trial_id"]) == [t.name for t in trials]


@pytest.mark.slow
def test_kill_and_restart(plugin_dir, tmp_path):
    steps = 24
    spec = tiny_spec(
        tmp_path / "tiny.toml", models=("ns", "wgan", "began"), steps=steps, eval_every=4
    )
    directory = tmp_path / "tiny"
    process = start_sweep(spec, plugin_dir, tmp_path / "first.log")
    # Kill mid-trial: after a trial has checkpointed but before it has a result.
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        # A finished trial drops its checkpoint, so "started" is read from the run markers
        # (every planned trial's trial.json is written before the first trains).
        started = [p.parent for p in directory.glob("trials/*/runs.log")]
        mid_trial = [p.parent for p in directory.glob("trials/*/checkpoint.pt")]
        if any(not (d / "result.json").exists() for d in mid_trial) and len(started) >= 2:
            break
        time.sleep(0.05)
    assert process.poll() is None, (tmp_path / "first.log").read_text()
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    started = [p.parent for p in directory.glob("trials/*/runs.log")]
    interrupted = [d for d in started if not (d / "result.json").exists()]
    assert interrupted

    process = start_sweep(spec, plugin_dir, tmp_path / "second.log")
    assert process.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()
    check_complete(directory, 3, steps)
    counts = marker_counts(directory)
    for trial in interrupted:  # started twice (killed, resumed), finished once
        assert counts[trial.name] == (2, 1)
        history = [line for line in (trial / "metrics.jsonl").read_text().splitlines()]
        assert len(history) == len(set(history))


@pytest.mark.slow
def test_two_sweeps_on_one_directory(plugin_dir, tmp_path):
    # Trials long enough, and the second sweep started once the first is training, so that
    # the first cannot finish every trial while the second is still starting up (it did once
    # with 8-step trials started together).
    steps = 200
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns", "wgan"), seeds=2, steps=steps,
                     eval_every=steps)  # fmt: skip
    first = start_sweep(spec, plugin_dir, tmp_path / "first.log")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not list((tmp_path / "tiny").glob("trials/*/runs.log")):
        time.sleep(0.05)
    second = start_sweep(spec, plugin_dir, tmp_path / "second.log")
    assert first.wait(timeout=600) == 0, (tmp_path / "first.log").read_text()
    assert second.wait(timeout=600) == 0, (tmp_path / "second.log").read_text()
    check_complete(tmp_path / "tiny", 4, steps)
    assert set(marker_counts(tmp_path / "tiny").values()) == {(1, 1)}
    # Both did some of the work (each claims what the other does not hold).
    pids = set()
    for trial in (tmp_path / "tiny" / "trials").iterdir():
        pids |= {line.split()[1] for line in (trial / "runs.log").read_text().splitlines()}
    assert pids == {str(first.pid), str(second.pid)}


@pytest.mark.slow
def test_quick_spec_end_to_end(tmp_path):
    """runs/quick.toml as shipped, but 30 D steps per trial: results.csv with the mixture
    metrics for 12 trials per model, trained in populations, and a report with the samples."""
    text = (REPO / "runs" / "quick.toml").read_text()
    text = re.sub(r"^steps = \d+", "steps = 30", text, flags=re.M)
    assert "\nsteps = 30 " in text
    spec = tmp_path / "quick.toml"
    spec.write_text(text)
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "benchmark", "sweep", str(spec), "--no-progress"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    frame = pd.read_csv(tmp_path / "quick" / "results.csv")
    assert sorted(frame["model"]) == sorted(
        ["mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began"] * 12
    )
    assert set(frame["status"]) <= {"ok", "diverged"}
    assert set(frame["population"]) == {6} and set(frame["mixture_n"]) == {2500}
    # Two workers share the cores (one thread each on 2 cores), at most $OMP_NUM_THREADS.
    assert set(frame["cpu_threads"]) == {threads_per_worker(2, limit="2")}
    ok = frame[frame["status"] == "ok"]
    assert ok["modes"].between(0, 8).all() and ok["hq"].between(0, 1).all()
    assert (ok["energy"] > 0).all() and (ok["w1"] == ok["w1_step_30"]).all()
    assert "best w1" in result.stdout
    record = json.loads((tmp_path / "quick" / "sweep.json").read_text())
    assert record["description"].startswith("The 2-D mixture study")
    assert (record["name"], record["spec"], record["trials"]) == ("quick", str(spec), 84)
    assert (record["metric"], record["direction"], record["sample0_default"]) == (
        "w1", "min", False,
    )  # fmt: skip
    assert (
        "Default setting (sample 0)"
        not in (tmp_path / "quick" / "report" / "report.md").read_text()
    )
    report = (tmp_path / "quick" / "report" / "report.md").read_text()
    assert "![samples_ring_narrow](samples_ring_narrow.png)" in report
    assert "### Where the scores stand" in report  # the ring's reference samplers
    for trial in ok["trial_id"]:
        with np.load(tmp_path / "quick" / "trials" / trial / "samples.npz") as stored:
            assert stored["points"].shape == (2500, 2) and stored["centres"].shape == (8, 2)


@pytest.mark.slow
@pytest.mark.parametrize(("how", "named"), [("exit", "exit code 3"), ("SIGKILL", "SIGKILL")])
def test_a_worker_that_dies_costs_only_its_own_trials(plugin_dir, tmp_path, how, named):
    """Two workers; the `die` model's loss ends its worker process abruptly (standing for a
    segfault or the OOM killer). Each such trial is recorded failed, naming its exit; the
    `ns` trials beside them all finish; the sweep exits non-zero; a rerun retries only the
    trials whose worker died."""
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns", "die"), seeds=2, steps=6,
                     eval_every=6, extra="[local]\ncpu_workers = 2\n")  # fmt: skip
    argv = [sys.executable, "-m", "benchmark", "sweep", str(spec), "--no-report", "--no-progress"]
    env = {**subprocess_env(plugin_dir), "GANBENCH_TEST_DIE": how}
    first = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 1, first.stderr
    assert "Traceback" not in first.stdout + first.stderr
    frame = pd.read_csv(tmp_path / "tiny" / "results.csv")
    assert sorted(zip(frame["model"], frame["status"], strict=True)) == [
        ("die", "failed"), ("die", "failed"), ("ns", "ok"), ("ns", "ok")
    ]  # fmt: skip
    for trial_id in frame.loc[frame["model"] == "die", "trial_id"]:
        result = read_json(tmp_path / "tiny" / "trials" / trial_id / "result.json")
        assert named in result["error"] and result["worker_died"] is True
        assert f"{trial_id} die/tiny seed" in first.stdout + first.stderr
        assert named in (tmp_path / "tiny" / "trials" / trial_id / "error.log").read_text()
    counts = marker_counts(tmp_path / "tiny")

    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert second.returncode == 1, second.stderr
    assert "2 trial(s) whose worker died run again" in second.stderr
    again = marker_counts(tmp_path / "tiny")
    for trial_id, (starts, ends) in counts.items():
        retried = trial_id in set(frame.loc[frame["model"] == "die", "trial_id"])
        assert again[trial_id] == ((starts + 1, ends) if retried else (starts, ends))
