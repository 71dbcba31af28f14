"""Populations against trials one at a time: trials/hour per network family and size.

For each registered network family, on the device it runs on, one table: trials/hour of
training (each family's own trial length: the default mixture study's 6,000 D steps for the
point networks, the polygon demonstration's 3,000 for the MLPs, a paper MNIST trial's 15,625
for the InfoGAN networks) at population sizes 1, 4, 16 and 64, as ratios to size 1 (a trial
alone, through the same code) and to the plain eager loop (`benchmark.perf.plain_loop`); and how
close a step comes to the machine's limit: the achieved GFLOP/s of its matrix products and
convolutions (counted with `torch.utils.flop_counter`'s formulas) against a plain 2048 x 2048 matrix
product's, measured in the same run. The figures also check `population = "auto"`: the size
it picks for each family on this device must not be one measured slower than size 1.

Run by `python -m benchmark.perf.bench` (the "Populations" part) or on its own:
`python -m benchmark.perf.bench_populations [--families points,mlp] [--sizes 1,4,16,64]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from benchmark.config import TrialConfig, resolve_trial
from benchmark.models import MODELS
from benchmark.networks import FAMILIES as NETWORK_FAMILIES
from benchmark.perf.plain_loop import EagerBaseline
from benchmark.training.devices import default_device
from benchmark.training.population import auto_size
from benchmark.training.step import GANTraining

# family -> (dataset whose shape it trains on, D steps of the family's reference trial)
FAMILY_TRIALS = {
    "points": ("grid", 6000),  # runs/quick.toml
    "mlp": ("polygons", 3000),  # runs/polygons-quick.toml
    "infogan": ("mnist", 15_625),  # a paper MNIST trial
}
SIZES = (1, 4, 16, 64)
BENCH_MODELS = ("ns", "wgan_gp", "began")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def family_trial(model: str, family: str, batch_size: int) -> TrialConfig:
    """A trial of `model` on the family's networks (BEGAN: the family's autoencoder D)."""
    dataset, _ = FAMILY_TRIALS[family]
    preset = MODELS.get(model, "model")
    networks = NETWORK_FAMILIES.get(family, "networks").networks_for(preset.discriminator)
    return resolve_trial(model, dataset, metrics=(), batch_size=batch_size, **networks)


def members(trial: TrialConfig, size: int) -> list[TrialConfig]:
    """`size` trials that differ as a random search's do: seed and lr."""
    return [dataclasses.replace(trial, seed=i, lr=trial.lr * 1.1**i) for i in range(size)]


def random_data(trial: TrialConfig, n: int = 10_000) -> torch.Tensor:
    """Data of the dataset's shape: timing does not depend on the values."""
    from benchmark.datasets import DATASETS

    shape = DATASETS.get(trial.dataset, "dataset").shape
    generator = torch.Generator().manual_seed(0)
    if len(shape) == 1:
        return torch.randn(n, *shape, generator=generator)
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=generator)


def steps_per_second(trainer: GANTraining | EagerBaseline, seconds: float, warmup: int) -> float:
    """D steps/s over at least `seconds` after `warmup` steps (compilation happens there)."""
    device = trainer.device
    for _ in range(warmup):
        trainer.train_step()
    trainer.losses()  # waits for the device
    sync(device)
    steps, start = 0, time.perf_counter()
    while True:
        trainer.train_step()
        steps += 1
        # The clock is read only after a sync every few steps, so queued work is counted.
        if (steps % 10 == 0 or device.type == "cpu") and time.perf_counter() - start >= seconds:
            break
    trainer.losses()
    sync(device)
    return steps / (time.perf_counter() - start)


class _FlopCount(TorchDispatchMode):
    """Counts the floating-point operations of every operator that torch's flop counter knows
    (matrix products, convolutions, forward and backward). FlopCounterMode itself tracks
    modules with hooks that a penalty's `autograd.grad` inside the step does not support."""

    def __init__(self) -> None:
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        count = flop_registry.get(func._overloadpacket)
        if count is not None:
            self.total += count(*args, **kwargs, out_val=out)
        return out


