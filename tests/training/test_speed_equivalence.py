"""The optimised step (GANTraining) computes the same losses as the plain eager baseline loop."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from benchmark.models import resolve_trial
from benchmark.perf.plain_loop import EagerBaseline
from benchmark.training.step import GANTraining

STEPS = 6  # covers G steps at 0 and 5 for the n_disc = 5 models
# In float64: the two loops make the same draws and do the same arithmetic in other kernels
# (member-batched products against nn.Linear's), so only rounding differs, about 1e-16 per
# operation. In float32 that rounding, which Adam's first steps turn into moves of about lr
# where a gradient is near zero, grew to 5e-5 relative in NS's G loss after three steps.
TOLERANCE = {"rtol": 1e-9, "atol": 1e-12}


def _images() -> torch.Tensor:
    return torch.randint(
        0, 256, (64, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def _losses(trainer, steps: int) -> list[dict[str, float]]:
    out = []
    for _ in range(steps):
        trainer.train_step()
        losses = trainer.losses()
        out.append(losses[0] if isinstance(losses, list) else losses)  # a population of one
    return out


@pytest.mark.parametrize("model", ["ns", "wgan_gp", "began"])
def test_optimised_step_matches_eager_baseline(model, float64):
    trial = resolve_trial(model, "mnist", batch_size=8, metrics=())
    cpu = torch.device("cpu")
    eager = _losses(EagerBaseline(trial, _images(), cpu), STEPS)
    optimised = _losses(GANTraining(trial, _images(), cpu), STEPS)
    assert [sorted(step) for step in optimised] == [sorted(step) for step in eager]
    for step, (a, b) in enumerate(zip(optimised, eager, strict=True)):
        for name in a:
            torch.testing.assert_close(a[name], b[name], **TOLERANCE, msg=f"{step} {name}")
    assert abs(eager[-1]["d_loss"] - eager[0]["d_loss"]) > 0  # the losses did move


# The relativistic presets' spectral norm is switched off here: with it the two loops differ
# by rounding (1 ulp in a loss after one step, 2e-5 relative after six, for ns as much as for
# ragan), too much for this comparison of draws and arithmetic.
@pytest.mark.parametrize(
    ("model", "options"),
    [
        ("rsgan", {"spectral_norm": False}),
        ("ragan", {"spectral_norm": False}),
        ("rpgan", {}),
        ("ns_r1", {}),
        ("rpgan", {"latent": "uniform", "resample_real_for_g": False}),
        ("ns", {"label_smoothing": 0.1, "label_flip": 0.2}),
    ],
)
def test_new_losses_and_tricks_match_the_eager_baseline(model, options, float64):
    trial = resolve_trial(model, "mnist", batch_size=8, metrics=(), **options)
    cpu = torch.device("cpu")
    eager = _losses(EagerBaseline(trial, _images(), cpu), STEPS)
    optimised = _losses(GANTraining(trial, _images(), cpu), STEPS)
    for step, (a, b) in enumerate(zip(optimised, eager, strict=True)):
        assert sorted(a) == sorted(b)
        for name in a:
            torch.testing.assert_close(a[name], b[name], **TOLERANCE, msg=f"{step} {name}")


def test_channels_last_step_matches_the_default_layout():
    # Same maths in another memory layout: only the summation order of the kernels differs.
    trial = resolve_trial("ns", "cifar10", batch_size=8, metrics=())
    images = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8)
    cpu = torch.device("cpu")
    plain = _losses(GANTraining(trial, images, cpu), 3)
    nhwc = GANTraining(dataclasses.replace(trial, channels_last=True), images, cpu)
    for a, b in zip(_losses(nhwc, 3), plain, strict=True):
        for name in a:
            torch.testing.assert_close(a[name], b[name], rtol=1e-4, atol=1e-5, msg=name)


def test_points_are_used_as_stored_by_both_loops(float64):
    """The mixtures' points are floats, not images: neither loop scales them."""
    points = {"generator": "points", "discriminator": "points", "d_bn": False}
    trial = resolve_trial("ns", "grid", batch_size=8, metrics=(), **points)
    points = torch.randn(64, 2, generator=torch.Generator().manual_seed(0)) * 4
    cpu = torch.device("cpu")
    eager = _losses(EagerBaseline(trial, points, cpu), STEPS)
    optimised = _losses(GANTraining(trial, points, cpu), STEPS)
    for step, (a, b) in enumerate(zip(optimised, eager, strict=True)):
        for name in a:
            torch.testing.assert_close(a[name], b[name], **TOLERANCE, msg=f"{step} {name}")
