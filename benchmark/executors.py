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

import fcntl
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import submitit

from benchmark import interrupt
from benchmark.config import TrialConfig
from benchmark.errors import ConfigError
from benchmark.registry import Registry, load_plugins

Task = tuple[TrialConfig, Path]
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


@contextmanager
def claim(directory: Path, wait: bool) -> Iterator[bool]:
    """Hold the trial's lock for the body; yields False if another process holds it."""
    directory.mkdir(parents=True, exist_ok=True)
    handle = open(directory / ".lock", "a")  # noqa: SIM115 - the lock lives as long as the body
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
        else:
            yield True
    finally:
        handle.close()  # releases the lock


def run_claimed(
    trial: TrialConfig, directory: Path, context: RunContext, *, wait: bool, position: int = 1
) -> dict[str, Any] | None:
    """Run (or resume, or read back) one trial under its claim; None if another holds it."""
    from benchmark import trainer

    load_plugins(trial.plugins)  # a fresh worker or job process has not imported them yet
    with claim(directory, wait) as claimed:
        if not claimed:
            return None
        return trainer.run_trial(trial, directory, **context.trainer_options(position))


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
    from benchmark import trainer

    interrupt.check()  # a stopping process claims nothing
    for trial, _ in tasks:
        load_plugins(trial.plugins)
    with ExitStack() as claims:
        held = [claims.enter_context(claim(directory, wait=False)) for _, directory in tasks]
        mine = [task for task, ok in zip(tasks, held, strict=True) if ok]
        try:
            results = iter(
                trainer.run_population(
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


def member_bytes(trial: TrialConfig) -> int:
    """Device memory one population member needs, estimated: weights, gradients and two Adam
    moments of G and D (4 copies of the parameters), and about eight copies of the
    activations of one batch through G and D (forward, backward, a penalty's double
    backward), all in float32. Counted on the meta device: nothing is allocated."""
    import torch

    from benchmark.datasets import DATASETS
    from benchmark.trainer import build_networks

    shape = DATASETS.get(trial.dataset, "dataset").shape
    meta = torch.device("meta")
    with meta:
        g, d = build_networks(trial, shape, meta)
    activations = 0

    def count(module, inputs, output) -> None:
        nonlocal activations
        activations += output.numel()

    for network in (g, d):
        for layer in network.modules():
            if not list(layer.children()):
                layer.register_forward_hook(count)
    z = torch.zeros(trial.batch_size, trial.z_dim, device=meta)
    if trial.conditional:  # G(z, y) and D(x, y)
        y = torch.zeros(trial.batch_size, dtype=torch.long, device=meta)
        d(g(z, y), y)
    else:
        d(g(z))
    parameters = sum(p.numel() for p in (*g.parameters(), *d.parameters()))
    return 4 * (4 * parameters + 8 * activations)


# `population = "auto"` on a CPU, per network family (the trial's generator): the size that
# `nox -s bench` measured fastest per member at one intra-op thread (README, "Populations":
# the point and MLP networks' steps are dominated by per-kernel overhead, which a population
# pays once; the InfoGAN networks' by their convolutions, which run member by member, so
# there a population buys nothing). The bench flags a choice it measures slower than 1.
AUTO_CPU_SIZES = {"points": 16, "mlp": 16}


def auto_size(trial: TrialConfig, device: str | None, cap: int = 64) -> int:
    """Population size for `population = "auto"`, a function of the trial's structure and the
    device's kind and total memory only (never of free memory or timing), so that a spec
    groups its trials the same way on every run: on the CPU, `AUTO_CPU_SIZES` (1 for other
    families, and for batches on which a member's bits would depend on its population,
    benchmark/stacked_layers.py); on a GPU, as many members as half its total memory holds
    (`member_bytes`), at most `cap`."""
    import torch

    from benchmark.stacked_layers import BIT_EXACT_BATCH

    if _on_cpu(device) or not torch.cuda.is_available():
        if trial.batch_size % BIT_EXACT_BATCH:  # a member would round otherwise than alone
            return 1
        return AUTO_CPU_SIZES.get(trial.generator, 1)
    index = torch.device(device if device not in (None, "auto") else "cuda").index or 0
    total = torch.cuda.get_device_properties(index).total_memory
    return max(1, min(cap, int(0.5 * total) // member_bytes(trial)))


def populations(
    tasks: Sequence[Task], size: int | str, device: str | None, sharing: int = 1
) -> list[list[Task]]:
    """Tasks grouped into populations: trials with equal `population_key` (structure), in
    planned order, at most `size` per population ("auto": `auto_size` of the group, divided
    among the `sharing` workers of one GPU)."""
    from benchmark.trainer import population_key

    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(population_key(task[0]), []).append(task)
    out = []
    for group in groups.values():
        limit = max(1, auto_size(group[0][0], device) // sharing) if size == "auto" else int(size)
        out += [group[start : start + limit] for start in range(0, len(group), limit)]
    return out


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


def _on_cpu(device: str | None) -> bool:
    if device not in (None, "auto"):
        return device == "cpu"
    import torch

    return not torch.cuda.is_available()


def _gpu_slots(device: str | None, workers_per_gpu: int) -> list[tuple[str, int]]:
    """(GPU, slot) per worker process; empty when trials should run in this process."""
    if device not in (None, "cuda") or _on_cpu(device):
        return []  # an explicit device (cpu, cuda:1) runs sequentially on it
    import torch

    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    gpus = visible.split(",") if visible else [str(i) for i in range(torch.cuda.device_count())]
    slots = [(gpu, k * len(gpus) + i) for k in range(workers_per_gpu) for i, gpu in enumerate(gpus)]
    return slots if len(slots) > 1 else []


_worker_position = 1


def _init_worker(slots, threads: int, parent: int) -> None:
    """Give a fresh worker process its GPU (set before CUDA starts in it; None on the CPU),
    its share of the CPU cores and a progress-bar row; it stops at a safe point on SIGTERM or
    SIGINT (the parent forwards its own), and at once when the parent is gone."""
    global _worker_position
    import torch

    interrupt.install()
    interrupt.watch_parent(parent)
    gpu, slot = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpu
    torch.set_num_threads(threads)
    _worker_position = 1 + slot


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
    """
    slots: list[tuple[str | None, int]] = list(
        _gpu_slots(context.device, options["workers_per_gpu"])
    )
    if slots:
        context = replace(context, device="cuda")
    elif _on_cpu(context.device) and options["cpu_workers"] > 1:
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
        if _on_cpu(context.device):
            torch.set_num_threads(threads_per_worker(1))
        try:
            for group in groups:
                collect(group, run_claimed_population(group, context))
            for trial, directory in busy:
                report(trial, _attempt(trial, directory, context, wait=True))
        finally:
            torch.set_num_threads(previous)
        return

    import multiprocessing

    # spawn, not fork: a forked child of a process that touched CUDA cannot use it.
    mp = multiprocessing.get_context("spawn")
    queue = mp.Queue()
    for slot in slots:
        queue.put(slot)
    threads = threads_per_worker(len(slots))
    initargs = (queue, threads, os.getpid())
    pool = ProcessPoolExecutor(len(slots), mp, initializer=_init_worker, initargs=initargs)
    submitted: list[Future] = []
    try:
        running = {pool.submit(_pool_population, group, context): group for group in groups}
        submitted += running
        for future in _completed(running):
            collect(running[future], future.result())
        waiting = {
            pool.submit(_pool_attempt, trial, directory, context, True): trial
            for trial, directory in busy
        }
        submitted += waiting
        for future in _completed(waiting):
            report(waiting[future], future.result())
    except BaseException:
        # Stopping (a signal, a full disk, an error that ends the sweep): queued work is
        # dropped and the workers stop at their next safe point, each trial resumable.
        for future in submitted:
            future.cancel()
        _stop_workers(pool)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _completed(futures: Mapping[Future, Any], every: float = 0.2) -> Iterator[Future]:
    """`as_completed`, but a stop request (a signal) is noticed within `every` seconds."""
    pending = set(futures)
    while pending:
        interrupt.check()
        done, pending = wait(pending, timeout=every, return_when=FIRST_COMPLETED)
        yield from done


def _stop_workers(pool: ProcessPoolExecutor) -> None:
    """Ask every worker of the pool to stop at its next safe point (as a first SIGTERM does)."""
    import signal

    for process in list((pool._processes or {}).values()):  # no public handle on the workers
        if process.is_alive():
            with suppress(ProcessLookupError):  # it ended meanwhile
                os.kill(process.pid, signal.SIGTERM)


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


# ---- slurm -------------------------------------------------------------------------------


# submitit's signal handler raises this inside the training step when a preempted or
# timed-out task is not requeued (it timed out too often): the job was stopped, and each
# member stays resumable from its checkpoint, never recorded `failed`.
interrupt.STOP_ERRORS.append(submitit.core.utils.UncompletedJobError)


class PopulationJob(submitit.helpers.Checkpointable):
    """One array task: run one population (often of one trial). On preemption or time-out
    submitit's signal handler calls the inherited `checkpoint`, which requeues this same call,
    and ends the process (SystemExit, mid-step: what was written is a complete checkpoint or
    none); each member then resumes from its checkpoint.pt."""

    def __init__(self, context: RunContext) -> None:
        self.context = context

    def __call__(
        self, trials: list[TrialConfig], directories: list[str]
    ) -> list[dict[str, Any] | BaseException | None]:
        tasks = [(t, Path(d)) for t, d in zip(trials, directories, strict=True)]
        return run_claimed_population(tasks, self.context, position=0)


def _queued(job_ids: set[str]) -> bool:
    """Whether squeue still lists any of these jobs (pending, running, completing)."""
    for job_id in job_ids:
        result = subprocess.run(
            ["squeue", "-h", "-o", "%i", "-j", job_id], capture_output=True, text=True
        )
        if result.returncode == 0 and result.stdout.strip():
            return True
    return False


def _slurm_parameters(name: str, options: dict[str, Any]) -> dict[str, Any]:
    root = Path(__file__).resolve().parent.parent
    parameters = {
        "name": f"ganbench-{name}",
        "timeout_min": options["timeout_min"],
        "cpus_per_task": options["cpus_per_task"],
        "gpus_per_node": options["gpus_per_node"],
        "mem_gb": options["mem_gb"],
        "slurm_partition": options["partition"],
        "slurm_array_parallelism": options["array_parallelism"],
        # The job imports this very checkout, whatever its working directory.
        "slurm_setup": [f"export PYTHONPATH={root}${{PYTHONPATH:+:$PYTHONPATH}}"]
        + list(options["setup"]),
        "slurm_additional_parameters": dict(options["additional"]),
    }
    return {key: value for key, value in parameters.items() if value is not None}


def run_slurm(
    tasks: Sequence[Task],
    context: RunContext,
    options: dict[str, Any],
    sweep_dir: Path,
    report: Report,
) -> None:
    """One array task per trial, through submitit; waits, reading each trial's result.json.

    Without slurmdbd, sacct is disabled and submitit sees every state as UNKNOWN, so this
    polls the trial directories for results and squeue for jobs still queued.
    """
    from benchmark.trainer import load_result

    if not tasks:
        return
    if context.population == "auto":
        raise ConfigError(
            "population", "auto", "a size with executor slurm (the submitting host is not the GPU)"
        )
    executor = submitit.AutoExecutor(folder=sweep_dir / "slurm", cluster="slurm")
    executor.update_parameters(**_slurm_parameters(sweep_dir.name, options))
    context = replace(context, progress=False)
    groups = populations(tasks, context.population, context.device)
    size = options["max_array_size"]
    jobs = []
    for start in range(0, len(groups), size):
        chunk = groups[start : start + size]
        jobs += executor.map_array(
            PopulationJob(context),
            [[t for t, _ in group] for group in chunk],
            [[str(d) for _, d in group] for group in chunk],
        )
    print(
        f"submitted {len(jobs)} slurm tasks for {len(tasks)} trials "
        f"(job {jobs[0].job_id.split('_')[0]}); logs in {sweep_dir / 'slurm'}",
        file=sys.stderr,
    )
    array_ids = {job.job_id.split("_")[0] for job in jobs}
    pending = {
        trial.trial_id: (trial, directory, job, index)
        for group, job in zip(groups, jobs, strict=True)
        for index, (trial, directory) in enumerate(group)
    }
    empty_polls = 0
    while pending and empty_polls < 2:  # twice, so one failed squeue call does not end the wait
        interrupt.check()  # the array tasks run on: a rerun of the sweep collects them
        time.sleep(options["poll_seconds"])
        for trial_id, (trial, directory, _, _) in list(pending.items()):
            if (directory / "result.json").exists():
                report(trial, load_result(directory / "result.json"))
                del pending[trial_id]
        empty_polls = 0 if _queued(array_ids) else empty_polls + 1
    for trial, directory, job, index in pending.values():
        if (directory / "result.json").exists():
            report(trial, load_result(directory / "result.json"))
            continue
        error = None
        if job.paths.result_pickle.exists():
            error = job.exception()
            if error is None:
                outcome = job.result()[index]
                if outcome is None:  # another process held the trial: running, or killed
                    report(trial, None)
                    continue
                error = outcome if isinstance(outcome, BaseException) else None
        report(
            trial,
            error
            or RuntimeError(
                f"slurm task {job.job_id} ended without a result; see {job.paths.stderr}"
            ),
        )


EXECUTORS.register(
    "slurm",
    Executor(
        run_slurm,
        {
            "partition": Option(lambda v: isinstance(v, str) and v, "a partition name"),
            "timeout_min": Option(_positive_int, "minutes per job, an integer >= 1", 24 * 60),
            "cpus_per_task": Option(_positive_int, "an integer >= 1", 4),
            "gpus_per_node": Option(
                lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= 0,
                "an integer >= 0",
                1,
            ),
            "mem_gb": Option(
                lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
                "a number of GB > 0 (or leave it out: the partition's default)",
            ),
            "array_parallelism": Option(_positive_int, "an integer >= 1 (tasks at once)", 64),
            "max_array_size": Option(
                _positive_int, "an integer >= 1 (the cluster's MaxArraySize)", 1000
            ),
            "setup": Option(
                lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
                "a list of shell lines run before each job (module load ...)",
                [],
            ),
            "additional": Option(
                lambda v: isinstance(v, dict),
                "a table of further sbatch options (account, qos, constraint, ...)",
                {},
            ),
            "poll_seconds": Option(
                lambda v: isinstance(v, int | float) and not isinstance(v, bool) and v > 0,
                "seconds between checks for finished trials, a number > 0",
                10,
            ),
        },
    ),
)
