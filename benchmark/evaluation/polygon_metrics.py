"""Precision, recall and F1 on the convex-polygons (triangles) dataset, as in Lucic et al. 2018.

- Distance: per-pixel RMSE between 28x28 images in [0, 1], ||x - y||_2 / 28. It reads as
  "typical pixel error", independent of the image size.
- Distance to the triangle manifold: the nearest neighbour in a bank of `bank_size` (20k)
  triangles rendered with `benchmark.polygons` from the dataset's own distribution. The bank
  is a finite sample, so this over-estimates the true distance: for real triangles the
  nearest-neighbour RMSE is 0.021 median, 0.042 at the 99th percentile, 0.046 at most
  (1000 triangles; 0.034 / 0.062 / 0.092 with a 5k bank).
- delta = 0.075: above the bank's error on real triangles (so real test triangles score a
  precision of 1.0) and below what clearly is not a dataset triangle: a blank white image is
  at 0.125 (measured against the default bank: its nearest triangle is a small one, about 12
  of the 784 pixels; on average a triangle covers 13% of the image), a triangle shifted by
  1 px at 0.125 median, by 2 px at 0.20, uniform noise at 0.53; a 3x3-box-blurred triangle
  (0.079) and one with Gaussian pixel noise of std 0.1 (0.074) sit at the boundary.
- Precision: share of `n_precision` generated samples within delta of the manifold.
- Recall: share of the first `n_recall` test triangles x that G reconstructs within delta,
  with z* = argmin_z ||G(z) - x||^2. The inversion is batched Adam (lr 0.05, 100 steps, z
  clamped to the latent's support [-1, 1] after every step; not clamped for a Gaussian z)
  from `restarts` (3) starts per triangle: the z of the 3 generated samples nearest to x in
  pixel space (they are computed for precision anyway), which finds the right basin far more
  often than random starts at the same cost. The best error seen over restarts and steps
  counts.
- F1 = 2PR / (P + R), 0 when both are 0.
Generated samples are scored as float images (not quantised): quantisation moves RMSE by at
most 0.5/255.
"""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import Tensor, nn

from benchmark.evaluation.extractors import device_of

SIDE = 28


@dataclass(frozen=True)
class PolygonSettings:
    """Knobs of the polygon metrics (defaults: a few seconds per generator on a 2-core CPU)."""

    delta: float = 0.075
    n_precision: int = 1000
    n_recall: int = 200
    bank_size: int = 20_000
    bank_seed: int = 2018
    rotation: str = "colab"
    restarts: int = 3
    steps: int = 100
    lr: float = 0.05
    z_bound: float | None = 1.0  # the latent's support |z_i| <= z_bound; None: unbounded

    def record(self) -> dict[str, object]:
        return {f"polygon_{key}": value for key, value in asdict(self).items()}


@functools.lru_cache(maxsize=2)
def triangle_bank(size: int = 20_000, seed: int = 2018, rotation: str = "colab") -> Tensor:
    """`size` triangles from the dataset's distribution, rendered: float32 (size, 784) on CPU."""
    from benchmark.polygons import render_triangles, sample_vertices

    vertices = sample_vertices(size, np.random.default_rng(seed), rotation)
    return torch.from_numpy(render_triangles(vertices)).reshape(size, SIDE * SIDE)


def _flat(images: Tensor) -> Tensor:
    if images.dtype == torch.uint8:
        images = images.float() / 255.0
    if images.shape[-2:] != (SIDE, SIDE) or images[0].numel() != SIDE * SIDE:
        raise ValueError(f"polygon metrics need (N, 1, 28, 28) images, got {tuple(images.shape)}")
    return images.detach().float().reshape(len(images), SIDE * SIDE)


def rmse(a: Tensor, b: Tensor) -> Tensor:
    """Per-pixel RMSE between matching rows of two image batches (N, ...) -> (N,)."""
    return (_flat(a) - _flat(b).to(a.device)).square().mean(dim=1).sqrt()


def nearest(images: Tensor, bank: Tensor, k: int = 1, chunk: int = 1000) -> tuple[Tensor, Tensor]:
    """RMSE to the k nearest bank rows and their indices: (N, k) each, computed in chunks."""
    x = _flat(images).cpu()
    dists, indices = [], []
    for start in range(0, len(x), chunk):
        d = torch.cdist(x[start : start + chunk], bank.cpu())
        value, index = d.topk(min(k, bank.shape[0]), dim=1, largest=False)
        dists.append(value / SIDE)
        indices.append(index)
    return torch.cat(dists), torch.cat(indices)


