"""D's normalisation as one choice (`d_norm`, Kurach et al. 2019): layer norm against its
formula, the flags it sets, where it is refused, and populations that train with it."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from benchmark.datasets import DATASETS
from benchmark.errors import ConfigError
from benchmark.models import resolve_trial
from benchmark.networks import LN_EPS, LayerNorm, NetworkOptions
from benchmark.networks.core import BatchNorm1d
from benchmark.training.build import build_networks
from benchmark.training.population import population_key, trains_alone
from benchmark.training.stacked_layers import can_stack
from benchmark.training.step import GANTraining

CPU = torch.device("cpu")


def test_layer_norm_is_the_formula_on_a_tiny_input(float64):
    """Each sample over all its channels and pixels; then a scale and shift per channel."""
    x = torch.arange(2 * 2 * 2 * 1, dtype=torch.float64).reshape(2, 2, 2, 1) ** 2
    layer = LayerNorm(2, spatial=True)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([2.0, -1.0]))
        layer.bias.copy_(torch.tensor([0.5, 3.0]))
    # Sample 0 holds 0, 1, 4, 9: mean 3.5, biased variance (12.25 + 6.25 + 0.25 + 30.25) / 4.
    mean, var = 3.5, 49.0 / 4
    expected0 = [(v - mean) / math.sqrt(var + LN_EPS) for v in (0.0, 1.0, 4.0, 9.0)]
    expected0 = [2 * expected0[0] + 0.5, 2 * expected0[1] + 0.5]
    expected0 += [-((v - mean) / math.sqrt(var + LN_EPS)) + 3.0 for v in (4.0, 9.0)]
    out = layer(x)
    torch.testing.assert_close(out[0].flatten(), torch.tensor(expected0), rtol=1e-12, atol=1e-12)
    # torch's own layer norm over (C, H, W), without its affine, then ours per channel.
    plain = F.layer_norm(x, x.shape[1:], eps=LN_EPS)
    reference = plain * layer.weight.view(-1, 1, 1) + layer.bias.view(-1, 1, 1)
    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)
    # Features (..., C): over C, with leading axes as batch axes (a population's (M, B, C)).
    flat = LayerNorm(3, spatial=False)
    y = torch.tensor([[[1.0, 2.0, 6.0]], [[0.0, 0.0, 3.0]]])
    torch.testing.assert_close(flat(y), F.layer_norm(y, (3,), eps=LN_EPS))


def test_d_norm_sets_the_flags_and_places_layer_norm_where_batch_norm_was():
    layer = resolve_trial("ns", "mnist", d_norm="layer_norm")
    assert (layer.d_bn, layer.spectral_norm) == (False, False)
    _, d = build_networks(layer, (1, 28, 28), CPU)
    kinds = [type(m) for m in d.modules() if isinstance(m, LayerNorm | BatchNorm1d)]
    assert kinds == [LayerNorm, LayerNorm]  # after conv128 and FC1024, as batch norm is
    spectral = resolve_trial("ns", "mnist", d_norm="spectral_norm")
    assert (spectral.d_bn, spectral.spectral_norm) == (False, True)
    assert resolve_trial("wgan_gp", "mnist", d_norm="batch_norm").d_bn is True
    none = resolve_trial("ns", "mnist", d_norm="none")
    assert (none.d_bn, none.spectral_norm) == (False, False)
    # Unset, the flags keep their meaning and the trial id its value from before d_norm.
    plain = resolve_trial("ns", "mnist")
    assert "d_norm" not in plain.to_dict() and plain.d_bn is True


def test_conflicts_and_unknown_normalisations_are_refused():
    with pytest.raises(ConfigError, match="d_bn=True is not allowed; expected False with d_norm"):
        resolve_trial("ns", "mnist", d_norm="layer_norm", d_bn=True)
    with pytest.raises(ConfigError, match="d_norm='weight_norm' is not allowed; expected one of"):
        resolve_trial("ns", "mnist", d_norm="weight_norm")
    with pytest.raises(ConfigError, match="discriminator='sndcgan'.*no normalisation layer"):
        resolve_trial("ns", "cifar10", generator="sndcgan", discriminator="sndcgan",
                      d_norm="layer_norm")  # fmt: skip
    with pytest.raises(ConfigError, match="no normalisation layer"):
        resolve_trial("ns", "ring_welfert", generator="welfert", discriminator="welfert",
                      d_norm="layer_norm", metrics=("welfert",))  # fmt: skip


def test_the_resnet_discriminator_takes_layer_norm_in_its_blocks():
    trial = resolve_trial("ns", "cifar10", generator="resnet_cifar",
                          discriminator="resnet_cifar", d_norm="layer_norm")  # fmt: skip
    _, d = build_networks(trial, (3, 32, 32), CPU)
    norms = [m for m in d.modules() if isinstance(m, LayerNorm)]
    assert len(norms) == 2 * len(d.blocks) and all(n.spatial for n in norms)
    assert can_stack(d)


def test_a_layer_norm_population_member_is_its_trial_alone(float64):
    """Layer norm stacks (unlike spectral norm): two members train as each alone."""
    base = {"metrics": (), "steps": 5, "batch_size": 16, "d_norm": "layer_norm", "lr": 2e-3}
    trials = [resolve_trial("ns", "grid", seed=s, beta1=b, **base) for s, b in ((0, 0.5), (1, 0.9))]
    assert population_key(trials[0]) == population_key(trials[1])
    assert not trains_alone(trials[0])
    data = DATASETS.get("grid").load(None, False).train
    together = GANTraining(trials, data, CPU)
    alone = [GANTraining([t], data, CPU) for t in trials]
    for _ in range(5):
        together.train_step()
        for training in alone:
            training.train_step()
    for i, training in enumerate(alone):
        for name, value in together.member_state(i)["d"].items():
            torch.testing.assert_close(value, training.member_state(0)["d"][name], rtol=1e-12,
                                       atol=1e-12, msg=name)  # fmt: skip
    assert bool(together.finite.all())


def test_layer_norm_is_refused_where_d_has_no_place_for_it():
    with pytest.raises(ValueError, match="no normalisation layer"):
        from benchmark.networks import DISCRIMINATORS

        DISCRIMINATORS.get("sndcgan")(NetworkOptions(shape=(3, 32, 32), d_layer_norm=True))
