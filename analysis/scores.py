"""Turn result rows into scores: metric choice, the rule for unscored trials, arms, seeds selection.

Rule: a trial is *scored* when it has a value for the metric and did not fail. A diverged
trial keeps the best value of the checkpoints evaluated before it diverged, so it is scored
when at least one was. A trial is *unscored* when its value is NaN (failed, diverged before
its first checkpoint, or not finished). An unscored trial never borrows a number from
another trial or model: budget curves count it as a trial spent that found nothing
(`analysis.stats.expected_best`), rank tests rank it below every scored trial.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from benchmark.best_setting import best_setting
from benchmark.options import HYPERPARAMETERS
from benchmark.results import DIVERGED, FAILED, FALLBACK_METRIC, OK, SCORED, Column, get_column

MODEL_ORDER = ("mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began")
DATASET_ORDER = ("mnist", "fashion_mnist", "cifar10", "celeba", "polygons", "ring", "grid")
PHASE_ORDER = ("default", "wide", "narrow", "seeds")
#: The paper's names (Lucic et al. 2018), used in every table and legend.
MODEL_LABELS = {
    "mm": "MM GAN", "ns": "NS GAN", "ls": "LSGAN", "wgan": "WGAN", "wgan_gp": "WGAN GP",
    "dragan": "DRAGAN", "began": "BEGAN",
}  # fmt: skip
DATASET_LABELS = {
    "mnist": "MNIST", "fashion_mnist": "Fashion-MNIST", "cifar10": "CIFAR-10",
    "celeba": "CelebA", "polygons": "Polygons", "ring": "Ring (8 Gaussians)",
    "grid": "Grid (25 Gaussians)",
}  # fmt: skip
UNSCORED_RULE = (
    "A trial is scored when it has a value: a diverged trial keeps the best of the "
    "checkpoints evaluated before it diverged. Unscored trials (failed, diverged before any "
    "checkpoint, or unfinished) count as budget spent that found nothing; they never take "
    "a value from another trial or model."
)
#: The results column naming a trial's ablation variant (a spec's [[variants]] table).
VARIANT = "extra_variant"
#: A conditional trial's arm carries this after its model's name (docs/conditional.md).
CONDITIONAL = " (cond.)"


def ordered(values, known: tuple[str, ...]) -> list[str]:
    """Known names in their canonical (paper) order, then the rest alphabetically."""
    values = set(values)
    return [v for v in known if v in values] + sorted(values - set(known))


def _model_of(arm: str) -> tuple[str, str]:
    """(model, " (cond.)" or ""): an arm's model part, without the variant."""
    model = arm.partition("/")[0]
    if model.endswith(CONDITIONAL):
        return model.removesuffix(CONDITIONAL), CONDITIONAL
    return model, ""


def label(arm: str) -> str:
    """The paper's name of a model (MM GAN, NS GAN, ...), or the registered name, marked
    " (cond.)" for a conditional arm; for an arm of an ablation (`model/variant`, see
    `arm_names`) that name and the variant's."""
    variant = arm.partition("/")[2]
    model, conditional = _model_of(arm)
    name = MODEL_LABELS.get(model, model) + conditional
    return f"{name} · {variant}" if variant else name


def arm_names(frame: pd.DataFrame) -> pd.Series:
    """Each trial's arm, the unit every table, test and figure groups by: the model, marked
    `model (cond.)` for a conditional trial, or `model/variant` for a trial of an ablation
    variant (a non-empty `extra_variant`), so that neither conditional and unconditional
    trials nor the variants of one model are ever pooled."""
    arm = frame["model"].astype(str)
    if "conditional" in frame.columns:  # absent or NaN in the rows of unconditional trials
        conditional = frame["conditional"].map(lambda v: v is True or v == 1 or v == "True")
        arm = arm.where(~conditional, arm + CONDITIONAL)
    if VARIANT not in frame.columns:
        return arm
    variant = frame[VARIANT].astype(str)
    named = frame[VARIANT].notna() & (variant != "")
    return arm.where(~named, arm + "/" + variant)


