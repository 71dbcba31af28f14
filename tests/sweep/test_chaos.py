"""Chaos and load: a sweep interrupted at random moments, resumed each time, ends bit for bit
where an uninterrupted run does; a sweep of 200 trials records each once.

The chaos test is seeded ($GANBENCH_CHAOS_SEED, default 0): a failure replays with the same
kinds, delays and injected write failures. What each interruption hit is printed (pytest -s).
"""

from __future__ import annotations

import os
import random
import resource
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import torch

from benchmark.files import read_json
from benchmark.training.loop import load_checkpoint
from tests.helpers import marker_counts, subprocess_env

# Two populations of two ring trials, one per worker: checkpoints every 200 D steps (with the
# mixture scores, a second per member), each step slowed by a sleep so that a run lasts long
# enough to be hit mid-training many times without costing CPU time.
CHAOS_SPEC = """
plugins = ["ganbench_testplugin"]
datasets = ["ring"]
models = ["ns", "wgan"]
seeds = 2
networks = "points"
steps = 2000
batch_size = 64
eval_every_epochs = 0.128   # 200 D steps at batch 64 (an epoch is 100,000 points)
metrics = ["mixture"]
metric = "w1"
device = "cpu"
population = 2

[local]
cpu_workers = 2
"""
STEP_SLEEP = "0.01"
# Fields of a result that measure the run, not the trial: the rest must match bit for bit.
MEASURED = {"seconds", "population"}
INTERRUPTIONS = 21  # at least 20, seven of each kind
KINDS = ("SIGKILL", "SIGTERM", "write")


def _sweep(spec: Path, env: dict[str, str]) -> subprocess.Popen:
    argv = [sys.executable, "-m", "benchmark", "sweep", str(spec), "--no-report", "--no-progress"]
    return subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _state(directory: Path) -> dict[str, tuple[int, bool]]:
    """Per trial: the checkpointed or finished D step, and whether its result is stored."""
    state = {}
    for trial in sorted((directory / "trials").glob("*")):
        if (trial / "result.json").exists():
            state[trial.name] = (read_json(trial / "result.json")["d_steps"], True)
        elif (trial / "checkpoint.pt").exists():
            checkpoint = load_checkpoint(trial / "checkpoint.pt", torch.device("cpu"))
            state[trial.name] = (checkpoint["training"]["step"], False)
        else:
            state[trial.name] = (0, False)
    return state


def _where(before: dict, after: dict) -> str:
    """Where an interruption landed: what the run it stopped had stored."""
    stored = sum(done for _, done in after.values()) - sum(done for _, done in before.values())
    steps = sorted({step for step, done in after.values() if not done})
    moved = [name for name in after if after[name] != before.get(name, (0, False))]
    return (
        f"{len(moved)} trial(s) moved on, {stored} result(s) stored; "
        f"unfinished at D steps {steps or '-'}"
    )


def _markers(directory: Path) -> int:
    """Run markers written so far (a line per member each time a population starts or ends)."""
    return sum(len(p.read_text().splitlines()) for p in directory.glob("trials/*/runs.log"))


def _comparable(result: dict) -> dict:
    return {k: v for k, v in result.items() if k not in MEASURED}


def _generator_bits(path: Path) -> dict[str, bytes]:
    state = torch.load(path, weights_only=True)
    return {name: tensor.numpy().tobytes() for name, tensor in state.items()}


