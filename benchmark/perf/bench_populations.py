"""Populations against trials one at a time: trials/hour per network family and size.

For each registered network family, on the device it runs on, one table: trials/hour of
training (each family's own trial length: the default mixture study's 6,000 D steps for the
point networks, the polygon demonstration's 3,000 for the MLPs, a paper MNIST trial's 15,625
for the InfoGAN networks) at population sizes 1, 16 and 64, for the step op by op and compiled
(benchmark/training/compiled.py), beside the plain eager loop (`benchmark.perf.plain_loop`),
the JAX peer of the points trial (`benchmark.perf.jax_peer`, where JAX is installed) and the
FLOP limit of the step's shapes: its own matrix products and convolutions, recorded on one step
and replayed back to back with nothing else, measured in the same run. The contenders are
timed in interleaved rounds, best of three, so that a slow stretch of a shared machine hits
every one. The figures also check `population = "auto"`: the size it picks for each family on
this device must not be one measured slower than size 1.

Run by `python -m benchmark.perf.bench` (the "Populations" part) or on its own:
`python -m benchmark.perf.bench_populations [--families points,mlp] [--sizes 1,16,64]`.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

from benchmark.config import TrialConfig
from benchmark.models import MODELS, resolve_trial
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
SIZES = (1, 16, 64)
# The models timed per family: the point networks' the default study's, with its costliest
# (WGAN-GP's penalty, BEGAN's autoencoder); the larger networks' fewer, as their steps are long.
FAMILY_MODELS = {"points": ("ns", "wgan_gp", "began"), "mlp": ("ns", "wgan_gp"), "infogan": ("ns",)}
ROUNDS = 3


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


class _RecordProducts(TorchDispatchMode):
    """Notes every matrix product and convolution a step runs (those torch's flop counter
    knows), with its arguments' shapes and strides, to replay them alone."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[Any, tuple, dict]] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if func._overloadpacket in flop_registry:
            self.calls.append((func, *_like((args, kwargs))))
        return out


def _like(value):
    """A structure of fresh random tensors shaped and strided as `value`'s."""
    if isinstance(value, torch.Tensor):
        fresh = torch.empty_strided(
            value.shape, value.stride(), dtype=value.dtype, device=value.device
        )
        return fresh.normal_() if fresh.is_floating_point() else fresh.zero_()
    if isinstance(value, (list, tuple)):
        return type(value)(_like(v) for v in value)
    if isinstance(value, dict):
        return {k: _like(v) for k, v in value.items()}
    return value


