"""`python -m benchmark gpu-check --tiny`: the whole command on the CPU, and its time limit."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
import torch

from benchmark.cli import main
from benchmark.gpu_check.checks import HostDraws, relative_difference
from benchmark.gpu_check.report import JSON_NAME, MARKDOWN_NAME
from benchmark.gpu_check.run import STOPPED_BY_WATCHDOG
from benchmark.gpu_check.study import assign, plan_seeds, step_time
from tests.helpers import alive, children

SECTIONS = (
    "## Equivalence",
    "## Speed",
    "## Ring (Welfert et al. 2023)",
    "## Study",
    "## Not done",
)


def _run(tmp_path, *extra: str) -> tuple[int, float, dict, str]:
    """The command in a child process: its watchdog may end the process at the limit, which
    must never be the test runner's."""
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    }
    argv = ["-m", "benchmark", "gpu-check", "--tiny", "--out", str(tmp_path), *extra]
    start = time.monotonic()
    code = subprocess.run([sys.executable, *argv], env=env, timeout=600).returncode
    seconds = time.monotonic() - start
    record = json.loads((tmp_path / JSON_NAME).read_text())
    return code, seconds, record, (tmp_path / MARKDOWN_NAME).read_text()


@pytest.mark.slow
def test_tiny_run_end_to_end(tmp_path):
    code, seconds, record, text = _run(tmp_path)
    assert code == 0
    assert seconds < 145
    ring = record["ring"]
    assert ring["seeds"] == 2 and ring["steps"] == 10
    assert [(r["model"], r["rate"]) for r in ring["rows"]] == [
        ("mm", "success"), ("mm", "failure"), ("ns", "success"), ("ns", "failure")
    ]  # fmt: skip
    assert all(r["seeds"] == 2 and r["published"].endswith("/200") for r in ring["rows"])
    assert "| mm | success |" in text and "| ns | failure |" in text
    assert record["state"] == "finished" and record["tiny"] is True
    for section in SECTIONS:
        assert section in text
    equivalence = record["equivalence"]
    models = ["mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began"]
    assert [r["model"] for r in equivalence["devices"]] == models
    # The CPU against itself from the same draws: bit for bit.
    assert all(r["max_relative_difference"] == 0.0 for r in equivalence["devices"])
    assert all(r["ok"] for r in equivalence["population"])
    assert equivalence["features"][0]["max_relative_difference"] == 0.0
    sizes = {(r["model"], r["size"]) for r in record["speed"]["steps"] if r.get("steps_per_s")}
    assert sizes == {(m, s) for m in models for s in ("1", "4", "auto")}
    precisions = [r["precision"] for r in record["speed"]["fid"] if r["kind"] == "precision"]
    assert precisions == ["fp32", "tf32", "bf16"]
    study = record["study"]["result"]
    assert [m["model"] for m in study["models"]] == models
    for model in study["models"]:
        assert model["seeds_finished"] == model["seeds_planned"] == record["study"]["seeds"]
        assert model["eval_steps"] == [6, 11, 16, 20]
        assert all(c["seeds"] == model["seeds_planned"] for c in model["checkpoints"])
    assert (tmp_path / "study" / "ns" / "seed0" / "result.json").exists()
    assert "| ns | 3/3 |" in text or f"| ns | {record['study']['seeds']}/" in text


@pytest.mark.slow
def test_time_limit_stops_cleanly_and_keeps_what_finished(tmp_path):
    # 10 s: less than the whole run takes on any machine (its study alone plans 8 s for a
    # child process to start), so the limit, not the work, ends it.
    code, seconds, record, text = _run(tmp_path, "--time-limit", "10")
    assert seconds < 10 + 5  # the limit, plus the interpreter's own exit
    assert record["state"] == "finished" and record["elapsed_s"] <= 10
    assert code == 0  # nothing that ran differed
    # What ran before the limit is kept, and what did not fit is named.
    assert record["equivalence"]["devices"][0]["max_relative_difference"] == 0.0
    assert any(note.startswith("study: not started") for note in record["not_done"])
    for section in SECTIONS:
        assert section in text


def test_bad_time_limit_is_one_line_error(tmp_path, capsys):
    assert main(["gpu-check", "--tiny", "--out", str(tmp_path), "--time-limit", "nan"]) == 2
    assert "time-limit=nan is not allowed" in capsys.readouterr().err


def test_host_draws_make_two_devices_draw_the_same_numbers():
    from benchmark.models import resolve_trial
    from benchmark.training.step import GANTraining

    trial = resolve_trial(
        "wgan_gp", "mnist", batch_size=4, metrics=(), generator="mlp", discriminator="mlp"
    )
    images = torch.randint(0, 256, (32, 1, 28, 28), dtype=torch.uint8)
    draws = [HostDraws(GANTraining(trial, images, torch.device("cpu"))) for _ in range(2)]
    assert torch.equal(draws[0].sample_z(), draws[1].sample_z())
    assert torch.equal(draws[0].real_batch(), draws[1].real_batch())
    assert torch.equal(draws[0].uniform((3,)), draws[1].uniform((3,)))