def distance_to_manifold(images: Tensor, bank: Tensor) -> Tensor:
    """RMSE from each image to its nearest bank triangle: (N,)."""
    return nearest(images, bank)[0][:, 0]


def polygon_precision(images: Tensor, bank: Tensor, delta: float) -> float:
    """Share of images within `delta` (RMSE) of the triangle manifold."""
    return float((distance_to_manifold(images, bank) <= delta).float().mean())


def invert(
    generator: nn.Module,
    targets: Tensor,
    z_init: Tensor,
    steps: int = 100,
    lr: float = 0.05,
    bound: float | None = 1.0,
) -> tuple[Tensor, Tensor]:
    """Batched z* = argmin ||G(z) - x||^2 by Adam from starts z_init (M, R, z_dim).

    Returns the best z (M, z_dim) and its RMSE (M,) over the R restarts and all steps. Each
    sample's loss only depends on its own z (G in eval mode), so batching changes nothing.
    """
    m, r, z_dim = z_init.shape
    device = device_of(generator)
    with torch.inference_mode(False), torch.enable_grad():
        target = _flat(targets).clone().to(device).repeat_interleave(r, dim=0)
        z = z_init.reshape(m * r, z_dim).clone().to(device).requires_grad_(True)
        optimiser = torch.optim.Adam([z], lr=lr)
        best_err = torch.full((m * r,), float("inf"), device=device)
        best_z = z.detach().clone()
        for step in range(steps + 1):
            error = (generator(z).reshape(m * r, -1) - target).square()
            per_sample = error.detach().mean(dim=1).sqrt()
            better = per_sample < best_err
            best_err = torch.where(better, per_sample, best_err)
            best_z[better] = z.detach()[better]
            if step == steps:
                break
            grad = None
            if error.requires_grad:  # a G that ignores z has no gradient to follow
                (grad,) = torch.autograd.grad(error.sum(), z, allow_unused=True)
            z.grad = grad if grad is not None else torch.zeros_like(z)
            optimiser.step()
            if bound is not None:
                with torch.no_grad():
                    z.clamp_(-bound, bound)
    best_err, best_z = best_err.reshape(m, r), best_z.reshape(m, r, z_dim)
    err, which = best_err.min(dim=1)
    return best_z[torch.arange(m, device=device), which].cpu(), err.cpu()


def polygon_recall(
    generator: nn.Module,
    targets: Tensor,
    pool_z: Tensor,
    pool_images: Tensor,
    settings: PolygonSettings,
) -> float:
    """Share of targets that G reconstructs within delta, starting from the nearest pool z's."""
    _, start = nearest(targets, _flat(pool_images).cpu(), k=settings.restarts)
    z_init = pool_z.cpu()[start]  # (M, restarts, z_dim)
    _, err = invert(generator, targets, z_init, settings.steps, settings.lr, settings.z_bound)
    return float((err <= settings.delta).float().mean())


def f1_score(precision: float, recall: float) -> float:
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def polygon_metrics(
    generator: nn.Module,
    z: Tensor,
    test_images: Tensor,
    settings: PolygonSettings | None = None,
    batch_size: int = 500,
) -> dict[str, float]:
    """`precision`, `recall`, `f1` of G (already in eval mode) on the triangles dataset.

    Samples come from the first `n_precision` rows of the fixed z; the first `n_recall`
    test images are the recall targets.
    """
    settings = settings or PolygonSettings()
    device = device_of(generator)
    pool_z = z[: settings.n_precision]
    with torch.no_grad():
        samples = torch.cat(
            [
                generator(pool_z[i : i + batch_size].to(device)).float().cpu()
                for i in range(0, len(pool_z), batch_size)
            ]
        )
    bank = triangle_bank(settings.bank_size, settings.bank_seed, settings.rotation)
    precision = polygon_precision(samples, bank, settings.delta)
    targets = test_images[: settings.n_recall]
    recall = polygon_recall(generator, targets, pool_z, samples, settings)
    return {"precision": precision, "recall": recall, "f1": f1_score(precision, recall)}


def score(evaluator, generator) -> dict[str, float]:
    """The polygon metrics of G at the evaluator's fixed z (registered in benchmark/results.py)."""
    return polygon_metrics(
        evaluator.checked(generator),
        evaluator.z,
        evaluator.test_images,
        evaluator.polygon,
        evaluator.batch_size,
    )
