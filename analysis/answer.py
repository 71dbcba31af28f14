"""The direct answer: which arms can be the best at a fixed budget, with family-wise error control.

For each dataset of a search phase and each budget (k random hyperparameter samples, all
trials, or a fixed amount of compute), every arm (a model, or one of its ablation variants,
`analysis.scores.arm_names`) gets its expected best score (`analysis.stats.expected_best`,
from its own trials only). Where every arm has enough trials (k <= TEST_SHARE * n),
`analysis.best_arm.best_set` gives the 95% confidence set for the best arm: the arms not found
worse than another arm, with simultaneous intervals of each arm's gap to the best of the
others and P(best) from the bootstrap. Estimand and null: the expected best score of k
random hyperparameter samples; two arms with equal expectation are equal however different
their spreads. Sample 0 of a search (the model's default setting) is not a random sample:
it is left out of every budget here and shown on its own (`defaults`).

Equal compute: a trial costs its counted `flops`, or its wall-clock `seconds` for results
recorded before FLOP counts (`analysis.cost.cost_unit` decides, per dataset); at a budget of
B an arm with mean trial cost c runs k = B / c random trials (a fractional k mixes floor(k)
and ceil(k) trials, so the expected compute spent is exactly B for every arm), and its cell
is E[best of k]: exact, no simulated run orders. B is a fifth of the smallest arm's total (so
every arm can be tested there), but at least the costliest arm's mean trial, so that every
arm runs one.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.best_arm import (
    ALPHA,
    MIN_SCORED,
    MIN_TRIALS,
    N_BOOT,
    TEST_SHARE,
    best_set,
    bootstrap_arm,
    estimate,
    interval,
    testable,
)
from analysis.cost import SECONDS, cost_text, cost_unit
from analysis.scores import DATASET_ORDER, dataset_label, label, ordered, ordered_arms
from benchmark.results import Column

BUDGETS_K = (1, 10, 50)
SEARCH_PHASES = ("wide", "narrow")
MARKS = ("best", "in set", "worse", "untested", "too few", "no score")
COLUMNS = ["dataset", "budget", "budget_value", "model", "n", "k", "unscored", "estimate",
           "value", "ci_low", "ci_high", "p_none", "gap_low", "gap_high", "p_best",
           "p_global", "mark", "few", "cost", "cost_per_trial", "seconds_per_trial",
           "spent"]  # fmt: skip


#: A results column, True for a trial that runs the model's default setting (set from the
#: sweep's record by `mark_default_settings`); without it, sample 0 of a search is.
DEFAULT_SETTING = "default_setting"


def random_samples(rows: pd.DataFrame, phase: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The random hyperparameter samples of a search phase and its default-setting trials
    (sample 0, unless a `default_setting` column says otherwise: a space whose sample 0 is
    drawn at random, such as the mixture study's, has none); other phases have no default
    trial to set apart."""
    if phase not in SEARCH_PHASES or "sample" not in rows.columns:
        return rows, rows.iloc[:0]
    if DEFAULT_SETTING in rows.columns:
        default = rows[DEFAULT_SETTING].fillna(False).astype(bool)
    else:
        default = rows["sample"] == 0
    return rows[~default], rows[default]


def compute_budget(rows: pd.DataFrame, column: str | None = None) -> float | None:
    """The equal-compute budget of a dataset (see the module docstring) in the results column
    `column`, by default the one `cost_unit` picks; None when a trial's cost was not
    recorded."""
    if column is None:
        unit = cost_unit(rows)
        column = unit.column if unit is not None else SECONDS
    if column not in rows.columns or rows[column].isna().any() or rows.empty:
        return None
    cost = rows.groupby("arm")[column].agg(["mean", "sum", "size"])
    return float(max(cost["mean"].max(), (TEST_SHARE * cost["sum"]).min()))


