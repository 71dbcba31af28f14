"""Search spaces: sample #0 is the preset, sampling is deterministic and stays in range."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmark.models import MODELS, PAPER_MODELS
from benchmark.search import SPACES, Choice, LogUniform, Uniform, sample_hyperparameters

APPLIES = {
    "mm": {"lr", "beta1", "n_disc", "d_bn"},
    "ns": {"lr", "beta1", "n_disc", "d_bn"},
    "ls": {"lr", "beta1", "n_disc", "d_bn"},
    "wgan": {"lr", "beta1", "n_disc", "d_bn", "clip"},
    "wgan_gp": {"lr", "beta1", "n_disc", "d_bn", "lam"},
    "dragan": {"lr", "beta1", "n_disc", "d_bn", "lam"},
    "began": {"lr", "beta1", "n_disc", "d_bn", "lambda_k", "gamma"},
}


@pytest.mark.parametrize("space", ["wide", "narrow"])
@pytest.mark.parametrize("model", PAPER_MODELS)
def test_sample_zero_is_the_preset(space, model):
    preset = MODELS.get(model)
    values = sample_hyperparameters(space, model, "mnist", 0, seed=3)
    assert values == {name: getattr(preset, name) for name in APPLIES[model]}


@pytest.mark.parametrize("space", ["wide", "narrow"])
@pytest.mark.parametrize("model", PAPER_MODELS)
def test_every_sample_is_inside_its_range(space, model):
    ranges = SPACES.get(space).ranges_for(MODELS.get(model))
    assert set(ranges) == APPLIES[model]
    for index in range(1, 201):
        values = sample_hyperparameters(space, model, "cifar10", index)
        assert set(values) == APPLIES[model]
        for name, value in values.items():
            assert ranges[name].contains(value), (name, value)
            assert type(value) in (float, int, bool)


def test_the_table_of_ranges():
    wide, narrow = SPACES.get("wide").ranges, SPACES.get("narrow").ranges
    assert wide == {
        "lr": LogUniform(-5, -2),
        "beta1": Uniform(0, 1),
        "n_disc": Choice((1, 5)),
        "d_bn": Choice((True, False)),
        "clip": LogUniform(-3, 0),
        "lam": LogUniform(-1, 2),
        "lambda_k": LogUniform(-4, -2),
        "gamma": Uniform(0, 1),
    }
    assert narrow == {
        "lr": LogUniform(-4, -3),
        "beta1": Choice((0.5,)),
        "n_disc": Choice((1,)),
        "d_bn": Choice((True, False)),
        "clip": LogUniform(-2, 0),
        "lam": LogUniform(-1, 1),
        "lambda_k": Choice((1e-3,)),
        "gamma": Uniform(0.6, 0.9),
    }


def test_narrow_fixes_and_penalty_models_without_batch_norm():
    for model in PAPER_MODELS:
        samples = [sample_hyperparameters("narrow", model, "mnist", i) for i in range(1, 60)]
        assert {s["beta1"] for s in samples} == {0.5}
        assert {s["n_disc"] for s in samples} == {1}
        expected = {False} if model in ("wgan_gp", "dragan") else {True, False}
        assert {s["d_bn"] for s in samples} == expected
    began = sample_hyperparameters("narrow", "began", "mnist", 5)
    assert began["lambda_k"] == 1e-3


def test_sampling_is_deterministic_and_pinned():
    first = sample_hyperparameters("wide", "ns", "mnist", 1, seed=0)
    assert first == {
        "beta1": pytest.approx(0.8996600746538695),
        "d_bn": True,
        "lr": pytest.approx(0.0012636622364598559),
        "n_disc": 5,
    }
    assert sample_hyperparameters("wide", "ns", "mnist", 1, seed=0) == first
    # Each of seed, dataset, model and index changes the draw.
    assert sample_hyperparameters("wide", "ns", "mnist", 1, seed=1) != first
    assert sample_hyperparameters("wide", "ns", "cifar10", 1, seed=0) != first
    assert sample_hyperparameters("wide", "mm", "mnist", 1, seed=0) != first
    assert sample_hyperparameters("wide", "ns", "mnist", 2, seed=0) != first


def test_log_ranges_are_uniform_in_the_exponent():
    exponents = np.log10(
        [sample_hyperparameters("wide", "wgan", "mnist", i)["clip"] for i in range(1, 2001)]
    )
    # U[-3, 0]: mean -1.5, standard deviation 3 / sqrt(12); 2000 draws, 5 standard errors.
    assert exponents.mean() == pytest.approx(-1.5, abs=5 * (3 / math.sqrt(12)) / math.sqrt(2000))
    assert exponents.min() == pytest.approx(-3, abs=0.02)
    assert exponents.max() == pytest.approx(0, abs=0.02)


def test_default_space_searches_nothing():
    assert sample_hyperparameters("default", "wgan", "mnist", 0) == {}


def test_new_models_sample_zero_and_their_lam_ranges():
    """rpgan and ns_r1 search lam over the zero-centred penalties' range, not GP's."""
    assert sample_hyperparameters("wide", "rpgan", "mnist", 0) == {
        "beta1": 0.0,
        "d_bn": False,
        "lam": 0.0125,
        "lr": 2e-4,
        "n_disc": 1,
    }
    assert sample_hyperparameters("wide", "ns_r1", "mnist", 0)["lam"] == 5.0
    assert set(sample_hyperparameters("wide", "ragan", "mnist", 3)) == APPLIES["ns"]
    for model in ("rpgan", "ns_r1"):
        wide = SPACES.get("wide").ranges_for(MODELS.get(model))
        narrow = SPACES.get("narrow").ranges_for(MODELS.get(model))
        assert wide["lam"] == LogUniform(-3, 2) and narrow["lam"] == LogUniform(-2, 1)
        assert narrow["d_bn"] == Choice((False,))
    for model in ("wgan_gp", "dragan"):  # the paper's ranges stay the paper's
        assert SPACES.get("wide").ranges_for(MODELS.get(model))["lam"] == LogUniform(-1, 2)
    exponents = np.log10(
        [sample_hyperparameters("wide", "rpgan", "mnist", i)["lam"] for i in range(1, 2001)]
    )
    assert exponents.min() == pytest.approx(-3, abs=0.02)
    assert exponents.max() == pytest.approx(2, abs=0.02)


def test_the_quick_space_draws_every_sample_and_fixes_what_an_mlp_needs():
    """The CPU demonstration's space: no preset at #0 (their learning rates are tuned for
    15,625 steps), D without batch norm, one D step per G step, lr in 10^[-3.7, -3]."""
    quick = SPACES.get("quick")
    assert not quick.preset_first
    assert quick.ranges == {
        "lr": LogUniform(-3.7, -3),
        "beta1": Choice((0.5,)),
        "n_disc": Choice((1,)),
        "d_bn": Choice((False,)),
        "clip": LogUniform(-2, -1),
        "lam": LogUniform(-1, 1),
        "lambda_k": Choice((1e-3,)),
        "gamma": Uniform(0.6, 0.9),
    }
    assert quick.by_penalty == {"dragan": {"lam": LogUniform(-2, -1.5)}}
    assert quick.ranges_for(MODELS.get("dragan"))["lam"] == LogUniform(-2, -1.5)
    assert quick.ranges_for(MODELS.get("wgan_gp"))["lam"] == LogUniform(-1, 1)
    for model in PAPER_MODELS:
        ranges = quick.ranges_for(MODELS.get(model))
        for index in range(40):
            values = sample_hyperparameters("quick", model, "polygons", index)
            assert set(values) == APPLIES[model]
            assert all(ranges[name].contains(value) for name, value in values.items())
    # Sample 0 is drawn, like the others, not the preset (ns: lr 5e-5, beta1 0).
    assert sample_hyperparameters("quick", "ns", "polygons", 0) == {
        "beta1": 0.5,
        "d_bn": False,
        "lr": pytest.approx(0.00043790507913940937),
        "n_disc": 1,
    }
