"""Three points where the project now follows its sources: the relativistic presets' D leaves its
output layer free of spectral norm, a projection D's class embedding is spectrally normalised
with the rest of its head, and compare_gan's L2 penalty on D's weights."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import nn
from torch.nn.utils import parametrize

from benchmark.conditional import ConditionalDiscriminator
from benchmark.config import TrialConfig
from benchmark.datasets import DATASETS
from benchmark.models import MODELS, resolve_trial
from benchmark.networks import DISCRIMINATORS, NetworkOptions
from benchmark.networks.core import (
    AutoencoderDiscriminator,
    Discriminator,
    _maybe_sn,
    output_layer,
)
from benchmark.options import BY_NAME, SHARED
from benchmark.penalties import PENALTIES
from benchmark.search import SPACES, LogUniform, sample_hyperparameters
from benchmark.training.build import build_networks
from benchmark.training.population import population_key, trains_alone
from benchmark.training.stacked import StackedNetwork, single_stream_uniform
from benchmark.training.step import GANTraining, _with_labels

CPU = torch.device("cpu")
WEIGHTED = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)


def normalised(module: nn.Module) -> list[bool]:
    """For each weight layer of `module`, in order: whether spectral norm parametrises it."""
    return [
        parametrize.is_parametrized(layer, "weight")
        for layer in module.modules()
        if isinstance(layer, WEIGHTED)
    ]


# ---- 1. the relativistic presets' D: spectral norm on every layer but the output layer --------


@pytest.mark.parametrize("model", ["rsgan", "ragan"])
def test_the_relativistic_presets_leave_ds_output_layer_free(model):
    """AlexiaJM/RelativisticGAN code/GAN_losses_iter.py:239 builds the dense output layer
    without spectral_norm, :241-258 every convolution with it (--spectral True, the "standard
    CNN" of code/stable.sh:13, :15)."""
    assert MODELS.get(model).spectral_norm_output is False
    trial = resolve_trial(model, "cifar10")
    assert (trial.spectral_norm, trial.spectral_norm_output) == (True, False)
    _, d = build_networks(trial, (3, 32, 32), CPU)
    assert normalised(d) == [True, True, True, False]  # conv64, conv128, FC1024 | FC1
    assert output_layer(d) is d.net[-1]


@pytest.mark.parametrize("name", ["infogan", "began", "mlp", "mlp_began", "points", "points_began"])
def test_by_default_spectral_norm_covers_every_layer_and_off_leaves_the_output_layer(name):
    shape = (2,) if name.startswith("points") else (1, 28, 28)
    factory = DISCRIMINATORS.get(name)
    every = factory(NetworkOptions(shape, spectral_norm=True, d_bn=False))
    assert all(normalised(every))
    torch.manual_seed(0)
    free = factory(NetworkOptions(shape, spectral_norm=True, spectral_norm_output=False))
    flags = normalised(free)
    assert flags[-1] is False and all(flags[:-1])  # the last weight layer is D's output layer
    assert not parametrize.is_parametrized(output_layer(free), "weight")


def test_the_output_layer_of_an_autoencoder_d_is_the_layer_that_draws_the_reconstruction():
    d = AutoencoderDiscriminator(NetworkOptions((1, 28, 28)))
    assert output_layer(d) is d.decode[3]  # deconv c, before the sigmoid
    assert isinstance(output_layer(d), nn.ConvTranspose2d)
    assert output_layer(Discriminator(NetworkOptions((1, 28, 28)))).out_features == 1


def test_without_spectral_norm_the_output_option_changes_nothing_but_the_id():
    """Harmless, so not refused: a relativistic preset with spectral norm turned off keeps its
    `spectral_norm_output = false`, and its networks are those of `true`."""
    off = resolve_trial("rsgan", "mnist", spectral_norm=False)
    on = resolve_trial("rsgan", "mnist", spectral_norm=False, spectral_norm_output=True)
    (g1, d1), (g2, d2) = build_networks(off, (1, 28, 28), CPU), build_networks(on, (1, 28, 28), CPU)
    assert not any(normalised(d1))
    for a, b in ((g1, g2), (d1, d2)):
        assert a.state_dict().keys() == b.state_dict().keys()
        assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())
    assert off.trial_id != on.trial_id  # the record says what was asked


