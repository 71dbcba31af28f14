"""Figures: budget curves, compute curves, distributions, sensitivity and training curves.

Every function returns a matplotlib Figure (or None when the data cannot support it) built
without pyplot, so no global state or display backend is involved; `save` writes PNG+SVG.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from analysis.load import STEP_PREFIX, step_columns
from analysis.metrics import Metric
from analysis.scores import DATASET_ORDER, MODEL_ORDER, ordered
from analysis.stats import expected_min, expected_min_band, expected_min_by_cost

PANEL = (4.6, 3.6)  # inches per dataset panel
sns.set_theme(style="whitegrid", context="notebook")


def palette(models) -> dict[str, tuple]:
    """One fixed colour per model (paper order), the same in every figure."""
    names = ordered(models, MODEL_ORDER)
    return dict(zip(names, sns.color_palette("tab10", len(names)), strict=True))


def _panels(rows: pd.DataFrame, width: float = PANEL[0]) -> tuple[Figure, list, list[str]]:
    datasets = ordered(rows["dataset"].unique(), DATASET_ORDER)
    size = (max(width * len(datasets) + 1.8, 8.0), PANEL[1] + 0.9)
    fig = Figure(figsize=size, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(datasets))).tolist()
    return fig, axes, datasets


def _legend(fig: Figure, colours: dict[str, tuple], models: list[str], title: str) -> None:
    handles = [Line2D([], [], color=colours[m], lw=2.5, label=m) for m in models]
    fig.legend(handles=handles, title=title, loc="outside right center", frameon=False)


def _log_axis(ax, which: str) -> None:
    """Log scale with plain tick labels at 1, 2, 5 x 10^n (no 6 x 10^1 notation)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_locator(LogLocator(subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _log_if_wide(ax, values: np.ndarray) -> None:
    """Log y axis when positive values span more than a factor of 8 (FID often does)."""
    values = values[np.isfinite(values)]
    if values.size and values.min() > 0 and values.max() / values.min() > 8:
        _log_axis(ax, "y")


def budget_curves(rows: pd.DataFrame, metric: Metric, phase: str) -> Figure:
    """Expected best score after k random hyperparameter samples (exact, without
    replacement from the observed trials), with a 95% bootstrap band over trials."""
    fig, axes, datasets = _panels(rows)
    colours = palette(rows["model"].unique())
    for ax, dataset in zip(axes, datasets, strict=True):
        part = rows[rows["dataset"] == dataset]
        drawn = []
        for model in ordered(part["model"].unique(), MODEL_ORDER):
            scores = part.loc[part["model"] == model, "score"].dropna().to_numpy()
            if scores.size == 0:
                continue
            k = np.arange(1, scores.size + 1)
            curve = metric.sign * expected_min(scores)
            low, high = (metric.sign * b for b in expected_min_band(scores))
            ax.fill_between(k, low, high, color=colours[model], alpha=0.15, lw=0)
            ax.plot(k, curve, color=colours[model], lw=2)
            drawn.append(curve)
        _log_axis(ax, "x")
        ax.set_xlabel("hyperparameter samples tried, k (log scale)")
        ax.set_ylabel(f"expected best {metric.label}")
        ax.set_title(dataset)
        if drawn:
            _log_if_wide(ax, np.concatenate(drawn))
    fig.suptitle(
        f"Phase {phase}: expected {metric.best_word} of {metric.name} over k samples\n"
        "(band: bootstrap 95%; diverged = worst finished)"
    )
    _legend(fig, colours, ordered(rows["model"].unique(), MODEL_ORDER), "model")
    return fig


def _time_unit(seconds: float) -> tuple[str, float]:
    if seconds < 300:
        return "seconds", 1.0
    if seconds < 3 * 3600:
        return "minutes", 60.0
    return "hours", 3600.0


def device_kind(rows: pd.DataFrame) -> str:
    """'GPU', 'CPU' or 'device', from the recorded device strings."""
    if "device" not in rows.columns or rows["device"].isna().all():
        return "device"
    cpu = rows["device"].dropna().astype(str).str.lower().str.startswith("cpu")
    return "CPU" if cpu.all() else "GPU" if not cpu.any() else "device"


def compute_curves(rows: pd.DataFrame, metric: Metric, phase: str) -> Figure | None:
    """Expected best score against compute spent (sum of `seconds` of the trials run, in a
    random order), so that a costlier loss or penalty pays for its extra time. A curve
    starts at the model's costliest single trial, the least budget at which every order
    has finished a trial, and ends (dot) when all its trials are spent."""
    if "seconds" not in rows.columns or rows["seconds"].isna().all():
        return None
    fig, axes, datasets = _panels(rows)
    colours = palette(rows["model"].unique())
    unit, scale = _time_unit(rows.groupby(["dataset", "model"])["seconds"].sum().max())
    for ax, dataset in zip(axes, datasets, strict=True):
        part = rows[(rows["dataset"] == dataset) & rows["score"].notna() & rows["seconds"].notna()]
        if part.empty:
            ax.set_visible(False)
            continue
        worst = part["score"].max()
        drawn = []
        for model in ordered(part["model"].unique(), MODEL_ORDER):
            cell = part[part["model"] == model]
            budgets = np.geomspace(cell["seconds"].max(), cell["seconds"].sum(), 80)
            curve = expected_min_by_cost(cell["score"], cell["seconds"], budgets, empty=worst)
            ax.plot(budgets / scale, metric.sign * curve, color=colours[model], lw=2)
            ax.plot(budgets[-1] / scale, metric.sign * curve[-1], "o", color=colours[model])
            drawn.append(metric.sign * curve)
        _log_axis(ax, "x")
        ax.set_xlabel(f"compute spent ({device_kind(part)} {unit}, log scale)")
        ax.set_ylabel(f"expected best {metric.label}")
        ax.set_title(dataset)
        _log_if_wide(ax, np.concatenate(drawn))
    fig.suptitle(
        f"Phase {phase}: expected {metric.best_word} of {metric.name} vs compute\n"
        "(random run order; dot = all trials run)"
    )
    _legend(fig, colours, ordered(rows["model"].unique(), MODEL_ORDER), "model")
    return fig


def distribution(rows: pd.DataFrame, metric: Metric, phase: str) -> Figure:
    """The metric of every finished trial per model (box plus points); the tick label
    counts the diverged or failed trials, which have no value to plot."""
    models = ordered(rows["model"].unique(), MODEL_ORDER)
    fig, axes, datasets = _panels(rows, width=max(PANEL[0], 0.75 * len(models)))
    colours = palette(models)
    for ax, dataset in zip(axes, datasets, strict=True):
        part = rows[rows["dataset"] == dataset]
        done = part[part["finished"]]
        if not done.empty:
            kwargs = dict(data=done, x="model", y="value", order=models, ax=ax)
            with warnings.catch_warnings():  # seaborn 0.13 passes `vert` to matplotlib 3.11
                warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
                sns.boxplot(**kwargs, hue="model", palette=colours, showfliers=False,
                            boxprops={"alpha": 0.55}, legend=False)  # fmt: skip
            sns.stripplot(**kwargs, color="0.15", size=3.5, alpha=0.7, jitter=0.2)
            _log_if_wide(ax, done["value"].to_numpy())
        labels = []
        for model in models:
            cell = part[part["model"] == model]
            lost = int((~cell["finished"]).sum())
            labels.append(f"{model}\n{lost}/{len(cell)} div." if lost else model)
        ax.set_xticks(range(len(models)), labels, rotation=35, ha="right", fontsize=9)
        ax.set_xlabel("model (div. = diverged or failed / trials)")
        ax.set_ylabel(metric.label)
        ax.set_title(dataset)
    note = " (report seeds of the selected setting)" if phase == "seeds" else ""
    fig.suptitle(f"Phase {phase}: {metric.name} per trial{note}")
    return fig


def sensitivity(rows: pd.DataFrame, metric: Metric, phase: str, param: str) -> Figure | None:
    """Metric against one hyperparameter, one panel per dataset (row) and model (column),
    coloured by n_disc; diverged or failed trials are crosses along the top edge."""
    if param not in rows.columns or rows[param].nunique() < 2:
        return None
    datasets = ordered(rows["dataset"].unique(), DATASET_ORDER)
    models = ordered(rows["model"].unique(), MODEL_ORDER)
    fig = Figure(figsize=(2.5 * len(models) + 1.2, 2.4 * len(datasets) + 0.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(datasets), len(models), sharex=True, sharey="row"))
    hue = "n_disc" if "n_disc" in rows.columns and rows["n_disc"].nunique() > 1 else None
    levels = sorted(rows[hue].dropna().unique()) if hue else []
    colours = dict(zip(levels, sns.color_palette("colorblind", len(levels)), strict=True))
    log_x = param == "lr"
    for r, dataset in enumerate(datasets):
        for c, model in enumerate(models):
            ax = axes[r, c]
            cell = rows[(rows["dataset"] == dataset) & (rows["model"] == model)]
            done = cell[cell["finished"]]
            for level in levels or [None]:
                pick = done if level is None else done[done[hue] == level]
                ax.scatter(pick[param], pick["value"], s=16, alpha=0.8,
                           color=colours.get(level, "C0"))  # fmt: skip
            lost = cell[~cell["finished"]]
            top = blended_transform_factory(ax.transData, ax.transAxes)
            ax.scatter(lost[param], np.full(len(lost), 0.96), marker="x", s=20, color="0.35",
                       transform=top)  # fmt: skip
            if log_x:
                ax.set_xscale("log")  # default 10^n labels: lr spans decades
            _log_if_wide(ax, rows.loc[rows["dataset"] == dataset, "value"].to_numpy())
            ax.set_title(f"{dataset} · {model}", fontsize=10)
            ax.set_xlabel(f"{param} (log scale)" if log_x else param, fontsize=9)
            ax.set_ylabel(metric.label if c == 0 else "", fontsize=9)
            ax.tick_params(labelsize=8, labelbottom=True)
    for row in axes:  # headroom for the crosses of diverged trials along the top edge
        low, high = row[0].get_ylim()
        log = row[0].get_yscale() == "log"
        row[0].set_ylim(low, high * (high / low) ** 0.15 if log else high + 0.15 * (high - low))
    handles = [Line2D([], [], ls="", marker="o", color=colours[lv], label=f"n_disc = {lv:g}")
               for lv in levels]  # fmt: skip
    handles.append(Line2D([], [], ls="", marker="x", color="0.35", label="diverged / failed"))
    fig.legend(handles=handles, loc="outside right center", frameon=False)
    fig.suptitle(f"Phase {phase}: sensitivity of {metric.name} to {param}")
    return fig


def training_curves(rows: pd.DataFrame, metric: Metric, phase: str) -> Figure | None:
    """FID at every checkpoint against D steps, for the best trial of each model."""
    steps = step_columns(rows)
    if not steps or rows[steps].isna().all().all():
        return None
    fig, axes, datasets = _panels(rows)
    colours = palette(rows["model"].unique())
    x = np.array([int(c[len(STEP_PREFIX) :]) for c in steps])
    for ax, dataset in zip(axes, datasets, strict=True):
        part = rows[(rows["dataset"] == dataset) & rows["finished"]]
        drawn = []
        for model in ordered(part["model"].unique(), MODEL_ORDER):
            cell = part[part["model"] == model]
            best = cell.loc[cell["score"].idxmin(), steps].to_numpy(dtype=float)
            keep = np.isfinite(best)
            if keep.any():
                ax.plot(x[keep], best[keep], marker="o", ms=4, color=colours[model], lw=2)
                drawn.append(best[keep])
        ax.set_xlabel("discriminator steps")
        ax.set_ylabel("FID at checkpoint")
        ax.set_title(dataset)
        if drawn:
            _log_if_wide(ax, np.concatenate(drawn))
    fig.suptitle(
        f"Phase {phase}: FID during training of each model's best trial\n"
        f"(selected by {metric.name})"
    )
    _legend(fig, colours, ordered(rows["model"].unique(), MODEL_ORDER), "model")
    return fig


def save(fig: Figure, out: Path, name: str) -> list[Path]:
    """Write `name`.png (120 dpi) and `name`.svg; return both paths."""
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    fig.savefig(paths[0], dpi=120)
    fig.savefig(paths[1])
    return paths
