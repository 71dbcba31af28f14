"""What a result is: statuses, phases, file names, the metrics and their columns, results.csv.

Torch-free: the analysis reads results with this module alone. A metric is one registration
(`register_metric`): its name (a `TrialConfig.metrics` entry), the result columns it adds, with
which way is better and how to print them, and its computation, named as "module:function" so
that this table never imports torch. The trial command's help, the spec's checks, the
evaluator, the table's numeric columns and the report all read the one registry.
"""

from __future__ import annotations

import importlib
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmark.data_kinds import DATA_KINDS
from benchmark.files import atomic_write, read_record
from benchmark.options import NUMERIC
from benchmark.registry import Registry

# ---- statuses, phases, file names ----------------------------------------------------------

OK, DIVERGED, FAILED = "ok", "diverged", "failed"
STATUSES = (OK, DIVERGED, FAILED)
#: A trial is scored when it finished, or diverged after a checkpoint was evaluated.
SCORED = (OK, DIVERGED)
PHASES = ("default", "wide", "narrow", "seeds")

RESULTS_CSV = "results.csv"
SWEEP_RECORD = "sweep.json"
#: The 2-D mixtures' reference points: the scores of a perfect and of a uniform sampler.
REFERENCES = "references.json"
TRIALS = "trials"  # runs/<name>/trials/<trial id>/
RESULT = "result.json"
#: A running sweep holds a shared lock on this file of its directory for its whole run.
RUNNING_LOCK = ".running"


# ---- metrics and their columns -------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    """A result column used as a score: which way is better and how to print it."""

    name: str
    label: str
    higher_is_better: bool
    digits: int

    @property
    def sign(self) -> float:
        """Multiply by this to get a score where lower is better."""
        return -1.0 if self.higher_is_better else 1.0

    @property
    def best_word(self) -> str:
        return "max" if self.higher_is_better else "min"

    def fmt(self, value: float) -> str:
        return f"{value:.{self.digits}f}"


@dataclass(frozen=True)
class Metric:
    """What a trial can be scored by at each checkpoint (`TrialConfig.metrics`).

    `compute(evaluator, generator)` returns the checkpoint's scores, keyed by column name (FID
    returns `fid`, which the result keeps as `fid_min` and `fid_final`); it is a callable or
    "module:function", imported on first use. `data`: the datasets it scores ("images" or
    "points"); `needs_features`: it reads feature-extractor features (Inception for FID);
    `counts`: numeric record fields it adds besides its scores (sample sizes); `samples`: how
    many of the evaluator's fixed z it samples G at (`evaluator.z`), besides those the built-in
    metrics size themselves.
    """

    name: str
    description: str
    columns: tuple[Column, ...]
    compute: str | Callable[..., dict[str, float]]
    data: str = "images"
    needs_features: bool = False
    counts: tuple[str, ...] = field(default_factory=tuple)
    samples: int = 0
    # How a result keeps the checkpoints' scores (`summarise`): "final", each at the final
    # checkpoint; "min_and_final", the score `compute` returns under the metric's name kept
    # as `<name>_min` (the best over the checkpoints evaluated) and `<name>_final` (FID).
    summary: str = "final"

    def computation(self) -> Callable[..., dict[str, float]]:
        if callable(self.compute):
            return self.compute
        module, function = self.compute.split(":")
        return getattr(importlib.import_module(module), function)


METRICS: Registry[Metric] = Registry("metric")
#: Feature networks by name (`TrialConfig.feature_extractor`, `fid --extractor`): a factory
#: `(weights=, device=, [download=]) -> FeatureExtractor` or "module:Class", imported on first
#: use (`feature_extractor_factory`), so a trial's checks know the names without loading torch.
FEATURE_EXTRACTORS: Registry[str | Callable[..., Any]] = Registry("feature_extractor")
FEATURE_EXTRACTORS.register("inception", "benchmark.evaluation.extractors:InceptionExtractor")
FEATURE_EXTRACTORS.register("tiny", "benchmark.evaluation.extractors:TinyExtractor")


def feature_extractor_factory(name: str) -> Callable[..., Any]:
    """The registered factory of feature extractor `name` (ConfigError naming it otherwise)."""
    entry = FEATURE_EXTRACTORS.get(name, "feature_extractor")
    if callable(entry):
        return entry
    module, attribute = entry.split(":")
    return getattr(importlib.import_module(module), attribute)


#: Every score column, by name: the metrics' and those scored outside them.
COLUMNS: dict[str, Column] = {}


def register_column(column: Column) -> Column:
    if column.name in COLUMNS and COLUMNS[column.name] != column:
        raise ValueError(f"result column {column.name!r} is already registered")
    COLUMNS[column.name] = column
    return column


