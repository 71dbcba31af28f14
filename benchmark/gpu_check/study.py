"""The short real study of `python -m benchmark gpu-check`: the seven paper models at their
defaults, at the dataset's reference length, as many seeds as fit, one population per model.

The populations train in child processes (`run_population`, the sweep's own entry point),
so that the time limit can stop them from outside at any moment: each member keeps the
evaluations of the checkpoints it reached (its metrics.jsonl, written atomically at each
checkpoint), and a member that finished keeps its result.json.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import statistics
import time
from pathlib import Path
from typing import Any

import torch

from benchmark.config import TrialConfig
from benchmark.schedule import trial_schedule

# Seeds per population are chosen from the measured rates; no more than this many.
MAX_SEEDS = 64
# The study's running children, for the run's watchdog to stop if it ever has to.
CHILDREN: list[multiprocessing.process.BaseProcess] = []


def plan_seeds(
    trials: dict[str, TrialConfig],
    step_seconds: dict[str, dict[int, float]],
    eval_seconds: float,
    budget: float,
    workers: int,
    most: int = MAX_SEEDS,
) -> tuple[int, dict[str, float]]:
    """The most seeds per model (at least 1, at most `most`) whose estimated time fits
    `budget`, and each model's estimate at that many seeds. `step_seconds[model][size]` is a
    measured population step time; other sizes are interpolated linearly (beyond the
    largest, extrapolated in proportion to the size). The models are spread over `workers`
    processes by `assign`; the estimate is the slowest worker's sum."""

    def estimate(model: str, seeds: int) -> float:
        steps = trial_schedule(trials[model]).steps
        evaluations = len(trial_schedule(trials[model]).eval_steps)
        return steps * step_time(step_seconds.get(model, {}), seeds) + (
            evaluations * seeds * eval_seconds
        )

    def total(seeds: int) -> float:
        costs = {model: estimate(model, seeds) for model in trials}
        return max(sum(costs[m] for m in group) for group in assign(list(costs), costs, workers))

    best = 1
    for seeds in range(2, most + 1):
        if total(seeds) > budget:
            break
        best = seeds
    return best, {model: estimate(model, best) for model in trials}


def step_time(measured: dict[int, float], size: int) -> float:
    """Seconds per population step at `size` members from the measured sizes (inf if none)."""
    if not measured:
        return math.inf
    sizes = sorted(measured)
    if size in measured:
        return measured[size]
    below = [s for s in sizes if s < size]
    above = [s for s in sizes if s > size]
    if below and above:
        low, high = below[-1], above[0]
        share = (size - low) / (high - low)
        return measured[low] + share * (measured[high] - measured[low])
    nearest = above[0] if above else below[-1]
    return measured[nearest] * max(1.0, size / nearest)  # beyond the largest: linear in size


def assign(models: list[str], costs: dict[str, float], workers: int) -> list[list[str]]:
    """Models spread over workers, the costliest first, each to the least loaded worker."""
    groups: list[list[str]] = [[] for _ in range(max(1, min(workers, len(models))))]
    loads = [0.0] * len(groups)
    for model in sorted(models, key=lambda m: -costs[m]):
        i = loads.index(min(loads))
        groups[i].append(model)
        loads[i] += costs[model]
    return groups


def _worker(
    jobs: list[tuple[list[dict[str, Any]], list[str]]],
    data_root: str | None,
    device: str,
    weights: str | None,
    threads: int,
    parent: int,
) -> None:
    """Child process: run its populations one after another (the sweep's run_population).
    It ends at once when gpu-check is gone, however gpu-check died (a SIGKILL runs no
    handler): a study trained on for nobody would hold the GPU for the rest of the limit."""
    import benchmark.gpu_check  # noqa: F401  (registers --tiny's dataset in this process)
    from benchmark import interrupt
    from benchmark.training.loop import run_population

    interrupt.watch_parent(parent)

    torch.set_num_threads(threads)
    for records, directories in jobs:
        trials = [TrialConfig.from_dict(record) for record in records]
        run_population(
            trials, directories, data_root=data_root, device=device, weights=weights, progress=False
        )


