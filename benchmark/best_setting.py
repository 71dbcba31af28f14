"""The one rule for picking the best setting of a model: used to plan a seeds phase and to
report one.

A setting (one sample of a search, or any set of hyperparameter columns) is ranked by how
many of its trials went unscored (failed, or no finite score), fewest first, and then by its
mean score over the scored ones; ties go to the setting that sorts first (the lower sample
number, so sample #0, the default). A setting with no scored trial is never chosen.
Torch-free: the analysis uses it too.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def rank_settings(rows: pd.DataFrame, key: Sequence[str], score: str) -> pd.DataFrame:
    """Settings (the distinct values of the `key` columns) best first, with `unscored` (rows
    whose `score` is NaN) and `mean` (of `score`, lower is better); unscored settings left out.
    """
    ranked = (
        rows.groupby(list(key), dropna=False)[score]
        .agg(unscored=lambda s: int(s.isna().sum()), mean="mean")
        .dropna(subset=["mean"])
    )
    return ranked.sort_values(["unscored", "mean"], kind="stable")


def best_setting(rows: pd.DataFrame, key: Sequence[str], score: str) -> tuple | None:
    """The best setting's values of the `key` columns, or None when no setting is scored."""
    ranked = rank_settings(rows, key, score)
    if ranked.empty:
        return None
    best = ranked.index[0]
    return best if isinstance(best, tuple) else (best,)
