"""Statistics: exact expected minimum over k samples, compute budgets, bootstrap, tests, Holm.

Scores passed in here are oriented so that lower is better (multiply a higher-is-better
metric by -1 first, see `Metric.sign`).
"""

from __future__ import annotations

import math
import warnings
from itertools import combinations, permutations

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from scipy.special import gammaln


def min_weights(n: int) -> np.ndarray:
    """W[k-1, i-1] = P(the minimum of k of n values drawn WITHOUT replacement is x(i)).

    For sorted values x(1) <= ... <= x(n): P = C(n-i, k-1) / C(n, k), in log space so n in
    the thousands stays exact to rounding.
    """
    k = np.arange(1, n + 1)[:, None]
    i = np.arange(1, n + 1)[None, :]
    valid = n - i >= k - 1
    top = n - i
    log_w = (
        gammaln(top + 1)
        - gammaln(k)
        - gammaln(np.where(valid, top - k + 2, 1))
        - (gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1))
    )
    return np.where(valid, np.exp(np.where(valid, log_w, 0.0)), 0.0)


def expected_min(values: ArrayLike) -> np.ndarray:
    """E[min of k values drawn without replacement from `values`], for k = 1..n.

    Exact (order statistics, no simulation): k = 1 gives the mean, k = n the minimum.
    +inf entries are allowed: the result is inf for every k at which a subset of only
    inf values has positive probability. NaN is refused.
    """
    x = np.sort(np.asarray(values, dtype=float))
    if x.size == 0:
        return np.array([])
    if np.isnan(x).any():
        raise ValueError("expected_min: values contain NaN; map failed trials to a score first")
    weights = min_weights(x.size)
    finite = np.isfinite(x)
    out = weights[:, finite] @ x[finite]
    out[(weights[:, ~finite] > 0).any(axis=1)] = np.inf
    return out


def expected_min_band(
    values: ArrayLike, n_boot: int = 1000, level: float = 0.95, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile bootstrap band of the `expected_min` curve, resampling the trials.

    Resampling asks: had another set of n hyperparameter samples been drawn, how
    different would the curve be? Values must be finite.
    """
    x = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    samples = np.sort(rng.choice(x, size=(n_boot, x.size), replace=True), axis=1)
    curves = samples @ min_weights(x.size).T
    alpha = (1 - level) / 2
    return np.quantile(curves, alpha, axis=0), np.quantile(curves, 1 - alpha, axis=0)


def expected_min_by_cost(
    scores: ArrayLike,
    costs: ArrayLike,
    budgets: ArrayLike,
    empty: float,
    n_orders: int = 2000,
    seed: int = 0,
) -> np.ndarray:
    """E[best score among the trials finished within each budget], over random run orders.

    Trials run one after another in a random order; a budget B buys the trials whose
    cumulative cost is <= B. `empty` is the score while no trial has finished (use the
    same worst value given to diverged trials). Simulated with `n_orders` random orders,
    or exact over all orders when there are no more than `n_orders` of them.
    """
    x = np.asarray(scores, dtype=float)
    c = np.asarray(costs, dtype=float)
    b = np.asarray(budgets, dtype=float)
    if math.factorial(x.size) <= n_orders:
        order = np.array(list(permutations(range(x.size))), dtype=int).reshape(-1, x.size)
    else:
        rng = np.random.default_rng(seed)
        order = np.argsort(rng.random((n_orders, x.size)), axis=1)
    n_orders = len(order)
    spent = np.cumsum(c[order], axis=1)
    best = np.minimum.accumulate(x[order], axis=1)
    best = np.concatenate([np.full((n_orders, 1), empty), best], axis=1)
    done = (spent[:, :, None] <= b[None, None, :]).sum(axis=1)  # (orders, budgets)
    return np.take_along_axis(best, done, axis=1).mean(axis=0)


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm step-down adjusted p-values (family-wise error control), in the input order."""
    p = np.asarray(pvalues, dtype=float)
    m = p.size
    order = np.argsort(p)
    stepped = np.maximum.accumulate((m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.minimum(stepped, 1.0)
    return adjusted


def cliffs_delta(a: ArrayLike, b: ArrayLike) -> float:
    """Cliff's delta P(A > B) - P(A < B), from all pairs; in [-1, 1], 0 means no shift."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    greater = np.sum(a[:, None] > b[None, :])
    less = np.sum(a[:, None] < b[None, :])
    return float((greater - less) / (a.size * b.size))


def bootstrap_ci(
    values: ArrayLike, statistic=np.mean, level: float = 0.95, n_boot: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """BCa bootstrap CI of `statistic` (scipy.stats.bootstrap); NaN for fewer than 2 values."""
    x = np.asarray(values, dtype=float)
    if x.size < 2:
        return (np.nan, np.nan)
    if np.all(x == x[0]):
        return (float(x[0]), float(x[0]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = stats.bootstrap(
            (x,), statistic, n_resamples=n_boot, confidence_level=level, rng=seed
        )
    low, high = result.confidence_interval
    return (float(low), float(high))


def compare_groups(groups: dict[str, ArrayLike], alpha: float = 0.05) -> pd.DataFrame:
    """Pairwise two-sided Mann-Whitney U tests with Holm correction over all pairs.

    `delta_a_better` is Cliff's delta oriented so that positive means `a` scores lower (better)
    than `b`. Groups with fewer than 2 values are left out.
    """
    names = [name for name, values in groups.items() if len(values) >= 2]
    rows = []
    for a, b in combinations(names, 2):
        x, y = np.asarray(groups[a], float), np.asarray(groups[b], float)
        result = stats.mannwhitneyu(x, y, alternative="two-sided")
        rows.append(
            {"a": a, "b": b, "n_a": x.size, "n_b": y.size, "U": float(result.statistic),
             "p": float(result.pvalue), "delta_a_better": cliffs_delta(y, x)}
        )  # fmt: skip
    table = pd.DataFrame(rows, columns=["a", "b", "n_a", "n_b", "U", "p", "delta_a_better"])
    table["p_holm"] = holm(table["p"].to_numpy()) if len(table) else []
    table["significant"] = table["p_holm"] < alpha
    return table


def kruskal(groups: dict[str, ArrayLike]) -> tuple[float, float]:
    """Kruskal-Wallis H and p across groups (those with at least 2 values); NaN if < 2."""
    samples = [np.asarray(v, float) for v in groups.values() if len(v) >= 2]
    if len(samples) < 2:
        return (np.nan, np.nan)
    if np.unique(np.concatenate(samples)).size == 1:
        return (0.0, 1.0)
    result = stats.kruskal(*samples)
    return (float(result.statistic), float(result.pvalue))
