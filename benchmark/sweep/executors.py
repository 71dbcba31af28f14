"""Executors decide where trials run: `local` (this machine) and `slurm` (submitit job arrays).

Executors group pending trials into populations (`populations`: trials that share their
structure, up to the spec's `population` size) and call the same `run_claimed_population`
for each, which takes each member's claim (an exclusive flock on trials/<id>/.lock) and
trains the members it claimed as one population (`run_population`). Claims stay per trial:
the kernel drops a lock when its process ends, however it ends, so two sweeps on one
directory never run the same trial at once, a member another sweep holds is left to it,
and a killed sweep leaves no stale claim. A trial's result.json, not a job state, says
whether it is done, so a finished member is returned, never trained again.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from benchmark import interrupt
from benchmark.config import TrialConfig
from benchmark.errors import ConfigError
from benchmark.registry import Registry, load_plugins
from benchmark.sweep.workers import WorkerDied, Workers
from benchmark.training.devices import runs_on_cpu
from benchmark.training.population import Task, populations
from benchmark.training.trial_dir import claim, record_death

# Called once per task with its result record, None (another process holds the trial),
# or the exception that stopped it before a result was recorded.
Report = Callable[[TrialConfig, "dict[str, Any] | BaseException | None"], None]


@dataclass(frozen=True)
class RunContext:
    """Machine-specific arguments of run_trial: not part of a trial's identity."""

    data_root: str | None = None
    device: str | None = None
    weights: str | None = None
    download: bool = False
    progress: bool = True
    # Trials per population: a size >= 1, or "auto" (per device kind and family, `auto_size`).
    population: int | str = 1

    def trainer_options(self, position: int) -> dict[str, Any]:
        """The keyword arguments of run_trial and run_population."""
        return dict(
            data_root=self.data_root,
            device=self.device,
            weights=self.weights,
            download=self.download,
            progress=self.progress,
            progress_position=position,
        )


def run_claimed(
    trial: TrialConfig, directory: Path, context: RunContext, *, wait: bool, position: int = 1
) -> dict[str, Any] | None:
    """Run (or resume, or read back) one trial under its claim; None if another holds it."""
    from benchmark.training import loop

    load_plugins(trial.plugins)  # a fresh worker or job process has not imported them yet
    with claim(directory, wait) as claimed:
        if not claimed:
            return None
        return loop.run_trial(trial, directory, **context.trainer_options(position))


def _attempt(
    trial: TrialConfig, directory: Path, context: RunContext, wait: bool, position: int = 1
) -> dict[str, Any] | BaseException | None:
    try:
        return run_claimed(trial, directory, context, wait=wait, position=position)
    except Exception as error:  # the sweep decides whether one trial's error stops it
        return error


def run_claimed_population(
    tasks: Sequence[Task], context: RunContext, *, position: int = 1
) -> list[dict[str, Any] | BaseException | None]:
    """Claim each member without waiting and train those claimed as one population; one
    outcome per task, in order: its result, None (another process holds it), or the error
    that stopped the population before it recorded results."""
    from benchmark.training import loop

    interrupt.check()  # a stopping process claims nothing
    for trial, _ in tasks:
        load_plugins(trial.plugins)
    with ExitStack() as claims:
        held = [claims.enter_context(claim(directory, wait=False)) for _, directory in tasks]
        mine = [task for task, ok in zip(tasks, held, strict=True) if ok]
        try:
            results = iter(
                loop.run_population(
                    [trial for trial, _ in mine],
                    [directory for _, directory in mine],
                    **context.trainer_options(position),
                )
                if mine
                else []
            )
        except Exception as error:  # the sweep decides whether the error stops it
            return [error if ok else None for ok in held]
    return [next(results) if ok else None for ok in held]


@dataclass(frozen=True)
class Option:
    check: Callable[[Any], bool]
    allowed: str
    default: Any = None


@dataclass(frozen=True)
class Executor:
    """`run(tasks, context, options, sweep_dir, report)` runs tasks and reports each one."""

    run: Callable[[Sequence[Task], RunContext, dict[str, Any], Path, Report], None]
    options: Mapping[str, Option] = field(default_factory=dict)

    def read_options(self, table: Mapping[str, Any], where: str) -> dict[str, Any]:
        """The spec's [<executor>] table, checked, with defaults filled in."""
        values = {}
        for name, option in self.options.items():
            value = table.get(name, option.default)
            if name in table and not option.check(value):
                raise ConfigError(name, value, option.allowed, where=where)
            values[name] = value
        unknown = sorted(set(table) - set(self.options))
        if unknown:
            raise ConfigError(
                unknown[0], table[unknown[0]], f"one of {sorted(self.options)}", where=where
            )
        return values


EXECUTORS: Registry[Executor] = Registry("executor")


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


