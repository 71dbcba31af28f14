"""Latent distributions: the Gaussian trick's moments, and the study's uniform default."""

from __future__ import annotations

import math

import pytest
import torch

from benchmark.config import TrialConfig
from benchmark.evaluation import fixed_z
from benchmark.latents import LATENTS

N, DIM = 200_000, 4  # 800,000 draws


def moments(z: torch.Tensor) -> tuple[float, float, float]:
    z = z.double().flatten()
    return float(z.mean()), float(z.var()), float((z - z.mean()).pow(4).mean() / z.var() ** 2)


def test_normal_latent_moments():
    """N(0, 1) per coordinate: mean 0, variance 1, kurtosis 3 (uniform's is 1.8)."""
    z = LATENTS.get("normal").sample(N, DIM, torch.Generator().manual_seed(0), torch.device("cpu"))
    mean, var, kurtosis = moments(z)
    n = z.numel()
    assert mean == pytest.approx(0.0, abs=5 / math.sqrt(n))  # 5 standard errors
    assert var == pytest.approx(1.0, abs=5 * math.sqrt(2 / n))
    assert kurtosis == pytest.approx(3.0, abs=5 * math.sqrt(24 / n))
    # Coordinates are independent: the correlation between two is 0.
    corr = float(torch.corrcoef(z[:, :2].double().T)[0, 1])
    assert corr == pytest.approx(0.0, abs=5 / math.sqrt(N))
    assert LATENTS.get("normal").bound is None


def test_uniform_latent_is_the_default_and_the_references():
    assert TrialConfig.__dataclass_fields__["latent"].default == "uniform"
    z = LATENTS.get("uniform").sample(N, DIM, torch.Generator().manual_seed(0), torch.device("cpu"))
    mean, var, kurtosis = moments(z)
    n = z.numel()
    assert float(z.min()) >= -1 and float(z.max()) <= 1
    assert mean == pytest.approx(0.0, abs=5 * math.sqrt(1 / 3 / n))
    assert var == pytest.approx(1 / 3, abs=5 * math.sqrt(4 / 45 / n))  # Var of U^2: 4/45
    assert kurtosis == pytest.approx(1.8, abs=0.01)
    assert LATENTS.get("uniform").bound == 1.0
    # U[-1, 1] exactly as before: 2 U[0, 1) - 1 from the same generator.
    expected = torch.rand(N, DIM, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert torch.equal(z, expected)


def test_evaluation_z_follows_the_latent():
    uniform = fixed_z(1000, 8, 3)
    assert torch.equal(
        uniform, torch.rand(1000, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    )
    normal = fixed_z(1000, 8, 3, "normal")
    assert torch.equal(normal, torch.randn(1000, 8, generator=torch.Generator().manual_seed(3)))
