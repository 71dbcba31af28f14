"""Polygon precision/recall: real triangles score high, noise and a one-triangle generator low."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

polygons = pytest.importorskip("benchmark.polygons", reason="benchmark.polygons not available")

from benchmark.evaluation.polygon_metrics import (  # noqa: E402
    PolygonSettings,
    distance_to_manifold,
    f1_score,
    invert,
    polygon_metrics,
    polygon_precision,
    triangle_bank,
)

SETTINGS = PolygonSettings()  # the defaults: delta 0.075 RMSE, 20k-triangle bank


def triangles(n: int, seed: int) -> torch.Tensor:
    """Fresh triangles from the dataset's distribution, as uint8 (n, 1, 28, 28) like the data."""
    shares = polygons.render_triangles(polygons.sample_vertices(n, np.random.default_rng(seed)))
    return torch.from_numpy(polygons.to_uint8(shares))


@pytest.fixture(scope="module")
def bank() -> torch.Tensor:
    return triangle_bank(SETTINGS.bank_size, SETTINGS.bank_seed, SETTINGS.rotation)


@pytest.fixture(scope="module")
def test_triangles() -> torch.Tensor:
    return triangles(300, seed=7)


def test_real_triangles_are_within_delta(bank, test_triangles) -> None:
    # Bank error on real triangles is <= ~0.046 RMSE, well under delta = 0.075: expect 1.0.
    assert polygon_precision(test_triangles, bank, SETTINGS.delta) >= 0.9


def test_noise_and_blank_images_are_not_triangles(bank) -> None:
    noise = torch.rand(200, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    # Uniform noise is ~0.53 RMSE from every triangle: expect 0.0.
    assert polygon_precision(noise, bank, SETTINGS.delta) <= 0.1
    # A blank (background-only) image is ~0.11 from the nearest triangle, above delta.
    assert distance_to_manifold(torch.ones(1, 1, 28, 28), bank).item() > SETTINGS.delta


def test_shifted_triangles_are_off_the_manifold(bank, test_triangles) -> None:
    # The dataset centres the vertex mean; a 2-px shift is ~0.2 RMSE away: expect ~0.
    shifted = torch.roll(test_triangles, shifts=2, dims=3)
    assert polygon_precision(shifted, bank, SETTINGS.delta) <= 0.1


class OneTriangle(nn.Module):
    """Ignores z and always draws the same triangle (total mode collapse)."""

    def __init__(self, image: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("image", image.float() / 255)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.image.expand(len(z), -1, -1, -1)


class Memoriser(nn.Module):
    """A smooth lookup: G(z) = sum_i softmax(-||z - c_i||^2 / t)_i x_i over stored triangles.

    Differentiable in z, and every stored triangle is (almost exactly) reachable, so inversion
    should find a test triangle whenever it is stored.
    """

    def __init__(self, images: torch.Tensor, z_dim: int = 8, temperature: float = 0.02) -> None:
        super().__init__()
        codes = torch.rand(len(images), z_dim, generator=torch.Generator().manual_seed(1)) * 2 - 1
        self.register_buffer("codes", codes)
        self.register_buffer("images", images.float().reshape(len(images), -1) / 255)
        self.temperature = temperature

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        weights = torch.softmax(-torch.cdist(z, self.codes).square() / self.temperature, dim=1)
        return (weights @ self.images).reshape(-1, 1, 28, 28)


def test_one_triangle_generator_has_perfect_precision_and_low_recall(test_triangles) -> None:
    settings = PolygonSettings(n_precision=200, n_recall=100, steps=10)
    z = torch.rand(200, 8) * 2 - 1
    scores = polygon_metrics(OneTriangle(test_triangles[0]), z, test_triangles[1:], settings)
    assert scores["precision"] == pytest.approx(1.0)
    # Only test triangles within 0.075 RMSE of that one triangle count; expect a few percent.
    assert scores["recall"] <= 0.1
    assert scores["f1"] == pytest.approx(f1_score(scores["precision"], scores["recall"]))


def test_memorising_generator_recovers_stored_triangles(test_triangles) -> None:
    stored = test_triangles[:100]
    generator = Memoriser(stored)
    settings = PolygonSettings(n_precision=500, n_recall=100, restarts=3, steps=100)
    z = torch.rand(500, 8, generator=torch.Generator().manual_seed(2)) * 2 - 1
    scores = polygon_metrics(generator, z, stored, settings)
    # Every target is stored and reachable: inversion should find (nearly) all of them.
    assert scores["recall"] >= 0.9
    assert scores["precision"] >= 0.9  # its samples are (near-)copies of real triangles
    # Triangles it never stored are mostly out of reach: blends of the 100 stored ones come
    # within delta of only some of them (0.22 measured with these seeds).
    assert polygon_metrics(generator, z, test_triangles[150:250], settings)["recall"] <= 0.4


def test_inversion_does_not_depend_on_batching(test_triangles) -> None:
    generator = Memoriser(test_triangles[:50])
    starts = torch.rand(6, 2, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    z_all, err_all = invert(generator, test_triangles[:6], starts, steps=20)
    z_one, err_one = invert(generator, test_triangles[:1], starts[:1], steps=20)
    torch.testing.assert_close(z_one, z_all[:1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(err_one, err_all[:1], rtol=1e-5, atol=1e-6)
    assert (z_all.abs() <= 1).all()


def test_evaluator_polygon_metric(test_triangles) -> None:
    from benchmark.evaluation import Evaluator

    settings = PolygonSettings(n_precision=50, n_recall=20, steps=5)
    evaluator = Evaluator(
        dataset="polygons",
        test_images=test_triangles,
        metrics=["polygon"],
        z_dim=8,
        polygon=settings,
    )
    generator = OneTriangle(test_triangles[0]).train()
    scores = evaluator.evaluate(generator)
    assert set(scores) == {"precision", "recall", "f1"}
    assert scores["precision"] == pytest.approx(1.0)
    assert scores["recall"] == pytest.approx(1 / 20)  # only test_triangles[0] itself
    assert generator.training
    assert evaluator.record()["polygon_delta"] == SETTINGS.delta


class _ScaledFirstCoordinate(nn.Module):
    """G(z) = z_0 / 4 in every pixel: a gray image of 0.5 needs z_0 = 2, outside [-1, 1]."""

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return (z[:, :1] / 4).expand(-1, 28 * 28).reshape(-1, 1, 28, 28)


def test_inversion_respects_the_latents_support():
    gray = torch.full((1, 1, 28, 28), 0.5)
    start = torch.zeros(1, 1, 4)
    z, err = invert(_ScaledFirstCoordinate(), gray, start, steps=100, bound=1.0)
    assert float(z[0, 0]) == pytest.approx(1.0)  # U[-1, 1]: clamped at the edge
    assert float(err[0]) == pytest.approx(0.25, abs=1e-6)
    z, err = invert(_ScaledFirstCoordinate(), gray, start, steps=100, bound=None)
    assert float(z[0, 0]) == pytest.approx(2.0, abs=0.05)  # N(0, I): unbounded
    assert float(err[0]) == pytest.approx(0.0, abs=0.0125)