def step_flops(trial: TrialConfig, data: torch.Tensor, device: torch.device) -> int:
    """Floating-point operations of a member's D step (and its G step where it has one) in
    matrix products and convolutions, forward and backward, counted on one step."""
    training = GANTraining(trial, data, device)
    training.train_step()  # the first step has no Adam state yet; count a later one
    with _FlopCount() as counter:
        training.train_step()
    return counter.total


def matmul_gflops(device: torch.device, seconds: float = 1.0, n: int = 2048) -> float:
    """The machine's rate on a plain float32 matrix product, the reference for the rest: the
    best of three timings (a shared machine's clock and neighbours vary)."""
    a = torch.randn(n, n, device=device)
    b = torch.randn(n, n, device=device)
    a @ b
    sync(device)
    rates = []
    for _ in range(3):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            a @ b
            count += 1
            sync(device)
        rates.append(2 * n**3 * count / (time.perf_counter() - start) / 1e9)
    return max(rates)


def bench_family(
    family: str,
    model: str,
    sizes: list[int],
    device: torch.device,
    seconds: float,
    batch_size: int,
    peak_gflops: float,
) -> list[dict[str, Any]]:
    """One row per size: member D steps/s, trials/hour, ratios, achieved GFLOP/s."""
    trial = family_trial(model, family, batch_size)
    data = random_data(trial)
    _, trial_steps = FAMILY_TRIALS[family]
    flops = step_flops(trial, data, device)
    eager = steps_per_second(EagerBaseline(trial, data, device), seconds, warmup=3)
    auto = auto_size(trial, device.type)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        row: dict[str, Any] = {"family": family, "model": model, "population": size}
        try:
            training = GANTraining(members(trial, size), data, device)
            rate = steps_per_second(training, seconds, warmup=3)
        except torch.OutOfMemoryError as error:
            row.update(member_steps_per_s=None, note=f"out of memory: {str(error)[:100]}")
            rows.append(row)
            continue
        member_rate = rate * size
        alone = rows[0]["member_steps_per_s"] if rows else member_rate
        row.update(
            member_steps_per_s=member_rate,
            trials_per_hour=member_rate * 3600 / trial_steps,
            vs_alone=member_rate / alone,
            vs_eager=member_rate / eager,
            gflops=flops * member_rate / 1e9,
            of_matmul=flops * member_rate / 1e9 / peak_gflops,
            auto=size == auto,
        )
        rows.append(row)
        log(
            f"  {family:8s} {model:8s} size {size:3d}: {member_rate:9.1f} member steps/s, "
            f"{row['vs_alone']:5.2f}x alone, {row['gflops']:6.1f} GFLOP/s"
        )
    if all(r["population"] != auto for r in rows):
        log(f"  {family:8s} {model:8s} auto picks {auto}, which was not measured")
    return rows


def _core_worker(family: str, model: str, size: int, threads: int, seconds: float, barrier, out):
    torch.set_num_threads(threads)
    trial = family_trial(model, family, 64)
    training = GANTraining(members(trial, size), random_data(trial), torch.device("cpu"))
    for _ in range(3):
        training.train_step()
    barrier.wait()  # every process times the same stretch of wall time
    out.put(steps_per_second(training, seconds, warmup=0) * size)


def bench_cores(family: str, model: str, size: int, seconds: float) -> dict[str, float]:
    """How a CPU's cores are best kept busy with populations: member steps/s of one process
    per core, each training a population of `size` on one thread, against one process
    training a population of `size` x cores on all of them."""
    import multiprocessing

    cores = len(os.sched_getaffinity(0))
    context = multiprocessing.get_context("spawn")
    rates = {}
    for processes, threads in ((cores, 1), (1, cores)):
        barrier, out = context.Barrier(processes), context.Queue()
        members_each = size * cores // processes
        workers = [
            context.Process(
                target=_core_worker,
                args=(family, model, members_each, threads, seconds, barrier, out),
            )
            for _ in range(processes)
        ]
        for worker in workers:
            worker.start()
        rates[f"{processes} x {threads} thread(s)"] = sum(out.get(timeout=600) for _ in workers)
        for worker in workers:
            worker.join()
    shown = ", ".join(f"{k}: {v:.0f} member steps/s" for k, v in rates.items())
    log(f"  {family} {model}: {shown}")
    return rates