def register_metric(metric: Metric) -> Metric:
    """Add a metric and its columns; the one step a new metric takes."""
    if metric.data not in DATA_KINDS:
        raise ValueError(
            f"metric {metric.name!r}: data={metric.data!r}; allowed: {DATA_KINDS.names()}"
        )
    if metric.summary not in ("final", "min_and_final"):
        raise ValueError(
            f"metric {metric.name!r}: summary={metric.summary!r}; allowed: final, min_and_final"
        )
    if not metric.columns:
        raise ValueError(f"metric {metric.name!r} declares no result column")
    taken = [c.name for c in metric.columns if c.name in COLUMNS and COLUMNS[c.name] != c]
    if taken:
        raise ValueError(f"metric {metric.name!r}: column {taken[0]!r} is already registered")
    METRICS.register(metric.name, metric)
    for column in metric.columns:
        register_column(column)
    return metric


def metric_of(column: str) -> str | None:
    """The metric (TrialConfig.metrics entry) that produces a result column, if any."""
    return next((m.name for m in METRICS.values() if column in {c.name for c in m.columns}), None)


def get_column(name: str, direction: str | None = None) -> Column:
    """A score column by name; `direction` ("min" or "max") admits any other column or
    overrides the registered direction. The error lists the allowed values."""
    if direction not in (None, "min", "max"):
        raise ValueError(f"direction must be 'min' or 'max', not {direction!r}")
    known = COLUMNS.get(name)
    if direction is None:
        if known is None:
            raise ValueError(
                f"unknown metric {name!r}; choose one of {sorted(COLUMNS)} or give a direction"
            )
        return known
    label, digits = (known.label, known.digits) if known else (name, 3)
    return Column(name, label, direction == "max", digits)


_EVALUATION = "benchmark.evaluation"
for _metric in (
    Metric(
        "fid",
        "Frechet distance of Inception pool3 statistics",
        (
            Column("fid_min", "FID (min over checkpoints)", False, 1),
            Column("fid_final", "FID (final checkpoint)", False, 1),
        ),
        f"{_EVALUATION}.metrics:score_fid",
        needs_features=True,
        counts=("fid_n_real", "fid_n_fake"),
        summary="min_and_final",
    ),
    Metric(
        "kid",
        "kernel (cubic polynomial) MMD^2, unbiased, over subsets",
        (Column("kid", "KID", False, 4),),
        f"{_EVALUATION}.metrics:score_kid",
        needs_features=True,
    ),
    Metric(
        "ipr",
        "improved precision/recall, k = 3",
        (
            Column("ipr_precision", "improved precision", True, 3),
            Column("ipr_recall", "improved recall", True, 3),
        ),
        f"{_EVALUATION}.metrics:score_ipr",
        needs_features=True,
    ),
    Metric(
        "polygon",
        "triangle-manifold precision/recall",
        (
            Column("precision", "polygon precision", True, 3),
            Column("recall", "polygon recall", True, 3),
            Column("f1", "polygon F1", True, 3),
        ),
        f"{_EVALUATION}.polygon_metrics:score",
    ),
    Metric(
        "mixture",
        "2-D mixtures: modes captured, high-quality share, reverse KL, W1, energy distance",
        (
            Column("modes", "modes captured", True, 0),
            Column("hq", "high-quality share", True, 3),
            Column("reverse_kl", "reverse KL of the mode histogram", False, 3),
            Column("w1", "W1 distance to the data", False, 3),
            Column("energy", "energy distance to the data", False, 3),
        ),
        f"{_EVALUATION}.mixture_metrics:score",
        data="points",
        counts=("mixture_n",),
    ),
    Metric(
        "welfert",
        "Welfert et al. 2023's ring metrics on 25,000 samples: modes covered by a sample within "
        "3 sigma, success (all) and failure (none), HQ share, smoothed KL terms",
        (
            Column("welfert_modes", "modes covered (Welfert et al.)", True, 0),
            Column("welfert_success", "all modes covered", True, 0),
            Column("welfert_failure", "no mode covered", False, 0),
            Column("welfert_hqs", "high-quality share (Welfert et al.)", True, 3),
            Column("welfert_kl", "KL(real || fake) of the mode histogram", False, 3),
            Column("welfert_rkl", "KL(fake || real) of the mode histogram", False, 3),
            Column("welfert_jsd", "JS divergence of the mode histogram", False, 3),
            Column("welfert_tvd", "total variation of the mode histogram", False, 3),
        ),
        f"{_EVALUATION}.welfert_metrics:score",
        data="points",
        samples=25_000,
    ),
):
    register_metric(_metric)
# Scored for every conditional trial, whatever its metrics (benchmark/conditional.py).
register_column(Column("label_accuracy", "share of conditional samples in their class", True, 3))

#: Metrics whose columns every result carries, NaN when not scored: FID's, the default
#: ranking column, which every result has carried since the first.
ALWAYS_RECORDED = ("fid",)


