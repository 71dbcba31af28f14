"""A trial's generator and discriminator, built from its options and initialised from its seed."""

from __future__ import annotations

import torch
from torch import nn

from benchmark.conditional import conditional_networks
from benchmark.config import TrialConfig
from benchmark.datasets import DATASETS
from benchmark.networks import DISCRIMINATORS, GENERATORS, NetworkOptions


def build_networks(
    trial: TrialConfig, shape: tuple[int, ...], device: torch.device
) -> tuple[nn.Module, nn.Module]:
    """G and D of a trial, initialised from its seed (the same weights on every run); for a
    conditional trial G(z, y) and D(x, y) (benchmark/conditional.py)."""
    torch.manual_seed(trial.seed)
    opts = NetworkOptions(
        shape=shape,
        z_dim=trial.z_dim,
        d_bn=trial.d_bn,
        spectral_norm=trial.spectral_norm,
        spectral_norm_output=trial.spectral_norm_output,
        d_layer_norm=trial.d_norm == "layer_norm",
        bn_momentum=trial.bn_momentum,
    )
    g_factory = GENERATORS.get(trial.generator)
    d_factory = DISCRIMINATORS.get(trial.discriminator)
    if trial.conditional:
        classes = DATASETS.get(trial.dataset).classes
        g, d = conditional_networks(g_factory, d_factory, opts, classes, trial.conditioning)
        return g.to(device), d.to(device)
    g = g_factory(opts).to(device)
    d = d_factory(opts).to(device)
    return g, d
