"""Feature statistics and the feature-space metrics: FID, KID, improved precision/recall.

Each is registered, with its result columns, in benchmark/results.py (`score_*` below).

A chain of small pure steps (features -> statistics -> metric), each testable on its own:

- `mean_cov`: mean and covariance (unbiased, n - 1, like `numpy.cov`) in float64.
- `frechet_distance`: torchmetrics' `_compute_fid` in float64, which takes the trace of
  sqrt(sigma1 sigma2) as the sum of square roots of the eigenvalues of the product (never
  `scipy.linalg.sqrtm`); a tiny negative result from rounding is clamped to 0 afterwards.
- `kid`: unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3
  (torchmetrics' `poly_mmd`), averaged over random subsets of size min(1000, n_real, n_fake);
  100 subsets and size 1000 are the torch-fidelity / torchmetrics defaults.
- `improved_precision_recall`: Kynkäänniemi et al. 2019 with k = 3, torch-fidelity's batched
  implementation: precision is the share of fake features inside the union of the real k-NN
  balls, recall the share of real features inside the fake balls.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor


def _as_float64(value: Tensor | np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(value) if not torch.is_tensor(value) else value).to(
        torch.float64
    )


def mean_cov(features: Tensor | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (d,) and covariance (d, d) of features (n, d), both float64 numpy arrays."""
    f = _as_float64(features).cpu()
    if f.ndim != 2 or len(f) < 2:
        raise ValueError(f"need at least 2 feature rows (n, d), got shape {tuple(f.shape)}")
    return f.mean(dim=0).numpy(), torch.cov(f.T).reshape(f.shape[1], f.shape[1]).numpy()


def frechet_distance(
    mu1: np.ndarray | Tensor,
    sigma1: np.ndarray | Tensor,
    mu2: np.ndarray | Tensor,
    sigma2: np.ndarray | Tensor,
) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 sqrt(S1 S2)) in float64, via eigenvalues; >= 0."""
    from torchmetrics.image.fid import _compute_fid

    value = float(
        _compute_fid(_as_float64(mu1), _as_float64(sigma1), _as_float64(mu2), _as_float64(sigma2))
    )
    return max(value, 0.0) if math.isfinite(value) else math.nan


def kid(
    real: Tensor,
    fake: Tensor,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """KID mean and standard deviation over `subsets` random subsets (float64, seeded).

    The subset size is min(subset_size, n_real, n_fake), so small test runs work; subsets are
    drawn without replacement within a subset, independently across subsets.
    """
    from torchmetrics.image.kid import poly_mmd

    real, fake = _as_float64(real).cpu(), _as_float64(fake).cpu()
    m = min(subset_size, len(real), len(fake))
    if m < 2:
        raise ValueError("KID needs at least 2 real and 2 fake features")
    generator = torch.Generator().manual_seed(seed)
    values = torch.empty(subsets, dtype=torch.float64)
    for i in range(subsets):
        r = real[torch.randperm(len(real), generator=generator)[:m]]
        f = fake[torch.randperm(len(fake), generator=generator)[:m]]
        values[i] = poly_mmd(r, f)
    return float(values.mean()), float(values.std(unbiased=False))


def improved_precision_recall(
    real: Tensor, fake: Tensor, k: int = 3, batch_size: int = 1000
) -> tuple[float, float]:
    """(precision, recall) of Kynkäänniemi et al. 2019, distances in batches of `batch_size`.

    A k-NN ball's radius is the distance to the k-th nearest other point of the same set
    (the point itself is the 0-th); a point on a ball's boundary counts as inside.
    """
    from torch_fidelity.metric_prc import calculate_precision_recall_part

    real, fake = torch.as_tensor(real), torch.as_tensor(fake)
    if min(len(real), len(fake)) <= k:
        raise ValueError(f"improved precision/recall with k={k} needs more than {k} points a set")
    # torch-fidelity's convention: features_1 generated, features_2 real.
    precision, recall = calculate_precision_recall_part(fake, real, k, batch_size)
    return float(precision), float(recall)


# Each metric's computation, as registered in benchmark/results.py: (evaluator, G) -> scores.


def score_fid(evaluator, generator) -> dict[str, float]:
    real = evaluator.real_stats()
    return {"fid": frechet_distance(real.mu, real.sigma, *mean_cov(evaluator.features(generator)))}


def score_kid(evaluator, generator) -> dict[str, float]:
    return {"kid": kid(evaluator.real_features(), evaluator.features(generator))[0]}


def score_ipr(evaluator, generator) -> dict[str, float]:
    real, fake = evaluator.real_features(), evaluator.features(generator)
    precision, recall = improved_precision_recall(real, fake, batch_size=evaluator.batch_size)
    return {"ipr_precision": precision, "ipr_recall": recall}
