"""What the losses generate: the best trial's samples per model, one figure per dataset.

A trial stores what its final generator makes (benchmark's trainer): `samples.png`, a grid of
64 images, for image data; `samples.npz` for point data, the 2,500 points of the evaluation's
fixed z (those the mixture metrics scored) with the mixture's centres and high-quality radius.
This module only reads those files, so a report can be rebuilt where nothing trains.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from analysis.scores import DATASET_ORDER, dataset_label, label, ordered, ordered_arms
from benchmark.data_kinds import SAMPLES_NPZ, SAMPLES_PNG
from benchmark.results import TRIALS, Column

COLUMNS = 4  # panels per row


def best_trials(rows: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and arm, the scored trial with the best score (lower `score` is better;
    ties broken by trial id, so the choice is deterministic)."""
    scored = rows[rows["finished"]].sort_values(["score", "trial_id"])
    return scored.groupby(["dataset", "arm"], sort=False).head(1)


def _grid(n: int, size: float) -> tuple[Figure, np.ndarray]:
    columns = min(COLUMNS, n)
    lines = math.ceil(n / columns)
    figure = Figure(figsize=(size * columns, size * lines + 0.6), layout="constrained")
    axes = np.atleast_1d(figure.subplots(lines, columns, squeeze=False)).ravel()
    for ax in axes[n:]:
        ax.set_visible(False)
    return figure, axes


def _stored(best: pd.DataFrame, trials: Path, name: str) -> list[tuple[pd.Series, Path]]:
    """(row, path) of each best trial whose folder holds the file `name`."""
    paths = [(row, trials / str(row["trial_id"]) / name) for _, row in best.iterrows()]
    return [(row, path) for row, path in paths if path.exists()]


def _title(best: pd.Series, metric: Column) -> str:
    extra = ""
    if {"modes", "hq"} <= set(best.index) and pd.notna(best.get("modes")):
        extra = f"\n{int(best['modes'])} modes, HQ {100 * best['hq']:.0f}%"
    return f"{label(best['arm'])}\n{metric.name} {metric.fmt(best['value'])}{extra}"


def scatter_figure(best: pd.DataFrame, trials: Path, metric: Column, dataset: str) -> Figure | None:
    """One panel per arm: the best trial's points over the mixture's centres and their
    high-quality discs (radius 3 sigma); None when no trial stored points."""
    stored = _stored(best, trials, SAMPLES_NPZ)
    if not stored:
        return None
    figure, axes = _grid(len(stored), 2.6)
    for ax, (row, path) in zip(axes, stored, strict=False):
        with np.load(path) as data:
            points, centres, radius = data["points"], data["centres"], float(data["hq_radius"])
        span = np.abs(centres).max() * 1.5 + 0.5
        for centre in centres:
            disc = Circle(centre, radius, fill=False, color="tab:red", lw=0.8)
            ax.add_patch(disc)
        ax.scatter(*centres.T, marker="x", color="tab:red", s=10, linewidths=0.7, zorder=1)
        inside = np.abs(points).max(axis=1) <= span
        ax.scatter(*points[inside].T, s=3, color="tab:blue", alpha=0.5, linewidths=0, zorder=2)
        ax.set(xlim=(-span, span), ylim=(-span, span), aspect="equal", xticks=[], yticks=[])
        outside = int((~inside).sum())
        ax.set_title(_title(row, metric), fontsize=9)
        if outside:
            words = f"{outside} point{'s' * (outside != 1)} outside"
            ax.text(0.02, 0.02, words, transform=ax.transAxes, fontsize=7)
    figure.suptitle(
        f"{dataset_label(dataset)}: the best trial of each model, {len(points):,} samples "
        "(blue) over the mode centres (red x; circle: 3σ, the high-quality radius)",
        fontsize=10,
    )
    return figure


def image_figure(best: pd.DataFrame, trials: Path, metric: Column, dataset: str) -> Figure | None:
    """One panel per arm: the best trial's sample grid; None when no trial stored one."""
    stored = _stored(best, trials, SAMPLES_PNG)
    if not stored:
        return None
    figure, axes = _grid(len(stored), 3.0)
    for ax, (row, path) in zip(axes, stored, strict=False):
        ax.imshow(matplotlib.image.imread(path), cmap="gray", interpolation="nearest")
        ax.set(xticks=[], yticks=[])
        ax.set_title(_title(row, metric), fontsize=9)
    figure.suptitle(
        f"{dataset_label(dataset)}: samples of the best trial of each model", fontsize=10
    )
    return figure


def sample_figures(rows: pd.DataFrame, metric: Column, sweep_dir: Path) -> list[tuple[str, Figure]]:
    """(name, figure) for each dataset whose best trials stored samples: points scattered,
    images tiled; arms in the paper's order."""
    best = best_trials(rows)
    made = []
    for dataset in ordered(best["dataset"].unique(), DATASET_ORDER):
        chosen = best[best["dataset"] == dataset]
        chosen = chosen.set_index("arm", drop=False).loc[ordered_arms(chosen["arm"])]
        for build in (scatter_figure, image_figure):
            figure = build(chosen, sweep_dir / TRIALS, metric, dataset)
            if figure is not None:
                made.append((f"samples_{dataset}", figure))
                break
    return made
