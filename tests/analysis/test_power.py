"""The power statement against a brute-force simulation with the report's own test."""

import numpy as np
import pandas as pd
import pytest

from analysis.answer import ranking
from analysis.best_arm import best_set, bootstrap_arm
from analysis.power import POWER, detectable, power_at, power_lines, residuals, thresholds
from analysis.scores import add_scores
from benchmark.results import get_column

W1 = get_column("w1")


def sweep(groups: dict[str, np.ndarray]) -> pd.DataFrame:
    """A search phase's rows, one arm per key, scored by w1 (lower is better)."""
    rows = [
        {"trial_id": f"{arm}-{i}", "phase": "narrow", "dataset": "grid", "model": arm,
         "sample": i, "seed": 0, "status": "ok", "w1": float(v)}
        for arm, values in groups.items() for i, v in enumerate(values)
    ]  # fmt: skip
    return add_scores(pd.DataFrame(rows), W1)


def test_the_threshold_shortcut_equals_testing_every_shift():
    """Each simulated sweep's threshold says at which shifts the test marks the arm worse:
    the same answers as shifting its trials and running the whole test again."""
    sizes, k, reps = [12, 15, 15], 1, 6
    found_above = thresholds(sizes, k, reps=reps, n_boot=100, seed=3)
    rng = np.random.default_rng(3)
    for rep in range(reps):
        state = rng.bit_generator.state
        for delta in (0.3, 0.8, 1.5):
            rng.bit_generator.state = state  # the same trials and resamples at every shift
            arms = []
            for i, n in enumerate(sizes):  # arm 0, the smallest, is the shifted one
                x = rng.standard_normal(n) + (delta if i == 0 else 0.0)
                arms.append(bootstrap_arm(x, k, 100, rng))
            assert bool(best_set(arms).worse[0]) == (found_above[rep] < delta)
    assert power_at(np.array([0.5, 1.0, 2.0]), [0.4, 0.9, 1.1, 3.0]).tolist() == [
        0.0, 1 / 3, 2 / 3, 1.0,
    ]  # fmt: skip


def test_residuals_are_pooled_within_arm_and_standardised():
    groups = [np.array([1.0, 3.0]), np.array([10.0, 14.0, np.inf])]
    draws, sd = residuals(groups)
    assert sd == pytest.approx(np.sqrt((1 + 1 + 4 + 4) / 2))  # pooled within-arm SD, 2 dof
    np.testing.assert_allclose(draws * sd, [-1.0, 1.0, -2.0, 2.0])


def test_stated_power_is_what_the_report_test_finds_by_brute_force():
    """The shift stated as found 80% of the time, planted in fresh sweeps of normal scores
    and judged by `ranking` (the report's test, its n_boot) at k = 1: found 80% of the time
    within Monte-Carlo error (200 sweeps: s.e. 0.03 here, and 0.03 in the statement)."""
    rng = np.random.default_rng(11)
    arms, n = ("mm", "ns", "ls", "wgan"), 15
    observed = {a: rng.normal(0.6, 0.1, n) for a in arms}
    stated = detectable([observed[a] for a in arms], k=1, reps=200)
    assert stated.sd == pytest.approx(0.1, rel=0.25)
    found = 0
    for rep in range(200):
        fresh = {a: rng.normal(0.6, stated.sd, n) for a in arms}
        fresh["mm"] = fresh["mm"] + stated.delta
        table = ranking(sweep(fresh), W1, budgets_k=(1,), seed=rep)
        cell = table[(table["budget"] == "k = 1") & (table["model"] == "mm")]
        found += cell["mark"].iloc[0] == "worse"
    assert found / 200 == pytest.approx(POWER, abs=0.1)


def test_the_report_section_states_the_power_per_budget():
    rng = np.random.default_rng(2)
    rows = sweep({a: rng.normal(0.6, 0.1, 12) for a in ("mm", "ns", "ls")})
    table = ranking(rows, W1, budgets_k=(1, 10))
    lines = power_lines({"narrow": (rows, rows.iloc[:0])}, {"narrow": table}, W1, reps=50)
    text = "\n".join(lines)
    assert "### What the test could find" in text
    assert "Phase `narrow`, Grid (25 Gaussians) (3 arms of 12 trials; SD 0.1" in text
    assert "k = 1: " in text and "k = 10" not in text  # k = 10 is not tested at 12 trials
