"""The 2-D mixture metrics: modes captured, high-quality share, reverse KL, W1, energy distance.

From generated points and the mixture's centres and sigma (benchmark/mixtures.py), the
definitions of the mode-collapse literature (PacGAN `pacgan/extensions.py` ModelEvaluator;
GDPP `gdppgan_Synthetic.py` evaluate_samples), on 2,500 samples of a fixed z:

- a sample is *high quality* (HQ) when it lies within 3 sigma (Euclidean) of its nearest
  centre (a perfect sampler scores P(chi_2 <= 3) = 1 - e^(-4.5) = 98.9 %);
- `modes`: the centres that hold at least one HQ sample;
- `hq`: the share of samples that are HQ;
- `reverse_kl`: KL(p || uniform) of the HQ samples' mode histogram p, sum_k p_k log(K p_k),
  empty modes contributing 0 (0 log 0 = 0, PacGAN's KLD skips them); log K for one blob on
  one centre, 0 for equal coverage; NaN when no sample is HQ (there is no histogram);
- `w1`: the exact 1-Wasserstein distance between the generated points and as many test
  points (POT's network simplex, `ot.emd2`, on Euclidean costs): the mean distance a sample
  must move, in the data's units. Unlike the mode metrics it does not saturate (a near miss
  scores better than a far one even when no sample is HQ), and it sees the modes: on the
  grid, a uniform blur over the square [-5, 5]^2 scores 0.73 and a perfect sampler 0.31 at
  2,500 points (the two samples' own mismatch; `reference_scores` computes both for a
  dataset, and a sweep's report states them);
- `energy`: the energy distance between the generated and the real points,
  sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|) over all pairs (the V-statistic, never negative;
  scipy.stats.energy_distance's definition, in the plane): dominated by the large-scale
  spread, it can rank a blur over the whole grid above sharp modes (in the default study it
  put a blurry LSGAN trial first where W1 put DRAGAN's 24 sharp modes), so it is reported
  beside W1, not ranked by.

Counts depend on the number of samples; the result records it (`mixture_n`).

A conditional generator's samples carry the mode they were asked for (class-balanced fixed
labels, benchmark/conditional.py); `label_accuracy` is the share of samples whose nearest
centre is that mode (HQ or not: it asks whether the label steers G, not how sharp it draws).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

SAMPLES = 2500  # the literature's evaluation size (GDPP's `number_evaluation_samples`)
HQ_SIGMAS = 3.0
SCORES = ("modes", "hq", "reverse_kl", "w1", "energy")


def mode_statistics(points: np.ndarray, centres: np.ndarray, sigma: float) -> dict[str, float]:
    """`modes`, `hq` and `reverse_kl` of points (n, 2) for a mixture's centres (K, 2)."""
    points = np.asarray(points, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    distances = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(points)), nearest] <= HQ_SIGMAS * sigma
    counts = np.bincount(nearest[good], minlength=len(centres)).astype(np.float64)
    n_good = counts.sum()
    if n_good:
        share = counts[counts > 0] / n_good
        reverse_kl = float(np.sum(share * np.log(len(centres) * share)))
    else:
        reverse_kl = math.nan
    return {
        "modes": float(np.count_nonzero(counts)),
        "hq": float(n_good / len(points)) if len(points) else math.nan,
        "reverse_kl": reverse_kl,
    }


