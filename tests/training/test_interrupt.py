"""Interrupted is not failed: real SIGTERMs and full disks at chosen points of a trial and of a
population leave every trial resumable (a complete checkpoint or none, nothing recorded
`failed`), the command exits with its own code, and the rerun ends bit-identical to an
uninterrupted run with each trial trained once."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from benchmark import interrupt
from benchmark.cli import EXIT_WRITE_FAILED, main
from benchmark.files import read_json
from benchmark.models import resolve_trial
from benchmark.training import loop
from tests.helpers import SWEEP, TRIAL, alive, children, marker_counts, subprocess_env, tiny_spec

TRIAL += ("--steps", "12", "--eval-every-epochs", "4", "--batch-size", "16", "--no-progress")
# Checkpoints at D steps 5, 9 and 12: every 4 from the reference's first, and the end.
CHECKPOINTS = [5, 9, 12]
# What may differ between two runs of one trial: the clock and the machine.
VOLATILE = {"seconds", "host", "cpu_threads"}


def at_rename(monkeypatch, target: str, nth: int, when: str, action) -> None:
    """Call `action()` at the `nth` rename onto a file named `target`, `when` "before" or
    "after" it: inside an atomic write, or right after one."""
    replace, seen = os.replace, []

    def hooked(src, dst):
        hit = os.path.basename(os.fspath(dst)) == target
        if hit:
            seen.append(dst)
        hit = hit and len(seen) == nth
        if hit and when == "before":
            action()
        replace(src, dst)
        if hit and when == "after":
            action()

    monkeypatch.setattr(os, "replace", hooked)


def at_fsync(monkeypatch, prefix: str, nth: int, action) -> None:
    """Call `action()` instead of the `nth` fsync of a file whose name starts with `prefix`:
    where a full disk reports ENOSPC for data the kernel could not place."""
    fsync, seen = os.fsync, []

    def hooked(fd):
        name = os.path.basename(os.readlink(f"/proc/self/fd/{fd}"))
        if name.startswith(prefix):
            seen.append(name)
            if len(seen) == nth:
                action()
        fsync(fd)

    monkeypatch.setattr(os, "fsync", hooked)


def at_step(monkeypatch, step: int, action) -> None:
    """Call `action()` in the middle of the training step that starts at `step`."""
    train_step = loop.GANTraining.train_step

    def hooked(self):
        real = self.real_batch  # after the step's batch is drawn, before any update

        def drawn():
            batch = real()
            if self.step == step:
                action()
            return batch

        self.real_batch = drawn
        try:
            train_step(self)
        finally:
            del self.real_batch

    monkeypatch.setattr(loop.GANTraining, "train_step", hooked)


def sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def disk_full() -> None:
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def weights(directory: Path) -> dict[str, torch.Tensor]:
    return torch.load(directory / "generator.pt", weights_only=True)


def checkpoint_step(directory: Path) -> int | None:
    path = directory / loop.CHECKPOINT
    saved = loop.load_checkpoint(path, torch.device("cpu")) if path.exists() else None
    return saved["training"]["step"] if saved else None


def assert_same_run(mine: Path, reference: Path) -> None:
    """Bit-identical to the uninterrupted run: final weights, metrics, and the result record
    but for its clock and machine fields."""
    ours, theirs = weights(mine), weights(reference)
    assert ours.keys() == theirs.keys()
    for name in ours:
        assert torch.equal(ours[name], theirs[name]), name
    assert (mine / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text()
    a, b = read_json(mine / "result.json"), read_json(reference / "result.json")
    assert {k: v for k, v in a.items() if k not in VOLATILE} == {
        k: v for k, v in b.items() if k not in VOLATILE
    }
    assert not (mine / loop.CHECKPOINT).exists() and not list(mine.glob(".*.tmp"))


@pytest.fixture
def reference(plugin, tmp_path) -> Path:
    out = tmp_path / "reference"
    assert main([*TRIAL, "--out", str(out)]) == 0
    return out


# ---- one trial ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("point", "stored"),
    [
        (("step", 7), 5),  # mid-step: the checkpoint of step 5 is the one kept
        (("before", "checkpoint.pt", 2), 9),  # during the write of step 9's: it completes
        (("after", "checkpoint.pt", 1), 5),  # between a checkpoint and its metrics.jsonl
    ],
)
def test_sigterm_leaves_a_trial_resumable(reference, tmp_path, monkeypatch, capsys, point, stored):
    out = tmp_path / "trial"
    with monkeypatch.context() as patch:
        if point[0] == "step":
            at_step(patch, point[1], sigterm)
        else:
            at_rename(patch, point[1], point[2], point[0], sigterm)
        assert main([*TRIAL, "--out", str(out)]) == interrupt.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted by SIGTERM" in err and "rerun the same command" in err
    assert "Traceback" not in err
    assert not (out / "result.json").exists() and not (out / "error.log").exists()
    assert checkpoint_step(out) == stored
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the handler is main's alone

    assert main([*TRIAL, "--out", str(out)]) == 0
    assert_same_run(out, reference)
    assert marker_counts_of(out) == (2, 1)  # started twice, trained to the end once


def test_sigterm_after_the_result_is_stored_finishes_the_trial(reference, tmp_path, monkeypatch):
    """Between result.json and the checkpoint's removal: the trial is done; the command ends
    as a finished one does, the checkpoint gone."""
    out = tmp_path / "trial"
    with monkeypatch.context() as patch:
        at_rename(patch, "result.json", 1, "after", sigterm)
        assert main([*TRIAL, "--out", str(out)]) == 0
    assert_same_run(out, reference)


def marker_counts_of(directory: Path) -> tuple[int, int]:
    words = (directory / "runs.log").read_text().split()[0::2]
    return words.count("start"), words.count("end")


# ---- a population ------------------------------------------------------------------------


def population_spec(folder: Path) -> Path:
    folder.mkdir()
    return tiny_spec(folder / "tiny.toml", models=("ns",), seeds=3, steps=12, extra="""
        population = 3
        """)  # fmt: skip


@pytest.mark.parametrize(
    ("point", "stored"),
    [
        (("step", 10), 9),
        # member 2's checkpoint at step 9: every member completes its checkpoint of step 9
        (("before", "checkpoint.pt", 5), 9),
    ],
)
def test_sigterm_leaves_a_population_resumable(plugin, tmp_path, monkeypatch, point, stored):
    reference = population_spec(tmp_path / "a")
    assert main(["sweep", str(reference), *SWEEP]) == 0
    spec = population_spec(tmp_path / "b")
    with monkeypatch.context() as patch:
        if point[0] == "step":
            at_step(patch, point[1], sigterm)
        else:
            at_rename(patch, point[1], point[2], point[0], sigterm)
        assert main(["sweep", str(spec), *SWEEP]) == interrupt.EXIT_INTERRUPTED
    trials = sorted((tmp_path / "b" / "tiny" / "trials").iterdir())
    assert len(trials) == 3
    for directory in trials:
        assert not (directory / "result.json").exists() and not (directory / "error.log").exists()
        assert checkpoint_step(directory) == stored

    assert main(["sweep", str(spec), *SWEEP]) == 0
    assert set(marker_counts(tmp_path / "b" / "tiny").values()) == {(2, 1)}
    for directory in trials:
        assert_same_run(directory, tmp_path / "a" / "tiny" / "trials" / directory.name)
        assert read_json(directory / "result.json")["population"] == 3


# ---- a full disk -------------------------------------------------------------------------


def test_a_full_disk_mid_checkpoint_is_not_a_failure(plugin, tmp_path, monkeypatch, capsys):
    """ENOSPC while member 2's checkpoint of step 9 is written (member 1's is written
    already): nothing recorded, every member's checkpoint of step 5 kept (the members'
    checkpoints of a step are renamed together, after all are written), the command names the
    file; once space is freed, the rerun finishes every trial once, as one population,
    bit-identical to the uninterrupted run."""
    reference = population_spec(tmp_path / "a")
    assert main(["sweep", str(reference), *SWEEP]) == 0
    spec = population_spec(tmp_path / "b")
    with monkeypatch.context() as patch:
        at_fsync(patch, ".checkpoint.pt~", 5, disk_full)
        assert main(["sweep", str(spec), *SWEEP]) == EXIT_WRITE_FAILED
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith("error: cannot write ") and "checkpoint.pt" in lines[-1]
    assert "No space left on device" in lines[-1] and "rerun the same command" in lines[-1]
    trials = sorted((tmp_path / "b" / "tiny" / "trials").iterdir())
    assert [checkpoint_step(d) for d in trials] == [5, 5, 5]
    for directory in trials:
        assert not (directory / "result.json").exists() and not (directory / "error.log").exists()
        assert not list(directory.glob(".*.tmp"))

    assert main(["sweep", str(spec), *SWEEP]) == 0
    assert set(marker_counts(tmp_path / "b" / "tiny").values()) == {(2, 1)}
    for directory in trials:
        assert_same_run(directory, tmp_path / "a" / "tiny" / "trials" / directory.name)


def test_a_full_disk_in_a_trial_keeps_its_checkpoint(reference, tmp_path, monkeypatch, capsys):
    out = tmp_path / "trial"
    with monkeypatch.context() as patch:
        at_rename(patch, "result.json", 1, "before", disk_full)
        assert main([*TRIAL, "--out", str(out)]) == EXIT_WRITE_FAILED
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith(f"error: cannot write {out / 'result.json'}: No space left")
    assert checkpoint_step(out) == 12 and not (out / "result.json").exists()
    assert main([*TRIAL, "--out", str(out)]) == 0
    assert_same_run(out, reference)


def test_a_failed_trial_is_retried_from_the_trial_command(plugin, tmp_path, capsys):
    out = tmp_path / "trial"
    boom = [*("boom" if arg == "ns" else arg for arg in TRIAL), "--out", str(out)]
    assert main(boom) == 1
    assert read_json(out / "result.json")["status"] == "failed" and (out / "error.log").exists()
    assert main(boom) == 1  # the stored failure is returned as it is ...
    assert marker_counts_of(out) == (1, 1)
    assert "--retry-failed" in capsys.readouterr().err
    assert main([*boom, "--retry-failed"]) == 1  # ... until asked to run it again
    assert marker_counts_of(out) == (2, 2)


# ---- processes ---------------------------------------------------------------------------


def test_a_second_sigterm_stops_at_once(plugin_dir, tmp_path):
    """Two SIGTERMs mid-step: the process ends there, with the interrupted code; what it
    leaves (the checkpoint of step 5) resumes."""
    script = (
        "import os, signal, sys\n"
        "import benchmark.training.step as t\n"
        "step = t.GANTraining.train_step\n"
        "def hooked(self):\n"
        "    if self.step == 7:\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "        os.kill(os.getpid(), signal.SIGTERM)\n"
        "    step(self)\n"
        "t.GANTraining.train_step = hooked\n"
        "from benchmark.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    out = tmp_path / "trial"
    argv = [sys.executable, "-c", script, *TRIAL, "--out", str(out)]
    done = subprocess.run(argv, env=subprocess_env(plugin_dir), capture_output=True, text=True)
    assert done.returncode == interrupt.EXIT_INTERRUPTED, done.stderr
    assert "Traceback" not in done.stderr and "interrupted by" not in done.stderr  # at once
    assert checkpoint_step(out) == 5 and not (out / "result.json").exists()


@pytest.mark.slow
def test_sigterm_to_the_parent_of_two_workers_leaves_no_worker(plugin_dir, tmp_path):
    """cpu_workers = 2: SIGTERM to the sweep's process only. The parent asks its workers to
    stop at a safe point and waits for them; none outlives it, none starts a trial after it,
    and the rerun finishes every trial once."""
    spec = tiny_spec(tmp_path / "tiny.toml", models=("ns",), seeds=3, steps=150,
                     eval_every=50, extra='[local]\ncpu_workers = 2\n')  # fmt: skip
    argv = [sys.executable, "-m", "benchmark", "sweep", str(spec), *SWEEP]
    env = subprocess_env(plugin_dir)
    log = (tmp_path / "first.log").open("w")
    process = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT)
    directory = tmp_path / "tiny"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and len(list(directory.glob("trials/*/runs.log"))) < 2:
        time.sleep(0.05)
    workers = children(process.pid)
    assert len(workers) >= 2, (tmp_path / "first.log").read_text()
    os.kill(process.pid, signal.SIGTERM)
    assert process.wait(timeout=120) == interrupt.EXIT_INTERRUPTED, (
        tmp_path / "first.log"
    ).read_text()
    time.sleep(1.0)
    assert [pid for pid in workers if alive(pid)] == []
    started = {name for name, (starts, _) in marker_counts(directory).items() if starts}
    assert len(started) == 2  # each worker had its first trial; none started a queued one
    for trial in directory.glob("trials/*"):
        assert (
            not (trial / "result.json").exists()
            or read_json(trial / "result.json")["status"] == "ok"
        )

    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert {ends for _, ends in marker_counts(directory).values()} == {1}


def test_a_slurm_task_not_requeued_is_not_a_failure(plugin, tmp_path, monkeypatch):
    """submitit raises UncompletedJobError from its signal handler, mid-step, when a timed-out
    task is not requeued: the trial keeps its checkpoint and records nothing."""
    import submitit

    import benchmark.sweep.slurm  # noqa: F401 - registers submitit's stop error
    from benchmark.registry import load_plugins

    load_plugins(["ganbench_testplugin"])  # the tiny dataset

    def stop() -> None:
        raise submitit.core.utils.UncompletedJobError("Job not requeued because: timed-out")

    trial = resolve_trial("ns", "tiny", steps=12, eval_every_epochs=4, batch_size=16, metrics=())
    with monkeypatch.context() as patch:
        at_step(patch, 7, stop)
        with pytest.raises(submitit.core.utils.UncompletedJobError):
            loop.run_trial(trial, tmp_path / "t", progress=False, device="cpu")
    assert checkpoint_step(tmp_path / "t") == 5 and not (tmp_path / "t" / "result.json").exists()
    assert loop.run_trial(trial, tmp_path / "t", progress=False, device="cpu")["d_steps"] == 12