def test_relative_difference():
    a = {"w": torch.tensor([1.0, -4.0])}
    assert relative_difference(a, {"w": torch.tensor([1.0, -4.0])}) == 0.0
    assert relative_difference({"w": torch.tensor([1.5, -4.0])}, a) == pytest.approx(0.5 / 4)
    assert relative_difference(a, {"v": torch.tensor([1.0])}) == float("inf")


def test_step_time_interpolates_between_measured_sizes():
    measured = {1: 0.01, 16: 0.04, 64: 0.1}
    assert step_time(measured, 16) == 0.04
    assert step_time(measured, 6) == pytest.approx(0.01 + 5 / 15 * 0.03)
    assert step_time(measured, 128) == pytest.approx(0.2)  # in proportion beyond the largest
    assert step_time({}, 4) == float("inf")


def test_plan_seeds_takes_the_most_that_fit():
    from benchmark.gpu_check import TINY_DATASET
    from benchmark.models import resolve_trial

    trials = {m: resolve_trial(m, TINY_DATASET, batch_size=16) for m in ("ns", "wgan")}
    # 20 steps of 0.1 s each per population at any size, 4 evaluations of 1 s per member:
    # a model with s seeds costs 2 + 4 s seconds; two models one after another 4 + 8 s.
    steps = {m: {1: 0.1, 64: 0.1} for m in trials}
    seeds, costs = plan_seeds(trials, steps, 1.0, budget=36.0, workers=1)
    assert seeds == 4 and costs == {"ns": pytest.approx(18.0), "wgan": pytest.approx(18.0)}
    assert plan_seeds(trials, steps, 1.0, budget=5.0, workers=1)[0] == 1  # at least one
    assert plan_seeds(trials, steps, 1.0, budget=1e9, workers=1, most=3)[0] == 3
    # Two workers run a model each: the slowest worker's sum is one model's cost.
    assert plan_seeds(trials, steps, 1.0, budget=36.0, workers=2)[0] == 8


def test_assign_balances_the_costliest_first():
    costs = {"a": 5.0, "b": 4.0, "c": 3.0, "d": 2.0}
    assert assign(list(costs), costs, 2) == [["a", "d"], ["b", "c"]]
    assert assign(["a"], {"a": 1.0}, 4) == [["a"]]


def test_a_missing_required_import_is_one_line_error(tmp_path, monkeypatch, capsys):
    import importlib

    import benchmark.gpu_check as gpu_check

    real_import = importlib.import_module

    def without_fidelity(name, *args):
        if name == "torch_fidelity":
            raise ImportError("No module named 'torch_fidelity'")
        return real_import(name, *args)

    monkeypatch.setattr(gpu_check.importlib, "import_module", without_fidelity)
    assert main(["gpu-check", "--tiny", "--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert (
        error.startswith("error: import='torch_fidelity' is not allowed") and error.count("\n") == 1
    )
    assert not (tmp_path / JSON_NAME).exists()  # refused before any work


# An item that overruns its estimate (here: one that sleeps) is ended by the watchdog at the
# limit; the summary written before it stays. In a child process: the watchdog exits it.
OVERRUN = """
import sys, time
from benchmark.cli import main
from benchmark.gpu_check.run import Run
Run.speed = lambda self: time.sleep(60)
sys.exit(main(["gpu-check", "--tiny", "--out", sys.argv[1], "--time-limit", "12"]))
"""


@pytest.mark.slow
def test_watchdog_ends_an_overrunning_item_at_the_limit(tmp_path):
    import os
    import subprocess
    import sys

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    }
    start = time.monotonic()
    argv = [sys.executable, "-c", OVERRUN, str(tmp_path)]
    done = subprocess.run(argv, env=env, timeout=60, capture_output=True, text=True)
    assert done.returncode == STOPPED_BY_WATCHDOG
    # One line says why: 124 alone on a terminal explains nothing.
    line = "the time limit (12 s) stopped an item that had not finished; what finished is in"
    assert f"{line} {tmp_path}" in done.stderr
    record = json.loads((tmp_path / JSON_NAME).read_text())
    assert record["state"] == "stopped at the time limit"
    assert 11 <= record["elapsed_s"] <= 12
    assert time.monotonic() - start < 12 + 15  # the limit plus the child's imports
    assert record["equivalence"]["devices"]  # what finished before the item is kept
    assert "stopped at the time limit" in (tmp_path / MARKDOWN_NAME).read_text()