def nearest_mode(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """The index of each point's nearest centre (Euclidean), int64 (n,)."""
    points = np.asarray(points, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    return np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=2).argmin(axis=1)


def mode_label_accuracy(points: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> float:
    """The share of points whose nearest centre is their label (the mode asked for)."""
    labels = np.asarray(labels)
    if len(points) != len(labels):
        raise ValueError(f"{len(points)} points but {len(labels)} labels")
    return float(np.mean(nearest_mode(points, centres) == labels))


def energy_distance(x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> float:
    """sqrt(2 E|X - Y| - E|X - X'| - E|Y - Y'|) of two point sets (n, d), (m, d), in float64."""
    x = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    y = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    between = torch.cdist(x, y).mean()
    within_x, within_y = torch.cdist(x, x).mean(), torch.cdist(y, y).mean()
    return math.sqrt(max(float(2 * between - within_x - within_y), 0.0))


def wasserstein_1(x: np.ndarray | Tensor, y: np.ndarray | Tensor) -> float:
    """The exact W1 between two equally weighted point sets (n, d), (m, d), in float64."""
    import ot

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    costs = torch.cdist(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    # numItermax: the default 100,000 pivots stop short of the optimum at 2,500 points a side.
    value, log = ot.emd2([], [], costs, numItermax=10**8, log=True)
    if log["warning"] is not None:
        raise ArithmeticError(f"exact W1 did not converge: {log['warning']}")
    return float(value)


def mixture_metrics(
    generator: nn.Module,
    z: Tensor,
    real: Tensor,
    centres: np.ndarray,
    sigma: float,
    batch_size: int = 2500,
    labels: Tensor | None = None,
) -> tuple[dict[str, float], np.ndarray]:
    """Scores of G's points at the fixed `z` against the `real` test points, and the points;
    for a conditional G, `labels` (one per z) are its inputs and `label_accuracy` a score.

    A generator whose output is not finite everywhere scores nothing (NaN): its points are
    not samples of any distribution.
    """
    device = next(generator.parameters()).device

    def points_of(i: int) -> Tensor:
        inputs = [z[i : i + batch_size].to(device)]
        if labels is not None:
            inputs.append(labels[i : i + batch_size].to(device))
        return generator(*inputs).float().cpu()

    with torch.inference_mode():
        points = torch.cat([points_of(i) for i in range(0, len(z), batch_size)]).numpy()
    names = SCORES + (("label_accuracy",) if labels is not None else ())
    if not np.isfinite(points).all():
        return dict.fromkeys(names, math.nan), points
    scores = point_scores(points, real[: len(points)].numpy(), centres, sigma)
    if labels is not None:
        scores["label_accuracy"] = mode_label_accuracy(points, labels.numpy(), centres)
    return scores, points


def point_scores(
    points: np.ndarray, real: np.ndarray, centres: np.ndarray, sigma: float
) -> dict[str, float]:
    """`modes`, `hq`, `reverse_kl`, `w1` and `energy` of points (n, 2) against real points."""
    return {
        **mode_statistics(points, centres, sigma),
        "w1": wasserstein_1(points, real),
        "energy": energy_distance(points, real),
    }


def reference_scores(dataset: str, n: int = SAMPLES, seed: int = 0) -> dict:
    """The scores of two reference samplers on the points every trial is scored against (the
    first `n` test points), so a report can say where a loss stands between them:

    - `perfect`: the next `n` test points, a perfect sampler (what a generator that learned
      the mixture exactly scores at this sample size: W1 is not 0 at finite n);
    - `uniform`: `n` points uniform over the mixture's box, a blur that has learned the
      support and none of the modes. The box is the centres' bounding box padded by half the
      distance between the nearest two centres: on the grid, [-5, 5]^2, the 25 cells of
      side 2 around the modes, so that each mode's cell holds its own share of the blur
      (the tightest box around the test points, [-4.2, 4.2]^2, scores worse, 0.84 against
      0.73, since the outer modes' cells are cut short).
    """
    from benchmark.mixtures import MIXTURES, generate

    mixture = MIXTURES.get(dataset, "dataset")
    if 2 * n > mixture.test_points:
        raise ValueError(
            f"n = {n}: the perfect sampler needs 2n <= {mixture.test_points} test points"
        )
    test = generate(mixture)["test"].astype(np.float64)
    real, centres = test[:n], mixture.centre_array
    gaps = np.linalg.norm(centres[:, None] - centres[None, :], axis=2)
    pad = gaps[~np.eye(len(centres), dtype=bool)].min() / 2
    low, high = centres.min(axis=0) - pad, centres.max(axis=0) + pad
    uniform = np.random.default_rng(seed).uniform(low, high, size=(n, 2))
    return {
        "n": n,
        "box": [low.tolist(), high.tolist()],
        "perfect": point_scores(test[n : 2 * n], real, centres, mixture.sigma),
        "uniform": point_scores(uniform, real, centres, mixture.sigma),
    }


def score(evaluator, generator) -> dict[str, float]:
    """The mixture metrics of G on the evaluator's first SAMPLES fixed z (and labels, for a
    conditional G) against its test points (registered in benchmark/results.py)."""
    from benchmark.mixtures import MIXTURES

    mixture = MIXTURES.get(evaluator.dataset, "dataset")
    labels = None if evaluator.labels is None else evaluator.labels[:SAMPLES]
    scores, _ = mixture_metrics(
        evaluator.checked(generator),
        evaluator.z[:SAMPLES],
        evaluator.test_images,
        mixture.centre_array,
        mixture.sigma,
        labels=labels,
    )
    return scores
