"""Conditional GANs: G(z, y) and D(x, y) against hand-computed outputs, penalties, labels,
label accuracy, every model training conditionally, and the trial configuration."""

from __future__ import annotations

import math
from functools import partial

import numpy as np
import pytest
import torch
from torch import nn

from benchmark.conditional import (
    ConditionalDiscriminator,
    ConditionalGenerator,
    balanced_labels,
)
from benchmark.config import TrialConfig
from benchmark.datasets import DATASETS
from benchmark.errors import ConfigError
from benchmark.evaluation.mixture_metrics import mode_label_accuracy, nearest_mode
from benchmark.losses import LOSSES
from benchmark.mixtures import GRID
from benchmark.models import MODELS, resolve_trial
from benchmark.networks import NetworkOptions
from benchmark.penalties import PENALTIES
from benchmark.training.stacked import StackedNetwork
from benchmark.training.step import GANTraining, _with_labels

CPU = torch.device("cpu")


def grid_trial(model: str, **overrides) -> TrialConfig:
    """A trial on the grid with the point networks (BEGAN: the point autoencoder D)."""
    d = "points_began" if MODELS.get(model).discriminator == "began" else "points"
    values = {"metrics": (), "generator": "points", "discriminator": d, **overrides}
    return resolve_trial(model, "grid", **values)


# ---- hand-computed outputs --------------------------------------------------------------------


class TinyD(nn.Module):
    """2 -> 3 tanh -> 1, with set weights: phi(x) = tanh(W1 x), head w2 . phi + 0.25."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
        with torch.no_grad():
            self.net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
            self.net[0].bias.zero_()
            self.net[2].weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
            self.net[2].bias.fill_(0.25)

    def forward(self, x):
        return self.net(x).squeeze(-1)


class TinyG(nn.Module):
    """A linear map of its input (z_dim inputs, 2 outputs), weights set by the test."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        self.net = nn.Linear(opts.z_dim, 2)

    def forward(self, z):
        return self.net(z)


OPTS = NetworkOptions(shape=(2,), z_dim=1)


def test_projection_is_the_head_plus_the_inner_product_of_embedding_and_features():
    d = ConditionalDiscriminator(TinyD, OPTS, classes=2, conditioning="projection").double()
    with torch.no_grad():
        d.embed.weight.copy_(torch.tensor([[0.0, 0.0, 1.0], [2.0, 1.0, 5.0]]))
    x = torch.tensor([[0.5, -0.5], [0.5, -0.5], [1.0, 0.0]], dtype=torch.float64)
    y = torch.tensor([1, 0, 0])
    t = math.tanh(0.5)
    # phi = (tanh .5, -tanh .5, 0): head = t - 2t + 0.25; label 1 adds 2t - t + 0 = t;
    # label 0 adds 0. phi(1, 0) = (tanh 1, 0, tanh 1): head tanh 1 + 3 tanh 1 + 0.25, + tanh 1.
    expected = [0.25, 0.25 - t, 5 * math.tanh(1.0) + 0.25]
    torch.testing.assert_close(d(x, y), torch.tensor(expected, dtype=torch.float64))


def test_concat_feeds_the_one_hot_label_to_the_first_fully_connected_layer():
    d = ConditionalDiscriminator(TinyD, OPTS, classes=2, conditioning="concat").double()
    first = d.base.net[0][1]  # LabelConcat, then the wider first layer
    assert first.in_features == 4
    with torch.no_grad():
        first.weight.copy_(
            torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0, 0, 0, 1.0]])
        )
        first.bias.zero_()
    x = torch.tensor([[0.5, 7.0], [0.5, 7.0]], dtype=torch.float64)
    y = torch.tensor([0, 1])
    # phi = tanh(x0, [y = 0], [y = 1]); head 1, 2, 3 and 0.25.
    expected = [
        math.tanh(0.5) + 2 * math.tanh(1.0) + 0.25,
        math.tanh(0.5) + 3 * math.tanh(1.0) + 0.25,
    ]
    torch.testing.assert_close(d(x, y), torch.tensor(expected, dtype=torch.float64))


