"""Running a planned sweep: preflight, the plan lock, the executor, results.csv.

Finished trials are read back, not re-run; results.csv is rebuilt from the trials' own
result.json files.
"""

from __future__ import annotations

import fcntl
import math
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.config import TrialConfig
from benchmark.errors import ConfigError
from benchmark.evaluation.extractors import build_extractor
from benchmark.evaluation.mixture_metrics import reference_scores
from benchmark.files import cache_dir, check_writable_dir, write_json
from benchmark.mixtures import MIXTURES
from benchmark.progress import progress_bar
from benchmark.results import (
    FAILED,
    METRICS,
    REFERENCES,
    RESULT,
    RESULTS_CSV,
    RUNNING_LOCK,
    STATUSES,
    SWEEP_RECORD,
    TRIALS,
    metric_of,
    results_frame,
    write_results_csv,
)
from benchmark.search import SPACES
from benchmark.sweep.executors import EXECUTORS, RunContext
from benchmark.sweep.plan import load_results, trial_dir
from benchmark.sweep.spec import (
    SweepSpec,
)
from benchmark.training.devices import resolve_device, runs_on_cpu
from benchmark.training.trial_dir import (
    LOCK,
    TRIAL_RECORD,
    check_trial_dir,
    claim,
    forget_failure,
    read_result,
    read_trial_record,
    remove_leftovers,
)

# ---- results -----------------------------------------------------------------------------


def write_sweep_record(spec: SweepSpec, trials: Sequence[TrialConfig]) -> Path:
    """runs/<name>/sweep.json: what the sweep is (its description heads the report, its
    metric is what a rebuilt report ranks by)."""
    record = {
        "name": spec.name,
        "spec": str(spec.path),
        "description": spec.description,
        "phase": spec.phase,
        "datasets": list(spec.datasets),
        "models": list(spec.models),
        "space": spec.space,
        "samples": spec.samples,
        "seeds": list(spec.seeds),
        "networks": spec.networks,
        # Whether sample 0 is the model's default setting (the report sets it apart) or a
        # random sample like the others (spaces that draw every sample).
        "sample0_default": SPACES.get(spec.space).preset_first,
        "metric": spec.metric,  # what the report ranks by, also when rebuilt by `report`
        "direction": spec.direction,
        "trials": len(trials),
    }
    return write_json(spec.directory / SWEEP_RECORD, record)


def write_references(spec: SweepSpec) -> Path | None:
    """runs/<name>/references.json: for each 2-D mixture of the sweep, the scores of a perfect
    sampler and of a uniform blur over the data's box (`reference_scores`), which the report
    states beside the answer and draws in its figures. Kept when already written (a rerun)."""
    path = spec.directory / REFERENCES
    wanted = [d for d in spec.datasets if d in MIXTURES]
    if not wanted or path.exists():
        return None
    return write_json(path, {dataset: reference_scores(dataset) for dataset in wanted})


def write_results(spec: SweepSpec, trials: Sequence[TrialConfig]) -> pd.DataFrame:
    """runs/<name>/results.csv: one row per finished trial of the plan, written atomically."""
    frame = results_frame(load_results(spec.directory, [t.trial_id for t in trials]))
    write_results_csv(frame, spec.directory / RESULTS_CSV)
    return frame


def summary(frame: pd.DataFrame, metric: str, direction: str) -> pd.DataFrame:
    """Per dataset and model (and ablation variant): trials, ok/diverged/failed, best and
    median of `metric`.

    In a seeds sweep only the report seeds count: the select seeds chose the setting.
    """
    if frame.empty:
        return pd.DataFrame()
    if "seed_role" in frame and (frame["seed_role"] == "report").any():
        frame = frame[frame["seed_role"] == "report"]
    values = frame[metric] if metric in frame else pd.Series(math.nan, index=frame.index)
    frame = frame.assign(_metric=pd.to_numeric(values, errors="coerce"))
    keys = ["dataset", "model"] + (["extra_variant"] if "extra_variant" in frame else [])
    groups = frame.groupby(keys)
    table = groups.size().to_frame("trials")
    for status in STATUSES:
        table[status] = groups["status"].apply(lambda s, status=status: int((s == status).sum()))
    table[f"best {metric}"] = (
        groups["_metric"].min() if direction == "min" else groups["_metric"].max()
    )
    table[f"median {metric}"] = groups["_metric"].median()
    return table


