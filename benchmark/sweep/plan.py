"""Planning: a spec's trials, in order, with their directories (a seeds phase from its source).

Planning is pure: the same spec gives the same trials (and trial ids) on any machine, so a
sweep can be stopped and restarted, or run from two processes, and every trial still runs
once.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark.best_setting import best_setting
from benchmark.config import TrialConfig
from benchmark.errors import ConfigError
from benchmark.models import networks_for, resolve_trial
from benchmark.registry import load_plugins
from benchmark.results import RESULT, SCORED, TRIALS, results_frame
from benchmark.schedule import trial_schedule
from benchmark.search import sample_hyperparameters
from benchmark.sweep.spec import SweepSpec
from benchmark.training.trial_dir import TRIAL_RECORD, load_result, read_trial_record


def trial_dir(spec: SweepSpec, trial: TrialConfig) -> Path:
    return spec.directory / TRIALS / trial.trial_id


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
                    networks = networks_for(model, dataset, spec.networks)
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
        paths = sorted((directory / TRIALS).glob(f"*/{RESULT}"))
    else:
        paths = [directory / TRIALS / i / RESULT for i in trial_ids]
    return [load_result(path) for path in paths if path.exists()]


def best_settings(
    source: Path, metric: str, direction: str, where: str = ""
) -> dict[tuple[str, str], dict[str, Any]]:
    """Per (dataset, model), the record of the best setting in a finished sweep.

    A setting is one sample of the search, chosen by the one rule (benchmark/best_setting.py):
    fewest unscored trials, then the best mean of `metric` over its scored trials (one per
    seed): finished ones, and diverged ones with a checkpoint evaluated before they diverged
    (the reference's rule: a run keeps its best finite checkpoint); ties go to the lower
    sample number, so sample #0 (the default).
    """
    records = load_results(source)
    frame = results_frame(records)
    if frame.empty or metric not in frame:
        raise ConfigError("metric", metric, f"a result column of the sweep in {source}", where)
    scored = frame["status"].isin(SCORED) & frame[metric].notna()
    frame["score"] = frame[metric].where(scored) * (1.0 if direction == "min" else -1.0)
    by_id = {record["trial_id"]: record for record in records}
    chosen = {}
    for (dataset, model), cell in frame.groupby(["dataset", "model"], sort=False):
        best = best_setting(cell, ["sample"], "score")
        if best is None:
            continue
        candidates = cell[cell["score"].notna() & (cell["sample"] == best[0])]
        candidates = candidates.sort_values(["seed", "trial_id"])
        chosen[(dataset, model)] = by_id[candidates["trial_id"].iloc[0]]
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
            config = _config_of(spec.source, record)
            base = {key: value for key, value in config.items() if key in names}
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


def _config_of(source: Path, record: dict[str, Any]) -> dict[str, Any]:
    """The configuration a chosen trial ran with: its trial.json, where the result record
    leaves a metric's counts empty when the metric did not run (a mixture trial's
    `fid_n_real`), which no trial accepts; the record itself for a source without them."""
    path = source / TRIALS / str(record["trial_id"]) / TRIAL_RECORD
    return read_trial_record(path) if path.exists() else record


def print_plan(spec: SweepSpec, trials: Sequence[TrialConfig], out=None) -> None:
    out = out or sys.stdout
    rows = []
    for trial in trials:
        path = trial_dir(spec, trial) / RESULT
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
