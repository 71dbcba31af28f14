"""The answer's power: the smallest difference its test finds 80 % of the time.

A study that finds nothing should say how big a difference it could have found. For the arms
and trial counts a dataset has, sweeps are simulated in which every arm's scores come from one
distribution and one arm's are shifted by delta (a location shift of the whole distribution,
so that arm's expected best of k is worse by exactly delta at every k); the power at delta is
the share of simulated sweeps in which the report's own test (`analysis.best_arm.best_set`, at
the same n_boot) marks that arm worse. The shifted arm is the one with the fewest trials.

The scores are drawn from the sweep's own spread: the scored trials of every arm, centred on
the arm's mean and pooled, in units of their pooled standard deviation (normal draws when
fewer than `MIN_POOLED` trials are scored). Delta is so in SDs of a trial's score within an
arm, and in the score's units once multiplied by that SD.

A shift changes neither an arm's jackknife standard error nor its resamples' (only their
location), nor so the test's critical value: the shifted arm is marked worse exactly when delta
exceeds minus its gap's lower end at delta = 0. Each simulated sweep is so bootstrapped and
tested once and gives the threshold above which it finds the shift; the power at delta is the
share of thresholds below delta, and the smallest delta found 80 % of the time their 80 %
quantile (no grid of deltas).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis.best_arm import N_BOOT, best_set, bootstrap_arm, testable
from analysis.scores import DATASET_ORDER, dataset_label, ordered
from benchmark.results import Column

POWER = 0.8
REPS = 200  # simulated sweeps: Monte-Carlo s.e. of a power near 0.8 about 0.03
MIN_POOLED = 20


@dataclass
class Power:
    """The smallest shift (in SDs, and in the score's units) found with probability POWER,
    and the simulated sweeps' thresholds it was read from."""

    k: float
    delta_sd: float
    delta: float
    sd: float
    found_above: np.ndarray  # per simulated sweep: the smallest shift it finds, in SDs
    reps: int


def residuals(groups: list[np.ndarray]) -> tuple[np.ndarray, float]:
    """The scored trials of every arm centred on the arm's mean and pooled, divided by their
    pooled within-arm SD; and that SD (NaN when no arm has two scored trials)."""
    parts = [g[np.isfinite(g)] for g in groups]
    parts = [g - g.mean() for g in parts if g.size >= 2]
    if not parts:
        return np.array([]), np.nan
    pooled = np.concatenate(parts)
    dof = sum(p.size - 1 for p in parts)
    sd = float(np.sqrt(np.sum(pooled**2) / dof)) if dof else np.nan
    if not sd > 0:
        return np.array([]), sd
    return pooled / sd, sd


def thresholds(
    sizes: list[int],
    k: float,
    draws: np.ndarray | None = None,
    reps: int = REPS,
    n_boot: int = N_BOOT,
    seed: int = 0,
) -> np.ndarray:
    """For `reps` simulated sweeps of arms with `sizes` trials at budget k, the shift (in SDs)
    above which the test marks the shifted arm worse; scores from `draws` (standardised
    residuals) or the standard normal."""
    rng = np.random.default_rng(seed)
    shifted = int(np.argmin(sizes))
    out = np.empty(reps)
    for rep in range(reps):
        arms = []
        for n in sizes:
            if draws is not None and draws.size >= MIN_POOLED:
                x = rng.choice(draws, size=n)
            else:
                x = rng.standard_normal(n)
            arms.append(bootstrap_arm(x, k, n_boot, rng))
        out[rep] = -best_set(arms).gap_low[shifted]
    return out


def power_at(found_above: np.ndarray, deltas: np.ndarray) -> np.ndarray:
    """The share of simulated sweeps that find a shift of each delta."""
    return (found_above[None, :] < np.asarray(deltas, dtype=float)[:, None]).mean(axis=1)


def detectable(
    groups: list[np.ndarray], k: float, reps: int = REPS, n_boot: int = N_BOOT, seed: int = 0
) -> Power | None:
    """The power statement for arms with trials `groups` (+inf = unscored) at budget k; None
    when the test is not made there (an arm not `testable`, or fewer than two arms)."""
    if len(groups) < 2 or not all(testable(g, k) for g in groups):
        return None
    draws, sd = residuals(groups)
    sizes = [len(g) for g in groups]
    found_above = thresholds(sizes, k, draws, reps=reps, n_boot=n_boot, seed=seed)
    delta_sd = max(float(np.quantile(found_above, POWER)), 0.0)
    return Power(k, delta_sd, delta_sd * sd, sd, found_above, reps)


def power_lines(split: dict, ranks: dict, metric: Column, reps: int = REPS) -> list[str]:
    """The section that states the test's power, per phase, dataset and fixed budget k at
    which every arm was tested."""
    lines = []
    for phase, table in ranks.items():
        rows = split[phase][0]
        for dataset in ordered(table["dataset"].unique(), DATASET_ORDER):
            part = rows[rows["dataset"] == dataset]
            groups = [
                np.where(cell["finished"], cell["score"], np.inf).astype(float)
                for _, cell in part.groupby("arm", sort=True)
            ]
            budgets = table[(table["dataset"] == dataset) & table["budget"].str.startswith("k = ")]
            found, sd = [], np.nan
            for k in sorted(budgets["budget_value"].dropna().unique()):
                result = detectable(groups, float(k), reps=reps)
                if result is None:
                    continue
                sd = result.sd
                found.append(
                    f"k = {k:g}: {result.delta_sd:.2f} SD "
                    f"({metric.fmt(result.delta)} in {metric.name})"
                )
            if found:
                sizes = sorted({len(g) for g in groups})
                n = f"{sizes[0]}" if len(sizes) == 1 else f"{sizes[0]}–{sizes[-1]}"
                lines.append(
                    f"- Phase `{phase}`, {dataset_label(dataset)} ({len(groups)} arms of {n} "
                    f"trials; SD {metric.fmt(sd)}): " + "; ".join(found) + "."
                )
    if not lines:
        return []
    return [
        "### What the test could find",
        "",
        f"The smallest difference the test above marks {100 * POWER:.0f}% of the time: one "
        "arm's scores shifted by that much from the others' (so its expected best of k is "
        "worse by as much), the arms and trial counts as here, scores drawn from this "
        "sweep's own spread (each arm's scored trials centred and pooled; SD: their pooled "
        f"within-arm standard deviation); {reps} simulated sweeps per budget (Monte-Carlo "
        "s.e. of a power near 0.8: about 0.03). A difference smaller than this may exist "
        "and go unseen.",
        "",
        *lines,
        "",
    ]
