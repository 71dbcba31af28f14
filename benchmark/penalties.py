"""Discriminator penalties (the paper's GP and DRAGAN), and their registry.

A penalty returns the unscaled term; the trainer adds `lam * penalty` to the D loss.
Both use s = sqrt(1e-4 + ||grad||^2) as the reference code does, which keeps the
gradient of s finite where the gradient norm is zero.
  gp:     x~ = x + a (x^ - x), a ~ U[0,1] per sample; E (s - 1)^2 for the gradient of the logit.
  dragan: x_p = x + 0.5 std(x) U[0,1) (one scalar std per batch, ddof 0; uniform noise per
          pixel),
          x~ = x + a (x_p - x); E (s - 1)^2 for the gradient of D = sigmoid(logit).
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