# ---- local -------------------------------------------------------------------------------


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, which a cluster job narrows)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def threads_per_worker(workers: int, cores: int | None = None, limit: str | None = None) -> int:
    """Intra-op threads for each of `workers` concurrent trials: the cores split between them,
    at most `limit` (default: $OMP_NUM_THREADS, the user's own cap, when set).

    PyTorch's default, one thread per core in every process, makes parallel trials fight
    over the cores: two small trials on 2 cores ran 30 times slower than with one each.
    """
    threads = max(1, (cores if cores is not None else available_cores()) // workers)
    limit = os.environ.get("OMP_NUM_THREADS") if limit is None else limit
    if limit and limit.strip().isdigit() and int(limit) >= 1:
        threads = min(threads, int(limit))
    return threads


def _gpu_slots(device: str | None, workers_per_gpu: int) -> list[tuple[str, int]]:
    """(GPU, slot) per worker process; empty when trials should run in this process."""
    if device not in (None, "cuda") or runs_on_cpu(device):
        return []  # an explicit device (cpu, cuda:1) runs sequentially on it
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    slots = [(gpu, k * len(gpus) + i) for k in range(workers_per_gpu) for i, gpu in enumerate(gpus)]
    return slots if len(slots) > 1 else []


_worker_position = 1


def _init_worker(slot: tuple[str | None, int], threads: int, parent: int) -> None:
    """Give a fresh worker process its GPU (set before CUDA starts in it; None on the CPU),
    its share of the CPU cores and a progress-bar row; it stops at a safe point on SIGTERM or
    SIGINT (the parent forwards its own), and at once when the parent is gone."""
    global _worker_position
    import torch

    interrupt.install()
    interrupt.watch_parent(parent)
    gpu, position = slot
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    torch.set_num_threads(threads)
    _worker_position = 1 + position


def _pool_attempt(trial: TrialConfig, directory: Path, context: RunContext, wait: bool):
    return _attempt(trial, directory, context, wait, position=_worker_position)


def _pool_population(tasks: list[Task], context: RunContext):
    return run_claimed_population(tasks, context, position=_worker_position)


def run_local(
    tasks: Sequence[Task],
    context: RunContext,
    options: dict[str, Any],
    sweep_dir: Path,
    report: Report,
) -> None:
    """In this process, or in worker processes: one per GPU slot, or `cpu_workers` on the CPU.

    Pending trials are grouped into populations (`populations`); each process trains one
    population at a time and gets an equal share of the CPU cores as intra-op threads. A
    trial another process holds is skipped at first and waited for at the end (alone), so
    this sweep ends only when every trial is finished (or its holder died and this one ran it).
    A worker that dies (a segfault, the OOM killer) fails only the trials it was training:
    each is recorded failed, naming the exit, and the next run of the sweep retries it.
    """
    slots: list[tuple[str | None, int]] = list(
        _gpu_slots(context.device, options["workers_per_gpu"])
    )
    if slots:
        context = replace(context, device="cuda")
    elif runs_on_cpu(context.device) and options["cpu_workers"] > 1:
        slots = [(None, k) for k in range(options["cpu_workers"])]
        context = replace(context, device="cpu")
    sharing = options["workers_per_gpu"] if context.device == "cuda" else 1
    groups = populations(tasks, context.population, context.device, sharing)
    busy: list[Task] = []

    def collect(group: list[Task], outcomes: list) -> None:
        for (trial, directory), outcome in zip(group, outcomes, strict=True):
            if outcome is None:
                busy.append((trial, directory))
            else:
                report(trial, outcome)

    if not slots:
        import torch

        previous = torch.get_num_threads()
        if runs_on_cpu(context.device):
            torch.set_num_threads(threads_per_worker(1))
        try:
            for group in groups:
                collect(group, run_claimed_population(group, context))
            for trial, directory in busy:
                report(trial, _attempt(trial, directory, context, wait=True))
        finally:
            torch.set_num_threads(previous)
        return

    def died(group: list[Task], error: WorkerDied) -> list[dict[str, Any] | None]:
        return [record_death(trial, directory, str(error)) for trial, directory in group]

    workers = Workers(slots, _init_worker, (threads_per_worker(len(slots)), os.getpid()))
    try:
        jobs = [(group, _pool_population, (group, context)) for group in groups]
        for group, outcomes in workers.run(jobs):
            collect(group, died(group, outcomes) if isinstance(outcomes, WorkerDied) else outcomes)
        jobs = [((t, d), _pool_attempt, (t, d, context, True)) for t, d in busy]
        for task, outcome in workers.run(jobs):
            report(
                task[0], died([task], outcome)[0] if isinstance(outcome, WorkerDied) else outcome
            )
    except BaseException:
        # Stopping (a signal, a full disk, an error that ends the sweep): queued work is
        # dropped and the workers stop at their next safe point, each trial resumable.
        workers.stop()
        raise
    finally:
        workers.close()


EXECUTORS.register(
    "local",
    Executor(
        run_local,
        {
            "workers_per_gpu": Option(_positive_int, "an integer >= 1 (trials sharing a GPU)", 1),
            "cpu_workers": Option(
                _positive_int, "an integer >= 1 (trials at once on the CPU, cores split)", 1
            ),
        },
    ),
)