def ranking(
    rows: pd.DataFrame, metric: Column, budgets_k=BUDGETS_K, seed: int = 0, n_boot: int = N_BOOT
) -> pd.DataFrame:
    """One row per (dataset, budget, arm), the arm in the `model` column: n, k, estimate and
    its 95% bootstrap-t interval (`ci_low`, `ci_high`, tested cells only), P(no scored
    trial), compute (`budget_value`, `cost_per_trial` and `spent` in the unit named by `cost`;
    `seconds_per_trial` as measured), the simultaneous interval of the gap to the best of
    the other arms (`gap_low`, `gap_high`; in the metric's units, positive = worse for either
    direction), P(best), the global test's p-value and the mark: `best` (best estimate of
    the tested arms), `in set` (cannot be told apart from the best), `worse`, `untested`
    (fewer than k / TEST_SHARE trials), `too few` (fewer trials than k) or `no score`."""
    out = []
    for dataset in ordered(rows["dataset"].unique(), DATASET_ORDER):
        part = rows[rows["dataset"] == dataset]
        arms = ordered_arms(part["arm"].unique())
        scores = {m: _scores(part[part["arm"] == m]) for m in arms}
        n_max = max(len(v) for v in scores.values())
        fixed = [k for k in budgets_k if k < n_max or k == budgets_k[0]]
        for k in fixed:
            ks = {m: float(k) for m in arms}
            out += _judge(dataset, f"k = {k}", k, scores, ks, metric, seed, n_boot)
        if n_max > 1:
            ks = {m: float(len(scores[m])) for m in arms}
            out += _judge(dataset, "all trials", np.nan, scores, ks, metric, seed, n_boot)
        unit = cost_unit(part)
        budget = compute_budget(part, unit.column) if unit is not None else None
        if budget is not None:
            mean = part.groupby("arm")[unit.column].mean()
            seconds = part.groupby("arm")[SECONDS].mean() if SECONDS in part else {}
            ks = {m: budget / mean[m] for m in arms}
            cells = _judge(dataset, "compute", budget, scores, ks, metric, seed, n_boot)
            for cell in cells:  # k trials at the mean cost: the budget, unless capped
                model = cell["model"]
                cell |= {"cost": unit.column, "cost_per_trial": mean[model],
                         "seconds_per_trial": seconds.get(model, np.nan),
                         "spent": min(cell["k"], cell["n"]) * mean[model]}  # fmt: skip
            out += cells
    return pd.DataFrame(out, columns=COLUMNS)


def _scores(cell: pd.DataFrame) -> np.ndarray:
    return np.where(cell["finished"], cell["score"], np.inf).astype(float)


def _judge(dataset, budget, value, scores, ks, metric, seed, n_boot) -> list[dict]:
    """Estimate every arm at its budget k, test the arms with enough trials jointly."""
    rng = np.random.default_rng(seed)
    rows, arms = [], []
    for model, x in scores.items():
        n, k = x.size, ks[model]
        row = {"dataset": dataset, "budget": budget, "budget_value": value, "model": model,
               "n": n, "k": k, "unscored": float(np.isinf(x).mean())}  # fmt: skip
        arm = None
        if k > n or k < 1:
            row["mark"] = "too few"
        else:
            mean, none = estimate(np.sort(x)[None, :], k)
            row |= {"estimate": float(mean[0]), "p_none": float(none[0])}
            if np.isnan(mean[0]):
                row["mark"] = "no score"
            elif budget != "all trials" and testable(x, k):
                arm = bootstrap_arm(x, k, n_boot, rng)
                row["ci_low"], row["ci_high"] = interval(arm)
            else:  # the best of all trials, or too few trials for the bootstrap to cover
                row["mark"] = "untested"
                row["few"] = budget != "all trials"
        rows.append(row)
        arms.append(arm)
    tested = [i for i, a in enumerate(arms) if a is not None]
    if len(tested) == 1:  # nothing to compare with: its interval stands, no set
        rows[tested[0]]["mark"] = "untested"
    elif tested:
        found = best_set(arms)
        best = min(tested, key=lambda i: rows[i]["estimate"])
        for i in tested:
            rows[i] |= {"gap_low": found.gap_low[i], "gap_high": found.gap_high[i],
                        "p_best": found.p_best[i], "p_global": found.p_global,
                        "mark": "worse" if found.worse[i] else "in set"}  # fmt: skip
        rows[best]["mark"] = "best"
    for row in rows:
        _orient(row, metric)
    return rows


