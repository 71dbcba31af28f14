"""Conditional trials are arms of their own in the report, and their label accuracy is shown."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.labels import label_accuracy_lines
from analysis.scores import add_scores, arm_names, label, ordered_arms
from benchmark.results import get_column


def _frame() -> pd.DataFrame:
    # As results.csv reads back: the column is empty for unconditional trials.
    return pd.DataFrame(
        {
            "trial_id": list("abcdef"),
            "dataset": ["grid"] * 6,
            "model": ["ns", "ns", "ns", "ns", "began", "began"],
            "conditional": [np.nan, np.nan, True, True, True, np.nan],
            "status": ["ok"] * 6,
            "w1": [0.9, 0.8, 0.5, 0.7, 2.0, 2.5],
            "label_accuracy": [np.nan, np.nan, 0.4, 0.9, 0.2, np.nan],
        }
    )


def test_conditional_trials_are_separate_arms_named_as_such():
    arms = arm_names(_frame()).tolist()
    assert arms == ["ns", "ns", "ns (cond.)", "ns (cond.)", "began (cond.)", "began"]
    assert label("ns (cond.)") == "NS GAN (cond.)" and label("ns (cond.)/x") == "NS GAN (cond.) · x"
    assert ordered_arms(set(arms)) == ["ns", "ns (cond.)", "began", "began (cond.)"]
    with_variant = _frame().assign(extra_variant="cond")
    assert arm_names(with_variant).iloc[2] == "ns (cond.)/cond"


def test_the_label_accuracy_section_shows_each_conditional_arms_best_trial_and_median():
    rows = add_scores(_frame(), get_column("w1"))
    lines = label_accuracy_lines(rows)
    # ns (cond.): best by W1 is the 0.5 trial (label accuracy 0.4); the median of 0.4 and 0.9.
    assert "| Grid (25 Gaussians) | NS GAN (cond.) | 0.400 | 0.650 | 2 | — |" in lines
    assert "| Grid (25 Gaussians) | BEGAN (cond.) | 0.200 | 0.200 | 1 | — |" in lines
    assert not any("| NS GAN |" in line for line in lines)
    assert label_accuracy_lines(add_scores(_frame().drop(columns="label_accuracy"),
                                           get_column("w1"))) == []  # fmt: skip
