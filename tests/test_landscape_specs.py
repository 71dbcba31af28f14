"""The landscape specs: the study's best configurations as compare_gan v2.0 lists them, and a
CPU spec that trains and scores every axis."""

from __future__ import annotations

import dataclasses
import math
import os

import pytest

from benchmark.sweep.plan import plan
from benchmark.sweep.spec import load_spec
from benchmark.training.loop import run_trial
from tests.helpers import REPO

# google/compare_gan v2.0 compare_gan/src/generate_tasks_lib.py: line of the entry ->
# (learning_rate, beta1, beta2, disc_iters, discriminator_normalization, penalty, lambda).
SOURCE = {
    "sndcgan-1": (1e-4, 0.5, 0.999, 1, "none", "none", None),  # :156, FID 28.66
    "sndcgan-14": (2e-4, 0.5, 0.999, 1, "spectral_norm", "gp", 10.0),  # :331, FID 26.00
    "resnet-5": (2e-4, 0.5, 0.999, 5, "spectral_norm", "gp", 1.0),  # :653, FID 22.73
    "resnet19-1": (3.38e-5, 0.3753, 0.9982, 1, "none", "none", None),  # :416, FID 34.29
    "resnet19-10": (1e-4, 0.5, 0.9, 5, "layer_norm", "dragan", 1.0),  # :541, FID 29.13
}


@pytest.mark.parametrize("name", ["cifar10-landscape", "celeba-landscape"])
def test_the_gpu_specs_plan_the_studys_best_configurations(name):
    trials = list(plan(load_spec(REPO / "runs" / f"{name}.toml")))
    assert {(t.model, t.z_dim, t.batch_size, t.steps, t.latent) for t in trials} == {
        ("ns", 128, 64, 200_000, "uniform")  # their GAN_WITH_PENALTY, z U[-1, 1]
    }
    by_variant = {t.extra["variant"]: t for t in trials if t.seed == 0}
    for variant, row in SOURCE.items():
        if variant in by_variant:
            t = by_variant[variant]
            got = (t.lr, t.beta1, t.beta2, t.n_disc, t.d_norm, t.penalty, t.lam)
            assert got == row, variant
            assert t.d_bn is False and t.spectral_norm == (t.d_norm == "spectral_norm")
    families = {t.generator for t in trials}
    assert families == ({"sndcgan", "resnet_cifar"} if name.startswith("cifar") else {"resnet5"})


def test_the_cpu_spec_covers_every_axis():
    trials = list(plan(load_spec(REPO / "runs" / "landscape-cpu.toml")))
    assert {t.generator for t in trials} == {"sndcgan", "resnet_cifar"}
    assert {t.d_norm for t in trials} == {"none", "batch_norm", "layer_norm", "spectral_norm"}
    assert {t.penalty for t in trials} == {"none", "gp", "dragan", "l2"}


@pytest.mark.skipif(not os.environ.get("GANBENCH_DATA"), reason="needs CIFAR-10 ($GANBENCH_DATA)")
def test_every_arm_of_the_cpu_spec_trains_and_is_scored(tmp_path):
    for trial in plan(load_spec(REPO / "runs" / "landscape-cpu.toml")):
        short = dataclasses.replace(trial, steps=4, eval_every_epochs=4 * 16 / 50_000)
        record = run_trial(short, tmp_path / trial.trial_id, progress=False, device="cpu")
        assert record["status"] == "ok", (trial.extra, record["error"])
        assert math.isfinite(record["fid_min"]), trial.extra


def test_the_landscape_space_is_the_studys_settings_in_order(tmp_path):
    from benchmark.errors import ConfigError
    from benchmark.search import SPACES, sample_hyperparameters

    space = SPACES.get("landscape")
    assert len(space.settings) == 17  # distinct (lr, beta1, beta2, n_disc) of tables 5 to 7
    # generate_tasks_lib.py:157 (the first SNDCGAN line), :417 (ResNet19 line 1), :542.
    assert sample_hyperparameters("landscape", "ls", "cifar10", 0) == {
        "lr": 1e-4, "beta1": 0.5, "beta2": 0.999, "n_disc": 1,
    }  # fmt: skip
    assert sample_hyperparameters("landscape", "wgan", "mnist", 9) == {
        "lr": 3.38e-5, "beta1": 0.3753, "beta2": 0.9982, "n_disc": 1,
    }  # fmt: skip
    assert sample_hyperparameters("landscape", "ns", "mnist", 13)["n_disc"] == 5
    with pytest.raises(ConfigError, match="samples=18"):
        sample_hyperparameters("landscape", "ns", "mnist", 17)
    spec = tmp_path / "s.toml"
    spec.write_text('datasets = ["mnist"]\nmodels = ["ns"]\nspace = "landscape"\nsamples = 18\n')
    with pytest.raises(ConfigError, match="samples=18 is not allowed; expected at most 17"):
        load_spec(spec)
    spec.write_text(spec.read_text().replace("18", "17"))
    assert len(list(plan(load_spec(spec)))) == 17