@pytest.mark.slow
def test_chaos_interruptions_leave_the_bits_of_an_uninterrupted_run(plugin_dir, tmp_path):
    rng = random.Random(int(os.environ.get("GANBENCH_CHAOS_SEED", "0")))
    env = {**subprocess_env(plugin_dir), "GANBENCH_TEST_STEP_SLEEP": STEP_SLEEP}
    reference, chaos = tmp_path / "reference", tmp_path / "chaos"
    for folder in (reference, chaos):
        folder.mkdir()
        (folder / "mix.toml").write_text(CHAOS_SPEC)

    start = time.monotonic()
    done = _sweep(reference / "mix.toml", env)
    assert done.wait(timeout=600) == 0, done.stdout.read().decode()
    print(f"\nuninterrupted: {time.monotonic() - start:.1f} s")

    landed: Counter[str] = Counter()
    log = []
    while sum(landed.values()) < INTERRUPTIONS:
        kind = KINDS[sum(landed.values()) % len(KINDS)]
        run_env = dict(env)
        if kind == "write":
            # the parent renames ~6 files on its first run, a worker ~4 per checkpoint
            run_env["GANBENCH_TEST_FAIL_REPLACE"] = str(rng.randint(1, 8))
        before = _state(chaos / "mix") if (chaos / "mix" / "trials").exists() else {}
        markers = _markers(chaos / "mix")
        process = _sweep(chaos / "mix.toml", run_env)
        if kind != "write":
            # A third land in the start-up (imports, plan, workers: seconds); the others at a
            # random moment of the first 2.5 s of training, so that each run moves the sweep
            # on by a checkpoint or so and the sweep outlasts every interruption.
            during_start = rng.random() < 1 / 3
            delay = rng.uniform(0.2, 3.0) if during_start else rng.uniform(0.0, 2.5)
            if not during_start:
                while _markers(chaos / "mix") == markers and process.poll() is None:
                    time.sleep(0.02)
            try:
                process.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                process.send_signal(getattr(signal, kind))
        code = process.wait(timeout=300)
        output = process.stdout.read().decode()
        assert "Traceback" not in output, output
        expected = {"SIGKILL": -signal.SIGKILL, "SIGTERM": 75, "write": 74}[kind]
        if code == 0:
            print("\n".join(log))
            pytest.fail(f"the sweep finished before interruption {sum(landed.values()) + 1}")
        assert code == expected, (kind, code, output)
        after = _state(chaos / "mix") if (chaos / "mix" / "trials").exists() else {}
        landed[kind] += 1
        if kind == "write":
            detail = f"os.replace #{run_env['GANBENCH_TEST_FAIL_REPLACE']} failed"
        else:
            detail = f"{delay:.2f} s after {'launch' if during_start else 'training began'}"
        log.append(f"{len(log) + 1:2d}. {kind:7s} {detail}: {_where(before, after)}")
    finish = _sweep(chaos / "mix.toml", env)
    assert finish.wait(timeout=600) == 0, finish.stdout.read().decode()
    print("\n".join(["", *log, f"interruptions by kind: {dict(landed)}"]))

    trials = sorted(p.name for p in (reference / "mix" / "trials").iterdir())
    assert sorted(p.name for p in (chaos / "mix" / "trials").iterdir()) == trials
    for name in trials:
        want, got = reference / "mix" / "trials" / name, chaos / "mix" / "trials" / name
        assert _comparable(read_json(got / "result.json")) == _comparable(
            read_json(want / "result.json")
        ), name
        assert _generator_bits(got / "generator.pt") == _generator_bits(want / "generator.pt")
        lines = (got / "metrics.jsonl").read_text().splitlines()
        assert lines == (want / "metrics.jsonl").read_text().splitlines(), name
    frames = [pd.read_csv(d / "mix" / "results.csv") for d in (reference, chaos)]
    frames = [f.drop(columns=sorted(MEASURED)).sort_values("trial_id") for f in frames]
    pd.testing.assert_frame_equal(
        frames[0].reset_index(drop=True), frames[1].reset_index(drop=True)
    )
    # Each trial finished once: never trained again after its result was stored.
    assert all(ends <= 1 for _, ends in marker_counts(chaos / "mix").values())


@pytest.mark.slow
def test_a_sweep_of_200_trials_records_each_once(plugin_dir, tmp_path):
    """The load: 200 short ring trials (25 populations of 8, two workers; no scores, which
    the chaos test covers). Peak memory, open files and wall time go to the test's output."""
    spec = tmp_path / "load.toml"
    spec.write_text(
        CHAOS_SPEC.replace('models = ["ns", "wgan"]', 'models = ["ns", "wgan", "ls", "mm"]')
        .replace("seeds = 2", "seeds = 50")
        .replace("steps = 2000", "steps = 20")
        .replace("eval_every_epochs = 0.128", "eval_every_epochs = 0.0128")
        .replace('metrics = ["mixture"]\nmetric = "w1"', "metrics = []")
        .replace("population = 2", "population = 8")
    )
    env = subprocess_env(plugin_dir)
    start = time.monotonic()
    process = _sweep(spec, env)
    peak_files = 0
    while process.poll() is None:
        processes = [process.pid, *_descendants(process.pid)]
        peak_files = max(peak_files, sum(_open_files(pid) for pid in processes))
        time.sleep(0.5)
    output = process.stdout.read().decode()
    seconds = time.monotonic() - start
    assert process.returncode == 0, output
    # ru_maxrss of the largest finished child (the sweep or one of its workers), in KiB.
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"\nload: 200 trials in {seconds:.0f} s, peak RSS {peak_mib:.0f} MiB, "
          f"at most {peak_files} open files across the sweep's processes")  # fmt: skip
    frame = pd.read_csv(tmp_path / "load" / "results.csv")
    assert len(frame) == 200 and frame["trial_id"].is_unique
    assert set(frame["status"]) == {"ok"}
    assert set(marker_counts(tmp_path / "load").values()) == {(1, 1)}


def _descendants(pid: int) -> list[int]:
    found, queue = [], [pid]
    while queue:
        path = Path(f"/proc/{queue.pop()}/task")
        for task in path.glob("*/children") if path.exists() else ():
            with_children = [int(p) for p in task.read_text().split()]
            found += with_children
            queue += with_children
    return found


def _open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:  # it ended meanwhile
        return 0
