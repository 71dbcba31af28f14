"""The 2-D mixtures' networks (`networks = "points"`, benchmark/mixtures.py): the literature's
small MLPs of tanh units (Unrolled GAN, VEEGAN, GDPP), and BEGAN's autoencoder D laid out alike.
Like every network here, each forward pass indexes features from the end, so a population's
(M, B, ...) inputs run through the same code (benchmark/training/stacked_layers.py).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from benchmark.networks.core import (
    DISCRIMINATORS,
    GENERATORS,
    AutoencoderDiscriminator,
    NetworkOptions,
    _d_norm1d,
    _maybe_sn,
)

POINT_HIDDEN = 128


class Tanh(nn.Module):
    """tanh; on a CPU computed as 2 sigmoid(2x) - 1, the same function (within 2.4e-7 of
    torch.tanh in float32: tests/test_networks.py). PyTorch's CPU tanh kernel takes about
    2.4 ns per float32 value (measured on AVX-512) against 0.5 ns for the three kernels of
    this form, and the point networks' tanh layers took a fifth of a population's step. On a
    GPU, where tanh is one fast kernel, torch.tanh."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu":
            return torch.tanh(x)
        return torch.sigmoid(2 * x) * 2 - 1


def _init_points(module: nn.Module) -> None:
    """The mixture literature's init: orthogonal weights with gain 1.4, zero biases (GDPP's
    `tf.orthogonal_initializer(gain=1.4)`, taken from the Unrolled GAN code)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.orthogonal_(layer.weight, gain=1.4)
            nn.init.zeros_(layer.bias)


class PointGenerator(nn.Module):
    """z -> FC128-tanh -> FC128-tanh -> FC(D): the 2-D mixtures' G of Unrolled GAN, VEEGAN
    and GDPP (M-Elfeki/GDPP `gdppgan_Synthetic.py`: `slim.stack` of two 128-unit tanh layers
    and a linear output). No batch norm, as there."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        (dim,) = opts.shape
        self.net = nn.Sequential(
            nn.Linear(opts.z_dim, POINT_HIDDEN),
            Tanh(),
            nn.Linear(POINT_HIDDEN, POINT_HIDDEN),
            Tanh(),
            nn.Linear(POINT_HIDDEN, dim),
        )
        _init_points(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class PointDiscriminator(nn.Module):
    """x -> FC128-tanh -> FC128-[BN]-tanh -> FC1 (logits (N,)): GDPP's D, with batch norm where
    the InfoGAN D has it (after the second layer) when `d_bn` is on."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        (dim,) = opts.shape
        self.net = nn.Sequential(
            nn.Linear(dim, POINT_HIDDEN),
            Tanh(),
            nn.Linear(POINT_HIDDEN, POINT_HIDDEN),
            _d_norm1d(POINT_HIDDEN, opts),
            Tanh(),
            nn.Linear(POINT_HIDDEN, 1),
        )
        _init_points(self)
        _maybe_sn(self, opts)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


class PointAutoencoderDiscriminator(AutoencoderDiscriminator):
    """BEGAN's D for points, laid out like the others: FC128-tanh, FC64-[BN]-tanh |
    FC128-[BN]-tanh, FC(D) (linear: points are not bounded); returns each sample's mean
    |AE(x) - x| (N,)."""

    def __init__(self, opts: NetworkOptions) -> None:
        nn.Module.__init__(self)
        (dim,) = self.shape = opts.shape
        self.encode = nn.Sequential(
            nn.Linear(dim, POINT_HIDDEN),
            Tanh(),
            nn.Linear(POINT_HIDDEN, 64),
            _d_norm1d(64, opts),
            Tanh(),
        )
        self.decode = nn.Sequential(
            nn.Linear(64, POINT_HIDDEN),
            _d_norm1d(POINT_HIDDEN, opts),
            Tanh(),
            nn.Linear(POINT_HIDDEN, dim),
        )
        _init_points(self)
        _maybe_sn(self, opts)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x))


GENERATORS.register("points", PointGenerator)
DISCRIMINATORS.register("points", PointDiscriminator)
DISCRIMINATORS.register("points_began", PointAutoencoderDiscriminator)
