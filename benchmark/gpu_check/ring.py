"""gpu-check's published comparison: Welfert et al. 2023's ring study (runs/ring-welfert.toml)
for minimax and NS, as many seeds as the measured step rate fits in the part's budget, their
success and failure rates set beside the published ones (analysis/welfert.py).

The trials are the spec's own (its plan), so the check runs the protocol the sweep runs; a
full run needs at least MIN_SEEDS seeds of each at the spec's full length, else the part
says what it would need and runs nothing (a shorter run would not be their protocol).
`--tiny` cuts the length to a few steps on the CPU: it checks the command, not the losses.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import torch

from benchmark.config import TrialConfig
from benchmark.datasets import load_dataset
from benchmark.gpu_check import CHILD_START_S
from benchmark.gpu_check.study import run_study
from benchmark.perf.bench_populations import steps_per_second
from benchmark.schedule import trial_schedule
from benchmark.training.step import GANTraining

SPEC = Path(__file__).resolve().parents[2] / "runs" / "ring-welfert.toml"
MODELS = ("mm", "ns")
MIN_SEEDS = 32  # each, for a rate whose interval says something (±17 points at 50 %)
TINY_STEPS = 10


def ring_trials(tiny: bool, compile: bool) -> dict[str, TrialConfig]:
    """Seed 0 of each compared model as the spec plans it (tiny: TINY_STEPS steps)."""
    from benchmark.sweep.plan import plan
    from benchmark.sweep.spec import load_spec

    trials = {}
    for trial in plan(load_spec(SPEC)):
        if trial.model in MODELS and trial.seed == 0:
            trial = dataclasses.replace(trial, sweep="gpu-check", compile=compile)
            if tiny:
                trial = dataclasses.replace(trial, steps=TINY_STEPS)
            trials[trial.model] = trial
    return trials


def plan_ring(step_seconds: dict[int, float], steps: int, budget: float, most: int) -> int:
    """The most seeds per model (at most `most`) whose two populations, one after the other
    on the device (their times add up), fit `budget`; `step_seconds[size]` is a measured
    population step time (`study.step_time` interpolates)."""
    from benchmark.gpu_check.study import step_time

    best = 0
    for seeds in range(1, most + 1):
        if 2 * steps * step_time(step_seconds, seeds) > budget:
            break
        best = seeds
    return best


def measure(trial: TrialConfig, size: int, device: torch.device, seconds: float) -> float:
    """Seconds per step of a population of `size` seeds of `trial` (compiled when it asks)."""
    data = load_dataset(trial.dataset)
    members = [dataclasses.replace(trial, seed=s) for s in range(size)]
    training = GANTraining(members, data.train, device)
    return 1 / steps_per_second(training, seconds, warmup=3)


def outcomes(directories: list[Path]) -> list[int | None]:
    """Each member's modes covered at the end (None: no result yet)."""
    found = []
    for directory in directories:
        path = directory / "result.json"
        if not path.exists():
            found.append(None)
            continue
        record = json.loads(path.read_text())
        modes = record.get("welfert_modes")
        found.append(0 if modes is None or modes != modes else int(modes))  # NaN: diverged
    return found


def run_ring(run, budget: float, share: float) -> dict[str, Any]:
    """The part: measure, plan, train in a child process, compare. Returns its record.
    `share`: the part's share of the time limit, to say what limit a skipped part needs."""
    from analysis.welfert import WELFERT_2023, compare_rate

    device = run.device
    tiny = run.tiny
    trials = ring_trials(tiny, compile=device.type == "cuda")
    most = 2 if tiny else 256
    size = most if tiny else 64
    start = time.monotonic()
    measured = {size: measure(trials["mm"], size, device, seconds=0.5 if tiny else 3.0)}
    steps = trial_schedule(trials["mm"]).steps
    left = budget - (time.monotonic() - start) - CHILD_START_S[device.type] - 2.0
    seeds = most if tiny else plan_ring(measured, steps, left, most)
    record: dict[str, Any] = {
        "spec": str(SPEC.relative_to(SPEC.parents[1])),
        "steps": steps,
        "step_seconds": {str(k): v for k, v in measured.items()},
        "budget_seconds": budget,
        "seeds": seeds,
    }
    if not tiny and seeds < MIN_SEEDS:
        needed = 2 * steps * measured[size] + (budget - left)
        record["skipped"] = (
            f"not run: {MIN_SEEDS} seeds of mm and ns at {steps} D steps need about "
            f"{needed:.0f} s (a step of a population of {size}: "
            f"{1000 * measured[size]:.2f} ms); this part had {budget:.0f} s, "
            f"{share:.0%} of the time limit: run with --time-limit {needed / share + 30:.0f}"
        )
        return record
    populations = {
        m: [dataclasses.replace(t, seed=s) for s in range(seeds)] for m, t in trials.items()
    }
    out = run.summary.out / "ring"
    result = run_study(
        populations,
        out,
        data_root=None,
        device=device,
        weights=None,
        workers=1,  # one population at a time: each fills the device
        costs={m: 1.0 for m in populations},
        deadline=time.monotonic() + left,
        on_progress=lambda _: None,
    )
    rows = []
    for model, members in populations.items():
        found = outcomes([out / model / f"seed{t.seed}" for t in members])
        done = [m for m in found if m is not None]
        published = WELFERT_2023[model]
        for rate, ours, theirs in (
            ("success", done.count(8), published.success),
            ("failure", done.count(0), published.failure),
        ):
            row = {"model": model, "rate": rate, "seeds": len(done), "count": ours}
            if done:
                row.update(compare_rate(ours, len(done), theirs, published.seeds))
            rows.append({**row, "published": f"{theirs}/{published.seeds}"})
    record.update(seconds=result["seconds"], stopped=result["stopped_at_time_limit"], rows=rows)
    return record
