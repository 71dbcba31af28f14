"""The slurm executor against a real SLURM controller (start one with .ci/slurm-setup.sh)."""

from __future__ import annotations

import shutil
import subprocess
import time

import pandas as pd
import pytest

from benchmark.files import read_json
from tests.helpers import marker_counts, start_sweep, tiny_spec

SLURM = """
executor = "slurm"
[slurm]
cpus_per_task = 1
gpus_per_node = 0
timeout_min = 10
poll_seconds = 1
"""


def _controller() -> str:
    """Why SLURM cannot be used here, or "" if it can."""
    if shutil.which("sinfo") is None:
        return "sinfo is not installed (run .ci/slurm-setup.sh as root)"
    try:
        result = subprocess.run(
            ["sinfo", "-h", "-o", "%t"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "no SLURM controller answered within 20 s"
    if result.returncode != 0:
        return f"no SLURM controller answers: {result.stderr.strip()}"
    if not any(s.startswith(("idle", "mix", "alloc")) for s in result.stdout.split()):
        return f"no SLURM node takes jobs (states: {result.stdout.split()})"
    return ""


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(bool(_controller()), reason=_controller() or "slurm is up"),
]


def test_slurm_array_runs_every_trial(plugin_dir, tmp_path):
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns", "wgan", "boom"), extra=SLURM)
    log = tmp_path / "sweep.log"
    assert start_sweep(spec, plugin_dir, log).wait(timeout=300) == 1, log.read_text()  # boom fails
    directory = tmp_path / "tiny"
    frame = pd.read_csv(directory / "results.csv").set_index("model")
    assert frame.loc[["ns", "wgan"], "status"].tolist() == ["ok", "ok"]
    assert frame.loc["boom", "status"] == "failed"
    assert set(marker_counts(directory).values()) == {(1, 1)}
    # The array tasks ran on the cluster, in other processes, and left their logs.
    assert "submitted 3 slurm tasks" in log.read_text()
    assert len(list((directory / "slurm").glob("*_log.out"))) == 3
    hosts = {read_json(p)["host"] for p in directory.glob("trials/*/result.json")}
    assert len(hosts) == 1


def test_slurm_requeue_resumes_from_the_checkpoint(plugin_dir, tmp_path):
    """USR2 is what SLURM sends before a time limit or preemption: submitit checkpoints
    (requeues the same call) and the requeued task resumes the trial."""
    steps = 80
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns",), steps=steps, eval_every=4,
                     extra=SLURM)  # fmt: skip
    log = tmp_path / "sweep.log"
    process = start_sweep(spec, plugin_dir, log)
    directory = tmp_path / "tiny"
    deadline = time.monotonic() + 200
    while time.monotonic() < deadline:
        checkpoints = list(directory.glob("trials/*/checkpoint.pt"))
        if checkpoints and not (checkpoints[0].parent / "result.json").exists():
            break
        time.sleep(0.1)
    else:
        pytest.fail(f"no checkpoint in time: {log.read_text()}")
    job_id = subprocess.run(
        ["squeue", "-h", "-o", "%i", "-n", "ganbench-tiny"], capture_output=True, text=True
    ).stdout.split()
    assert len(job_id) == 1
    subprocess.run(["scancel", "--signal=USR2", job_id[0]], check=True)
    assert process.wait(timeout=300) == 0, log.read_text()
    trial = checkpoints[0].parent
    result = read_json(trial / "result.json")
    assert (result["status"], result["d_steps"]) == ("ok", steps)
    assert marker_counts(directory)[trial.name] == (2, 1)  # started twice, finished once
    slurm_log = "".join(p.read_text() for p in (directory / "slurm").glob("*_log.*"))
    assert "requeu" in slurm_log.lower()