def _orient(row: dict, metric: Column) -> None:
    """Scores are lower-better inside; print them in the metric's own direction."""
    row["value"] = metric.sign * row.get("estimate", np.nan)
    for low, high in (("ci_low", "ci_high"),):  # a gap stays "positive = worse"
        if low in row:
            a, b = metric.sign * row[low], metric.sign * row[high]
            row[low], row[high] = min(a, b), max(a, b)


def defaults(rows: pd.DataFrame) -> pd.DataFrame:
    """Each arm's default-setting trials (sample 0) per dataset: count, mean value, unscored."""
    if rows.empty:
        return pd.DataFrame(columns=["dataset", "model", "n", "value", "unscored"])
    grouped = rows.groupby(["dataset", "arm"], sort=False)
    out = grouped.agg(n=("value", "size"), value=("value", "mean"))
    out["unscored"] = grouped["finished"].apply(lambda f: float((~f).mean()))
    return out.reset_index().rename(columns={"arm": "model"})


def tested_budgets(table: pd.DataFrame, dataset: str) -> list[str]:
    """The budgets of a dataset at which at least two arms were tested, in table order."""
    part = table[table["dataset"] == dataset]
    counts = part[part["mark"].isin(("best", "in set", "worse"))].groupby("budget").size()
    return [b for b in part["budget"].unique() if counts.get(b, 0) >= 2]


def verdict(table: pd.DataFrame, dataset: str, metric: Column) -> list[str]:
    """The answer in plain words, one line per budget at which arms were tested (or, when
    none was, one line saying why), each with the best arm's estimate and interval."""
    budgets = tested_budgets(table, dataset)
    part = table[table["dataset"] == dataset]
    if not budgets:
        first = part["budget"].iloc[0]
        cell = part[part["budget"] == first].set_index("model")
        where = f"{dataset_label(dataset)} ({first})"
        scored = cell[cell["estimate"].notna()] if "estimate" in cell else cell.iloc[:0]
        if scored.empty:
            return [f"{where}: no arm has a scored trial."]
        best = scored["estimate"].idxmin()
        why = (f"only {label(best)} has a scored trial" if len(scored) == 1 else
               f"too few trials (a test needs {_need()} per arm)")  # fmt: skip
        text = (f"{where}: no test, {why}; {label(best)} has the best estimate, "
                f"{metric.fmt(scored.loc[best, 'value'])}")  # fmt: skip
        if scored.loc[best, "unscored"] >= 0.1:
            text += f" ({_unscored(scored.loc[best])[2:]})"
        return [text + _others(cell) + "."]
    return [_sentence(part[part["budget"] == b].set_index("model"), dataset, b, metric)
            for b in budgets]  # fmt: skip


def _need() -> str:
    """What an arm needs to be tested, in words."""
    return (f"at least {MIN_TRIALS} trials, {MIN_SCORED} of them scored, and "
            f"{round(1 / TEST_SHARE)}·k")  # fmt: skip


def _budget_words(cell: pd.DataFrame, budget: str) -> str:
    if budget == "compute":
        return f"equal compute, {budget_text(cell)} per arm"
    return budget


def budget_text(cell: pd.DataFrame) -> str:
    """The equal-compute budget of a table's cell in its unit: '1.23 TFLOP', '2.5 h'."""
    return cost_text(cell["budget_value"].iloc[0], cell["cost"].iloc[0])