def summarise(evaluations: list[dict[str, Any]], final_reached: bool) -> dict[str, Any]:
    """A result's scores from its checkpoints' (benchmark/training/loop.py), by each metric's
    `summary`: the best over the checkpoints and the final value for "min_and_final", the
    final value of everything else; NaN at the final checkpoint when the trial stopped before
    it (the same columns, with no value)."""
    final = {k: v for k, v in (evaluations[-1] if evaluations else {}).items() if k != "d_steps"}
    if not final_reached:
        final = dict.fromkeys(final, math.nan)
    summary: dict[str, Any] = {}
    for metric in METRICS.values():
        if metric.summary != "min_and_final":
            continue
        scores = [e[metric.name] for e in evaluations if _finite(e.get(metric.name))]
        if scores or metric.name in final or metric.name in ALWAYS_RECORDED:
            summary[f"{metric.name}_min"] = min(scores) if scores else math.nan
            summary[f"{metric.name}_final"] = final.pop(metric.name, math.nan)
    return {**summary, **final}


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


#: Used when the requested FID column holds no value at all (no Inception weights).
FALLBACK_METRIC = "f1"


# ---- results.csv -----------------------------------------------------------------------------

REQUIRED_COLUMNS = ("trial_id", "phase", "dataset", "model", "status")
# Options recorded as numbers (benchmark/options.py), and the counts every result has.
_NUMERIC = (*NUMERIC, "d_steps", "g_steps", "images_seen", "seconds", "diverged_at")
_NUMERIC += ("label_accuracy_n", "classifier_accuracy", "train_flops", "eval_flops", "flops")
#: A trial's compute in floating-point operations (benchmark/training/flops.py): `train_flops`
#: of its D and G steps, `eval_flops` of its evaluations, `flops` their sum, the unit of the
#: analysis's equal-compute budget. Results recorded before they existed lack them.
FLOP_COLUMNS = ("train_flops", "eval_flops", "flops")
STEP_PREFIX = "fid_step_"
#: Leading columns of results.csv; the rest follow in the records' order.
LEADING = ("trial_id", "sweep", "phase", "dataset", "model", "loss", "penalty", "sample", "seed")
LEADING += ("seed_role", "status", "error")


def numeric_columns() -> set[str]:
    """The columns read as numbers: the fixed ones, every score column and every count."""
    counts = {count for metric in METRICS.values() for count in metric.counts}
    return {*_NUMERIC, *COLUMNS, *counts}


def result_row(record: dict[str, Any]) -> dict[str, Any]:
    """One flat results.csv row from one result.json record; the one flattening of results.

    Scalars are kept; `extra` becomes `extra_<key>` columns; a list of names (`metrics`,
    `plugins`) is joined with commas; any other list or mapping is kept as JSON text; each
    checkpoint's numbers become `<metric>_step_<d_steps>` columns (`fid_step_3906`).
    """
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key in ("checkpoints", "extra"):
            continue
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        elif isinstance(value, list | dict):
            value = json.dumps(value, sort_keys=True)
        row[key] = value
    for key, value in (record.get("extra") or {}).items():
        row[f"extra_{key}"] = value
    for point in record.get("checkpoints") or []:
        steps = point.get("d_steps") if isinstance(point, dict) else None
        if isinstance(steps, bool) or not isinstance(steps, int | float) or steps != int(steps):
            raise ValueError(f"checkpoint without integer 'd_steps': {point}")
        for key, value in point.items():
            if key == "d_steps" or isinstance(value, bool):
                continue
            if value is None or isinstance(value, int | float):
                row[f"{key}_step_{int(steps)}"] = value
    return row


def results_frame(records: Sequence[dict[str, Any]]):
    """The results table (a DataFrame) of `records`: one `result_row` each, LEADING first."""
    import pandas as pd

    frame = pd.DataFrame([result_row(record) for record in records])
    leading = [column for column in LEADING if column in frame]
    return frame[leading + [column for column in frame if column not in leading]]


def write_results_csv(frame, path: str | Path) -> Path:
    """Write a results table atomically (a reader never sees half of it); the one writer."""
    return atomic_write(path, lambda tmp: frame.to_csv(tmp, index=False))


def read_sweep_record(sweep_dir: str | Path) -> dict[str, Any] | None:
    """A sweep's sweep.json (its description, metric, phase); None when it has none (a folder
    of trials from elsewhere). A damaged one is named (DamagedFile), never passed over: the
    report would otherwise rank by another metric than the sweep's without a word."""
    path = Path(sweep_dir) / SWEEP_RECORD
    if not path.exists():
        return None
    remedy = "rerun the sweep, which rewrites it, or delete it (the report then ranks by fid_min)"
    return read_record(path, (), remedy)
