"""The mixtures' reference points against their direct computation."""

import json
import math

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from analysis.references import load_references, reference_sentence, standing_lines
from benchmark.evaluation.mixture_metrics import reference_scores
from benchmark.mixtures import MIXTURES, generate
from benchmark.results import get_column


def direct_w1(a: np.ndarray, b: np.ndarray) -> float:
    """W1 of two equal-size point sets: the optimal matching's mean distance (Hungarian)."""
    costs = cdist(a, b)
    rows, cols = linear_sum_assignment(costs)
    return float(costs[rows, cols].mean())


@pytest.mark.parametrize("name", ["grid", "ring"])
def test_reference_samplers_score_what_direct_computation_gives(name):
    n = 400
    mixture = MIXTURES.get(name)
    test = generate(mixture)["test"].astype(np.float64)
    found = reference_scores(name, n=n, seed=5)
    # a perfect sampler: the next n test points against the first n
    assert found["perfect"]["w1"] == pytest.approx(direct_w1(test[n : 2 * n], test[:n]))
    assert found["perfect"]["modes"] == mixture.modes
    assert found["perfect"]["hq"] > 0.97  # P(chi_2 <= 3) = 0.989
    # a uniform blur over the centres' box padded by half the nearest centres' distance
    pad = {"grid": 1.0, "ring": math.sin(math.pi / 8)}[name]  # half of 2, of 2 sin(pi/8)
    edge = {"grid": 4.0, "ring": 1.0}[name] + pad
    assert found["box"] == [[pytest.approx(-edge)] * 2, [pytest.approx(edge)] * 2]
    blur = np.random.default_rng(5).uniform(-edge, edge, size=(n, 2))
    assert found["uniform"]["w1"] == pytest.approx(direct_w1(blur, test[:n]))
    near = cdist(blur, mixture.centre_array).min(axis=1) <= 3 * mixture.sigma
    assert found["uniform"]["hq"] == pytest.approx(near.mean())
    assert found["uniform"]["w1"] > 1.5 * found["perfect"]["w1"]


def test_grid_blur_over_its_cells_scores_the_mean_distance_to_a_cell_centre():
    """A uniform blur over [-5, 5]^2 puts each mode's 2 x 2 cell around it: its W1 to the
    grid tends to the mean distance from a uniform point of a square of side 2 to its centre,
    (sqrt(2) + asinh(1)) / 3 = 0.765, less the modes' own spread; 0.73 at 2,500 points."""
    found = reference_scores("grid")
    assert found["uniform"]["w1"] == pytest.approx((math.sqrt(2) + math.asinh(1)) / 3, abs=0.05)


def test_report_lines_place_each_arm_between_the_references(tmp_path):
    import pandas as pd

    record = {"grid": {"n": 2500, "perfect": {"w1": 0.3, "modes": 25.0, "hq": 0.99},
                       "uniform": {"w1": 0.7, "modes": 20.0, "hq": 0.015}}}  # fmt: skip
    (tmp_path / "references.json").write_text(json.dumps(record))
    references, note = load_references(tmp_path)
    assert note is None
    w1 = get_column("w1")
    line = reference_sentence(references, "grid", w1, "Grid")
    assert line == ("Grid: w1 on 2,500 points: a perfect sampler 0.300 (25 modes, 99.0% HQ); "
                    "a uniform blur over the mixture's box 0.700 (20 modes, 1.5% HQ).")  # fmt: skip
    table = pd.DataFrame({"dataset": "grid", "budget": "all trials", "model": ["ns", "ls"],
                          "value": [0.4, 0.8]})  # fmt: skip
    text = "\n".join(standing_lines(references, {"narrow": table}, w1))
    assert "NS GAN 0.400 (75%), LSGAN 0.800 (-25%); 1 of 2 nearer the perfect sampler" in text
    (tmp_path / "references.json").write_text("{not json")
    assert (
        load_references(tmp_path)[0] == {} and "could not be read" in load_references(tmp_path)[1]
    )