def test_the_generator_sees_z_beside_the_labels_embedding():
    g = ConditionalGenerator(TinyG, OPTS, classes=2).double()
    assert g.base.net.in_features == 1 + 2
    with torch.no_grad():
        g.embed.weight.copy_(torch.tensor([[1.0, -1.0], [3.0, 0.5]]))
        g.base.net.weight.copy_(torch.tensor([[1.0, 10.0, 100.0], [2.0, 0.0, 1.0]]))
        g.base.net.bias.copy_(torch.tensor([0.0, 0.5]))
    z = torch.tensor([[0.5], [0.5]], dtype=torch.float64)
    out = g(z, torch.tensor([0, 1]))
    # [z, e_y] = (0.5, 1, -1) and (0.5, 3, 0.5).
    expected = [[0.5 + 10 - 100, 1 - 1 + 0.5], [0.5 + 30 + 50, 1 + 0.5 + 0.5]]
    torch.testing.assert_close(out, torch.tensor(expected, dtype=torch.float64))


def test_began_refuses_projection_and_defaults_to_concat():
    with pytest.raises(
        ConfigError, match="conditioning='projection' is not allowed; expected concat"
    ):
        grid_trial("began", conditional=True, conditioning="projection")
    trial = grid_trial("began", conditional=True)
    assert trial.conditioning == "concat"
    assert grid_trial("ns", conditional=True).conditioning == "projection"


# ---- penalties --------------------------------------------------------------------------------


@pytest.mark.parametrize("penalty", ["gp", "dragan", "r1", "r1r2"])
def test_a_conditional_ds_penalty_is_the_unconditional_ds_with_the_label_term_removed(penalty):
    """Constructed: D(x, y) = (w2 + e_y) . phi(x) + b. With every label y its penalty is that of
    the unconditional D whose head is w2 + e_y; with e = 0 that of the plain D. Through the
    trainer's path: a stacked network and x -> D(x, y) (the gradient is the image's only)."""
    torch.manual_seed(0)
    cond = ConditionalDiscriminator(TinyD, OPTS, classes=2, conditioning="projection").double()
    with torch.no_grad():
        cond.embed.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [0.5, -1.0, 2.0]]))
    real = torch.randn(1, 32, 2, dtype=torch.float64)
    fake = torch.randn(1, 32, 2, dtype=torch.float64)
    stacked = StackedNetwork([cond])
    for label, head in ((0, [1.0, 2.0, 3.0]), (1, [1.5, 1.0, 5.0])):
        plain = TinyD(OPTS).double()
        with torch.no_grad():
            plain.net[2].weight.copy_(torch.tensor([head]))
        labels = torch.full((1, 32), label)
        draws = [torch.Generator().manual_seed(1) for _ in range(2)]
        uniforms = [partial(_uniform, g) for g in draws]
        outputs = partial(_with_labels, stacked, labels)
        got = PENALTIES.get(penalty)(outputs, real, fake, uniforms[0])
        want = PENALTIES.get(penalty)(StackedNetwork([plain]), real, fake, uniforms[1])
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)
        assert float(got[0].detach()) > 1e-3  # a penalty that is there to compare


def _uniform(generator, shape, dtype):
    return torch.rand(tuple(shape), generator=generator, dtype=dtype)[None]


# ---- labels and label accuracy ----------------------------------------------------------------


def test_evaluation_labels_are_fixed_and_class_balanced():
    labels = balanced_labels(25, 10)
    assert labels.tolist() == [*range(10), *range(10), *range(5)]
    counts = torch.bincount(balanced_labels(2500, 25), minlength=25)
    assert counts.tolist() == [100] * 25
    assert torch.equal(balanced_labels(2500, 25), balanced_labels(2500, 25))


def test_mixture_label_accuracy_counts_the_samples_nearest_their_own_mode():
    centres = GRID.centre_array
    labels = np.arange(10) % 25
    points = centres[labels] + 0.3  # each within 0.43 of its own centre (others: >= 1.4)
    points[7] = centres[24]  # three samples drawn at another mode
    points[8] = centres[0] + [1.1, 0.0]  # nearer (2, ...) = mode 5 than (-4, -4) = mode 0
    points[9] = centres[labels[9]] + [0.9, 0.9]  # still nearest its own
    assert nearest_mode(points[8:9], centres).tolist() == [5]
    assert mode_label_accuracy(points, labels, centres) == pytest.approx(8 / 10, abs=0)
    assert mode_label_accuracy(centres, np.arange(25), centres) == 1.0
    assert mode_label_accuracy(centres, (np.arange(25) + 1) % 25, centres) == 0.0


# ---- training ---------------------------------------------------------------------------------


