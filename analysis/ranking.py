"""The direct answer: which model is best at a fixed budget, with intervals, tests and verdicts.

For each dataset of a search phase and each budget (k random hyperparameter samples, all
trials, or a fixed amount of compute), every model gets its expected best score
(`analysis.stats.expected_best`, from its own trials only) with a confidence interval where
one can be trusted. The best model is the one with the best estimate; every other model is
compared with it by a permutation test of the difference of the two estimates (null: the two
models' trials come from one distribution), Holm-corrected over the comparisons of that
budget. A model not significantly worse than the best ties with it, but only where the test
could have found it worse: with few trials per model even the most extreme split of the
trials gives a p-value that Holm's correction lifts above alpha (4 against 4 trials: 2/70,
times 6 comparisons = 0.17), and such a model is marked `underpowered`, not tied, and the
verdict says how many trials per model a test would need. Each ablation variant of a model is
ranked as its own arm (`analysis.scores.arm_names`).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from analysis.metrics import Metric
from analysis.scores import DATASET_ORDER, dataset_label, label, ordered, ordered_arms
from analysis.stats import (
    band_k_max,
    best_of_k_sorted,
    expected_best,
    expected_best_by_cost,
    expected_best_by_cost_ci,
    expected_best_ci,
    holm,
    min_weights,
    permutation_p,
)

BUDGETS_K = (1, 10, 50)
ALPHA = 0.05
N_PERMUTATIONS = 2000
N_PERMUTATIONS_COST = 400  # each resample simulates run orders: slower
N_ORDERS = 200


def smallest_p(n_a: int, n_b: int, n_resamples: int = N_PERMUTATIONS) -> float:
    """The smallest p-value `analysis.stats.permutation_p` can return for groups of n_a and n_b
    trials, whatever their scores: 2 / C(n_a + n_b, n_a) when scipy enumerates every split
    (C(n_a + n_b, n_a) <= n_resamples, the exact test), else 2 / (n_resamples + 1)."""
    splits = math.comb(n_a + n_b, n_a)
    return min(1.0, 2 / splits if splits <= n_resamples else 2 / (n_resamples + 1))


def trials_needed(comparisons: int, alpha: float = ALPHA, n_resamples: int = N_PERMUTATIONS):
    """The fewest trials per model (the same for every model) with which a difference from
    the best can be significant after Holm's correction over `comparisons` tests: the
    smallest n with comparisons * smallest_p(n, n) < alpha; None if no n can."""
    for n in range(2, 101):
        if comparisons * smallest_p(n, n, n_resamples) < alpha:
            return n
    return None


def k_statistic(k: int | None):
    """E[best of k] of each row of a stack of trials (+inf = unscored); k None = all."""

    def statistic(x: np.ndarray) -> np.ndarray:
        n = x.shape[-1]
        weights = min_weights(n)[(n if k is None else k) - 1][None, :]
        return best_of_k_sorted(np.sort(x, axis=-1), weights)[0][..., 0]

    return statistic


def cost_statistic(scores: np.ndarray, costs: np.ndarray, budget: float):
    """E[best within `budget`] of each row of a stack of trial indices into scores/costs."""

    def statistic(index: np.ndarray) -> np.ndarray:
        flat = index.reshape(-1, index.shape[-1]).astype(int)
        out = [expected_best_by_cost(scores[i], costs[i], [budget], N_ORDERS)[0][0] for i in flat]
        return np.asarray(out).reshape(index.shape[:-1])

    return statistic


def compute_budget(rows: pd.DataFrame) -> float | None:
    """The equal-compute budget of a dataset: ten trials at the median trial cost of the
    dataset (the same for every model, so a costlier model buys fewer trials)."""
    if "seconds" not in rows.columns or rows["seconds"].isna().all():
        return None
    return 10.0 * float(rows["seconds"].median())


def ranking(rows: pd.DataFrame, metric: Metric, budgets_k=BUDGETS_K, seed: int = 0):
    """One row per (dataset, budget, arm) of one search phase, the arm in the `model` column:
    estimate, interval, P(no scored trial), p-value against the best (raw and Holm), the
    smallest Holm-corrected p-value its test could have given (`p_floor`) and the verdict
    mark: `best`, `tie`, `worse`, `underpowered` (too few trials for the test to reach alpha
    whatever the scores: p_floor >= alpha), `untested` (a group of fewer than 2 trials),
    `no score` or `too few` (fewer trials than the budget)."""
    out = []
    for dataset in ordered(rows["dataset"].unique(), DATASET_ORDER):
        part = rows[rows["dataset"] == dataset]
        models = ordered_arms(part["arm"].unique())
        scores = {m: _scores(part[part["arm"] == m]) for m in models}
        n_max = max(len(v) for v in scores.values())
        fixed = [k for k in budgets_k if k < n_max or k == budgets_k[0]]
        for k in fixed + ([None] if n_max > 1 else []):
            cells = [_k_cell(scores[m], k) for m in models]
            name = "all trials" if k is None else f"k = {k}"
            tests = {m: (scores[m], k_statistic(k), N_PERMUTATIONS) for m in models}
            out += _judge(dataset, name, k, models, cells, tests, metric, seed)
        budget = compute_budget(part)
        if budget is not None:
            costs = {m: part.loc[part["arm"] == m, "seconds"].to_numpy(float) for m in models}
            cells = [_cost_cell(scores[m], costs[m], budget) for m in models]
            tests = {}
            for m in models:
                index = np.arange(len(scores[m]), dtype=float)
                tests[m] = (index, (scores[m], costs[m]), N_PERMUTATIONS_COST)
            out += _judge(dataset, "compute", budget, models, cells, tests, metric, seed)
    return pd.DataFrame(out)


def _scores(cell: pd.DataFrame) -> np.ndarray:
    return np.where(cell["finished"], cell["score"], np.inf).astype(float)


def _k_cell(x: np.ndarray, k: int | None) -> dict:
    n = x.size
    if k is not None and k > n:
        return {"n": n, "estimate": np.nan, "mark": "too few"}
    k = n if k is None else k
    curve, none = expected_best(x)
    low, high = expected_best_ci(x) if k <= band_k_max(n) else (np.full(n, np.nan),) * 2
    return {"n": n, "k": k, "estimate": curve[k - 1], "ci_low": low[k - 1],
            "ci_high": high[k - 1], "p_none": none[k - 1]}  # fmt: skip


def _cost_cell(x: np.ndarray, costs: np.ndarray, budget: float) -> dict:
    if np.isnan(costs).any():
        return {"n": x.size, "estimate": np.nan, "mark": "too few"}
    mean, none = expected_best_by_cost(x, costs, [budget], N_ORDERS)
    low, high = expected_best_by_cost_ci(x, costs, [budget], n_orders=N_ORDERS)
    return {"n": x.size, "estimate": mean[0], "ci_low": low[0], "ci_high": high[0],
            "p_none": none[0]}  # fmt: skip


def _judge(dataset, budget, value, models, cells, tests, metric, seed) -> list[dict]:
    """Mark the best model of one budget and test every other one against it (Holm)."""
    estimates = np.array([c["estimate"] for c in cells], dtype=float)
    rows = []
    for model, cell in zip(models, cells, strict=True):
        mark = cell.get("mark") or ("no score" if np.isnan(cell["estimate"]) else "")
        rows.append({"dataset": dataset, "budget": budget, "budget_value": value,
                     "model": model, **cell, "mark": mark})  # fmt: skip
    if np.isnan(estimates).all():
        return rows
    best = int(np.nanargmin(estimates))
    rows[best]["mark"] = "best"
    others = [i for i, r in enumerate(rows) if r["mark"] == ""]
    pvalues = []
    for i in others:
        a, b = tests[models[i]], tests[models[best]]
        if budget == "compute":
            pooled = (np.concatenate([a[1][0], b[1][0]]), np.concatenate([a[1][1], b[1][1]]))
            stat = cost_statistic(*pooled, value)
            pvalues.append(permutation_p(a[0], b[0] + a[0].size, stat, a[2], seed))
        else:
            pvalues.append(permutation_p(a[0], b[0], a[1], a[2], seed))
    pvalues = np.array(pvalues, dtype=float)
    tested = np.isfinite(pvalues)
    adjusted = np.full(pvalues.size, np.nan)
    adjusted[tested] = holm(pvalues[tested])
    # The smallest adjusted p-value each test could reach: Holm multiplies the smallest p of
    # the family by the number of tests, and no adjusted p is below its raw one.
    sizes = [(tests[models[i]][0].size, tests[models[best]][0].size, tests[models[i]][2])
             for i in others]  # fmt: skip
    floors = np.array([smallest_p(*size) for size in sizes])
    family = tested.sum() * floors[tested].min() if tested.any() else np.nan
    for i, p, q, floor in zip(others, pvalues, adjusted, floors, strict=True):
        p_floor = np.nan if np.isnan(q) else min(1.0, max(floor, family))
        if np.isnan(q):
            mark = "untested"
        elif q < ALPHA:
            mark = "worse"
        else:
            mark = "underpowered" if p_floor >= ALPHA else "tie"
        rows[i] |= {"p": p, "p_holm": q, "p_floor": p_floor, "mark": mark}
    for row in rows:
        row["value"] = metric.sign * row["estimate"]
        for end in ("ci_low", "ci_high"):
            if end in row:
                row[end] = metric.sign * row[end]
        if metric.sign < 0 and "ci_low" in row:
            row["ci_low"], row["ci_high"] = row["ci_high"], row["ci_low"]
    return rows


def verdict(table: pd.DataFrame, dataset: str, metric: Metric) -> str:
    """One line in plain words at the largest budget k of BUDGETS_K all models have."""
    part = table[(table["dataset"] == dataset) & (table["budget"] != "compute")]
    fixed = part[part["budget"] != "all trials"]
    budget = fixed["budget"].iloc[-1] if len(fixed) else "all trials"
    cell = part[part["budget"] == budget].set_index("model")
    names = lambda marks: [label(m) for m in cell.index[cell["mark"].isin(marks)]]  # noqa: E731
    lead, worse, lost = names(("best", "tie")), names(("worse",)), names(("no score",))
    untested, weak = names(("untested",)), names(("underpowered",))
    where = f"{dataset_label(dataset)} ({budget})"
    if not lead:
        return f"{where}: no model has a scored trial."
    if weak and len(lead) == 1 and not worse and not untested:
        # No test could have separated any model from the best: say so, not "tie".
        text = f"{where}: too few trials to separate the losses: {_power(cell)}. "
        text += f"{lead[0]} has the best estimate"
        if lost:
            text += f"; {_join(lost)}: no scored trial"
        return text + "."
    if len(lead) == 1 and (untested or weak) and not worse:
        text = f"{where}: {lead[0]} has the best estimate"
    elif len(lead) == 1 and not worse and not lost:
        text = f"{where}: only {lead[0]} has a score."
    elif len(lead) == 1:
        text = f"{where}: {lead[0]} is best; every other model is significantly worse"
    elif not worse:
        text = f"{where}: {_join(lead)} tie — no difference from the best is significant"
    else:
        text = f"{where}: {_join(lead)} tie for best"
    if worse and len(lead) > 1:
        p = cell.loc[cell["mark"] == "worse", "p_holm"].max()
        text += f"; {_join(worse)} {'is' if len(worse) == 1 else 'are'} worse ({_p(p)}, Holm)"
    elif worse:
        p = cell.loc[cell["mark"] == "worse", "p_holm"].max()
        text += f" ({_join(worse)}; {_p(p)}, Holm)"
    if weak:
        text += f"; {_join(weak)}: too few trials to tell from the best ({_power(cell)})"
    if untested:
        text += f"; {_join(untested)}: too few trials to test against the best"
    if lost:
        text += f"; {_join(lost)}: no scored trial"
    return text + "."


def _power(cell: pd.DataFrame) -> str:
    """Why the underpowered models of one budget could not be told from the best, and how many
    trials per model a test would need."""
    weak = cell[cell["mark"] == "underpowered"]
    counts = cell.loc[cell["mark"].isin(("best", "underpowered")), "n"].astype(int)
    trials = (
        f"{counts.min()} trials per model"
        if counts.min() == counts.max()
        else f"{counts.min()} to {counts.max()} trials per model"
    )
    comparisons = int(cell["p_holm"].notna().sum())
    text = (
        f"with {trials} no difference from the best can be significant (the smallest p-value "
        f"the permutation test can give is {weak['p_floor'].min():.2g} after Holm's correction "
        f"over {comparisons} comparison{'s' if comparisons != 1 else ''}, not below α = {ALPHA})"
    )
    needed = trials_needed(comparisons)
    if needed is not None:
        text += f"; that takes at least {needed} trials per model"
    return text


def _join(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _p(p: float) -> str:
    for bound in (0.001, 0.01, 0.05):
        if p < bound:
            return f"p < {bound:g}"
    return f"p = {p:.2f}"


def markdown_table(table: pd.DataFrame, dataset: str, metric: Metric) -> pd.DataFrame:
    """Models as rows, budgets as columns; each cell 'estimate [CI]' with the best in bold,
    a tie marked '=', a significantly worse model '<' and one with too few trials for the
    test to tell it from the best '?'."""
    part = table[table["dataset"] == dataset]
    columns = {}
    for budget, cell in part.groupby("budget", sort=False):
        header = budget
        if budget == "compute":
            header = f"compute {_hours(cell['budget_value'].iloc[0])}"
        columns[header] = {row.model: _cell_text(row, metric) for row in cell.itertuples()}
    frame = pd.DataFrame(columns)
    frame.index = [label(m) for m in frame.index]
    frame.index.name = "model"
    return frame


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.3g} h" if seconds >= 360 else f"{seconds:.3g} s"


def _cell_text(row, metric: Metric) -> str:
    if row.mark == "too few":
        return "— (too few trials)"
    if row.mark == "no score":
        return "— (no scored trial)"

    def f(value: float) -> str:  # round-off of the expectation (-1e-17) is not "-0.000"
        return metric.fmt(0.0 if abs(value) < 1e-12 else value)

    text = f(row.value)
    if np.isfinite(getattr(row, "ci_low", np.nan)):
        text += f" [{f(row.ci_low)}, {f(row.ci_high)}]"
    if row.p_none >= 0.005:
        text += f" (none scored: {100 * row.p_none:.0f}%)"
    if row.mark == "best":
        return f"**{text}**"
    return {"tie": "= ", "worse": "< ", "underpowered": "? "}.get(row.mark, "") + text
