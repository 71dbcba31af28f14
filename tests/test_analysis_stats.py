"""Tests of analysis.stats against brute force, hand computations and scipy itself."""

from itertools import combinations

import numpy as np
import pytest
from scipy import stats as sps

from analysis.stats import (
    bootstrap_ci,
    cliffs_delta,
    compare_groups,
    expected_min,
    expected_min_band,
    expected_min_by_cost,
    holm,
    kruskal,
    min_weights,
)


def brute_expected_min(values, k):
    return np.mean([min(subset) for subset in combinations(values, k)])


@pytest.mark.parametrize("values", [[3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0], [7.5], [2.0, 2.0, 2.0]])
def test_expected_min_equals_enumeration_over_all_subsets(values):
    curve = expected_min(values)
    brute = [brute_expected_min(values, k) for k in range(1, len(values) + 1)]
    np.testing.assert_allclose(curve, brute, rtol=1e-12)
    assert curve[0] == pytest.approx(np.mean(values))
    assert curve[-1] == pytest.approx(min(values))


def test_expected_min_large_n_is_stable():
    values = np.random.default_rng(0).normal(size=500)
    curve = expected_min(values)
    assert curve[0] == pytest.approx(values.mean())
    assert curve[-1] == pytest.approx(values.min())
    np.testing.assert_allclose(min_weights(500).sum(axis=1), 1.0, rtol=1e-9)


def test_expected_min_with_inf():
    # k=1: one subset of only inf has probability 1/3 -> inf; k=2: (1 + 1 + 2) / 3.
    np.testing.assert_allclose(expected_min([1.0, np.inf, 2.0]), [np.inf, 4 / 3, 1.0])
    with pytest.raises(ValueError, match="NaN"):
        expected_min([1.0, np.nan])


def test_band_of_constant_values_is_that_value():
    low, high = expected_min_band([4.0] * 6, n_boot=50)
    np.testing.assert_allclose(low, 4.0)
    np.testing.assert_allclose(high, 4.0)


def test_expected_min_by_cost_exact_over_orders():
    # Orders (a, b): a done at 1, b at 3. Orders (b, a): b done at 2, a at 3.
    curve = expected_min_by_cost([3.0, 1.0], [1.0, 2.0], [0.5, 1, 2, 3], empty=10.0)
    np.testing.assert_allclose(curve, [10.0, (3 + 10) / 2, (3 + 1) / 2, 1.0])


def test_holm_hand_computed():
    np.testing.assert_allclose(holm([0.01, 0.04, 0.03]), [0.03, 0.06, 0.06])
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    np.testing.assert_allclose(holm([0.04]), [0.04])


def test_cliffs_delta_hand_example_and_relation_to_u():
    a, b = [1.0, 2.0, 3.0], [2.0, 2.0, 4.0]
    # greater pairs: (3,2), (3,2); less: (1,2),(1,2),(1,4),(2,4),(3,4) -> (2 - 5) / 9.
    assert cliffs_delta(a, b) == pytest.approx(-1 / 3)
    u = sps.mannwhitneyu(a, b).statistic
    assert cliffs_delta(a, b) == pytest.approx(2 * u / 9 - 1)
    assert cliffs_delta([np.inf], [np.inf, 1.0]) == pytest.approx(0.5)


def test_tests_match_scipy_on_same_groups():
    rng = np.random.default_rng(1)
    groups = {"a": rng.normal(0, 1, 12), "b": rng.normal(1, 1, 9), "c": rng.normal(0.2, 1, 15)}
    table = compare_groups(groups)
    for _, row in table.iterrows():
        expected = sps.mannwhitneyu(groups[row["a"]], groups[row["b"]], alternative="two-sided")
        assert row["p"] == pytest.approx(expected.pvalue)
        assert row["U"] == pytest.approx(expected.statistic)
        assert row["delta_a_better"] == pytest.approx(
            cliffs_delta(groups[row["b"]], groups[row["a"]])
        )
    np.testing.assert_allclose(table["p_holm"], holm(table["p"]))
    assert list(table["significant"]) == list(table["p_holm"] < 0.05)
    h, p = kruskal(groups)
    expected = sps.kruskal(*groups.values())
    assert (h, p) == (pytest.approx(expected.statistic), pytest.approx(expected.pvalue))


def test_bootstrap_ci_matches_scipy():
    values = np.random.default_rng(2).normal(10, 2, 30)
    low, high = bootstrap_ci(values, np.mean, n_boot=500, seed=3)
    ref = sps.bootstrap((values,), np.mean, n_resamples=500, rng=3).confidence_interval
    assert (low, high) == (pytest.approx(ref.low), pytest.approx(ref.high))
    assert bootstrap_ci([1.0]) == (pytest.approx(np.nan, nan_ok=True),) * 2
    assert bootstrap_ci([2.0, 2.0, 2.0]) == (2.0, 2.0)
