"""The `sweep` command: plan a spec's trials, run them on an executor, collect results.csv.

Planning is pure: the same spec gives the same trials (and trial ids) on any machine, so a
sweep can be stopped and restarted, or run from two processes, and every trial still runs
once. Finished trials are read back, not re-run; results.csv is rebuilt from the trials'
own result.json files.
"""

from __future__ import annotations

import argparse
import fcntl
import math
import sys
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.load import RUNNING_LOCK, results_frame  # the one flattening of results
from benchmark.config import TrialConfig, resolve_trial
from benchmark.errors import ConfigError
from benchmark.evaluation.extractors import build_extractor
from benchmark.evaluation.metrics import METRICS
from benchmark.executors import EXECUTORS, RunContext, claim
from benchmark.files import atomic_write, cache_dir, check_writable_dir, write_json
from benchmark.models import MODELS
from benchmark.networks import FAMILIES
from benchmark.progress import progress_bar
from benchmark.registry import load_plugins
from benchmark.schedule import trial_schedule
from benchmark.search import SPACES, sample_hyperparameters
from benchmark.spec import (
    METRIC_SOURCES,
    POPULATION_SIZES,
    SweepSpec,
    is_population_size,
    load_spec,
)
from benchmark.trainer import (
    check_trial_dir,
    forget_failure,
    load_result,
    read_result,
    read_trial_record,
    remove_leftovers,
    resolve_device,
)


def trial_dir(spec: SweepSpec, trial: TrialConfig) -> Path:
    return spec.directory / "trials" / trial.trial_id


# ---- planning ----------------------------------------------------------------------------


def plan(spec: SweepSpec) -> list[TrialConfig]:
    """Every trial of the spec, in run order, without duplicates; ConfigError names the spec."""
    try:
        unique: dict[str, TrialConfig] = {}
        for trial in _plan_seeds(spec) if spec.phase == "seeds" else _plan_search(spec):
            unique.setdefault(trial.trial_id, trial)
    except ConfigError as error:
        if error.where:
            raise
        raise ConfigError(error.field, error.value, error.allowed, where=str(spec.path)) from None
    return list(unique.values())


def _plan_search(spec: SweepSpec) -> Iterable[TrialConfig]:
    # Sample-major order: a sweep stopped half-way has compared every model on equal terms.
    for sample in range(spec.samples):
        for dataset in spec.datasets:
            for model in spec.models:
                sampled = sample_hyperparameters(
                    spec.space, model, dataset, sample, spec.search_seed
                )
                networks = {}
                if spec.networks is not None:
                    family = FAMILIES.get(spec.networks)
                    networks = family.networks_for(MODELS.get(model).discriminator)
                for options, extra in _variant_options(spec, model):
                    for seed in spec.seeds:
                        yield resolve_trial(
                            model,
                            dataset,
                            **{**sampled, **networks, **spec.trial, **options},
                            sweep=spec.name,
                            phase=spec.phase,
                            sample=sample,
                            seed=seed,
                            extra=extra,
                        )


