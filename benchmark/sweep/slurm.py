"""The `slurm` executor: each population one task of a submitit job array."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import submitit

from benchmark import interrupt
from benchmark.config import TrialConfig
from benchmark.results import RESULT
from benchmark.sweep.executors import (
    EXECUTORS,
    Executor,
    Option,
    Report,
    RunContext,
    Task,
    _positive_int,
    populations,
    run_claimed_population,
)

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
    from benchmark.training.trial_dir import load_result

    if not tasks:
        return
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
            if (directory / RESULT).exists():
                report(trial, load_result(directory / RESULT))
                del pending[trial_id]
        empty_polls = 0 if _queued(array_ids) else empty_polls + 1
    for trial, directory, job, index in pending.values():
        if (directory / RESULT).exists():
            report(trial, load_result(directory / RESULT))
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
