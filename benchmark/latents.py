"""Latent distributions p(z) that G is trained and evaluated on, and their registry.

The study draws z ~ U[-1, 1]^z_dim (compare_gan v1); "normal" is the practitioners' trick
z ~ N(0, I) (Radford et al. 2015's advice as collected in the "GAN hacks" list, and the
default of most later code). The trial's `latent` option picks one; the same distribution
feeds training, the samples grid and every evaluation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from benchmark.registry import Registry


@dataclass(frozen=True)
class Latent:
    """`sample(n, z_dim, rng, device)`; `bound` is the support's box |z_i| <= bound (None:
    unbounded), which a search over z (the polygon recall's inversion) must respect."""

    sample: Callable[[int, int, torch.Generator, torch.device], Tensor]
    bound: float | None


def _uniform(n: int, z_dim: int, rng: torch.Generator, device: torch.device) -> Tensor:
    return torch.rand(n, z_dim, generator=rng, device=device) * 2 - 1


def _normal(n: int, z_dim: int, rng: torch.Generator, device: torch.device) -> Tensor:
    return torch.randn(n, z_dim, generator=rng, device=device)


LATENTS: Registry[Latent] = Registry("latent")
LATENTS.register("uniform", Latent(_uniform, bound=1.0))
LATENTS.register("normal", Latent(_normal, bound=None))