def ordered_arms(values) -> list[str]:
    """Arms by model in the paper's order, an unconditional arm before its conditional one,
    then by variant name (a plain model first)."""
    values = set(values)
    models = ordered({_model_of(v)[0] for v in values}, MODEL_ORDER)

    def key(arm: str) -> tuple[int, str, str]:
        model, conditional = _model_of(arm)
        return models.index(model), conditional, arm.partition("/")[2]

    return sorted(values, key=key)


def dataset_label(dataset: str) -> str:
    return DATASET_LABELS.get(dataset, dataset)


def choose_metric(
    frame: pd.DataFrame, name: str, direction: str | None = None
) -> tuple[Column, str]:
    """The metric to rank by and a note; falls back to polygon F1 if FID was never computed."""
    metric = get_column(name, direction)
    if name in frame.columns and frame[name].notna().any():
        return metric, ""
    fallback = get_column(FALLBACK_METRIC)
    if name != FALLBACK_METRIC and frame.get(FALLBACK_METRIC, pd.Series()).notna().any():
        note = (
            f"`{name}` has no value in any trial (no Inception weights were available), so the "
            f"primary score is `{fallback.name}` ({fallback.label}; higher is better)."
        )
        return fallback, note
    if not frame["status"].eq(OK).any():  # nothing to score: a result, reported as such
        counts = frame["status"].value_counts()
        what = ", ".join(f"{counts[s]} {s}" for s in (DIVERGED, FAILED) if s in counts)
        return (
            metric,
            f"No trial finished with a `{name}` value ({what}): there is nothing to rank.",
        )
    raise ValueError(f"metric {name!r} has no value in any trial, and no fallback is available")


def add_scores(frame: pd.DataFrame, metric: Column) -> pd.DataFrame:
    """Add `arm` (see `arm_names`), `value` (the metric; NaN when unscored), `finished`
    (scored) and `score` (the value oriented so that lower is better; NaN when unscored).
    Row by row: a trial's score depends on nothing but that trial."""
    frame = frame.copy()
    frame["arm"] = arm_names(frame)
    raw = frame[metric.name] if metric.name in frame.columns else np.nan
    raw = pd.Series(raw, index=frame.index, dtype=float)
    frame["finished"] = frame["status"].isin(SCORED) & raw.notna()
    frame["value"] = raw.where(frame["finished"])
    frame["score"] = metric.sign * frame["value"]
    return frame


def setting_key(frame: pd.DataFrame) -> list[str]:
    """Columns that identify one hyperparameter setting: `sample` if recorded, else the values."""
    if "sample" in frame.columns and frame["sample"].notna().all():
        return ["sample"]
    return [c for c in HYPERPARAMETERS if c in frame.columns]


def select_seeds(seeds: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """Pick each arm's setting on `select` seeds; return its `report` rows and a note.

    The chosen setting has the fewest unscored select seeds, then the lowest mean score.
    A cell with no scored select seed keeps all its report rows (nothing to choose on).
    Without a `seed_role` column every row is kept and the note says the numbers are then
    optimistic (a setting selected and reported on the same seeds).
    """
    if "seed_role" not in seeds.columns or seeds["seed_role"].isna().all():
        note = (
            "No `seed_role` was recorded, so all seeds-phase rows are reported; if the "
            "setting was selected on these seeds the numbers are optimistic."
        )
        return seeds, note
    keep, blind = [], []
    for (dataset, arm), cell in seeds.groupby(["dataset", "arm"], sort=False):
        select, report = cell[cell["seed_role"] == "select"], cell[cell["seed_role"] == "report"]
        key = setting_key(cell)
        best = best_setting(select, key, "score") if key else None
        if best is None:
            blind.append(f"{label(arm)} on {dataset_label(dataset)}")
        else:
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
    if blind:
        note += f" No select seed was scored for {', '.join(blind)}: all report rows kept."
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
    """Per-arm scores for rank tests and budget curves: unscored trials are +inf."""
    groups = {}
    for arm in ordered_arms(rows["arm"].unique()):
        cell = rows[rows["arm"] == arm]
        groups[arm] = np.where(cell["finished"], cell["score"], np.inf)
    return groups