def test_collect_reads_finished_and_stopped_members(tmp_path):
    from benchmark.gpu_check import TINY_DATASET
    from benchmark.gpu_check.study import collect
    from benchmark.models import resolve_trial

    trials = [resolve_trial("ns", TINY_DATASET, batch_size=16, seed=s) for s in range(3)]
    dirs = [tmp_path / f"seed{s}" for s in range(3)]
    # seed 0 finished; seed 1 was stopped after two checkpoints; seed 2 never started.
    dirs[0].mkdir()
    checkpoints = [
        {"d_steps": d, "fid": f} for d, f in zip([6, 11, 16, 20], [9.0, 7.0, 6.0, 8.0], strict=True)
    ]
    (dirs[0] / "result.json").write_text(json.dumps({"status": "ok", "checkpoints": checkpoints}))
    dirs[1].mkdir()
    lines = [{"kind": "train", "d_steps": 5}, {"kind": "eval", "d_steps": 6, "fid": 11.0}]
    lines.append({"kind": "eval", "d_steps": 11, "fid": 5.0})
    (dirs[1] / "metrics.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = collect({"ns": trials}, {"ns": [str(d) for d in dirs]}, 1.0, True)
    (model,) = result["models"]
    assert [s["status"] for s in model["per_seed"]] == ["ok", "stopped", "not started"]
    assert model["seeds_finished"] == 1 and model["seeds_planned"] == 3
    first, second, third, _ = model["checkpoints"]
    assert (first["seeds"], first["fid_mean"]) == (2, 10.0)
    assert first["fid_sd"] == pytest.approx(2**0.5)  # sd of 9 and 11
    assert (second["fid_mean"], third["seeds"], third["fid_sd"]) == (6.0, 1, None)
    assert model["fid_min_mean"] == 5.5 and model["fid_min_seeds"] == 2  # min 6 and min 5


def test_precision_switches_tf32_and_bf16_and_restores_them():
    from benchmark.gpu_check.checks import precision

    cpu = torch.device("cpu")
    before = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    with precision("tf32", cpu):
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    with precision("bf16", cpu):
        assert not torch.backends.cudnn.allow_tf32
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.bfloat16
    with precision("fp32", cpu):
        assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32
    assert (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32) == before
    with pytest.raises(ValueError, match="precision 'fp16'"), precision("fp16", cpu):
        pass


@pytest.mark.slow
def test_speed_rows_time_the_compiled_step_with_its_compile_time():
    import time

    import torch

    from benchmark.gpu_check.checks import Clock, measure_steps
    from benchmark.models import resolve_trial

    points = {"generator": "points", "discriminator": "points", "d_bn": False, "metrics": ()}
    clock = Clock(time.monotonic() + 600)
    clock.start_part(600)
    rows = []
    measure_steps(
        lambda model: resolve_trial(model, "grid", batch_size=64, steps=100, **points),
        torch.randn(1000, 2),
        torch.device("cpu"),
        {"1": 1, "4": 4},
        0.2,
        clock,
        rows.append,
        models=("ns",),
        compile=True,
    )
    assert [(r["step"], r["population"]) for r in rows] == [("compiled", 1), ("compiled", 4)]
    assert all(r["steps_per_s"] > 0 and r["compile_seconds"] > 0 for r in rows)


# Only the study runs (the other parts are skipped), so the kill lands while it trains.
STUDY_ONLY = """
import sys
from benchmark.cli import main
from benchmark.gpu_check.run import Run
Run.equivalence = Run.speed = lambda self: None
sys.exit(main(["gpu-check", "--tiny", "--out", sys.argv[1]]))
"""


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads the process table from /proc")
def test_a_sigkilled_gpu_check_leaves_no_child_training(tmp_path):
    import os
    import signal
    import subprocess
    import sys

    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [os.getcwd(), os.environ.get("PYTHONPATH")])),
    }
    command = [sys.executable, "-c", STUDY_ONLY, str(tmp_path)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list((tmp_path / "study").glob("*/seed*/metrics.jsonl")):
            assert process.poll() is None and time.monotonic() < deadline, "the study never ran"
            time.sleep(0.2)
        workers = children(process.pid)
        assert workers
        process.send_signal(signal.SIGKILL)
        process.wait()
        time.sleep(5)
        assert [pid for pid in workers if alive(pid)] == []
    finally:
        if process.poll() is None:
            process.kill()


def test_the_ring_plans_the_most_seeds_that_fit():
    from benchmark.gpu_check.ring import plan_ring, ring_trials

    # 1 ms a step at 64 members, 2 ms at 128: two populations of 1,000 steps
    measured = {64: 1e-3, 128: 2e-3}
    assert plan_ring(measured, 1000, budget=2.0, most=256) == 64
    assert plan_ring(measured, 1000, budget=3.0, most=256) == 96  # 1.5 ms at 96
    # below the smallest size measured a step costs what it costs there: none fits in 1 s
    assert plan_ring(measured, 1000, budget=1.0, most=256) == 0
    assert plan_ring(measured, 1000, budget=100.0, most=256) == 256
    trials = ring_trials(tiny=True, compile=False)
    assert sorted(trials) == ["mm", "ns"] and trials["mm"].steps == 10
    assert trials["ns"].data_order == "epochs" and trials["ns"].latent_pool == 50_000
