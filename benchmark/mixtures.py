"""The 2-D Gaussian mixtures of the mode-collapse literature (`ring`, `grid`), from a seed.

The parameters are those of the authors' code (fjxmlzn/PacGAN `synthetic_data_experiments`
`2DRing_GAN&PacGAN/config.py` and `2DGrid_GAN&PacGAN/config.py`; M-Elfeki/GDPP
`gdppgan_Synthetic.py`):

- ring: 8 equally weighted Gaussians centred at (cos 2 pi i / 8, sin 2 pi i / 8), radius 1,
  standard deviation 0.01 per dimension (PacGAN's `MEANS`). GDPP and several other copies
  build the ring with `linspace(0, 2 pi, 8)`, which puts the first and the last centre on the
  same point (seven distinct modes); this module does not.
- grid: 25 equally weighted Gaussians centred at {-4, -2, 0, 2, 4}^2, standard deviation 0.05.
- ring_welfert: the ring of Welfert et al. 2023's comparison of losses (below), with their
  split sizes and centre order.

A dataset is a float32 tensor of points (N, 2): 100,000 training points and 10,000 test
points drawn from the mixture (the authors' code draws a fresh batch every step; sampling
batches with replacement from 100,000 points is the same distribution up to that finite
sample). Each point's mode index is kept as its label.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from benchmark.registry import Registry

TRAIN_POINTS = 100_000
TEST_POINTS = 10_000
SEED = 0


@dataclass(frozen=True)
class Mixture:
    """An equally weighted mixture of isotropic Gaussians in the plane."""

    name: str
    centres: tuple[tuple[float, float], ...]
    sigma: float
    train_points: int = TRAIN_POINTS
    test_points: int = TEST_POINTS
    # The reference training length in epochs of `train_points`: the mode-collapse
    # literature's 25,000 steps of batch 512 over 100,000 points (Unrolled GAN, VEEGAN, GDPP).
    epochs: int = 128

    @property
    def centre_array(self) -> np.ndarray:
        """The centres as a float64 array (K, 2)."""
        return np.asarray(self.centres, dtype=np.float64)

    @property
    def modes(self) -> int:
        return len(self.centres)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """`n` points (float32 (n, 2)) and their mode indices (int64 (n,))."""
        labels = rng.integers(self.modes, size=n)
        points = self.centre_array[labels] + self.sigma * rng.standard_normal((n, 2))
        return points.astype(np.float32), labels.astype(np.int64)


MIXTURES: Registry[Mixture] = Registry("mixture")

RING = MIXTURES.register(
    "ring",
    Mixture(
        "ring",
        tuple((math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)) for i in range(8)),
        0.01,
    ),
)
GRID = MIXTURES.register(
    "grid",
    Mixture(
        "grid",
        tuple((float(x), float(y)) for x, y in itertools.product(range(-4, 5, 2), repeat=2)),
        0.05,
    ),
)


# Welfert, Otstot, Kurri and Sankar 2023 ("Towards addressing GAN training instabilities:
# dual-objective GANs with tunable parameters", ISIT; SankarLab/AlphaGan-Papers-Results at
# commit 5460544, experiment1.py `make_ring`, `--train_size`, `--test_size`, `--n_epochs`):
# the ring's centres as listed there, (cos 2 pi i / 8, sin 2 pi i / 8) for i = 1..8 (the first
# at 45 degrees: the order sets a tie's nearest mode), variance 1e-4, 50,000 training and
# 25,000 test points, 400 epochs. Their points come from torch's and numpy's streams of
# seed 1; these from this module's seed (the same distribution; their runs were not
# bit-reproducible anyway: reruns of one seed differed in most cases).
RING_WELFERT = MIXTURES.register(
    "ring_welfert",
    Mixture(
        "ring_welfert",
        tuple((math.cos(2 * math.pi * i / 8), math.sin(2 * math.pi * i / 8)) for i in range(1, 9)),
        math.sqrt(1e-4),
        train_points=50_000,
        test_points=25_000,
        epochs=400,
    ),
)


def generate(mixture: Mixture, seed: int = SEED) -> dict[str, np.ndarray]:
    """The splits `train` (100,000 points unless the mixture says otherwise), `test` (10,000)
    and their `*_labels`, from one seed.

    Train and test come from independent streams of one seed, so each split is the same
    whatever the other's size.
    """
    train_rng, test_rng = (np.random.default_rng([seed, i]) for i in (0, 1))
    train, train_labels = mixture.sample(mixture.train_points, train_rng)
    test, test_labels = mixture.sample(mixture.test_points, test_rng)
    return {"train": train, "train_labels": train_labels, "test": test, "test_labels": test_labels}
