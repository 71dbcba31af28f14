"""The penalties on discriminators whose gradient is known, alone and in a population."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.penalties import PENALTIES, dragan_points, lam_from_source
from benchmark.training.stacked import single_stream_uniform


class LinearD(nn.Module):
    """l(x) = w . x + b, so the gradient of the logit is w everywhere."""

    def __init__(self, w: list[float], b: float = 0.0) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w))
        self.b = nn.Parameter(torch.tensor(b))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1) @ self.w + self.b


def rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def alone(name: str, d: nn.Module, real, fake, generator: torch.Generator) -> torch.Tensor:
    """Penalty `name` of one D on one batch: the population form with a population of one."""
    population_d = lambda points: d(points[0])[None]  # noqa: E731
    return PENALTIES.get(name)(
        population_d, real[None], fake[None], single_stream_uniform(generator)
    )[0]


def test_gradient_penalty_on_linear_discriminator():
    d = LinearD([3.0, 4.0])  # |w| = 5
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    value = alone("gp", d, real, fake, rng())
    assert float(value.detach()) == pytest.approx((math.sqrt(1e-4 + 25.0) - 1) ** 2, rel=1e-6)
    d_unit = LinearD([1.0, 0.0]).double()  # |w| = 1: only the 1e-4 smoothing remains
    unit = alone("gp", d_unit, real.double(), fake.double(), rng())
    assert float(unit) == pytest.approx((math.sqrt(1.0001) - 1) ** 2, rel=1e-6)


def test_gradient_penalty_interpolates_between_real_and_fake():
    seen = []

    class Spy(LinearD):
        def forward(self, x):
            seen.append(x.detach().clone())
            return super().forward(x)

    real, fake = torch.zeros(1000, 2), torch.ones(1000, 2)
    alone("gp", Spy([1.0, 1.0]), real, fake, rng())
    points = seen[0]
    assert torch.equal(points[:, 0], points[:, 1])  # one alpha per sample
    assert float(points.min()) >= 0 and float(points.max()) <= 1
    assert float(points.mean()) == pytest.approx(0.5, abs=0.03)  # alpha ~ U[0, 1]


def test_gradient_penalty_is_differentiable_for_d():
    d = LinearD([3.0, 4.0])
    value = alone("gp", d, torch.randn(4, 2), torch.randn(4, 2), rng())
    value.backward()
    # d/dw (|w| - 1)^2 = 2 (|w| - 1) w / |w|, ignoring the 1e-4 smoothing.
    s = math.sqrt(25.0001)
    expected = torch.tensor([3.0, 4.0]) * 2 * (s - 1) / s
    torch.testing.assert_close(d.w.grad, expected, rtol=1e-5, atol=1e-5)


def test_dragan_perturbation_range():
    real = torch.rand(256, 1, 4, 4)
    points = dragan_points(real[None], single_stream_uniform(rng(1)))[0]
    scale = 0.5 * float(real.std())
    offset = (points - real) / scale
    assert float(offset.min()) >= 0.0
    assert float(offset.max()) < 1.0  # alpha * U[0, 1) < 1
    assert float(offset.max()) > 0.9  # and it uses most of the range


def test_dragan_points_use_the_biased_batch_std():
    """x_p = x + 0.5 np.std(x) U[0,1) as the reference's numpy code (ddof 0); x~ between."""
    real = torch.rand(4, 1, 2, 2, dtype=torch.float64)
    points = dragan_points(real[None], single_stream_uniform(rng(3)))[0]
    draws = rng(3)  # the same draws in the same order: per-pixel noise, then per-sample alpha
    noise = torch.rand(real.shape, generator=draws, dtype=torch.float64)
    alpha = torch.rand((4, 1, 1, 1), generator=draws, dtype=torch.float64)
    std = float(np.std(real.numpy()))
    torch.testing.assert_close(points, real + alpha * 0.5 * std * noise, rtol=0, atol=1e-12)


def test_dragan_penalty_on_linear_discriminator():
    """Gradient of sigmoid(w.x) is sigmoid'(l) w: check against that formula at the same points."""
    d = LinearD([0.5, -1.0, 2.0], b=0.3)
    real = torch.rand(16, 3)
    value = alone("dragan", d, real, real, rng(7))
    points = dragan_points(real[None], single_stream_uniform(rng(7)))[0]
    with torch.no_grad():
        logit = d(points)
        slope = torch.sigmoid(logit) * (1 - torch.sigmoid(logit)) * d.w.norm()
        expected = ((torch.sqrt(1e-4 + slope**2) - 1) ** 2).mean()
    assert float(value) == pytest.approx(float(expected), rel=1e-6)


def test_no_penalty_is_zero():
    assert float(alone("none", LinearD([1.0]), torch.ones(2, 1), torch.ones(2, 1), rng())) == 0


# ---- zero-centred penalties: R1 (real) and R2 (generated) ------------------------------------


