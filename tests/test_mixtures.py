"""The 2-D mixtures: centres, generated splits, networks for points and the mixture metrics."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from torch import nn

from benchmark.datasets import load_dataset
from benchmark.errors import ConfigError
from benchmark.evaluation.mixture_metrics import (
    SAMPLES,
    energy_distance,
    mixture_metrics,
    mode_statistics,
)
from benchmark.mixtures import GRID, MIXTURES, RING, generate
from benchmark.models import resolve_trial
from benchmark.networks import NetworkOptions, PointDiscriminator, PointGenerator

PERFECT_HQ = 1 - math.exp(-4.5)  # P(|N(0, I_2)| <= 3): a chi with 2 degrees of freedom


def test_ring_has_eight_distinct_centres_on_the_unit_circle():
    centres = RING.centre_array
    assert centres.shape == (8, 2) and RING.sigma == 0.01
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0, atol=1e-15)
    angles = np.sort(np.mod(np.arctan2(centres[:, 1], centres[:, 0]), 2 * math.pi))
    np.testing.assert_allclose(angles, 2 * math.pi * np.arange(8) / 8, atol=1e-12)
    gaps = np.linalg.norm(centres[:, None] - centres[None], axis=2) + np.eye(8) * 9
    assert gaps.min() == pytest.approx(2 * math.sin(math.pi / 8))  # neighbours, 0.765 apart


def test_grid_has_twenty_five_centres_two_apart():
    centres = GRID.centre_array
    assert centres.shape == (25, 2) and GRID.sigma == 0.05
    assert {tuple(c) for c in centres} == {
        (float(x), float(y)) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)
    }


@pytest.mark.parametrize(
    ("mixture", "variance"),
    [(RING, 0.5 + 0.01**2), (GRID, (16 + 4 + 0 + 4 + 16) / 5 + 0.05**2)],
)
def test_generated_splits_have_the_mixtures_moments(mixture, variance):
    """Mean 0 and per-axis variance E[c^2] + sigma^2 (ring: E cos^2 = 1/2; grid: 8); the share
    within 3 sigma of the own centre is 1 - e^-4.5; tolerances are about 5 standard errors."""
    splits = generate(mixture)
    train, labels = splits["train"], splits["train_labels"]
    assert train.shape == (100_000, 2) and train.dtype == np.float32
    assert splits["test"].shape == (10_000, 2)
    np.testing.assert_allclose(train.mean(axis=0), 0.0, atol=5 * math.sqrt(variance / 1e5))
    np.testing.assert_allclose(train.var(axis=0), variance, rtol=0.02)
    own = np.linalg.norm(train - mixture.centre_array[labels], axis=1) / mixture.sigma
    assert (own <= 3).mean() == pytest.approx(PERFECT_HQ, abs=0.002)
    assert np.bincount(labels).min() > 100_000 / mixture.modes * 0.9
    again = generate(mixture)
    assert np.array_equal(again["train"], train)  # from one seed, the same every time


def test_mixture_datasets_load_as_float_points_with_no_data_root():
    data = load_dataset("grid", root=None)
    assert data.shape == (2,) and data.is_points and data.train.dtype == torch.float32
    assert len(data.train) == 100_000 and len(data.test) == 10_000


def _points_on(centres: np.ndarray, counts: list[int]) -> np.ndarray:
    return np.concatenate(
        [np.repeat(c[None], n, axis=0) for c, n in zip(centres, counts, strict=True)]
    )


def test_a_perfect_sampler_covers_every_mode_with_the_chi_share_of_high_quality_points():
    for mixture in (RING, GRID):
        rng = np.random.default_rng(1)
        points, _ = mixture.sample(SAMPLES, rng)
        stats = mode_statistics(points, mixture.centre_array, mixture.sigma)
        assert stats["modes"] == mixture.modes
        # binomial standard error of the share at 2,500 samples: 0.0021
        assert stats["hq"] == pytest.approx(PERFECT_HQ, abs=0.0085)
        assert 0 <= stats["reverse_kl"] < 0.03


def test_one_blob_on_one_centre_has_one_mode_and_reverse_kl_log_k():
    for mixture in (RING, GRID):
        points = mixture.centre_array[3] + np.zeros((SAMPLES, 2))
        stats = mode_statistics(points, mixture.centre_array, mixture.sigma)
        assert stats == {
            "modes": 1.0,
            "hq": 1.0,
            "reverse_kl": pytest.approx(math.log(mixture.modes)),
        }


def test_half_the_modes_equally_gives_reverse_kl_log_two():
    centres = RING.centre_array
    points = _points_on(centres[:4], [625] * 4)
    stats = mode_statistics(points, centres, RING.sigma)
    assert stats == {"modes": 4.0, "hq": 1.0, "reverse_kl": pytest.approx(math.log(2))}
    # unequal use of the same modes: p = (1/2, 1/4, 1/8, 1/8), KL = sum p log(8 p)
    points = _points_on(centres[:4], [1250, 625, 312, 313])
    p = np.array([1250, 625, 312, 313]) / 2500
    assert mode_statistics(points, centres, RING.sigma)["reverse_kl"] == pytest.approx(
        float(np.sum(p * np.log(8 * p)))
    )


def test_points_beyond_three_sigma_are_not_high_quality_and_count_no_mode():
    centres = GRID.centre_array
    inside = centres[0] + np.array([[2.99 * GRID.sigma, 0.0]])
    outside = centres[1] + np.array([[0.0, 3.01 * GRID.sigma]])
    stats = mode_statistics(np.concatenate([inside, outside]), centres, GRID.sigma)
    assert stats == {"modes": 1.0, "hq": 0.5, "reverse_kl": pytest.approx(math.log(25))}
    none = mode_statistics(outside, centres, GRID.sigma)
    assert none["modes"] == 0 and none["hq"] == 0 and math.isnan(none["reverse_kl"])


def test_energy_distance_matches_scipy_on_a_line_and_hand_values():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=300), rng.normal(1.0, 2.0, size=200)
    on_line = energy_distance(np.c_[x, np.zeros_like(x)], np.c_[y, np.zeros_like(y)])
    assert on_line == pytest.approx(scipy.stats.energy_distance(x, y), rel=1e-10)
    assert energy_distance([[0.0, 0.0]], [[3.0, 4.0]]) == pytest.approx(math.sqrt(2 * 5))
    same = rng.normal(size=(50, 2))
    assert energy_distance(same, same) == 0.0


def test_energy_ranks_a_near_miss_above_a_far_one_where_the_mode_metrics_cannot():
    """Every mode shifted by 4 sigma (no sample high quality) against shifted by a whole unit:
    the mode metrics score both 0, the energy distance tells them apart."""
    real = generate(GRID)["test"][:SAMPLES]
    exact = _points_on(GRID.centre_array, [100] * 25)
    near, far = exact + [4 * GRID.sigma, 0], exact + [1.0, 0]
    scores = [mode_statistics(p, GRID.centre_array, GRID.sigma) for p in (near, far)]
    assert scores[0]["hq"] == scores[1]["hq"] == 0 and scores[0]["modes"] == scores[1]["modes"] == 0
    e_exact, e_near, e_far = (energy_distance(p, real) for p in (exact, near, far))
    assert e_exact < e_near < e_far
    assert e_near < 0.5 * e_far


class _Fixed(nn.Module):
    """A 'generator' that returns given points: z's first coordinate is the point's index."""

    def __init__(self, points: np.ndarray) -> None:
        super().__init__()
        self.points = torch.as_tensor(points, dtype=torch.float32)
        self.anchor = nn.Parameter(torch.zeros(()))

    def forward(self, z):
        return self.points[z[:, 0].long()] + 0 * self.anchor


def test_mixture_metrics_score_a_generator_and_refuse_non_finite_points():
    real = torch.from_numpy(generate(RING)["test"])
    points = _points_on(RING.centre_array, [SAMPLES // 8 + (i < SAMPLES % 8) for i in range(8)])
    z = torch.arange(SAMPLES, dtype=torch.float32)[:, None].expand(SAMPLES, 3)
    scores, returned = mixture_metrics(_Fixed(points), z, real, RING.centre_array, RING.sigma, 1000)
    assert (
        scores["modes"] == 8 and scores["hq"] == 1 and scores["reverse_kl"] < 2e-6
    )  # 313 or 312 a mode
    assert scores["energy"] == pytest.approx(energy_distance(points, real[:SAMPLES].numpy()))
    np.testing.assert_array_equal(returned, points.astype(np.float32))
    points[5] = np.nan
    scores, _ = mixture_metrics(_Fixed(points), z, real, RING.centre_array, RING.sigma)
    assert all(math.isnan(v) for v in scores.values())


def test_point_networks_shapes_and_orthogonal_init():
    torch.manual_seed(0)
    opts = NetworkOptions(shape=(2,), z_dim=64, d_bn=False)
    g, d = PointGenerator(opts), PointDiscriminator(opts)
    assert g(torch.zeros(5, 64)).shape == (5, 2) and d(torch.zeros(5, 2)).shape == (5,)
    square = g.net[2].weight  # 128 x 128: orthogonal with gain 1.4
    torch.testing.assert_close(square @ square.T, 1.96 * torch.eye(128), atol=1e-4, rtol=0)
    assert all(
        float(layer.bias.abs().max()) == 0 for layer in g.net if isinstance(layer, nn.Linear)
    )


def test_points_and_images_refuse_each_others_networks_and_metrics():
    paper = {"generator": "infogan", "discriminator": "infogan"}
    with pytest.raises(ConfigError, match="generator='infogan'.*shape \\(2,\\)"):
        resolve_trial("ns", "grid", metrics=("mixture",), steps=5, **paper)
    with pytest.raises(ConfigError, match="metrics='fid'.*holds points"):
        resolve_trial("ns", "grid", metrics=("fid",), steps=5)
    with pytest.raises(ConfigError, match="metrics='mixture'.*holds images"):
        resolve_trial("ns", "mnist", metrics=("mixture",), steps=5)
    with pytest.raises(ConfigError, match="generator='points'"):
        resolve_trial("ns", "mnist", generator="points", discriminator="points", steps=5)


def test_every_registered_mixture_is_a_dataset():
    for name in MIXTURES:
        assert load_dataset(name).is_points


def test_the_evaluator_scores_points_and_never_a_non_finite_generator():
    from benchmark.evaluation import Evaluator, NonFiniteGenerator

    real = torch.from_numpy(generate(RING)["test"])
    evaluator = Evaluator(dataset="ring", test_images=real, metrics=("mixture",), z_dim=3)
    assert evaluator.z.shape == (SAMPLES, 3) and evaluator.record()["mixture_n"] == SAMPLES
    blob = np.repeat(RING.centre_array[:1], SAMPLES, axis=0)

    class Blob(_Fixed):
        def forward(self, z):
            return self.points[: len(z)] + 0 * self.anchor

    scores = evaluator.evaluate(Blob(blob))
    assert (scores["modes"], scores["hq"]) == (1.0, 1.0)
    assert scores["reverse_kl"] == pytest.approx(math.log(8))
    blob[7] = np.inf
    with pytest.raises(NonFiniteGenerator):
        evaluator.evaluate(Blob(blob))
    with pytest.raises(ValueError, match="float32 test points"):
        Evaluator(dataset="ring", test_images=real.to(torch.uint8), metrics=("mixture",))


def test_w1_is_exact_on_hand_values_and_against_an_assignment():
    from scipy.optimize import linear_sum_assignment

    from benchmark.evaluation.mixture_metrics import wasserstein_1

    assert wasserstein_1([[0, 0], [1, 0]], [[0, 1], [1, 1]]) == pytest.approx(1.0)
    assert wasserstein_1([[0, 0], [2, 0]], [[2, 0], [0, 0]]) == pytest.approx(0.0, abs=1e-12)
    rng = np.random.default_rng(5)
    x, y = rng.normal(size=(60, 2)), rng.normal(1, 2, size=(60, 2))
    costs = np.linalg.norm(x[:, None] - y[None], axis=2)
    rows, cols = linear_sum_assignment(costs)  # equal sizes: W1 is the best matching
    assert wasserstein_1(x, y) == pytest.approx(costs[rows, cols].mean(), rel=1e-9)
    # a translation moves every point by |v|, and nothing moves less on average
    shifted = generate(GRID)["test"][:SAMPLES]
    assert wasserstein_1(shifted, shifted + [0.6, 0.8]) == pytest.approx(1.0, rel=1e-9)


def test_w1_prefers_sharp_modes_to_a_blur():
    """Why the study ranks by W1: 24 of the 25 modes, sharp, against a uniform blur over the
    grid's square (0.30 against 0.72: the blur moves every point, the missing mode only its
    share); a perfect sampler is at the two samples' own mismatch (0.19)."""
    from benchmark.evaluation.mixture_metrics import wasserstein_1

    rng = np.random.default_rng(0)
    real = generate(GRID)["test"][:SAMPLES]
    modes = GRID.centre_array[rng.integers(24, size=SAMPLES)]
    modes = modes + GRID.sigma * rng.standard_normal((SAMPLES, 2))
    blur = rng.uniform(-5, 5, (SAMPLES, 2))
    assert wasserstein_1(modes, real) < 0.5 * wasserstein_1(blur, real)
    perfect, _ = GRID.sample(SAMPLES, rng)
    assert wasserstein_1(perfect, real) < 0.7 * wasserstein_1(modes, real)
