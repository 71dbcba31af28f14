"""Fréchet distance, KID and improved precision/recall against independent hand computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from benchmark.evaluation.metrics import (
    frechet_distance,
    improved_precision_recall,
    kid,
    mean_cov,
)


def reference_fd(mu1, s1, mu2, s2) -> float:
    """||mu1 - mu2||^2 + tr S1 + tr S2 - 2 tr sqrt(sqrt(S1) S2 sqrt(S1)), all by numpy eigh."""
    w, v = np.linalg.eigh(s1)
    root1 = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    inner = root1 @ s2 @ root1
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt)


def random_stats(d: int, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / np.sqrt(d) + rng.normal(size=d)
    return features.mean(axis=0), np.cov(features, rowvar=False)


@pytest.mark.parametrize("d", [64, 2048])
def test_frechet_distance_matches_eigh_reference(d: int) -> None:
    mu1, s1 = random_stats(d, 2 * d, seed=1)
    mu2, s2 = random_stats(d, 2 * d, seed=2)
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(
        reference_fd(mu1, s1, mu2, s2), rel=1e-6
    )


def test_mean_cov_matches_numpy() -> None:
    features = np.random.default_rng(0).normal(size=(50, 5))
    mu, sigma = mean_cov(torch.from_numpy(features).float())
    np.testing.assert_allclose(mu, features.astype(np.float32).mean(axis=0), rtol=1e-6)
    np.testing.assert_allclose(
        sigma, np.cov(features.astype(np.float32).astype(np.float64), rowvar=False), rtol=1e-9
    )
    assert mu.dtype == sigma.dtype == np.float64


def test_frechet_distance_of_a_set_with_itself_is_zero() -> None:
    # Rank-deficient (n < d), as with small samples: tiny negative eigenvalues must not matter.
    mu, sigma = random_stats(64, 40, seed=3)
    value = frechet_distance(mu, sigma, mu, sigma)
    assert value == pytest.approx(0.0, abs=1e-8 * np.trace(sigma))
    assert value >= 0.0


def test_frechet_distance_is_clamped_at_zero_after_computing() -> None:
    from torchmetrics.image.fid import _compute_fid

    mu, sigma = random_stats(32, 20, seed=4)
    clamped = []
    for seed in range(20):
        noise = np.random.default_rng(seed).normal(scale=1e-9, size=mu.shape)
        raw = float(_compute_fid(*(torch.from_numpy(a) for a in (mu, sigma, mu + noise, sigma))))
        value = frechet_distance(mu, sigma, mu + noise, sigma)
        assert value == max(raw, 0.0)
        clamped.append(raw < 0)
    assert any(clamped), "no case exercised the clamp"


def test_kid_on_three_points_equals_hand_value() -> None:
    # k(x, y) = (x.y / 2 + 1)^3. Real off-diagonal kernels: all 1 (mean 1); fake: 8, 8, 1
    # (mean 17/3); cross: sum 27.75 over 9. MMD^2 = 1 + 17/3 - 2 * 27.75 / 9 = 0.5 exactly.
    real = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    fake = torch.tensor([[1.0, 1.0], [2.0, 0.0], [0.0, 2.0]])
    mean, std = kid(real, fake, subsets=5)
    assert mean == pytest.approx(0.5, abs=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)  # subset size min(1000, 3) = all points


def test_kid_subsets_are_seeded_and_sized() -> None:
    rng = np.random.default_rng(0)
    real = torch.from_numpy(rng.normal(size=(60, 4)))
    fake = torch.from_numpy(rng.normal(size=(50, 4)) + 0.5)
    first = kid(real, fake, subsets=10, subset_size=20, seed=1)
    assert first == kid(real, fake, subsets=10, subset_size=20, seed=1)
    assert first != kid(real, fake, subsets=10, subset_size=20, seed=2)
    # torchmetrics' reference on the whole sets equals our single "subset" of size min(n).
    from torchmetrics.image.kid import poly_mmd

    whole = kid(real[:50], fake, subsets=1)[0]
    assert whole == pytest.approx(float(poly_mmd(real[:50], fake)), rel=1e-12)


def test_improved_precision_recall_k1_hand_values() -> None:
    # Real 1-NN radii: 1, 1, 2, 7, 30. Fake (0.5, 0.5) is 0.71 from (0, 0): in; (4, 0) is 1 from
    # (3, 0): in; (20, 0) is 10 from (10, 0) (> 7) and 36 from (0, 30) (> 30): out; (10, 6) is 6
    # from (10, 0): in -> precision 3/4. Fake 1-NN radii: 3.54, 3.54, 11.66, 8.49; every real
    # point but (0, 30) (26 from (10, 6), 36 from (20, 0)) is inside -> recall 4/5.
    real = torch.tensor([[0, 0], [1, 0], [3, 0], [10, 0], [0, 30]], dtype=torch.float64)
    fake = torch.tensor([[0.5, 0.5], [4, 0], [20, 0], [10, 6]], dtype=torch.float64)
    assert improved_precision_recall(real, fake, k=1) == (pytest.approx(0.75), pytest.approx(0.8))


def test_improved_precision_recall_k3_hand_values() -> None:
    # Real 3-NN radii on the line: 0 -> 3, 1 -> 2, 2 -> 2, 3 -> 3, 10 -> 9. Fake (5, 0) is 2
    # from 3 (r 3): in; (0, 5): out of every ball; (20, 0) is 10 from 10 (r 9): out; (-3, 0) is
    # exactly 3 from 0 (r 3, the boundary counts): in; (1, 1) is 1 from 1 (r 2): in -> 3/5.
    real = torch.tensor([[0, 0], [1, 0], [2, 0], [3, 0], [10, 0]], dtype=torch.float64)
    fake = torch.tensor([[5, 0], [0, 5], [20, 0], [-3, 0], [1, 1]], dtype=torch.float64)
    precision, recall = improved_precision_recall(real, fake, k=3)
    assert precision == pytest.approx(0.6)
    # Fake 3-NN radii are 8, 7.07, 20.6, 8, 19.0: (1, 1)'s ball holds every real point.
    assert recall == pytest.approx(1.0)


def test_improved_precision_recall_does_not_depend_on_batch_size() -> None:
    rng = np.random.default_rng(5)
    real = torch.from_numpy(rng.normal(size=(70, 3)))
    fake = torch.from_numpy(rng.normal(size=(60, 3)) * 1.3)
    expected = improved_precision_recall(real, fake, batch_size=1000)
    assert improved_precision_recall(real, fake, batch_size=7) == expected