class QuadraticD(nn.Module):
    """l(x) = 1/2 ||x||^2 + w . x: the gradient at x is x + w, different for every sample."""

    def __init__(self, w: list[float]) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor(w, dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.flatten(1)
        return 0.5 * x.square().sum(dim=1) + x @ self.w


def test_r1_and_r2_on_linear_discriminator():
    """grad l = w everywhere: R1 = 1/2 ||w||^2 = 12.5, R1 + R2 = 25, with lam = gamma."""
    d = LinearD([3.0, 4.0])
    real, fake = torch.randn(8, 2), torch.randn(8, 2)
    r1 = alone("r1", d, real, fake, rng())
    assert float(r1) == pytest.approx(12.5, rel=1e-6)
    r1.backward()
    torch.testing.assert_close(d.w.grad, torch.tensor([3.0, 4.0]))  # d/dw 1/2 ||w||^2 = w
    d.w.grad = None
    both = alone("r1r2", d, real, fake, rng())
    assert float(both) == pytest.approx(25.0, rel=1e-6)
    both.backward()
    torch.testing.assert_close(d.w.grad, torch.tensor([6.0, 8.0]))


def test_r1_is_taken_on_the_real_batch_and_r2_on_the_generated_one():
    d = QuadraticD([1.0, -1.0])
    real = torch.tensor([[0.0, 0.0], [1.0, 2.0]], dtype=torch.float64)  # grads [1,-1], [2, 1]
    fake = torch.tensor([[-1.0, 1.0], [3.0, 0.0]], dtype=torch.float64)  # grads [0, 0], [4,-1]
    r1 = alone("r1", d, real, fake, rng())
    assert float(r1) == pytest.approx(0.5 * (2 + 5) / 2)  # 1/2 E ||x + w||^2 on real
    both = alone("r1r2", d, real, fake, rng())
    assert float(both) == pytest.approx(0.5 * (2 + 5) / 2 + 0.5 * (0 + 17) / 2)


def test_r1_draws_no_randomness():
    generator = rng(4)
    state = generator.get_state()
    alone("r1r2", LinearD([1.0]), torch.ones(3, 1), torch.zeros(3, 1), generator)
    assert torch.equal(generator.get_state(), state)


@pytest.mark.parametrize("name", ["gp", "dragan", "r1", "r1r2"])
def test_a_population_penalty_is_each_members_own(name):
    """Two linear Ds with different w on different batches, stacked: each member's term and
    its gradient equal those of that member alone, drawn from its own generator."""
    weights = torch.tensor([[3.0, 4.0, 0.0], [0.1, -0.2, 0.5]], dtype=torch.float64)
    real = torch.rand(2, 6, 3, dtype=torch.float64, generator=rng(1))
    fake = torch.rand(2, 6, 3, dtype=torch.float64, generator=rng(2))
    stacked = weights.clone().requires_grad_(True)
    generators = [rng(10), rng(11)]

    def draws(shape, dtype):
        return torch.stack([torch.rand(tuple(shape), generator=g, dtype=dtype) for g in generators])

    values = PENALTIES.get(name)(
        lambda x: torch.einsum("mbi,mi->mb", x.flatten(2), stacked), real, fake, draws
    )
    values.sum().backward()
    for i in range(2):
        d = LinearD([0.0, 0.0, 0.0]).double()
        d.w.data.copy_(weights[i])
        value = alone(name, d, real[i], fake[i], rng(10 + i))
        value.backward()
        assert float(values[i]) == pytest.approx(float(value), rel=1e-12)
        torch.testing.assert_close(stacked.grad[i], d.w.grad, rtol=1e-12, atol=1e-15)
    assert abs(float(values[0] - values[1])) > 1e-3  # different members, different terms


# ---- the sources' gamma on their [-1, 1] images, as lam on ours ------------------------------


def _source_grad2(d, x: torch.Tensor) -> torch.Tensor:
    """||grad_x d(x)||^2 per sample, the sources' own code: GAN_stability compute_grad2
    (gan_training/train.py:123-132), R3GAN ZeroCenteredGradientPenalty (R3GAN/Trainer.py:10-12)."""
    x = x.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(x).sum(), x, create_graph=True)
    return grad.square().flatten(1).sum(dim=1)


def test_lam_from_source_gives_the_sources_penalty_on_our_pixel_scale():
    """D is one function of the image: l(x) on the sources' x in [-1, 1], so on our y in [0, 1]
    it is l(2y - 1). Its penalty here, with the converted lam, equals the source's."""
    torch.manual_seed(0)
    source_d = QuadraticD([0.3, -0.7, 0.2, 0.5])  # l(x) = 1/2 ||x||^2 + w . x
    ours_d = lambda y: source_d(2 * y - 1)  # noqa: E731  the same D on [0, 1] images
    real01 = torch.rand(6, 4, dtype=torch.float64)
    fake01 = torch.rand(6, 4, dtype=torch.float64)
    real11, fake11 = 2 * real01 - 1, 2 * fake01 - 1

    # GAN_stability: reg_param * E ||grad||^2 on the real batch (gan_training/train.py:53).
    reg_param = 10.0
    lam = lam_from_source(reg_param, scale=1.0)
    assert lam == 5.0
    source = reg_param * _source_grad2(source_d, real11).mean()
    by_hand = reg_param * (real11 + source_d.w).square().sum(dim=1).mean()  # grad = x + w
    ours = lam * alone("r1", ours_d, real01, fake01, rng())
    torch.testing.assert_close(source, by_hand)
    torch.testing.assert_close(ours, source, rtol=1e-12, atol=0)
    # The unconverted value is twice the source's: the square of a gradient twice as large.
    torch.testing.assert_close(reg_param * alone("r1", ours_d, real01, fake01, rng()), 2 * source)

    # R3GAN: mean over samples of (gamma / 2)(R1 + R2) (R3GAN/Trainer.py:35-42).
    gamma = 0.05
    lam = lam_from_source(gamma, scale=0.5)
    assert lam == 0.0125
    r1, r2 = _source_grad2(source_d, real11), _source_grad2(source_d, fake11)
    source = (gamma / 2 * (r1 + r2)).mean()
    ours = lam * alone("r1r2", ours_d, real01, fake01, rng())
    torch.testing.assert_close(ours, source, rtol=1e-12, atol=0)
    # And the gradient D's weights get from it, which is what training sees.
    (source_grad,) = torch.autograd.grad(source, source_d.w)
    (ours_grad,) = torch.autograd.grad(ours, source_d.w)
    torch.testing.assert_close(ours_grad, source_grad, rtol=1e-12, atol=0)
