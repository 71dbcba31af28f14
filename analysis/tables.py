"""Summary tables in the paper's layout (models x datasets), as Markdown, CSV and LaTeX.

A row is an arm (`analysis.scores.arm_names`): the model, or one of its ablation variants."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from analysis import paper
from analysis.scores import DATASET_ORDER, dataset_label, label, ordered, ordered_arms
from analysis.stats import bootstrap_ci, median_interval, t_interval
from benchmark.results import DIVERGED, FAILED, Column

MANIFOLD = ("precision", "recall", "f1")


def summarise(rows: pd.DataFrame, metric: Column, expected: int | None = None) -> pd.DataFrame:
    """One row per (dataset, arm): best, median, IQR, mean, std, CIs, divergence, counts; the
    arm is in the `model` column.

    `expected` is the number of trials planned per cell; by default the largest count seen
    in any cell (a balanced design), so cells of a partly finished sweep show n/K.
    """
    datasets = ordered(rows["dataset"].unique(), DATASET_ORDER)
    arms = ordered_arms(rows["arm"].unique())
    counts = rows.groupby(["dataset", "arm"]).size()
    expected = int(expected or counts.max())
    out = []
    for dataset in datasets:
        for arm in arms:
            cell = rows[(rows["dataset"] == dataset) & (rows["arm"] == arm)]
            out.append({"dataset": dataset, "model": arm, **_cell(cell, metric, expected)})
    return pd.DataFrame(out)


def _cell(cell: pd.DataFrame, metric: Column, expected: int) -> dict:
    values = cell.loc[cell["finished"], "value"].to_numpy(dtype=float)
    n = len(cell)
    row = {
        "metric": metric.name,
        "n_trials": n,
        "n_expected": expected,
        "n_finished": int(cell["finished"].sum()),
        "diverged_share": float((cell["status"] == DIVERGED).mean()) if n else np.nan,
        "failed_share": float((cell["status"] == FAILED).mean()) if n else np.nan,
        "unfinished_share": float((~cell["finished"]).mean()) if n else np.nan,
    }
    if values.size:
        best = cell.loc[cell["finished"], "score"].idxmin()
        q1, median, q3 = np.percentile(values, [25, 50, 75])
        row |= {
            "best": float(cell.at[best, "value"]),
            "best_trial": cell.at[best, "trial_id"],
            "median": median, "q1": q1, "q3": q3, "iqr": q3 - q1,
            "mean": values.mean(), "std": values.std(ddof=1) if values.size > 1 else np.nan,
        }  # fmt: skip
        row["median_ci_low"], row["median_ci_high"] = bootstrap_ci(values, np.median)
        row["mean_ci_low"], row["mean_ci_high"] = t_interval(values)
        # Over every trial, unscored ones ranked worst: the median seed of the setting as
        # run, with a distribution-free interval (skewed scores keep its coverage).
        scores = np.where(cell["finished"], cell["score"], np.inf).astype(float)
        low, high, coverage = median_interval(scores)
        row["median_all"] = metric.sign * float(np.median(scores))
        row["median_all_low"], row["median_all_high"] = sorted(
            (metric.sign * low, metric.sign * high)
        )
        row["median_all_coverage"] = coverage
        for name in MANIFOLD:
            if name in cell.columns and cell[name].notna().any():
                row[f"{name}_best"] = float(cell.at[best, name])
                row[f"{name}_median"] = float(cell.loc[cell["finished"], name].median())
    return row


def cell_text(row: pd.Series, metric: Column, seeds: bool) -> str:
    """One table cell: search phases 'best / median (Q1–Q3) / unfinished %'; seeds phase
    'median [its 95% CI] / mean ± std / unfinished %'. Missing or partial cells say n/K
    trials done."""
    f = metric.fmt
    done = f"{row['n_trials']}/{row['n_expected']} trials done"
    if row["n_trials"] == 0:
        return f"— ({done})"
    share = f"{100 * row['unfinished_share']:.0f}%"
    if row["n_finished"] == 0:
        text = f"— / all {row['n_trials']} unscored"
    elif seeds:
        spread = f" ± {f(row['std'])}" if np.isfinite(row["std"]) else ""
        bounds = [row.get("median_all_low", np.nan), row.get("median_all_high", np.nan)]
        shown = [f(b) if np.isfinite(b) else "unscored" for b in bounds]
        ci = f" [{shown[0]}, {shown[1]}]" if not np.isnan(bounds).any() else ""
        median = row.get("median_all", np.nan)
        median = f(median) if np.isfinite(median) else "unscored"
        text = f"{median}{ci} / {f(row['mean'])}{spread} / {share}"
    else:
        text = f"{f(row['best'])} / {f(row['median'])} ({f(row['q1'])}–{f(row['q3'])}) / {share}"
    if row["n_trials"] < row["n_expected"]:
        text += f" ({done})"
    return text


def grid(
    summary: pd.DataFrame, metric: Column, seeds: bool, published: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Models as rows (paper names), datasets as columns, one formatted string per cell;
    a "published" column after each dataset in `published` (see analysis.paper)."""
    texts = summary.assign(text=[cell_text(r, metric, seeds) for _, r in summary.iterrows()])
    table = texts.pivot(index="model", columns="dataset", values="text")
    models = list(summary["model"].unique())
    table = table.loc[models, summary["dataset"].unique()]
    columns = {}
    for dataset in table.columns:
        columns[dataset_label(dataset)] = table[dataset].to_list()
        if dataset in published:
            column = [paper.published(m, dataset) for m in models]
            columns[f"{dataset_label(dataset)}: {paper.CITATION}"] = column
    table = pd.DataFrame(columns, index=[label(m) for m in models])
    table.index.name = "model"
    return table


