"""Figures: budget curves, compute curves, distributions, sensitivity and training curves.

Each arm (`analysis.scores.arm_names`: a model, or one of its ablation variants) has its own
panel, box or line, labelled "NS GAN · <variant>" for a variant.

Every function returns a matplotlib Figure (or None when the data cannot support it) built
without pyplot, so no global state or display backend is involved; `save` writes PNG+SVG.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import MatplotlibDeprecationWarning
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from analysis.answer import compute_budget, random_samples
from analysis.best_arm import TEST_SHARE, band
from analysis.cost import cost_unit
from analysis.load import step_columns
from analysis.references import LEGEND, draw_references, reference_values
from analysis.scores import DATASET_ORDER, dataset_label, label, ordered, ordered_arms
from analysis.stats import expected_best
from benchmark.results import STEP_PREFIX, Column

PANEL = (4.6, 3.6)  # inches per dataset panel
sns.set_theme(style="whitegrid", context="notebook")


def palette(arms) -> dict[str, tuple]:
    """One fixed colour per arm (paper order), the same in every figure; tab10 while it has
    enough colours, else evenly spaced hues."""
    names = ordered_arms(arms)
    colours = sns.color_palette("tab10" if len(names) <= 10 else "husl", len(names))
    return dict(zip(names, colours, strict=True))


def _panels(rows: pd.DataFrame, width: float = PANEL[0]) -> tuple[Figure, list, list[str]]:
    datasets = ordered(rows["dataset"].unique(), DATASET_ORDER)
    size = (max(width * len(datasets) + 1.8, 8.0), PANEL[1] + 0.9)
    fig = Figure(figsize=size, layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(datasets))).tolist()
    return fig, axes, datasets


def _legend(fig: Figure, colours: dict[str, tuple], models: list[str], title: str) -> None:
    handles = [Line2D([], [], color=colours[m], lw=2.5, label=label(m)) for m in models]
    fig.legend(handles=handles, title=title, loc="outside right center", frameon=False)


def _unit(arms: list[str]) -> str:
    """What a box or line stands for: 'model', or 'model · variant' in an ablation."""
    return "model · variant" if any("/" in arm for arm in arms) else "model"


def _log_axis(
    ax, which: str, subs: tuple[float, ...] = (1.0, 2.0, 5.0), ticks: list[float] | None = None
) -> None:
    """Log scale with plain tick labels at 1, 2, 5 x 10^n (no 6 x 10^1 notation), or at
    `ticks` when given (see `_log_ticks`)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_locator(FixedLocator(ticks) if ticks is not None else LogLocator(subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _log_ticks(values: pd.Series) -> list[float]:
    """Labelled ticks for values spread over a log axis, never crowded: 10^n over more than two
    decades; 1, 2, 5 x 10^n within two; within less than a factor of 5 (the quick space's lr,
    10^[-3.7, -3]) three of 1..9 x 10^n, so that even a narrow range is labelled twice or
    more (matplotlib falls back to labelling every 1..9 x 10^n there, on top of each other)."""
    positive = values[values > 0].to_numpy(float)
    if len(positive) == 0:
        return []
    low, high = positive.min(), positive.max()

    def inside(mantissas: tuple[int, ...]) -> list[float]:
        exponents = range(int(np.floor(np.log10(low))), int(np.ceil(np.log10(high))) + 1)
        ticks = sorted(m * 10.0**e for e in exponents for m in mantissas)
        return [t for t in ticks if low <= t * (1 + 1e-9) and t <= high * (1 + 1e-9)]

    if np.log10(high / low) > 2:
        return inside((1,))
    ticks = inside((1, 2, 5))
    if len(ticks) >= 2:
        return ticks
    ticks = inside(tuple(range(1, 10)))
    return [ticks[0], ticks[len(ticks) // 2], ticks[-1]] if len(ticks) > 3 else ticks


def _wants_log(values: list[np.ndarray]) -> bool:
    """The one y-scale rule of a figure: log on every panel when all values are positive and
    those of some dataset span more than a factor of 8 (FID often does), else linear."""
    parts = [v[np.isfinite(v)] for v in values]
    parts = [v for v in parts if v.size]
    if not parts or min(v.min() for v in parts) <= 0:
        return False
    return any(v.max() / v.min() > 8 for v in parts)


def _set_y(axes, log: bool) -> None:
    for ax in np.ravel(axes):
        if log:
            _log_axis(ax, "y")


def _facets(
    rows: pd.DataFrame, sharex: bool | str = True
) -> tuple[Figure, np.ndarray, list[str], list[str]]:
    """One row of panels per dataset, one column per arm, y shared within a dataset; x shared
    by all panels, or within a dataset (`sharex="row"`)."""
    datasets = ordered(rows["dataset"].unique(), DATASET_ORDER)
    models = ordered_arms(rows["arm"].unique())
    size = (max(2.3 * len(models) + 1.0, 10.0), 2.3 * len(datasets) + 1.2)
    fig = Figure(figsize=size, layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(datasets), len(models), sharex=sharex, sharey="row"))
    return fig, axes.reshape(len(datasets), len(models)), datasets, models


def _curve_panels(
    rows: pd.DataFrame,
    curve_of,
    x_axis,
    ylabel: str,
    xsubs: tuple[float, ...] = (1.0, 2.0, 5.0),
    sharex: bool | str = True,
    references: tuple[dict, str] | None = None,
) -> Figure:
    """Small multiples of a per-model curve with its band; the other models of the dataset in
    thin grey behind it, so seven bands never overlap. `curve_of(cell)` returns x, the
    curve, band low and high (NaN where no band), or None when the model has no score;
    `x_axis(dataset)` the x label of the dataset's panels and the divisor of their x;
    `references` (the sweep's references and the metric's name) draws the mixtures'
    reference points as lines."""
    fig, axes, datasets, models = _facets(rows, sharex)
    colours = palette(models)
    values = []
    for r, dataset in enumerate(datasets):
        part = rows[rows["dataset"] == dataset]
        xlabel, xscale = x_axis(dataset)
        curves = {}
        for model in models:
            cell = part[part["arm"] == model]
            curves[model] = curve_of(cell) if len(cell) else None
        drawn = [c for c in curves.values() if c is not None]
        values.append(np.concatenate([c[1] for c in drawn]) if drawn else np.array([]))
        for c, model in enumerate(models):
            ax = axes[r, c]
            for other, curve in curves.items():
                if other != model and curve is not None:
                    ax.plot(curve[0] / xscale, curve[1], color="0.6", lw=0.7, alpha=0.7)
            cell = part[part["arm"] == model]
            curve = curves[model]
            if curve is None:
                reason = (
                    "no trials" if cell.empty else f"no curve:\nall {len(cell)} trials\nunscored"
                )
                ax.text(0.5, 0.5, reason, transform=ax.transAxes, ha="center", va="center",
                        fontsize=9, color="0.2", bbox={"fc": "white", "ec": "0.7"})  # fmt: skip
            else:
                x, y, low, high = curve[:4]
                ax.fill_between(x / xscale, low, high, color=colours[model], alpha=0.3, lw=0)
                ax.plot(x / xscale, y, color=colours[model], lw=1.8, label=label(model))
                if len(curve) > 4 and np.isfinite(curve[4]):  # the default setting, apart
                    ax.axhline(curve[4], color="0.25", ls=":", lw=1.2)
                    ax.text(0.98, curve[4], "default", transform=ax.get_yaxis_transform(),
                            ha="right", va="bottom", fontsize=8, color="0.25")  # fmt: skip
            if references:
                draw_references(ax, references[0], dataset, references[1])
            ax.set_title(f"{dataset_label(dataset)} · {label(model)}", fontsize=10)
            ax.set_xlabel(xlabel, fontsize=9)
            ax.set_ylabel(ylabel if c == 0 else "", fontsize=9)
            ax.tick_params(labelsize=8)
            _log_axis(ax, "x", xsubs)
    _set_y(axes, _wants_log(values))
    return fig


def _exact_curve(cell: pd.DataFrame, metric: Column, phase: str, cost: str | None):
    """x (k, or k times the arm's mean trial cost in the results column `cost`), E[best of
    k], its band, the default's value."""
    cell, default_rows = random_samples(cell, phase)
    default = default_rows["value"].mean() if len(default_rows) else np.nan
    if cost is not None:
        cell = cell[cell[cost].notna()]
    scores = np.where(cell["finished"], cell["score"], np.inf)
    if not np.isfinite(scores).any():
        return None
    curve, _ = expected_best(scores)
    k = np.arange(1, scores.size + 1, dtype=float)
    low, high = band(scores, k)
    x = k * cell[cost].mean() if cost is not None else k
    return x, metric.sign * curve, metric.sign * low, metric.sign * high, default


def budget_curves(
    rows: pd.DataFrame, metric: Column, phase: str, references: dict | None = None
) -> Figure:
    """Expected best score after k random hyperparameter samples (exact, without
    replacement from the arm's own trials, given one was scored; a search's default
    setting, sample 0, left out and drawn as a dotted line), with the bootstrap-t 95%
    confidence interval of that expectation for k <= TEST_SHARE * n; `references` (a
    sweep's references.json) draws the mixtures' reference points."""
    fig = _curve_panels(
        rows, lambda c: _exact_curve(c, metric, phase, None),
        lambda dataset: ("trials k (log)", 1.0), f"expected best {metric.name}",
        references=(references or {}, metric.name),
    )  # fmt: skip
    fig.suptitle(
        f"Phase {phase}: expected {metric.best_word} of {metric.name} over k random "
        f"hyperparameter samples\nband: 95% CI of that expectation, drawn for k ≤ "
        f"n/{round(1 / TEST_SHARE)}; {_dotted(rows, phase)}unscored trials count as "
        "spent; grey: the other models"
        + (f"\n{words}" if (words := _reference_words(references, rows, metric)) else ""),
        fontsize=12,
    )
    return fig


def _reference_words(references: dict | None, rows: pd.DataFrame, metric: Column) -> str:
    """The caption words for the reference lines, when any dataset of `rows` has them."""
    found = references and any(
        reference_values(references, d, metric.name) for d in rows["dataset"].unique()
    )
    return LEGEND if found else ""


def _dotted(rows: pd.DataFrame, phase: str) -> str:
    """The legend's words for the default setting's line, when the phase has one."""
    return "dotted: the default setting; " if not random_samples(rows, phase)[1].empty else ""


def device_kind(rows: pd.DataFrame) -> str:
    """'GPU', 'CPU' or 'device', from the recorded device strings."""
    if "device" not in rows.columns or rows["device"].isna().all():
        return "device"
    cpu = rows["device"].dropna().astype(str).str.lower().str.startswith("cpu")
    return "CPU" if cpu.all() else "GPU" if not cpu.any() else "device"


def compute_curves(
    rows: pd.DataFrame, metric: Column, phase: str, references: dict | None = None
) -> Figure | None:
    """The budget curves against compute: k random trials cost k times the arm's mean trial
    cost (exactly the expected compute of k random trials), so a costlier loss or penalty
    pays for its extra work; the same exact curve and band as `budget_curves`. Compute is in
    the unit of the answer's table, per dataset (`analysis.cost.cost_unit`), each dataset on
    its own x axis; a dataset whose trials recorded no cost has no panels."""
    parts = {d: random_samples(rows[rows["dataset"] == d], phase)[0]
             for d in ordered(rows["dataset"].unique(), DATASET_ORDER)}  # fmt: skip
    units = {d: unit for d, part in parts.items() if (unit := cost_unit(part)) is not None}
    if not units:
        return None
    rows = rows[rows["dataset"].isin(units)]
    kind = device_kind(rows)
    scales = {}
    for dataset, unit in units.items():
        name, scale = unit.axis(parts[dataset].groupby("arm")[unit.column].sum().max(), kind)
        scales[dataset] = (f"{name} (log)", scale)

    def curve(cell: pd.DataFrame):
        return _exact_curve(cell, metric, phase, units[cell["dataset"].iloc[0]].column)

    fig = _curve_panels(rows, curve, scales.__getitem__, f"expected best {metric.name}",
                        sharex="row", references=(references or {}, metric.name))  # fmt: skip
    arms = len(rows["arm"].unique())
    for r, (dataset, unit) in enumerate(units.items()):
        budget = compute_budget(parts[dataset], unit.column)
        for ax in fig.axes[r * arms : (r + 1) * arms] if budget else []:  # the table's column
            ax.axvline(budget / scales[dataset][1], color="0.35", ls="--", lw=1.0)
    words = ", ".join(sorted({unit.words for unit in units.values()}))
    fig.suptitle(
        f"Phase {phase}: expected {metric.best_word} of {metric.name} vs expected compute "
        f"spent, in {words}\n(k random trials × the arm's mean trial cost); band: 95% CI of "
        f"that expectation, drawn for k ≤ n/{round(1 / TEST_SHARE)}\n{_dotted(rows, phase)}"
        "dashed: the equal-compute budget of the answer's table; grey: the other models"
        + (f"\n{words}" if (words := _reference_words(references, rows, metric)) else ""),
        fontsize=12,
    )
    return fig


def distribution(
    rows: pd.DataFrame, metric: Column, phase: str, references: dict | None = None
) -> Figure:
    """The metric of every finished trial per arm (box plus points); the tick label
    counts the diverged or failed trials, which have no value to plot."""
    models = ordered_arms(rows["arm"].unique())
    fig, axes, datasets = _panels(rows, width=max(PANEL[0], 0.75 * len(models)))
    colours = palette(models)
    log = _wants_log([rows.loc[rows["dataset"] == d, "value"].to_numpy(float) for d in datasets])
    for ax, dataset in zip(axes, datasets, strict=True):
        part = rows[rows["dataset"] == dataset]
        done = part[part["finished"]]
        if log:
            _log_axis(ax, "y")
        if not done.empty:
            kwargs = dict(data=done, x="arm", y="value", order=models, ax=ax)
            with warnings.catch_warnings():  # seaborn 0.13 passes `vert` to matplotlib 3.11
                warnings.simplefilter("ignore", MatplotlibDeprecationWarning)
                sns.boxplot(**kwargs, hue="arm", palette=colours, showfliers=False,
                            boxprops={"alpha": 0.55}, legend=False)  # fmt: skip
            # seaborn jitters with numpy's global generator: seeded here (and restored), so
            # a rebuilt report draws the same points
            state = np.random.get_state()
            np.random.seed(0)
            sns.stripplot(**kwargs, color="0.15", size=3.5, alpha=0.7, jitter=0.2)
            np.random.set_state(state)
        labels = []
        for model in models:
            cell = part[part["arm"] == model]
            lost = int((~cell["finished"]).sum())
            name = label(model)
            labels.append(f"{name}\n{lost}/{len(cell)} unscored" if lost else name)
        draw_references(ax, references or {}, dataset, metric.name)
        ax.set_xticks(range(len(models)), labels, rotation=35, ha="right", fontsize=9)
        ax.set_xlabel(f"{_unit(models)} (unscored / trials)")
        ax.set_ylabel(metric.label)
        ax.set_title(dataset_label(dataset))
    note = " (report seeds of the selected setting)" if phase == "seeds" else ""
    words = _reference_words(references, rows, metric)
    words = words.replace("; ", "\n")  # the figure can be one panel wide
    fig.suptitle(f"Phase {phase}: {metric.name} per trial{note}" + (f"\n{words}" if words else ""))
    return fig


def sensitivity(rows: pd.DataFrame, metric: Column, phase: str, param: str) -> Figure | None:
    """Column against one hyperparameter, one panel per dataset (row) and arm (column),
    coloured by n_disc; diverged or failed trials are crosses along the top edge."""
    if param not in rows.columns or rows[param].nunique() < 2:
        return None
    datasets = ordered(rows["dataset"].unique(), DATASET_ORDER)
    models = ordered_arms(rows["arm"].unique())
    fig = Figure(figsize=(2.5 * len(models) + 1.2, 2.4 * len(datasets) + 0.8), layout="constrained")
    axes = np.atleast_2d(fig.subplots(len(datasets), len(models), sharex=True, sharey="row"))
    hue = "n_disc" if "n_disc" in rows.columns and rows["n_disc"].nunique() > 1 else None
    levels = sorted(rows[hue].dropna().unique()) if hue else []
    colours = dict(zip(levels, sns.color_palette("colorblind", len(levels)), strict=True))
    x_ticks = _log_ticks(rows[param]) if param == "lr" else None  # lr spans decades
    log_y = _wants_log([rows.loc[rows["dataset"] == d, "value"].to_numpy(float) for d in datasets])
    _set_y(axes, log_y)
    for r, dataset in enumerate(datasets):
        for c, model in enumerate(models):
            ax = axes[r, c]
            cell = rows[(rows["dataset"] == dataset) & (rows["arm"] == model)]
            done = cell[cell["finished"]]
            for level in levels or [None]:
                pick = done if level is None else done[done[hue] == level]
                ax.scatter(pick[param], pick["value"], s=16, alpha=0.8,
                           color=colours.get(level, "C0"))  # fmt: skip
            lost = cell[~cell["finished"]]
            top = blended_transform_factory(ax.transData, ax.transAxes)
            ax.scatter(lost[param], np.full(len(lost), 0.96), marker="x", s=20, color="0.35",
                       transform=top)  # fmt: skip
            if x_ticks is not None:
                _log_axis(ax, "x", ticks=x_ticks)
            ax.set_title(f"{dataset_label(dataset)} · {label(model)}", fontsize=10)
            ax.set_xlabel(f"{param} (log scale)" if x_ticks is not None else param, fontsize=9)
            ax.set_ylabel(metric.label if c == 0 else "", fontsize=9)
            ax.tick_params(labelsize=8, labelbottom=True)
    for row in axes:  # headroom for the crosses of diverged trials along the top edge
        low, high = row[0].get_ylim()
        log = row[0].get_yscale() == "log"
        row[0].set_ylim(low, high * (high / low) ** 0.15 if log else high + 0.15 * (high - low))
    handles = [Line2D([], [], ls="", marker="o", color=colours[lv], label=f"n_disc = {lv:g}")
               for lv in levels]  # fmt: skip
    if not rows["finished"].all():
        handles.append(Line2D([], [], ls="", marker="x", color="0.35", label="unscored"))
    if handles:
        fig.legend(handles=handles, loc="outside right center", frameon=False)
    fig.suptitle(f"Phase {phase}: sensitivity of {metric.name} to {param}")
    return fig


def training_curves(rows: pd.DataFrame, metric: Column, phase: str) -> Figure | None:
    """FID at every checkpoint against D steps, for the best trial of each arm."""
    steps = step_columns(rows)
    if not steps or rows[steps].isna().all().all():
        return None
    fig, axes, datasets = _panels(rows)
    colours = palette(rows["arm"].unique())
    x = np.array([int(c[len(STEP_PREFIX) :]) for c in steps])
    values = []
    for ax, dataset in zip(axes, datasets, strict=True):
        part = rows[(rows["dataset"] == dataset) & rows["finished"]]
        drawn = [np.array([])]
        for model in ordered_arms(part["arm"].unique()):
            cell = part[part["arm"] == model]
            best = cell.loc[cell["score"].idxmin(), steps].to_numpy(dtype=float)
            keep = np.isfinite(best)
            if keep.any():
                ax.plot(x[keep], best[keep], marker="o", ms=4, color=colours[model], lw=2)
                drawn.append(best[keep])
        ax.set_xlabel("discriminator steps")
        ax.set_ylabel("FID at checkpoint")
        ax.set_title(dataset_label(dataset))
        values.append(np.concatenate(drawn))
    _set_y(axes, _wants_log(values))
    fig.suptitle(
        f"Phase {phase}: FID during training of each model's best trial\n"
        f"(selected by {metric.name})"
    )
    arms = ordered_arms(rows["arm"].unique())
    _legend(fig, colours, arms, _unit(arms))
    return fig


def save(fig: Figure, out: Path, name: str) -> list[Path]:
    """Write `name`.png (120 dpi) and `name`.svg; return both paths."""
    paths = [out / f"{name}.png", out / f"{name}.svg"]
    fig.savefig(paths[0], dpi=120)
    # No date, and fixed element ids: a rebuilt report writes the same SVG bytes.
    with matplotlib.rc_context({"svg.hashsalt": "ganbench"}):
        fig.savefig(paths[1], metadata={"Date": None})
    return paths