# ---- running -----------------------------------------------------------------------------


def preflight(
    spec: SweepSpec, trials: Sequence[TrialConfig], data_root: str | None, download: bool = False
) -> None:
    """Refuse before any work: a dataset without its data root, or with one that lacks the
    dataset's files (its labels too, for conditional trials), unless it is to be downloaded;
    a directory of another trial or of another plan; a damaged trial.json or result.json."""
    from benchmark.datasets import check_data

    where = str(spec.path)
    for dataset in spec.datasets:
        labels = any(t.conditional for t in trials if t.dataset == dataset)
        check_data(dataset, data_root, labels=labels, download=download, where=where)
    if any(trial.compile for trial in trials) and runs_on_cpu(spec.device):
        from benchmark.training.compiled import compiler_missing

        problem = compiler_missing()
        if problem:
            allowed = f"false (op by op), or a machine with a C++ compiler: {problem}"
            raise ConfigError("compile", True, allowed, where=where)
    check_same_plan(spec, trials)
    for trial in trials:
        directory = trial_dir(spec, trial)
        try:
            check_trial_dir(trial, directory)
            read_result(directory, trial)
        except ConfigError as error:
            if error.where:
                raise
            raise type(error)(error.field, error.value, error.allowed, where) from None


def check_same_plan(spec: SweepSpec, trials: Sequence[TrialConfig]) -> None:
    """Refuse a sweep directory that holds trials this plan does not contain (the spec was
    changed since they ran), naming a field that changed, so results never mix."""
    root = spec.directory / TRIALS
    planned = {trial.trial_id for trial in trials}
    foreign = sorted(
        path
        for path in (root.iterdir() if root.is_dir() else ())
        if path.name not in planned and (path / TRIAL_RECORD).exists()
    )
    if not foreign or not trials:
        return
    stored = read_trial_record(foreign[0] / TRIAL_RECORD)

    def changed(trial: TrialConfig) -> list[str]:
        values = trial.to_dict()
        return sorted(k for k in set(values) | set(stored) if values.get(k) != stored.get(k))

    nearest = min(trials, key=lambda trial: len(changed(trial)))
    keys = changed(nearest) or ["trial_id"]
    also = f"; also {', '.join(keys[1:])}" if keys[1:] else ""
    raise ConfigError(
        keys[0],
        nearest.to_dict().get(keys[0], nearest.trial_id),
        f"{stored.get(keys[0], foreign[0].name)!r} as in the {len(foreign)} trial(s) of another "
        f"plan already in {root}{also}: give the sweep another name, or move them aside",
        where=str(spec.path),
    )


def claim_plan(spec: SweepSpec, trials: Sequence[TrialConfig]) -> None:
    """Under the sweep directory's lock, check the plan against the trials already there
    (`check_same_plan`) and record this plan's trials (each trial.json), so that of two sweeps
    of one name and different plans started together, the second is refused before it
    trains, and a report never mixes the two plans' trials."""
    with claim(spec.directory, wait=True):
        check_same_plan(spec, trials)
        for trial in trials:
            path = trial_dir(spec, trial) / TRIAL_RECORD
            if not path.exists():
                write_json(path, trial.to_dict())


@contextmanager
def running(directory: Path) -> Iterator[None]:
    """Hold the directory's `RUNNING_LOCK` shared while the sweep runs, so that a `report`
    meanwhile builds its table in memory and leaves results.csv to the sweep."""
    with open(directory / RUNNING_LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_SH)
        yield