def _variant_options(spec: SweepSpec, model: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(trial fields, extra) per variant of the spec that applies to `model`; one plain entry
    for a spec without variants. A variant's fields win over the spec's and the search's."""
    if not spec.variants:
        return [({}, {})]
    return [
        (variant.trial, {"variant": variant.name})
        for variant in spec.variants
        if not variant.models or model in variant.models
    ]


def load_results(directory: Path, trial_ids: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The result records under directory/trials (only `trial_ids`, if given)."""
    if trial_ids is None:
        paths = sorted((directory / "trials").glob("*/result.json"))
    else:
        paths = [directory / "trials" / i / "result.json" for i in trial_ids]
    return [load_result(path) for path in paths if path.exists()]


def best_settings(
    source: Path, metric: str, direction: str, where: str = ""
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (dataset, model), the record of the best setting in a finished sweep.

    A setting is one sample of the search; its score is the mean of `metric` over its scored
    trials (one per seed): finished ones, and diverged ones with a checkpoint evaluated before
    they diverged (the reference's rule: a run keeps its best finite checkpoint). Ties go to
    the lower sample number, so sample #0 (the default).
    """
    records = load_results(source)
    frame = results_frame(records)
    if frame.empty or metric not in frame:
        raise ConfigError("metric", metric, f"a result column of the sweep in {source}", where)
    scored = frame["status"].isin(["ok", "diverged"]) & frame[metric].notna()
    ok = frame[scored]
    scores = ok.groupby(["dataset", "model", "sample"], as_index=False)[metric].mean()
    scores = scores.sort_values(
        [metric, "sample"], ascending=[direction == "min", True], kind="stable"
    )
    best = scores.groupby(["dataset", "model"]).head(1)
    by_id = {record["trial_id"]: record for record in records}
    chosen = {}
    for row in best.itertuples(index=False):
        same = (ok["dataset"] == row.dataset) & (ok["model"] == row.model)
        candidates = ok[same & (ok["sample"] == row.sample)].sort_values(["seed", "trial_id"])
        chosen[(row.dataset, row.model)] = by_id[candidates["trial_id"].iloc[0]]
    return chosen


def seed_sets(used: Iterable[int], select: int, report: int) -> tuple[list[int], list[int]]:
    """Seeds to re-run the chosen setting with: `select` ones from 0, and `report` fresh ones
    that neither the source sweep nor the select set used, so the reported numbers are not
    the ones the setting was chosen on."""
    select_seeds = list(range(select))
    start = max([*used, *select_seeds], default=-1) + 1
    return select_seeds, list(range(start, start + report))


def _plan_seeds(spec: SweepSpec) -> list[TrialConfig]:
    where = str(spec.path)
    assert spec.source is not None
    best = best_settings(spec.source, spec.metric, spec.direction, where)
    used = {(r["dataset"], r["model"], r["seed"]) for r in load_results(spec.source) if "seed" in r}
    names = {f.name for f in fields(TrialConfig)}
    per_model = []
    for dataset in spec.datasets:
        for model in spec.models:
            record = best.get((dataset, model))
            if record is None:
                raise ConfigError(
                    "from",
                    str(spec.source),
                    f"a sweep with a scored trial ({spec.metric}) for {dataset}/{model}",
                    where,
                )
            seeds = [s for d, m, s in used if (d, m) == (dataset, model)]
            select, report = seed_sets(seeds, spec.select_seeds, spec.report_seeds)
            base = {key: value for key, value in record.items() if key in names}
            base.update({key: tuple(base[key]) for key in ("metrics", "plugins")})
            if spec.trial.get("steps") is not None:
                base["epochs"] = None  # the spec's length in D steps replaces the source's
            base.update(spec.trial)
            base["extra"] = {**(base.get("extra") or {}), "from_trial": record["trial_id"]}
            base.update(sweep=spec.name, phase="seeds")
            load_plugins(base["plugins"])
            per_model.append(
                [TrialConfig(**{**base, "seed": s, "seed_role": "select"}) for s in select]
                + [TrialConfig(**{**base, "seed": s, "seed_role": "report"}) for s in report]
            )
    # Seed-major order, for the same reason as sample-major order in a search.
    return [trials[i] for i in range(len(per_model[0])) for trials in per_model]


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
    return write_json(spec.directory / "sweep.json", record)


def write_results(spec: SweepSpec, trials: Sequence[TrialConfig]) -> pd.DataFrame:
    """runs/<name>/results.csv: one row per finished trial of the plan, written atomically."""
    frame = results_frame(load_results(spec.directory, [t.trial_id for t in trials]))
    atomic_write(spec.directory / "results.csv", lambda tmp: frame.to_csv(tmp, index=False))
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
    for status in ("ok", "diverged", "failed"):
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
    """Refuse before any work: a dataset without its data root (or with one that is not a
    folder, unless it is to be downloaded), a directory of another trial or of another plan,
    a damaged trial.json or result.json."""
    from benchmark.datasets import DATASETS
    from benchmark.datasets import data_root as resolve_root

    where = str(spec.path)
    for dataset in spec.datasets:
        if DATASETS.get(dataset).needs_root:
            try:
                root = resolve_root(data_root)
            except ConfigError as error:
                raise ConfigError("data_root", error.value, error.allowed, where=where) from None
            if not download and not root.is_dir():
                allowed = f"an existing folder holding {dataset} (or --download)"
                raise ConfigError("data_root", str(root), allowed, where=where)
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
    root = spec.directory / "trials"
    planned = {trial.trial_id for trial in trials}
    foreign = sorted(
        path
        for path in (root.iterdir() if root.is_dir() else ())
        if path.name not in planned and (path / "trial.json").exists()
    )
    if not foreign or not trials:
        return
    stored = read_trial_record(foreign[0] / "trial.json")

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
            path = trial_dir(spec, trial) / "trial.json"
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
    source = METRIC_SOURCES.get(spec.metric)
    if report and trials and source is not None and source not in produced:
        allowed = f"a list with {source!r}: the report ranks by {spec.metric!r} (or --no-report)"
        raise ConfigError("metrics", sorted(produced), allowed, where)
    if executor == "local":  # a cluster's nodes have their own devices and caches
        try:
            resolve_device(context.device)
        except ConfigError as error:
            raise ConfigError(error.field, error.value, error.allowed, where) from None
        cache_dir()
    check_writable_dir(spec.directory, "sweep directory", where)
    check_writable_dir(spec.directory / "trials", "trials folder", where)
    featured = {name for name in METRICS.names() if METRICS.get(name).needs_features}
    for name in sorted({t.feature_extractor for t in trials if set(t.metrics) & featured}):
        build_extractor(name, context.weights, "cpu", context.download)


def forget_failed(spec: SweepSpec, trials: Sequence[TrialConfig]) -> int:
    """Delete the result of every failed trial no process holds, so it runs again."""
    count = 0
    for trial in trials:
        directory = trial_dir(spec, trial)
        if (directory / "result.json").exists():
            with claim(directory, wait=False) as claimed:
                count += bool(claimed and forget_failure(directory))
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
    pending = [(t, d) for t, d in tasks if not (d / "result.json").exists()]
    tidy_finished([(t, d) for t, d in tasks if (d / "result.json").exists()])
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
            if outcome["status"] == "failed":
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
    failed = sum(record["status"] == "failed" for record in records)
    return failed, len(trials) - len(records)


def print_plan(spec: SweepSpec, trials: Sequence[TrialConfig], out=None) -> None:
    out = out or sys.stdout
    rows = []
    for trial in trials:
        path = trial_dir(spec, trial) / "result.json"
        status = load_result(path)["status"] if path.exists() else "to run"
        variant = trial.extra.get("variant", "")
        rows.append(
            {"dataset": trial.dataset, "model": trial.model, "variant": variant, "status": status}
        )
    frame = pd.DataFrame(rows)
    keys = ["dataset", "model"] + (["variant"] if spec.variants else [])
    table = pd.crosstab([frame[key] for key in keys], frame["status"], margins=True)
    steps = sum(
        trial_schedule(t).steps
        for t, row in zip(trials, rows, strict=True)
        if row["status"] == "to run"
    )
    print(f"sweep {spec.name} ({spec.phase}) from {spec.path}: {len(trials)} trials", file=out)
    print(f"results in {spec.directory}; executor {spec.executor}", file=out)
    print(table.to_string(), file=out)
    print(f"to run: {steps:,} D steps in all", file=out)


def _population_size(text: str) -> int | str:
    value = text if text == "auto" else int(text) if text.isdigit() else text
    if not is_population_size(value):
        raise argparse.ArgumentTypeError(
            f"population={text!r} is not allowed; expected {POPULATION_SIZES}"
        )
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("spec", help="a sweep spec, e.g. runs/quick.toml")
    parser.add_argument(
        "--executor", choices=EXECUTORS.names(), help="where trials run (default: the spec's)"
    )
    parser.add_argument(
        "--device", default=None, help="torch device (default: the spec's, else cuda if any)"
    )
    parser.add_argument(
        "--data-root", default=None, help="data folder (default: the spec's, else $GANBENCH_DATA)"
    )
    parser.add_argument(
        "--weights", default=None, help="Inception weights (default: $GANBENCH_INCEPTION)"
    )
    parser.add_argument(
        "--population",
        type=_population_size,
        default=None,
        help='trials trained together as one program: a size or "auto" (default: the spec\'s, 1)',
    )
    parser.add_argument("--download", action="store_true", help="fetch missing datasets first")
    parser.add_argument("--retry-failed", action="store_true", help="re-run failed trials")
    parser.add_argument("--dry-run", action="store_true", help="print the plan and stop")
    parser.add_argument("--no-report", action="store_true", help="skip the analysis report")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars or lines")


def run(args: argparse.Namespace) -> int:
    spec = load_spec(args.spec)
    trials = plan(spec)
    data_root = args.data_root or spec.data_root
    preflight(spec, trials, data_root, args.download)
    if args.dry_run:
        print_plan(spec, trials)
        return 0
    context = RunContext(
        data_root=data_root,
        device=args.device or spec.device,
        weights=args.weights,
        download=args.download,
        progress=not args.no_progress,
        population=args.population or spec.population,
    )
    check_machine(spec, trials, context, args.executor or spec.executor, not args.no_report)
    if args.retry_failed:
        print(f"{forget_failed(spec, trials)} failed trials will run again", file=sys.stderr)
    claim_plan(spec, trials)
    with running(spec.directory):
        write_sweep_record(spec, trials)
        failed, unfinished = run_sweep(spec, trials, context, args.executor)
        frame = write_results(spec, trials)
    table = summary(frame, spec.metric, spec.direction)
    print(f"\nsweep {spec.name}: {len(frame)} of {len(trials)} trials finished, {failed} failed")
    if not table.empty:
        print(table.to_string(float_format=lambda x: f"{x:.4g}"))
    print(f"results: {spec.directory / 'results.csv'}")
    per_cell = Counter((t.dataset, t.model, t.extra.get("variant")) for t in trials)
    planned = max(per_cell.values(), default=0)  # trials planned per (dataset, arm) cell
    reported = args.no_report or not len(frame) or _report(spec, planned)
    return 0 if failed == 0 and unfinished == 0 and reported else 1


def _report(spec: SweepSpec, trials_per_cell: int) -> bool:
    """Build the analysis report; False if it failed (results.csv is written either way)."""
    try:
        from analysis import build_report
    except ImportError:
        print("(the report needs the analysis package; skipped)")
        return True
    try:
        path = build_report(
            spec.directory,
            metric=spec.metric,
            direction=spec.direction,
            expected_trials=trials_per_cell,
        )
    except Exception as error:  # the results are safe; the report can be rebuilt on its own
        command = (
            f"python -m benchmark report {spec.directory} --metric {spec.metric} "
            f"--direction {spec.direction} --expected-trials {trials_per_cell}"
        )
        print(f"report failed: {type(error).__name__}: {error}", file=sys.stderr)
        print(f"rebuild it with: {command}", file=sys.stderr)
        return False
    print(f"report: {path}")
    return True