def auto_violations(rows: list[dict[str, Any]]) -> list[str]:
    """Where `population = "auto"` picked a size that this run measured slower than size 1."""
    return [
        f"{r['family']} {r['model']}: auto picks {r['population']}, measured "
        f"{r['vs_alone']:.2f}x a trial alone"
        for r in rows
        if r.get("auto") and r.get("vs_alone") is not None and r["vs_alone"] < 1
    ]


def format_rows(rows: list[dict[str, Any]], device: str, peak: float) -> str:
    lines = [
        f"\nPopulations on {device}: trials/hour of training against population size "
        f"(plain {peak:.0f} GFLOP/s matrix product for reference; * = auto's choice)",
        f"{'family':9s}{'model':9s}{'size':>5s}{'trials/hour':>13s}{'vs alone':>10s}"
        f"{'vs eager':>10s}{'GFLOP/s':>9s}{'of peak':>9s}",
    ]
    for r in rows:
        if r.get("member_steps_per_s") is None:
            lines.append(f"{r['family']:9s}{r['model']:9s}{r['population']:5d}  {r['note']}")
            continue
        mark = "*" if r["auto"] else " "
        lines.append(
            f"{r['family']:9s}{r['model']:9s}{r['population']:4d}{mark}"
            f"{r['trials_per_hour']:13.1f}{r['vs_alone']:9.2f}x{r['vs_eager']:9.2f}x"
            f"{r['gflops']:9.1f}{r['of_matmul']:8.0%}"
        )
    lines.append(
        "  (trials/hour: training only, one worker; vs alone: against size 1 in this run; vs "
        "eager: against the plain loop of benchmark/perf/plain_loop.py)"
    )
    violations = auto_violations(rows)
    lines += [f"  WARNING: {v}" for v in violations] or ["  auto: no choice slower than 1"]
    return "\n".join(lines)


def _family_rows(family, models, sizes, device, seconds, batch_size, peak, threads, out) -> None:
    torch.set_num_threads(threads)
    try:
        rows = []
        for model in models:
            rows += bench_family(
                family, model, sizes, torch.device(device), seconds, batch_size, peak
            )
        out.put(rows)
    except BaseException as error:  # the parent re-raises it rather than wait for rows
        out.put(error)
        raise


def run(
    families: list[str],
    models: list[str],
    sizes: list[int],
    device: torch.device,
    seconds: float,
    batch_size: int = 64,
) -> dict[str, Any]:
    """Each family in a process of its own, as a sweep's worker trains one spec's networks
    (a process that trained other networks first has another heap: the InfoGAN networks at
    16 members measured 0.63x there against 1.00x in a process of their own)."""
    import multiprocessing

    peak = matmul_gflops(device)
    log(f"plain matrix product: {peak:.1f} GFLOP/s")
    context = multiprocessing.get_context("spawn")
    rows = []
    for family in families:
        out = context.Queue()
        threads = torch.get_num_threads()
        args = (family, models, sizes, str(device), seconds, batch_size, peak, threads, out)
        process = context.Process(target=_family_rows, args=args)
        process.start()
        result = out.get(timeout=3600)
        process.join()
        if isinstance(result, BaseException):
            raise RuntimeError(f"population bench of {family} failed: {result!r}")
        rows += result
    return {"matmul_gflops": peak, "rows": rows}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf.bench_populations")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda if any)")
    parser.add_argument("--families", default=",".join(FAMILY_TRIALS), help="comma-separated")
    parser.add_argument("--models", default=",".join(BENCH_MODELS), help="comma-separated")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads")
    parser.add_argument("--out", default=None, help="JSON path")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    record = run(
        [f for f in args.families.split(",") if f],
        [m for m in args.models.split(",") if m],
        [int(s) for s in args.sizes.split(",") if s],
        device,
        args.seconds,
    )
    print(format_rows(record["rows"], str(device), record["matmul_gflops"]))
    if args.out:
        Path(args.out).write_text(json.dumps(record, indent=2) + "\n")
    return record


if __name__ == "__main__":
    main()