def manifold_grid(summary: pd.DataFrame) -> pd.DataFrame | None:
    """Precision / recall / F1 of the best trial and medians, for datasets that record them."""
    if "f1_best" not in summary.columns:
        return None
    parts = {}
    for dataset, cell in summary.groupby("dataset", sort=False):
        if cell["f1_best"].isna().all():
            continue
        cell = cell.set_index("model")
        for kind in ("best", "median"):
            parts[f"{dataset}: P / R / F1 ({kind})"] = [
                "—" if np.isnan(r[f"f1_{kind}"]) else
                " / ".join(f"{r[f'{m}_{kind}']:.3f}" for m in MANIFOLD)
                for _, r in cell.iterrows()
            ]  # fmt: skip
        index = cell.index
    if not parts:
        return None
    return pd.DataFrame(parts, index=[label(m) for m in index]).rename_axis("model")


def legend(metric: Column, seeds: bool, expected: int) -> str:
    """What a cell of `grid` holds, in one sentence."""
    if seeds:
        return (
            f"Each cell, for {metric.label}: median over the report seeds of the selected "
            "setting (unscored seeds ranked worst) [distribution-free 95% CI of that median: "
            "order statistics, at least 95% for any continuous score, skewed or not] / mean "
            "± std over the scored seeds / share of unscored seeds."
        )
    return (
        f"Each cell, for {metric.label}: best ({metric.best_word} over trials) / median "
        "(IQR, Q1–Q3) over scored trials / share of unscored trials; "
        f"{expected} trials planned per cell."
    )


def markdown(table: pd.DataFrame) -> str:
    """A GitHub Markdown table (pandas' to_markdown needs the optional tabulate package)."""
    header = [table.index.name or ""] + [str(c) for c in table.columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for index, row in table.iterrows():
        lines.append("| " + " | ".join([str(index)] + [str(v) for v in row]) + " |")
    return "\n".join(lines)


def latex(table: pd.DataFrame, caption: str) -> str:
    """A LaTeX tabular (booktabs) with the cell strings escaped."""
    escaped = table.map(_tex)
    escaped.index = [_tex(str(i)) for i in table.index]
    escaped.columns = [_tex(str(c)) for c in table.columns]
    escaped.index.name = _tex(table.index.name or "")
    return escaped.to_latex(
        escape=False, caption=_tex(caption), column_format="l" + "l" * len(table.columns)
    )


def _tex(text: str) -> str:
    for plain, tex in (("\\", r"\textbackslash{}"), ("%", r"\%"), ("_", r"\_"), ("&", r"\&"),
                       ("#", r"\#"), ("—", "---"), ("–", "--"), ("±", r"$\pm$")):  # fmt: skip
        text = text.replace(plain, tex)
    return text


def table_name(metric: Column) -> str:
    """The tables' file name: by the metric they rank by (fid_table for any FID column)."""
    return "fid_table" if metric.name.startswith("fid") else f"{metric.name}_table"


def write_tables(
    summaries: dict[str, pd.DataFrame],
    metric: Column,
    out: Path,
    published: dict[str, tuple[str, ...]] | None = None,
) -> tuple[Path, Path, Path, str]:
    """Write <table_name(metric)>.{md,csv,tex} for every phase; return the paths and the
    Markdown text.
    `published[phase]` names the datasets whose cells follow the paper's protocol."""
    md_parts, tex_parts, csv_parts = [], [], []
    for phase, summary in summaries.items():
        seeds = phase == "seeds"
        expected = int(summary["n_expected"].iloc[0])
        shown = (published or {}).get(phase, ())
        table = grid(summary, metric, seeds, shown)
        text = legend(metric, seeds, expected) + (f" {paper.note()}" if shown else "")
        md_parts += [f"### Phase `{phase}`", "", markdown(table), "", text, ""]
        tex_parts.append(latex(table, f"Phase {phase}. {text}"))
        manifold = manifold_grid(summary)
        if manifold is not None:
            note = (
                "Polygon manifold metrics: precision / recall / F1 of the best trial "
                f"(by {metric.label}) and their medians over finished trials."
            )
            md_parts += [markdown(manifold), "", note, ""]
            tex_parts.append(latex(manifold, f"Phase {phase}. Polygon manifold metrics."))
        csv_parts.append(summary.assign(phase=phase))
    md_text = "\n".join(md_parts)
    name = table_name(metric)
    paths = out / f"{name}.md", out / f"{name}.csv", out / f"{name}.tex"
    paths[0].write_text(md_text)
    long = pd.concat(csv_parts, ignore_index=True)
    long.insert(0, "phase", long.pop("phase"))
    long.to_csv(paths[1], index=False)
    paths[2].write_text("\n".join(tex_parts))
    return (*paths, md_text)
