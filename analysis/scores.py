"""Turn result rows into scores: metric choice, the divergence convention, seeds selection.

Convention: a diverged or failed trial (or one without a value for the metric) is worse
than every finished trial. In expectations and bootstraps it takes the worst finished
score of its phase and dataset; in rank tests it ranks last (ties among such trials).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.metrics import FALLBACK_METRIC, Metric, get_metric

MODEL_ORDER = ("mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began")
DATASET_ORDER = ("mnist", "fashion_mnist", "cifar10", "celeba", "polygons")
PHASE_ORDER = ("default", "wide", "narrow", "seeds")
HYPERPARAMETERS = ("lr", "beta1", "beta2", "n_disc", "d_bn", "clip", "lam", "lambda_k", "gamma")


def ordered(values, known: tuple[str, ...]) -> list[str]:
    """Known names in their canonical (paper) order, then the rest alphabetically."""
    values = set(values)
    return [v for v in known if v in values] + sorted(values - set(known))


def choose_metric(
    frame: pd.DataFrame, name: str, direction: str | None = None
) -> tuple[Metric, str]:
    """The metric to rank by and a note; falls back to polygon F1 if FID was never computed."""
    metric = get_metric(name, direction)
    if name in frame.columns and frame[name].notna().any():
        return metric, ""
    fallback = get_metric(FALLBACK_METRIC)
    if name != FALLBACK_METRIC and frame.get(FALLBACK_METRIC, pd.Series()).notna().any():
        note = (
            f"`{name}` has no value in any trial (no Inception weights were available), so the "
            f"primary score is `{fallback.name}` ({fallback.label}; higher is better)."
        )
        return fallback, note
    raise ValueError(f"metric {name!r} has no value in any trial, and no fallback is available")


def add_scores(frame: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Add `value` (the metric, NaN unless finished), `finished` and `score` (lower is better)."""
    frame = frame.copy()
    raw = frame[metric.name] if metric.name in frame.columns else np.nan
    frame["finished"] = (frame["status"] == "ok") & pd.Series(raw, index=frame.index).notna()
    frame["value"] = np.where(frame["finished"], raw, np.nan)
    oriented = metric.sign * frame["value"]
    worst = oriented.groupby([frame["phase"], frame["dataset"]]).transform("max")
    frame["score"] = oriented.fillna(worst)
    return frame


def setting_key(frame: pd.DataFrame) -> list[str]:
    """Columns that identify one hyperparameter setting: `sample` if recorded, else the values."""
    if "sample" in frame.columns and frame["sample"].notna().all():
        return ["sample"]
    return [c for c in HYPERPARAMETERS if c in frame.columns]


def select_seeds(seeds: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Pick each model's setting on `select` seeds; return its `report` rows and a note.

    Without a `seed_role` column every row is kept and the note says the numbers are then
    optimistic (a setting selected and reported on the same seeds).
    """
    if "seed_role" not in seeds.columns or seeds["seed_role"].isna().all():
        note = (
            "No `seed_role` was recorded, so all seeds-phase rows are reported; if the "
            "setting was selected on these seeds the numbers are optimistic."
        )
        return seeds, note
    keep = []
    for _, cell in seeds.groupby(["dataset", "model"], sort=False):
        select, report = cell[cell["seed_role"] == "select"], cell[cell["seed_role"] == "report"]
        key = setting_key(cell)
        if len(select) and key:
            means = select.groupby(key, dropna=False)["score"].mean()
            best = means.idxmin()
            best = best if isinstance(best, tuple) else (best,)
            match = np.ones(len(report), dtype=bool)
            for column, value in zip(key, best, strict=True):
                same = report[column].to_numpy() == value
                match &= same | (report[column].isna().to_numpy() & pd.isna(value))
            report = report[match]
        keep.append(report)
    rows = pd.concat(keep) if keep else seeds.iloc[:0]
    note = (
        f"Seeds phase: the setting of each model was chosen by its mean score on the `select` "
        f"seeds; every number reported for this phase uses only the {len(rows)} `report` "
        f"rows (fresh seeds), never the `select` rows."
    )
    return rows, note


def phases(frame: pd.DataFrame) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """The rows analysed per phase (seeds: selected report rows) and notes on how."""
    out, notes = {}, []
    for phase in ordered(frame["phase"].unique(), PHASE_ORDER):
        rows = frame[frame["phase"] == phase]
        if phase == "seeds":
            rows, note = select_seeds(rows)
            notes.append(note)
        if len(rows):
            out[phase] = rows
    return out, notes


def rank_groups(rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per-model scores for rank tests: unfinished trials are +inf (rank last)."""
    groups = {}
    for model in ordered(rows["model"].unique(), MODEL_ORDER):
        cell = rows[rows["model"] == model]
        groups[model] = np.where(cell["finished"], cell["score"], np.inf)
    return groups