def check_machine(
    spec: SweepSpec, trials: Sequence[TrialConfig], context: RunContext, executor: str, report: bool
) -> None:
    """Refuse before any trial trains: a report metric no trial produces, a device this machine
    lacks, an unusable cache or sweep directory, Inception weights that are missing or broken."""
    where = str(spec.path)
    produced = {metric for trial in trials for metric in trial.metrics}
    source = metric_of(spec.metric)
    if report and trials and source is not None and source not in produced:
        allowed = f"a list with {source!r}: the report ranks by {spec.metric!r} (or --no-report)"
        raise ConfigError("metrics", sorted(produced), allowed, where)
    if executor == "slurm" and context.population == "auto":
        allowed = "a size with executor slurm (the submitting host is not the GPU)"
        raise ConfigError("population", "auto", allowed, where)
    if executor == "local":  # a cluster's nodes have their own devices and caches
        try:
            resolve_device(context.device)
        except ConfigError as error:
            raise ConfigError(error.field, error.value, error.allowed, where) from None
        cache_dir()
    check_writable_dir(spec.directory, "sweep directory", where)
    check_writable_dir(spec.directory / TRIALS, "trials folder", where)
    for name in (LOCK, RUNNING_LOCK):  # opened as files once the sweep starts writing
        path = spec.directory / name
        if path.exists() and not path.is_file():
            allowed = f"a sweep directory whose {name} is a file (it is not: remove it)"
            raise ConfigError("sweep directory", str(spec.directory), allowed, where)
    featured = {name for name in METRICS.names() if METRICS.get(name).needs_features}
    for name in sorted({t.feature_extractor for t in trials if set(t.metrics) & featured}):
        build_extractor(name, context.weights, "cpu", context.download)


def forget_failed(spec: SweepSpec, trials: Sequence[TrialConfig], died_only: bool = False) -> int:
    """Delete the result of every failed trial no process holds (with `died_only`, of each
    whose worker process died), so it runs again."""
    count = 0
    for trial in trials:
        directory = trial_dir(spec, trial)
        if (directory / RESULT).exists():
            with claim(directory, wait=False) as claimed:
                count += bool(claimed and forget_failure(directory, died_only))
    return count


def tidy_finished(tasks: Sequence[tuple[TrialConfig, Path]]) -> None:
    """Remove what killed runs left in finished trials (temporary files, a spare checkpoint)."""
    for _, directory in tasks:
        with claim(directory, wait=False) as claimed:
            if claimed:
                remove_leftovers(directory)


def run_sweep(
    spec: SweepSpec,
    trials: Sequence[TrialConfig],
    context: RunContext,
    executor: str | None = None,
) -> tuple[int, int]:
    """Run every unfinished trial; returns (failed, unfinished) counts among the planned."""
    name = executor or spec.executor
    tasks = [(t, trial_dir(spec, t)) for t in trials]
    retried = forget_failed(spec, trials, died_only=True)
    if retried:
        print(f"{retried} trial(s) whose worker died run again", file=sys.stderr)
    pending = [(t, d) for t, d in tasks if not (d / RESULT).exists()]
    tidy_finished([(t, d) for t, d in tasks if (d / RESULT).exists()])
    bar = progress_bar(
        len(tasks),
        f"sweep {spec.name}",
        "trial",
        initial=len(tasks) - len(pending),
        enabled=context.progress,
    )
    failed = 0

    def report(trial: TrialConfig, outcome: Any) -> None:
        nonlocal failed
        label = f"{trial.trial_id} {trial.model}/{trial.dataset} seed {trial.seed}"
        if isinstance(outcome, ConfigError | OSError):
            raise outcome  # the same for every trial (a full disk, too): stop
        if isinstance(outcome, BaseException):
            bar.write(f"{label}: not finished: {type(outcome).__name__}: {outcome}")
        elif outcome is None:
            bar.write(f"{label}: held by another process; left to it")
        else:
            if outcome["status"] == FAILED:
                failed += 1
                bar.write(f"{label}: failed: {outcome['error']}")
            bar.update(1)
            bar.set_postfix(failed=failed, refresh=False)

    try:
        EXECUTORS.get(name, "executor").run(
            pending, context, spec.executor_options[name], spec.directory, report
        )
    finally:
        bar.close()
    records = load_results(spec.directory, [t.trial_id for t in trials])
    failed = sum(record["status"] == FAILED for record in records)
    return failed, len(trials) - len(records)
