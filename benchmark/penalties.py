"""Discriminator penalties (the paper's GP and DRAGAN, and R1/R2), and their registry.

A penalty returns the unscaled term; the trainer adds `lam * penalty` to the D loss.
Both use s = sqrt(1e-4 + ||grad||^2) as the reference code does, which keeps the
gradient of s finite where the gradient norm is zero.
  gp:     x~ = x + a (x^ - x), a ~ U[0,1] per sample; E (s - 1)^2 for the gradient of the logit.
  dragan: x_p = x + 0.5 std(x) U[0,1) (one scalar std per batch, ddof 0; uniform noise per
          pixel),
          x~ = x + a (x_p - x); E (s - 1)^2 for the gradient of D = sigmoid(logit).
Beyond the paper, the zero-centred penalties on the logit l, written as the papers write them
so that lam is their gamma:
  r1:     1/2 E ||grad_x l(x)||^2 on the real batch (Mescheder et al. 2018, "Which training
          methods for GANs do actually converge?", R1 = gamma/2 E ||grad D||^2; their code,
          LMescheder/GAN_stability gan_training/train.py, adds reg_param E ||grad||^2
          without the 1/2: its reg_param 10 is gamma = 20 here).
  r1r2:   1/2 E ||grad_x l(x)||^2 + 1/2 E ||grad_x l(x^)||^2, R1 on the real and R2 on the
          generated batch (Huang et al. 2024, "The GAN is dead; long live the GAN!": their
          code's discriminator loss adds (gamma / 2) (R1 + R2)).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from benchmark.registry import Registry

Penalty = Callable[[nn.Module, Tensor, Tensor, torch.Generator], Tensor]
PENALTIES: Registry[Penalty] = Registry("penalty")


def _per_sample_alpha(x: Tensor, rng: torch.Generator) -> Tensor:
    shape = (x.shape[0],) + (1,) * (x.dim() - 1)
    return torch.rand(shape, generator=rng, device=x.device, dtype=x.dtype)


def gradient_norm_penalty(output_of: Callable[[Tensor], Tensor], points: Tensor) -> Tensor:
    """E (sqrt(1e-4 + ||d output / d point||^2) - 1)^2, differentiable for the D update."""
    points = points.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(output_of(points).sum(), points, create_graph=True)
    slopes = torch.sqrt(1e-4 + grad.flatten(1).square().sum(dim=1))
    return (slopes - 1).square().mean()


@PENALTIES.register("none")
def no_penalty(d: nn.Module, real: Tensor, fake: Tensor, rng: torch.Generator) -> Tensor:
    return torch.zeros((), device=real.device)


@PENALTIES.register("gp")
def gradient_penalty(d: nn.Module, real: Tensor, fake: Tensor, rng: torch.Generator) -> Tensor:
    alpha = _per_sample_alpha(real, rng)
    return gradient_norm_penalty(d, real + alpha * (fake.detach() - real))


def dragan_points(real: Tensor, rng: torch.Generator) -> Tensor:
    """Points between each real sample and its noisy copy x + 0.5 std(x) U[0,1)."""
    noise = torch.rand(real.shape, generator=rng, device=real.device, dtype=real.dtype)
    # numpy's std in the reference (DRAGAN.get_perturbed_batch): the biased one, ddof 0.
    perturbed = real + 0.5 * real.std(correction=0) * noise
    alpha = _per_sample_alpha(real, rng)
    return real + alpha * (perturbed - real)


@PENALTIES.register("dragan")
def dragan_penalty(d: nn.Module, real: Tensor, fake: Tensor, rng: torch.Generator) -> Tensor:
    return gradient_norm_penalty(lambda x: torch.sigmoid(d(x)), dragan_points(real, rng))


def squared_gradient_norm(d: nn.Module, points: Tensor) -> Tensor:
    """E ||d l / d x||^2 at the points, differentiable for the D update (no smoothing: the
    square has a finite gradient at zero)."""
    points = points.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(d(points).sum(), points, create_graph=True)
    return grad.flatten(1).square().sum(dim=1).mean()


@PENALTIES.register("r1")
def r1_penalty(d: nn.Module, real: Tensor, fake: Tensor, rng: torch.Generator) -> Tensor:
    return 0.5 * squared_gradient_norm(d, real)


@PENALTIES.register("r1r2")
def r1_r2_penalty(d: nn.Module, real: Tensor, fake: Tensor, rng: torch.Generator) -> Tensor:
    return 0.5 * (squared_gradient_norm(d, real) + squared_gradient_norm(d, fake))