def _families(model: str) -> list[tuple[str, dict]]:
    began = MODELS.get(model).discriminator == "began"
    return [
        ("grid", {"generator": "points", "discriminator": "points_began" if began else "points"}),
        ("test_quadrants", {"generator": "mlp", "discriminator": "mlp_began" if began else "mlp"}),
        ("test_quadrants", {}),  # the InfoGAN networks
    ]


def test_the_models_cover_every_registered_loss_and_penalty():
    losses = {n for n in LOSSES.names() if not n.startswith("test")}
    assert {MODELS.get(m).loss for m in MODELS.names()} >= losses
    assert {MODELS.get(m).penalty for m in MODELS.names()} == set(PENALTIES.names())


@pytest.mark.parametrize("model", MODELS.names())
def test_every_model_trains_conditional_steps_and_its_label_steers_g(model):
    for dataset, networks in _families(model):
        trial = resolve_trial(model, dataset, steps=3, batch_size=8, metrics=(), conditional=True,
                              **networks)  # fmt: skip
        data = DATASETS.get(dataset).load(None, False)
        training = GANTraining(trial, data.train, CPU, train_labels=data.train_labels)
        before = training.generator.flat.detach().clone()
        for _ in range(3):
            training.train_step()
        losses = training.losses()[0]
        assert all(math.isfinite(v) for v in losses.values()), (model, dataset, losses)
        assert not torch.equal(before, training.generator.flat), (model, dataset)
        g = training.g.eval()
        z = torch.zeros(2, trial.z_dim)
        out = g(z, torch.tensor([0, 1]))
        assert not torch.equal(out[0], out[1]), (model, dataset)  # the label reaches G's output


def test_the_d_steps_fakes_take_the_real_batchs_labels_and_a_fresh_z_a_fresh_label():
    trial = resolve_trial("wgan_gp", "grid", generator="points", discriminator="points",
                          conditional=True, steps=2, batch_size=8, metrics=())  # fmt: skip
    data = DATASETS.get("grid").load(None, False)
    training = GANTraining(trial, data.train, CPU, train_labels=data.train_labels)
    calls = []
    forward = training.generator.forward
    training.generator.forward = lambda z, y: calls.append(y.clone()) or forward(z, y)
    generator = torch.Generator().manual_seed(trial.seed)
    index = torch.randint(len(data.train), (8,), generator=generator)
    torch.rand(8, trial.z_dim, generator=generator)  # the D step's z
    torch.rand(8, 1, generator=generator)  # the gradient penalty's interpolation weights
    torch.rand(8, trial.z_dim, generator=generator)  # the G step's fresh z (WGAN-GP)
    fresh = torch.randint(len(data.train), (8,), generator=generator)
    training.train_step()
    assert torch.equal(calls[0][0], data.train_labels[index])  # D step: the real labels
    assert torch.equal(calls[1][0], data.train_labels[fresh])  # G step: a fresh draw


# ---- configuration ----------------------------------------------------------------------------


def test_an_unconditional_trial_keeps_its_id_and_record():
    trial = grid_trial("ns", steps=10)
    record = trial.to_dict()
    assert "conditional" not in record and "conditioning" not in record
    assert TrialConfig.from_dict(record).trial_id == trial.trial_id
    conditional = grid_trial("ns", steps=10, conditional=True)
    assert conditional.to_dict()["conditional"] is True
    assert conditional.to_dict()["conditioning"] == "projection"
    assert conditional.trial_id != trial.trial_id
    assert TrialConfig.from_dict(conditional.to_dict()) == conditional


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"conditional": True, "conditioning": "film"},
         "conditioning='film' is not allowed; expected one of ['projection', 'concat']"),
        ({"conditioning": "concat"},
         "conditioning='concat' is not allowed; expected unset (conditional is false)"),
        ({"conditional": "yes"}, "conditional='yes' is not allowed; expected true or false"),
    ],
)  # fmt: skip
def test_bad_conditional_options_are_refused_in_one_line(overrides, message):
    with pytest.raises(ConfigError) as error:
        grid_trial("ns", **overrides)
    assert str(error.value) == message


def test_a_dataset_without_labels_refuses_a_conditional_trial():
    with pytest.raises(ConfigError, match="conditional=True is not allowed; expected false: "
                       "dataset 'polygons' has no labels"):  # fmt: skip
        resolve_trial("ns", "polygons", conditional=True)