def test_the_option_keeps_earlier_ids_and_is_shared_structure():
    option = BY_NAME["spectral_norm_output"]
    assert (option.default, option.added_later, option.preset, option.role) == (
        True,
        True,
        True,
        SHARED,
    )
    trial = resolve_trial("ns", "mnist", spectral_norm=True)
    assert "spectral_norm_output" not in trial.to_dict()  # at its default: the id is unchanged
    free = resolve_trial("ns", "mnist", spectral_norm=True, spectral_norm_output=False)
    assert free.to_dict()["spectral_norm_output"] is False and free.trial_id != trial.trial_id
    assert TrialConfig.from_dict(free.to_dict()) == free
    plain = resolve_trial("ns", "grid", metrics=())
    assert not trains_alone(plain)  # a solo option true by default would train everyone alone
    other = resolve_trial("ns", "grid", metrics=(), spectral_norm_output=False)
    assert population_key(other) != population_key(plain)


def test_a_concat_ds_wider_first_layer_is_normalised_as_the_layer_it_replaces():
    opts = NetworkOptions((2,), spectral_norm=True, spectral_norm_output=False)
    d = ConditionalDiscriminator(DISCRIMINATORS.get("points"), opts, 3, "concat")
    wider = d.base.net[0][1]
    assert wider.in_features == 2 + 3
    assert parametrize.is_parametrized(wider, "weight")
    assert not parametrize.is_parametrized(d.base.net[-1], "weight")


# ---- 2. the projection embedding under spectral norm ------------------------------------------