def _sentence(cell: pd.DataFrame, dataset: str, budget: str, metric: Column) -> str:
    where = f"{dataset_label(dataset)} ({_budget_words(cell, budget)})"
    best = cell.index[cell["mark"] == "best"][0]
    row = cell.loc[best]
    lead = (f"{label(best)} has the best expected {metric.name}, {metric.fmt(row['value'])} "
            f"[{metric.fmt(row['ci_low'])}, {metric.fmt(row['ci_high'])}]")  # fmt: skip
    in_set = cell[cell["mark"].isin(("best", "in set"))].sort_values("p_best", ascending=False)
    worse = [
        label(m) + (f" ({_unscored(r)[2:]})" if _unscored(r) else "")
        for m, r in cell[cell["mark"] == "worse"].iterrows()
    ]
    named = [f"{label(m)} ({r['p_best']:.2f}{_unscored(r)})" for m, r in in_set.iterrows()]
    level = f"{100 * (1 - ALPHA):.0f}%"
    if not worse:
        text = (f"{where}: {lead}, but no arm is shown worse than another: all "
                f"{len(in_set)} tested arms can be the best, which is not a tie "
                f"(P(best): {_join(named)})")  # fmt: skip
    elif len(in_set) == 1:
        text = f"{where}: {lead}; every other tested arm is worse ({_join(worse)})"
        text += f" ({level} confidence set for the best arm)"
    else:
        text = (f"{where}: {lead}; {_join(named[:1] + named[1:])} cannot be told apart from "
                f"the best (P(best) in brackets); {_join(worse)} "
                f"{'is' if len(worse) == 1 else 'are'} worse ({level} confidence set for "
                "the best arm)")  # fmt: skip
    return text + _others(cell) + "."


def _unscored(row) -> str:
    share = row.get("unscored", 0.0)
    return f", {100 * share:.0f}% of trials unscored" if share >= 0.1 else ""


def _others(cell: pd.DataFrame) -> str:
    """The arms a budget could not test, by name and why."""
    text = ""
    untested = cell[(cell["mark"] == "untested") & (cell["few"] == True)]  # noqa: E712
    if len(untested):
        counts = ", ".join(f"{label(m)} ({int(r['n'])})" for m, r in untested.iterrows())
        text += f"; not tested, too few trials for this budget: {counts}"
    few = [label(m) for m in cell.index[cell["mark"] == "too few"]]
    if few:
        text += f"; {_join(few)}: fewer trials than the budget"
    lost = [label(m) for m in cell.index[cell["mark"] == "no score"]]
    if lost:
        text += f"; {_join(lost)}: no scored trial"
    return text


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def markdown_table(table: pd.DataFrame, dataset: str, metric: Column) -> pd.DataFrame:
    """Arms as rows, budgets as columns; each cell 'estimate [95% CI]' and, where the arms
    were tested, P(best); the best estimate in bold, an arm shown worse than another '<',
    an untested one '(not tested)'. No mark means: cannot be told apart from the best."""
    part = table[table["dataset"] == dataset]
    columns = {}
    for budget, cell in part.groupby("budget", sort=False):
        header = budget
        if budget == "compute":
            header = f"equal compute: {budget_text(cell)} per arm"
        columns[header] = {row.model: _cell_text(row, metric) for row in cell.itertuples()}
    frame = pd.DataFrame(columns)
    frame.index = [label(m) for m in frame.index]
    frame.index.name = "model"
    return frame


def _cell_text(row, metric: Column) -> str:
    if row.mark == "too few":
        return "— (fewer trials than the budget)"
    if row.mark == "no score":
        return "— (no scored trial)"

    def f(value: float) -> str:  # round-off of the expectation (-1e-17) is not "-0.000"
        return metric.fmt(0.0 if abs(value) < 1e-12 else value)

    text = f(row.value)
    if np.isfinite(getattr(row, "ci_low", np.nan)):
        text += f" [{f(row.ci_low)}, {f(row.ci_high)}]"
    if getattr(row, "p_none", 0.0) >= 0.005:
        text += f" (none scored: {100 * row.p_none:.0f}%)"
    if getattr(row, "budget", "") == "compute":  # what the budget buys this arm
        text += f" (k = {row.k:.3g})"
    if np.isfinite(getattr(row, "p_best", np.nan)):
        text += f" · P(best) {row.p_best:.2f}"
    if row.mark == "best":
        return f"**{text}**"
    if row.mark == "worse":
        return f"< {text}"
    if row.mark == "untested" and getattr(row, "budget", "") != "all trials":
        return f"{text} (not tested)"
    return text