def product_limit(training: GANTraining, seconds: float) -> float:
    """The step's FLOP limit, in population steps/s: its own matrix products and convolutions
    (a D-and-G step's, recorded op by op), run back to back alone with nothing between them,
    best of three. What a step costs beyond this is everything else: elementwise work, Adam,
    draws and calls."""
    training.train_step()  # the first step has no Adam state yet; record a later one
    recorder = _RecordProducts()
    with recorder:
        training.train_step()
    calls = recorder.calls
    best = math.inf
    for _ in range(3):
        repeats, start = 0, time.perf_counter()
        while repeats == 0 or time.perf_counter() - start < seconds:
            for func, args, kwargs in calls:
                func(*args, **kwargs)
            repeats += 1
        sync(training.device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 1 / best


def _timer(trainer: GANTraining | EagerBaseline) -> Callable[[float], float]:
    return lambda seconds: steps_per_second(trainer, seconds, warmup=0)


def _compiled(trials: list[TrialConfig], data, device) -> tuple[GANTraining, float]:
    """The compiled step, compiled: its first steps of each kind (D only, D and G), timed."""
    training = GANTraining([dataclasses.replace(t, compile=True) for t in trials], data, device)
    start = time.perf_counter()
    for _ in range(2 * trials[0].n_disc + 1):
        training.train_step()
    training.losses()
    return training, time.perf_counter() - start


def bench_family(
    family: str,
    model: str,
    sizes: list[int],
    device: torch.device,
    seconds: float,
    batch_size: int,
    compile: bool = True,
    rounds: int = ROUNDS,
) -> list[dict[str, Any]]:
    """One row per population size: trials/hour of training op by op, compiled (unless
    `compile` is off), by the plain eager loop and by the JAX peer (where it runs this
    trial), each the best of `rounds` interleaved rounds, beside the FLOP limit of the
    step's own products."""
    trial = family_trial(model, family, batch_size)
    data = random_data(trial)
    _, trial_steps = FAMILY_TRIALS[family]
    plain = EagerBaseline(trial, data, device)
    auto = auto_size(trial, device.type)
    rows: list[dict[str, Any]] = []
    for size in sizes:
        row: dict[str, Any] = {"family": family, "model": model, "population": size}
        trials = members(trial, size)
        try:
            op_by_op = GANTraining(trials, data, device)
            limit = product_limit(GANTraining(trials, data, device), seconds) * size
            timers = {"op_by_op": _timer(op_by_op)}
            if compile:
                compiled, row["compile_seconds"] = _compiled(trials, data, device)
                timers["compiled"] = _timer(compiled)
        except torch.OutOfMemoryError as error:
            row.update(note=f"out of memory: {str(error)[:100]}")
            rows.append(row)
            continue
        if not rows:  # the plain loop trains one trial: timed beside the first size
            timers["plain"] = _timer(plain)
        peer = _jax_peer(family, model, size, trial_steps, batch_size, device)
        if isinstance(peer, str):
            row["jax_note"] = peer
        else:
            timers["jax"] = peer.steps_per_second
            row["jax_compile_seconds"] = peer.compile_seconds
        best = dict.fromkeys(timers, 0.0)
        for _ in range(rounds):  # interleaved: a slow stretch of the machine hits every one
            for name, timer in timers.items():
                best[name] = max(best[name], timer(seconds) * size)  # member steps/s
        for name, rate in best.items():
            row[f"{name}_trials_per_hour"] = rate * 3600 / trial_steps
        row["limit_trials_per_hour"] = limit * 3600 / trial_steps
        row["best"] = best_key = "compiled" if compile else "op_by_op"
        row["of_limit"] = best[best_key] / limit
        row["auto"] = size == auto
        rows.append(row)
        log(
            f"  {family:8s} {model:8s} size {size:3d}: "
            + ", ".join(f"{n} {r * 3600 / trial_steps:.0f}" for n, r in best.items())
            + f" trials/hour; limit {row['limit_trials_per_hour']:.0f}"
        )
    plain_rate = next(r["plain_trials_per_hour"] for r in rows if "plain_trials_per_hour" in r)
    for row in rows:
        if "best" in row:  # the ratios of the best step, compiled where it ran
            rate = row[f"{row['best']}_trials_per_hour"]
            row["plain_trials_per_hour"] = plain_rate
            row["vs_alone"] = rate / rows[0][f"{row['best']}_trials_per_hour"]
            row["vs_plain"] = rate / plain_rate
            if "jax_trials_per_hour" in row:
                row["vs_jax"] = rate / row["jax_trials_per_hour"]
    if all(r["population"] != auto for r in rows):
        log(f"  {family:8s} {model:8s} auto picks {auto}, which was not measured")
    return rows


def _jax_peer(family, model, size, trial_steps, batch_size, device):
    """The JAX peer of this trial, compiled and warm, or why there is none."""
    from benchmark.perf import jax_peer

    if family != "points" or model not in jax_peer.HYPER or batch_size != jax_peer.BATCH:
        return "no JAX peer of this trial"
    if device.type != "cpu":
        return "the JAX peer runs on the CPU only"
    if not jax_peer.available():
        return "JAX is not installed (nox -s bench installs it)"
    return jax_peer.Peer(model, size, trial_steps)


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


COLUMNS = (  # key, header, width
    ("plain_trials_per_hour", "plain loop", 11),
    ("op_by_op_trials_per_hour", "op by op", 10),
    ("compiled_trials_per_hour", "compiled", 10),
    ("jax_trials_per_hour", "JAX", 8),
    ("limit_trials_per_hour", "limit", 8),
)


def _rate(trials_per_hour: float) -> str:
    """Whole trials/hour, three digits below 100 (an InfoGAN trial takes about an hour)."""
    return f"{trials_per_hour:.0f}" if trials_per_hour >= 100 else f"{trials_per_hour:.3g}"


def format_rows(rows: list[dict[str, Any]], device: str, peak: float) -> str:
    lines = [
        f"\nPopulations on {device}: trials/hour of training, one worker, best of {ROUNDS} "
        "interleaved rounds (* = auto's size)",
        f"{'family':9s}{'model':9s}{'size':>5s}"
        + "".join(f"{header:>{width}s}" for _, header, width in COLUMNS)
        + f"{'of limit':>9s}{'vs JAX':>8s}{'compile':>9s}",
    ]
    for r in rows:
        head = f"{r['family']:9s}{r['model']:9s}{r['population']:4d}"
        if "best" not in r:
            lines.append(f"{head}   {r['note']}")
            continue
        cells = "".join(
            f"{_rate(r[key]):>{width}s}" if key in r else f"{'-':>{width}s}"
            for key, _, width in COLUMNS
        )
        vs_jax = f"{r['vs_jax']:7.2f}x" if "vs_jax" in r else f"{'-':>8s}"
        mark = "*" if r["auto"] else " "
        compile_time = f"{r['compile_seconds']:8.1f}s" if "compile_seconds" in r else f"{'-':>9s}"
        lines.append(f"{head}{mark}{cells}{r['of_limit']:9.0%}{vs_jax}{compile_time}")
    notes = {r["jax_note"] for r in rows if "jax_note" in r and r["population"] == 1}
    lines += [
        "  plain loop: benchmark/perf/plain_loop.py, one trial; op by op and compiled: "
        "GANTraining with compile off and on (compile: its first steps, included nowhere else);",
        "  JAX: benchmark/perf/jax_peer.py (jit, vmap over members, scan over steps); limit: "
        "the step's own matrix products and convolutions run back to back with nothing else",
        f"  (plain float32 2048x2048 matrix product on this device: {peak:.0f} GFLOP/s)",
    ]
    lines += [f"  JAX: {note}" for note in sorted(notes)]
    violations = auto_violations(rows)
    lines += [f"  WARNING: {v}" for v in violations] or ["  auto: no choice slower than 1"]
    return "\n".join(lines)


def _family_rows(family, models, sizes, device, seconds, batch_size, compile, threads, out):
    torch.set_num_threads(threads)
    try:
        rows = []
        for model in models:
            rows += bench_family(
                family, model, sizes, torch.device(device), seconds, batch_size, compile
            )
        out.put(rows)
    except BaseException as error:  # the parent re-raises it rather than wait for rows
        out.put(error)
        raise


def run(
    families: list[str],
    models: list[str] | None,
    sizes: list[int],
    device: torch.device,
    seconds: float,
    batch_size: int = 64,
    compile: bool = True,
) -> dict[str, Any]:
    """Each family in a process of its own, as a sweep's worker trains one spec's networks
    (a process that trained other networks first has another heap: the InfoGAN networks at
    16 members measured 0.63x there against 1.00x in a process of their own). The compiler's
    cache is a fresh folder, so that the compile times are a new machine's. `models` None:
    each family's `FAMILY_MODELS`."""
    import multiprocessing
    import tempfile

    peak = matmul_gflops(device)
    log(f"plain matrix product: {peak:.1f} GFLOP/s")
    context = multiprocessing.get_context("spawn")
    rows = []
    threads = torch.get_num_threads()
    # JAX on as many threads as torch: XLA reads its flags when it starts, in the child.
    eigen = "false" if threads == 1 else "true"
    xla = f"--xla_cpu_multi_thread_eigen={eigen} intra_op_parallelism_threads={threads}"
    with tempfile.TemporaryDirectory(prefix="ganbench-inductor-") as cache:
        saved = {name: os.environ.get(name) for name in ("TORCHINDUCTOR_CACHE_DIR", "XLA_FLAGS")}
        os.environ.update(TORCHINDUCTOR_CACHE_DIR=cache, XLA_FLAGS=xla)
        try:
            for family in families:
                out = context.Queue()
                timed = models or FAMILY_MODELS[family]
                args = (family, timed, sizes, str(device), seconds, batch_size, compile)
                args += (threads, out)
                process = context.Process(target=_family_rows, args=args)
                process.start()
                result = out.get(timeout=3600)
                process.join()
                if isinstance(result, BaseException):
                    raise RuntimeError(f"population bench of {family} failed: {result!r}")
                rows += result
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
    return {"matmul_gflops": peak, "rows": rows, "threads": threads}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf.bench_populations")
    parser.add_argument("--device", default=None, help="cpu, cuda (default: cuda if any)")
    parser.add_argument("--families", default=",".join(FAMILY_TRIALS), help="comma-separated")
    parser.add_argument("--models", default="", help="comma-separated (default: per family)")
    parser.add_argument("--sizes", default=",".join(map(str, SIZES)), help="comma-separated")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--threads", type=int, default=1, help="CPU intra-op threads")
    parser.add_argument("--out", default=None, help="JSON path")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    record = run(
        [f for f in args.families.split(",") if f],
        [m for m in args.models.split(",") if m] or None,
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
