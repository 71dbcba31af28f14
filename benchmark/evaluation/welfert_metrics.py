"""The mode count of Welfert, Otstot, Kurri and Sankar 2023 ("Towards addressing GAN training
instabilities: dual-objective GANs with tunable parameters", ISIT), as their code computes it
(SankarLab/AlphaGan-Papers-Results, commit 5460544, experiment1.py `compute_metrics`):

- each of the 25,000 samples (G at the fixed test z) goes to its nearest centre (Euclidean; a
  tie to the first centre in the mixture's order);
- a sample is high quality (HQ) within 3 sigma of that centre (the 2-D distance, sigma the
  per-coordinate standard deviation, 0.01 on their ring);
- a mode is covered when it has at least one HQ sample; `modes` counts them, `hqs` is the
  share of HQ samples; success is all modes covered, failure none;
- the KL terms compare the nearest-centre histogram of all samples (not only HQ ones),
  Laplace-smoothed, P_fake(k) = (n_k + 1) / (n + K), with the data's P_real(k) = 1 / K, in
  nats: KL(P_real || P_fake), RKL = KL(P_fake || P_real), JSD and TVD.
"""

from __future__ import annotations

import numpy as np

SAMPLES = 25_000  # their test z: `--test_size 25000`
HQ_SIGMAS = 3.0


def welfert_scores(points: np.ndarray, centres: np.ndarray, sigma: float) -> dict[str, float]:
    """Their metrics of `points` (N, 2) against a mixture's `centres` (K, 2) of per-coordinate
    standard deviation `sigma`."""
    points = np.asarray(points, dtype=np.float64)
    centres = np.asarray(centres, dtype=np.float64)
    distances = np.linalg.norm(points[:, None, :] - centres[None, :, :], axis=2)
    nearest = distances.argmin(axis=1)  # argmin takes the first of equal distances, as min()
    within = distances[np.arange(len(points)), nearest] <= HQ_SIGMAS * sigma
    k = len(centres)
    hq_per_mode = np.bincount(nearest[within], minlength=k)
    modes = int((hq_per_mode >= 1).sum())
    p_fake = (np.bincount(nearest, minlength=k) + 1) / (len(points) + k)
    p_real = np.full(k, 1 / k)
    mix = (p_real + p_fake) / 2
    return {
        "welfert_modes": modes,
        "welfert_success": float(modes == k),
        "welfert_failure": float(modes == 0),
        "welfert_hqs": float(within.sum() / len(points)),
        "welfert_kl": _kl(p_real, p_fake),
        "welfert_rkl": _kl(p_fake, p_real),
        "welfert_jsd": (_kl(p_real, mix) + _kl(p_fake, mix)) / 2,
        "welfert_tvd": float(np.abs(p_real - p_fake).sum() / 2),
    }


def _kl(p: np.ndarray, q: np.ndarray) -> float:
    return float(np.sum(p * np.log(p / q)))


def score(evaluator, generator) -> dict[str, float]:
    """Their metrics of G at the evaluator's first SAMPLES fixed z (registered in
    benchmark/results.py as `welfert`)."""
    from benchmark.mixtures import MIXTURES

    mixture = MIXTURES.get(evaluator.dataset, "dataset")
    points = evaluator.samples(generator, SAMPLES).float().cpu().numpy()
    return welfert_scores(points, mixture.centre_array, mixture.sigma)