def run_study(
    populations: dict[str, list[TrialConfig]],
    out: Path,
    *,
    data_root: str | None,
    device: torch.device,
    weights: str | None,
    workers: int,
    costs: dict[str, float],
    deadline: float,
    on_progress,
) -> dict[str, Any]:
    """Train each model's population in `workers` child processes until done or `deadline`
    (time.monotonic()); children still running then are stopped. Returns what was collected."""
    directories = {
        model: [str(out / model / f"seed{t.seed}") for t in trials]
        for model, trials in populations.items()
    }
    groups = assign(list(populations), costs, workers)
    threads = max(1, (os.cpu_count() or 1) // len(groups)) if device.type == "cuda" else 1
    threads = min(threads, torch.get_num_threads()) if device.type == "cpu" else threads
    context = multiprocessing.get_context("spawn")
    processes = []
    for group in groups:
        jobs = [([t.to_dict() for t in populations[m]], directories[m]) for m in group]
        args = (jobs, data_root, str(device), weights, threads, os.getpid())
        process = context.Process(target=_worker, args=args, daemon=True)
        process.start()
        processes.append(process)
        CHILDREN.append(process)
    start = time.monotonic()
    stopped = False
    try:
        while any(p.is_alive() for p in processes):
            if time.monotonic() >= deadline:
                stopped = True
                break
            time.sleep(max(0.0, min(0.5, deadline - time.monotonic())))
            on_progress(collect(populations, directories, time.monotonic() - start, False))
    finally:
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(5)
            if process.is_alive():
                process.kill()
                process.join()
            CHILDREN.remove(process)
    summary = collect(populations, directories, time.monotonic() - start, stopped)
    summary["workers"] = len(groups)
    summary["exit_codes"] = [p.exitcode for p in processes]
    return summary


def _evaluations(directory: Path) -> tuple[str, list[dict[str, Any]]]:
    """A member's status and the evaluations it recorded (result.json, else metrics.jsonl)."""
    result = directory / "result.json"
    if result.exists():
        record = json.loads(result.read_text())
        return record["status"], record.get("checkpoints") or []
    metrics = directory / "metrics.jsonl"
    if not metrics.exists():
        return "not started" if not directory.exists() else "no checkpoint yet", []
    lines = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    return "stopped", [line for line in lines if line.get("kind") == "eval"]


def collect(
    populations: dict[str, list[TrialConfig]],
    directories: dict[str, list[str]],
    seconds: float,
    stopped: bool,
) -> dict[str, Any]:
    """Per model: each seed's status and FIDs at the checkpoints, and over seeds the mean and
    standard deviation of the FID at each checkpoint reached by every finished seed."""
    models = []
    for model, trials in populations.items():
        schedule = trial_schedule(trials[0])
        seeds = []
        for trial, directory in zip(trials, directories[model], strict=True):
            status, evaluations = _evaluations(Path(directory))
            fids = {int(e["d_steps"]): e.get("fid") for e in evaluations}
            seeds.append({"seed": trial.seed, "status": status, "fid": fids})
        checkpoints = []
        for step in schedule.eval_steps:
            values = [s["fid"][step] for s in seeds if s["fid"].get(step) is not None]
            checkpoints.append(
                {
                    "d_steps": step,
                    "seeds": len(values),
                    "fid_mean": statistics.fmean(values) if values else None,
                    "fid_sd": statistics.stdev(values) if len(values) > 1 else None,
                }
            )
        scored = [[v for v in s["fid"].values() if v is not None] for s in seeds]
        fid_min = [min(values) for values in scored if values]
        models.append(
            {
                "model": model,
                "seeds_planned": len(trials),
                "seeds_finished": sum(s["status"] == "ok" for s in seeds),
                "d_steps": schedule.steps,
                "eval_steps": schedule.eval_steps,
                "checkpoints": checkpoints,
                "fid_min_mean": statistics.fmean(fid_min) if fid_min else None,
                "fid_min_sd": statistics.stdev(fid_min) if len(fid_min) > 1 else None,
                "fid_min_seeds": len(fid_min),
                "per_seed": seeds,
            }
        )
    return {"seconds": seconds, "stopped_at_time_limit": stopped, "models": models}
