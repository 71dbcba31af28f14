"""The one best-setting rule: fewest unscored trials, then the best mean, then the first."""

from __future__ import annotations

import math

import pandas as pd

from benchmark.best_setting import best_setting, rank_settings


def _rows(*settings: tuple[int, list[float]]) -> pd.DataFrame:
    """One row per (sample, score); NaN is an unscored trial."""
    return pd.DataFrame(
        [{"sample": sample, "score": score} for sample, scores in settings for score in scores]
    )


def test_the_lowest_mean_score_wins():
    rows = _rows((0, [3.0, 5.0]), (1, [2.0, 4.0]), (2, [9.0, 1.0]))
    assert best_setting(rows, ["sample"], "score") == (1,)  # means 4, 3, 5
    ranked = rank_settings(rows, ["sample"], "score")
    assert list(ranked.index) == [1, 0, 2]
    assert list(ranked["mean"]) == [3.0, 4.0, 5.0]


def test_a_setting_with_fewer_unscored_trials_wins_over_a_better_mean():
    """Sample 1 has the best mean over its scored seeds, but one of its seeds failed: a rule
    that ignored failures would reward a setting for the trials it lost."""
    rows = _rows((0, [3.0, 3.0]), (1, [1.0, math.nan]))
    assert best_setting(rows, ["sample"], "score") == (0,)
    assert list(rank_settings(rows, ["sample"], "score")["unscored"]) == [0, 1]


def test_ties_go_to_the_first_setting_and_an_unscored_one_is_never_chosen():
    rows = _rows((2, [1.0]), (0, [math.nan]), (1, [1.0]))
    assert best_setting(rows, ["sample"], "score") == (1,)
    assert best_setting(_rows((0, [math.nan])), ["sample"], "score") is None


def test_a_setting_of_several_columns_is_returned_as_their_values():
    rows = pd.DataFrame(
        {"lr": [1e-4, 1e-4, 2e-4], "beta1": [0.5, 0.5, 0.9], "score": [3.0, 1.0, 2.0]}
    )
    assert best_setting(rows, ["lr", "beta1"], "score") == (1e-4, 0.5)  # mean 2 against 2
    rows.loc[2, "score"] = 1.5
    assert best_setting(rows, ["lr", "beta1"], "score") == (2e-4, 0.9)


def test_planning_a_seeds_phase_and_reporting_one_choose_the_same_setting():
    """The seeds phase is planned (sweep.plan.best_settings) and reported (analysis's
    select_seeds) by the same rule: here sample 1 has the better mean and a failed seed."""
    from analysis.scores import select_seeds

    cell = _rows((0, [3.0, 3.0]), (1, [1.0, math.nan]))
    cell["dataset"], cell["arm"], cell["seed_role"] = "grid", "ns", "select"
    report = cell.drop_duplicates("sample").assign(seed_role="report", score=0.0)
    chosen, _ = select_seeds(pd.concat([cell, report], ignore_index=True))
    assert list(chosen["sample"]) == [0] == list(best_setting(cell, ["sample"], "score"))
