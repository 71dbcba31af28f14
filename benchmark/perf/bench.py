"""Throughput benchmark: D steps/s per model and speed lever, FID images/s, trial time, trials/hour.

Run as `python -m benchmark.perf.bench` (or `nox -s bench`). Every run also times the plain
eager loop (`benchmark.perf.plain_loop`), so each speed-up is a ratio measured in one run on
one machine.
Variants: `eager` (the baseline), `optimised` (GANTraining, fp32), and `optimised` plus one lever
each: `+channels_last`, `+bf16`, `+compile` (the whole step as one compiled program). Timing
does not depend on the images or the weights, so the data are random uint8 images of the
dataset's shape. Populations (`GANTraining` over several trials, benchmark/training/stacked.py)
are timed per network family at sizes 1, 16 and 64, op by op and compiled, beside the plain
loop, a JAX peer and the FLOP limit of the step's products, in the same run
(benchmark/perf/bench_populations.py). Results are printed as tables and written as JSON.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import platform
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import benchmark
from benchmark.config import TrialConfig
from benchmark.datasets import DATASETS
from benchmark.models import PAPER_MODELS, resolve_trial
from benchmark.perf import bench_populations
from benchmark.perf.bench_fid import bench_fid, fid_extractor, frechet_seconds, random_images
from benchmark.perf.bench_populations import log, steps_per_second
from benchmark.perf.plain_loop import EagerBaseline
from benchmark.schedule import trial_schedule
from benchmark.training.devices import default_device
from benchmark.training.step import GANTraining

BATCH_SIZE = 64
QUICK_BATCH_SIZE = 16
N_IMAGES = 50_000  # about a training split; the gather cost grows with the tensor
# One default MNIST trial's schedule: 20 epochs of 50,000 images at batch 64 = 15,625 D
# steps, evaluated after 3,907, 7,813, 11,719 and 15,625 (benchmark/schedule.py).
_MNIST_SCHEDULE = trial_schedule(resolve_trial("ns", "mnist"))
MNIST_STEPS = _MNIST_SCHEDULE.steps
MNIST_EVALUATIONS = len(_MNIST_SCHEDULE.eval_steps)
EVAL_SAMPLES = 10_000

# variant -> (trial overrides, devices it runs on)
VARIANTS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "eager": ({}, ("cpu", "cuda")),
    "optimised": ({}, ("cpu", "cuda")),
    "+channels_last": ({"channels_last": True}, ("cpu", "cuda")),
    "+bf16": ({"amp_dtype": "bf16"}, ("cpu", "cuda")),
    "+compile": ({"compile": True}, ("cpu", "cuda")),
}
COMPILED = ("+compile",)


def make_trainer(
    variant: str, trial: TrialConfig, images: Tensor, device: torch.device
) -> GANTraining | EagerBaseline:
    overrides, _ = VARIANTS[variant]
    if variant == "eager":
        return EagerBaseline(trial, images, device)
    return GANTraining(dataclasses.replace(trial, **overrides), images, device)


def bench_steps(
    datasets: list[str],
    models: list[str],
    variants: list[str],
    device: torch.device,
    seconds: float,
    n_images: int,
    batch_size: int = BATCH_SIZE,
) -> list[dict[str, Any]]:
    rows = []
    for dataset in datasets:
        images = random_images(DATASETS.get(dataset, "dataset").shape, n_images)
        for model in models:
            trial = resolve_trial(model, dataset, batch_size=batch_size, metrics=())
            eager_rate = None
            for variant in variants:
                row: dict[str, Any] = {"dataset": dataset, "model": model, "variant": variant}
                try:
                    trainer = make_trainer(variant, trial, images, device)
                    # Compiled variants compile on the first D-only and D-and-G steps.
                    warmup = 2 * trial.n_disc + 1 if variant in COMPILED else 2
                    rate = steps_per_second(trainer, seconds, warmup)
                    row["steps_per_s"] = rate
                except Exception as error:  # e.g. a compiler missing: noted, the run goes on
                    if variant not in COMPILED:
                        raise
                    row["steps_per_s"] = None
                    row["note"] = f"failed: {type(error).__name__}: {str(error)[:200]}"
                    rate = None
                if variant == "eager":
                    eager_rate = rate
                row["ratio_vs_eager"] = rate / eager_rate if rate and eager_rate else None
                rows.append(row)
                shown = f"{rate:.2f} steps/s" if rate else row["note"]
                log(f"  {dataset:8s} {model:8s} {variant:15s} {shown}")
    return rows


def estimate_trial(
    steps_per_s: float, fid_images_per_s: float, fd_seconds: float, sample_per_s: float
) -> dict[str, Any]:
    """One MNIST trial extrapolated from measured rates; the real statistics come from the cache."""
    train = MNIST_STEPS / steps_per_s
    one_eval = EVAL_SAMPLES / fid_images_per_s + EVAL_SAMPLES / sample_per_s + fd_seconds
    return {
        "estimated": True,
        "seconds": train + MNIST_EVALUATIONS * one_eval,
        "train_seconds": train,
        "eval_seconds": MNIST_EVALUATIONS * one_eval,
        "d_steps": MNIST_STEPS,
        "evaluations": MNIST_EVALUATIONS,
        "eval_samples": EVAL_SAMPLES,
        "frechet_seconds": fd_seconds,
    }


def sampling_rate(device: torch.device, seconds: float, batch_size: int) -> float:
    """Images/s of the MNIST generator in eval mode (the evaluation's sampling)."""
    from benchmark.evaluation.preprocess import to_uint8

    training = GANTraining(
        resolve_trial("ns", "mnist", metrics=()), random_images((1, 28, 28), 64), device
    )
    g = training.g.eval()
    z = torch.rand(batch_size, 64, device=device) * 2 - 1
    n, start = 0, time.perf_counter()
    with torch.inference_mode():
        while n == 0 or time.perf_counter() - start < seconds:
            to_uint8(g(z)).cpu()
            n += batch_size
    return n / (time.perf_counter() - start)


def run_full_trial(device: torch.device, model: str) -> dict[str, Any]:
    """Really run one default MNIST trial (data from GANBENCH_DATA, weights GANBENCH_INCEPTION)."""
    from benchmark.training.loop import run_trial

    trial = resolve_trial(model, "mnist")
    with tempfile.TemporaryDirectory() as folder:
        start = time.perf_counter()
        result = run_trial(trial, Path(folder) / "trial", device=device, progress=True)
        seconds = time.perf_counter() - start
    return {
        "estimated": False,
        "seconds": seconds,
        "model": model,
        "status": result["status"],
        "fid_final": result.get("fid_final"),
        "d_steps": result["d_steps"],
    }


def _worker(
    rank: int,
    device: str,
    threads: int,
    seconds: float,
    n_images: int,
    batch_size: int,
    barrier,
    results,
) -> None:
    torch.set_num_threads(threads)
    trial = resolve_trial("ns", "mnist", batch_size=batch_size, metrics=())
    training = GANTraining(trial, random_images((1, 28, 28), n_images, rank), torch.device(device))
    for _ in range(3):
        training.train_step()
    training.losses()
    barrier.wait()  # every worker times the same stretch of wall time
    results.put(steps_per_second(training, seconds, warmup=0))


def bench_workers(
    n: int,
    device: torch.device,
    threads: int,
    seconds: float,
    n_images: int,
    batch_size: int = BATCH_SIZE,
) -> dict[str, Any]:
    """Aggregate D steps/s of `n` processes, each training an MNIST NS trial on the device."""
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(n), context.Queue()
    per_worker_threads = max(1, threads // n) if device.type == "cpu" else 1
    args = (str(device), per_worker_threads, seconds, n_images, batch_size, barrier, results)
    processes = [context.Process(target=_worker, args=(rank, *args)) for rank in range(n)]
    for process in processes:
        process.start()
    rates = [results.get(timeout=600) for _ in processes]
    for process in processes:
        process.join()
    total = sum(rates)
    log(f"  {n} workers: {total:.2f} steps/s together ({', '.join(f'{r:.2f}' for r in rates)})")
    return {
        "workers": n,
        "threads_per_worker": per_worker_threads,
        "model": "ns",
        "dataset": "mnist",
        "per_worker_steps_per_s": rates,
        "aggregate_steps_per_s": total,
    }


def trials_per_hour(aggregate_steps_per_s: float, eval_seconds: float) -> dict[str, float]:
    """Implied MNIST trials/hour: from training alone, and with every evaluation run serially."""
    train = MNIST_STEPS / aggregate_steps_per_s
    return {
        "trials_per_hour_training_only": 3600 / train,
        "trials_per_hour": 3600 / (train + eval_seconds),
    }


def format_table(rows: list[dict[str, Any]], variants: list[str], batch_size: int) -> str:
    """model x variant: steps/s and the ratio to eager, one block per dataset."""
    lines = []
    for dataset in dict.fromkeys(row["dataset"] for row in rows):
        lines.append(f"\nD steps/s, {dataset} (batch {batch_size}); ratio vs eager in brackets")
        lines.append(f"{'model':9s}" + "".join(f"{v:>21s}" for v in variants))
        for model in dict.fromkeys(r["model"] for r in rows if r["dataset"] == dataset):
            cells = []
            for variant in variants:
                row = next(
                    (
                        r
                        for r in rows
                        if (r["dataset"], r["model"], r["variant"]) == (dataset, model, variant)
                    ),
                    None,
                )
                if row is None or row["steps_per_s"] is None:
                    cells.append(f"{'failed' if row else '-':>21s}")
                else:
                    cells.append(f"{row['steps_per_s']:>12.2f} ({row['ratio_vs_eager']:5.2f}x)")
            lines.append(f"{model:9s}" + "".join(cells))
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmark.perf.bench", description=__doc__)
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: cuda if any)")
    parser.add_argument("--models", default=",".join(PAPER_MODELS), help="comma-separated")
    parser.add_argument("--datasets", default="mnist,cifar10", help="comma-separated")
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement, after warm-up")
    parser.add_argument(
        "--workers", type=int, default=None, help="concurrent trials (default: 2 on CPU, 4 on GPU)"
    )
    parser.add_argument("--threads", type=int, default=None, help="CPU threads (default: torch's)")
    parser.add_argument(
        "--fid-batch", type=int, default=None, help="default: 500 on GPU, 16 on CPU"
    )
    parser.add_argument(
        "--population-sizes",
        default="1,16,64",
        help="population sizes to time, comma-separated; 1 (a trial alone) is the unit",
    )
    parser.add_argument(
        "--population-families",
        default=",".join(bench_populations.FAMILY_TRIALS),
        help="network families for the population timing",
    )
    parser.add_argument(
        "--population-models",
        default="",
        help="models for the population timing (default: per family, see bench_populations)",
    )
    parser.add_argument("--full-trial", action="store_true", help="really run one MNIST trial")
    parser.add_argument(
        "--quick", action="store_true", help="CI size: short, tiny data, no compile"
    )
    parser.add_argument(
        "--out", default=None, help="JSON path (default: bench-results/bench-<time>.json)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device) if args.device else default_device()
    models = [m for m in args.models.split(",") if m]
    datasets = [d for d in args.datasets.split(",") if d]
    seconds = min(args.seconds, 0.2) if args.quick else args.seconds
    n_images = 512 if args.quick else N_IMAGES
    batch_size = QUICK_BATCH_SIZE if args.quick else BATCH_SIZE
    fid_batch = args.fid_batch or (2 if args.quick else 500 if device.type == "cuda" else 16)
    n_workers = args.workers or (2 if device.type == "cpu" else 4)
    variants = [v for v, (_, devices) in VARIANTS.items() if device.type in devices]
    notes = []
    if args.quick:
        variants = [v for v in variants if v not in COMPILED]
        notes.append(
            f"--quick: batch {batch_size}, tiny data, compiled variants skipped "
            "(compilation takes minutes); the figures are not comparable to a full run"
        )
    threads = torch.get_num_threads()
    log(f"ganbench bench on {device} ({threads} threads); {seconds:g} s per measurement")

    log("D steps/s:")
    step_rows = bench_steps(datasets, models, variants, device, seconds, n_images, batch_size)

    log("FID feature extraction:")
    extractor, extractor_name = fid_extractor(device)
    fid_rows = bench_fid(extractor, device, seconds, fid_batch, datasets)
    del extractor

    mnist_rate = next(
        (
            r["steps_per_s"]
            for r in step_rows
            if r["dataset"] == "mnist" and r["variant"] == "optimised"
        ),
        None,
    )
    mnist_fid = next((r["images_per_s"] for r in fid_rows if r["input"] == "1x28x28"), None)
    full_trial: dict[str, Any] | None = None
    if args.full_trial:
        log("Full MNIST trial:")
        full_trial = run_full_trial(device, models[0])
    elif mnist_rate and mnist_fid:
        fd = frechet_seconds(64 if args.quick else 2048)
        full_trial = estimate_trial(
            mnist_rate, mnist_fid, fd, sampling_rate(device, seconds, fid_batch)
        )
        full_trial["model"] = models[0]

    sizes = [int(v) for v in args.population_sizes.split(",") if v]
    families = [f for f in args.population_families.split(",") if f]
    population_models = [m for m in args.population_models.split(",") if m] or None
    if args.quick:
        sizes, families, population_models = [1], ["points"], ["ns"]
    log("Populations:")
    populations = bench_populations.run(
        families, population_models, sizes, device, seconds, batch_size, compile=not args.quick
    )
    if device.type == "cpu" and not args.quick:
        log("Populations on every core:")
        populations["cores"] = bench_populations.bench_cores("points", "ns", 16, seconds)

    log(f"{n_workers} concurrent trials:")
    workers = bench_workers(n_workers, device, threads, seconds, n_images, batch_size)
    if full_trial is not None:
        workers.update(
            trials_per_hour(workers["aggregate_steps_per_s"], full_trial.get("eval_seconds", 0.0))
        )

    record = {
        "created": datetime.now().isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": device_name(device),
        "threads": threads,
        "torch_version": torch.__version__,
        "ganbench_version": benchmark.__version__,
        "quick": args.quick,
        "seconds_per_measurement": seconds,
        "batch_size": batch_size,
        "data": f"random uint8 images, {n_images} per dataset",
        "variants": variants,
        "notes": notes,
        "steps": step_rows,
        "fid_extractor": extractor_name,
        "fid_batch_size": fid_batch,
        "fid_extraction": fid_rows,
        "full_trial": full_trial,
        "concurrent": workers,
        "populations": populations,
    }
    out = Path(args.out or f"bench-results/bench-{datetime.now():%Y%m%d-%H%M%S}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(summary(record))
    log(f"wrote {out}")
    return record


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return platform.processor() or platform.machine()


def summary(record: dict[str, Any]) -> str:
    """The printed report: the steps table, FID images/s, the trial time and trials/hour."""
    device = f"{record['device']} ({record['device_name']}, {record['threads']} threads)"
    lines = [f"ganbench bench on {device}, torch {record['torch_version']}"]
    lines.append(format_table(record["steps"], record["variants"], record["batch_size"]))
    lines.append(f"\nFID extraction, {record['fid_extractor']}, batch {record['fid_batch_size']}:")
    lines += [
        f"  {r['input']:8s} {r['images_per_s']:10.1f} images/s" for r in record["fid_extraction"]
    ]
    trial = record["full_trial"]
    if trial:
        kind = "estimated from the rates above" if trial["estimated"] else "measured"
        what = f"One MNIST {trial['model']} trial ({MNIST_STEPS} D steps + evaluations)"
        lines.append(f"\n{what}, {kind}: {trial['seconds']:.0f} s")
        if trial["estimated"]:
            lines.append(
                f"  training {trial['train_seconds']:.0f} s; {trial['evaluations']} evaluations "
                f"of {trial['eval_samples']} samples {trial['eval_seconds']:.0f} s"
            )
    c = record["concurrent"]
    together = f"{c['aggregate_steps_per_s']:.2f} D steps/s together"
    lines.append(f"\n{c['workers']} concurrent MNIST ns trials: {together}")
    if "trials_per_hour" in c:
        lines.append(
            f"  implied MNIST trials/hour: {c['trials_per_hour']:.2f} "
            f"({c['trials_per_hour_training_only']:.2f} counting training only)"
        )
    populations = record.get("populations")
    if populations:
        lines.append(
            bench_populations.format_rows(
                populations["rows"], record["device"], populations["matmul_gflops"]
            )
        )
        for setup, rate in populations.get("cores", {}).items():
            lines.append(f"  every core, points ns: {setup}: {rate:.0f} member steps/s")
    lines += [f"note: {note}" for note in record["notes"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