class SmallD(nn.Module):
    """2 -> 3 tanh -> 1 with spectral norm as the options say (the project's `_maybe_sn`)."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
        _maybe_sn(self, opts)

    def forward(self, x):
        return self.net(x).squeeze(-1)


def _projection(spectral_norm: bool = True, output: bool = True, classes: int = 4):
    torch.manual_seed(0)
    opts = NetworkOptions((2,), spectral_norm=spectral_norm, spectral_norm_output=output)
    return ConditionalDiscriminator(SmallD, opts, classes, "projection").double()


def _converge(d: nn.Module, iterations: int = 300) -> None:
    """Power iterations run in training mode, one per access of a normalised weight."""
    d.train()
    x, y = torch.zeros(1, 2, dtype=torch.float64), torch.zeros(1, dtype=torch.int64)
    with torch.no_grad():
        for _ in range(iterations):
            d(x, y)
    d.eval()


def test_the_projection_embedding_has_largest_singular_value_one():
    """sngan_projection's SNEmbedID: W_bar = W / sigma(W), W the (K x C) matrix as stored
    (source/links/sn_embed_id.py:46, :51-61), sigma by power iteration with u over the K
    classes (:48; source/functions/max_sv.py:27-30)."""
    d = _projection()
    assert parametrize.is_parametrized(d.embed, "weight")
    parametrization = d.embed.parametrizations.weight[0]
    assert parametrization.dim == 0 and parametrization._u.shape == (4,)  # u over the K classes
    _converge(d)
    raw = d.embed.parametrizations.weight.original.detach()  # (K, C) = (4, 3)
    sigma = torch.linalg.matrix_norm(raw, ord=2)
    assert float(sigma) != pytest.approx(1.0, abs=0.1)  # the raw one is not already normalised
    effective = d.embed.weight.detach()
    assert float(torch.linalg.matrix_norm(effective, ord=2)) == pytest.approx(1.0, abs=1e-10)
    torch.testing.assert_close(effective, raw / sigma, rtol=1e-10, atol=1e-12)
    # The transpose has the same largest singular value: either orientation is their sigma.
    assert float(torch.linalg.matrix_norm(raw.T, ord=2)) == pytest.approx(float(sigma))


def test_the_projection_ds_output_is_the_formula_with_every_matrix_normalised():
    """D(x, y) = w2/s2 . tanh(W1/s1 x + b1) + b2 + <E_y / sE, tanh(W1/s1 x + b1)>, each s the
    largest singular value of its matrix (torch.linalg.matrix_norm(., 2))."""
    d = _projection()
    _converge(d)
    net = d.base.net
    w1, w2, e = (m.parametrizations.weight.original.detach() for m in (net[0], net[2], d.embed))
    b1, b2 = net[0].bias.detach(), net[2].bias.detach()
    x = torch.tensor([[0.5, -1.0], [2.0, 0.25], [-0.3, 0.7]], dtype=torch.float64)
    y = torch.tensor([3, 0, 1])
    with torch.no_grad():
        got = d(x, y)
    expected = []
    for xi, yi in zip(x, y.tolist(), strict=True):
        phi = torch.tanh(w1 @ xi / torch.linalg.matrix_norm(w1, 2) + b1)
        head = float(w2[0] @ phi / torch.linalg.matrix_norm(w2, 2) + b2[0])
        expected.append(head + float(e[yi] @ phi / torch.linalg.matrix_norm(e, 2)))
    torch.testing.assert_close(got, torch.tensor(expected, dtype=torch.float64), rtol=1e-9,
                               atol=1e-12)  # fmt: skip


def test_the_embedding_follows_the_head():
    assert not parametrize.is_parametrized(_projection(spectral_norm=False).embed, "weight")
    free = _projection(output=False)  # the head is free, and so is its class term
    assert not parametrize.is_parametrized(free.embed, "weight")
    assert not parametrize.is_parametrized(free.base.net[-1], "weight")
    assert parametrize.is_parametrized(free.base.net[0], "weight")


def test_a_conditional_trial_with_spectral_norm_trains():
    trial = resolve_trial("ns", "grid", generator="points", discriminator="points", metrics=(),
                          conditional=True, spectral_norm=True, steps=3, batch_size=8)  # fmt: skip
    data = DATASETS.get("grid").load(None, False)
    training = GANTraining(trial, data.train, CPU, train_labels=data.train_labels)
    for _ in range(3):
        training.train_step()
    assert all(math.isfinite(v) for v in training.losses()[0].values())
    assert parametrize.is_parametrized(training.d.embed, "weight")


# ---- 3. the L2 penalty on D's weights ---------------------------------------------------------


def l2(d, real=None, fake=None) -> torch.Tensor:
    """The registered penalty on a stacked D (or the trainer's conditional partial of one)."""
    real = torch.zeros(1, 4, 2) if real is None else real
    fake = torch.zeros(1, 4, 2) if fake is None else fake
    return PENALTIES.get("l2")(d, real, fake, single_stream_uniform(torch.Generator()))


def by_hand(kernels: list[torch.Tensor]) -> float:
    """compare_gan: reduce_mean over kernels of tf.nn.l2_loss(W) = sum(W^2) / 2, i.e. the sum
    of squared kernel weights times 1 / (2 L), L kernels."""
    return sum(float(k.detach().double().square().sum()) for k in kernels) / (2 * len(kernels))


def points_d(seed: int = 0, **options) -> nn.Module:
    torch.manual_seed(seed)
    opts = NetworkOptions((2,), **{"d_bn": True, **options})
    return DISCRIMINATORS.get("points")(opts).double()


def test_l2_is_the_mean_half_squared_norm_of_the_kernels_only():
    d = points_d()  # FC128-tanh, FC128-BN-tanh, FC1
    covered = ("net.0.weight", "net.2.weight", "net.5.weight")
    assert {n for n, _ in d.named_parameters()} - set(covered) == {
        "net.0.bias", "net.2.bias", "net.3.weight", "net.3.bias", "net.5.bias"
    }  # fmt: skip
    with torch.no_grad():  # biases and batch norm's scale and shift: not covered
        for name, p in d.named_parameters():
            if name not in covered:
                p.fill_(7.0)
    kernels = [d.net[0].weight, d.net[2].weight, d.net[5].weight]
    stacked = StackedNetwork([d])
    value = l2(stacked)
    assert value.shape == (1,)
    assert float(value[0].detach()) == pytest.approx(by_hand(kernels), rel=1e-12)
    (grad,) = torch.autograd.grad(value.sum(), stacked.flat)
    grads = dict(zip(stacked.names, stacked.blocks(grad), strict=True))
    for name, p in d.named_parameters():  # d/dW of sum_k |W_k|^2 / (2 L) is W / L, L = 3
        want = p.detach().flatten() / 3 if name in covered else torch.zeros_like(p).flatten()
        torch.testing.assert_close(grads[name][0], want, rtol=1e-12, atol=0)


def test_l2_counts_the_infogan_ds_four_kernels():
    """compare_gan's first study checked 4 layers for its InfoGAN D (src/gans/consts.py:56 at
    51029dc): the two convolutions and the two FCs."""
    torch.manual_seed(0)
    d = Discriminator(NetworkOptions((1, 28, 28)))
    kernels = [d.net[0].weight, d.net[2].weight, d.net[6].weight, d.net[9].weight]
    assert float(
        l2(StackedNetwork([d]), torch.zeros(1, 2, 1, 28, 28))[0].detach()
    ) == pytest.approx(by_hand(kernels), rel=1e-6)


def test_l2_under_spectral_norm_takes_the_unnormalised_weights():
    d = points_d(spectral_norm=True)
    kernels = [d.net[i].parametrizations.weight.original for i in (0, 2, 5)]
    assert float(l2(StackedNetwork([d]))[0].detach()) == pytest.approx(by_hand(kernels), rel=1e-12)


def test_l2_of_a_projection_d_covers_its_embedding_through_the_trainers_partial():
    torch.manual_seed(0)
    opts = NetworkOptions((2,), d_bn=False)
    d = ConditionalDiscriminator(DISCRIMINATORS.get("points"), opts, 5, "projection").double()
    stacked = StackedNetwork([d])
    outputs = partial(_with_labels, stacked, torch.zeros(1, 4, dtype=torch.int64))
    kernels = [d.base.net[0].weight, d.base.net[2].weight, d.base.net[5].weight, d.embed.weight]
    assert float(l2(outputs)[0].detach()) == pytest.approx(by_hand(kernels), rel=1e-12)


def test_l2_needs_the_stacked_discriminator():
    with pytest.raises(TypeError, match="stacked discriminator"):
        l2(lambda x: x.sum(-1))


def test_a_population_members_l2_is_its_trial_alones():
    ds = [points_d(seed) for seed in (0, 1, 2)]
    together = StackedNetwork(ds)
    values = l2(together, torch.zeros(3, 4, 2), torch.zeros(3, 4, 2))
    (grad,) = torch.autograd.grad(values.sum(), together.flat)
    for i, d in enumerate(ds):
        alone = StackedNetwork([d])
        value = l2(alone)
        (own,) = torch.autograd.grad(value.sum(), alone.flat)
        assert float(values[i].detach()) == float(value[0].detach())
        torch.testing.assert_close(together.rows(grad)[i], alone.rows(own)[0], rtol=0, atol=0)
    assert len(set(values.tolist())) == 3


def _grid(**overrides) -> TrialConfig:
    values = {"metrics": (), "generator": "points", "discriminator": "points", "steps": 5,
              "batch_size": 16, "d_bn": False, "lr": 2e-3, **overrides}  # fmt: skip
    return resolve_trial("ns_l2", "grid", **values)


def test_ns_l2_trains_on_the_grid_in_float64_alone_and_as_a_population(float64):
    data = DATASETS.get("grid").load(None, False).train
    trials = [_grid(seed=0, lam=0.01), _grid(seed=1, lam=1.0)]
    together = GANTraining(trials, data, CPU)
    alone = [GANTraining(t, data, CPU) for t in trials]
    for _ in range(5):
        together.train_step()
        for training in alone:
            training.train_step()
    assert bool(together.finite.all())
    for i, training in enumerate(alone):
        mine, own = together.losses()[i], training.losses()[0]
        assert all(math.isfinite(v) for v in mine.values())
        for name in mine:
            assert mine[name] == pytest.approx(own[name], rel=1e-12, abs=1e-15), name


def test_the_l2_term_is_lam_times_the_penalty_in_ds_first_loss(float64):
    """Same seed, same draws (l2 draws nothing): D's first loss with lam minus that with lam 0 is
    lam times the penalty of D's initial weights."""
    data = DATASETS.get("grid").load(None, False).train
    with_l2, without = (GANTraining(_grid(lam=lam), data, CPU) for lam in (3.0, 0.0))
    initial = by_hand([with_l2.d.net[i].weight for i in (0, 2, 5)])
    with_l2.train_step()
    without.train_step()
    difference = with_l2.losses()[0]["d_loss"] - without.losses()[0]["d_loss"]
    assert difference == pytest.approx(3.0 * initial, rel=1e-9)


def test_ns_l2_has_compare_gans_defaults_and_lambda_range():
    """google/compare_gan at 51029dc: GAN_PENALTY (NS) with L2, lambda 0.01 in 10^[-4, 1]
    (src/params.py:271-273), beta2 0.999 (:277), beta1 0, lr 5e-5, one D step, batch norm
    (:280-283)."""
    preset = MODELS.get("ns_l2")
    assert preset.settings() == {
        **MODELS.get("ns").settings(),
        "penalty": "l2",
        "lam": 0.01,
    }
    for space in ("wide", "narrow"):
        assert SPACES.get(space).ranges_for(preset)["lam"] == LogUniform(-4, 1)
        assert sample_hyperparameters(space, "ns_l2", "mnist", 0)["lam"] == 0.01
        draws = [sample_hyperparameters(space, "ns_l2", "mnist", i)["lam"] for i in range(1, 50)]
        assert all(1e-4 <= v <= 10 for v in draws) and min(draws) < 1e-2 < max(draws)
