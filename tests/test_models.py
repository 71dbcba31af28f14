"""The model presets: the newer ones carry what their authors' code fixes, the paper's stay put."""

from __future__ import annotations

import pytest

from benchmark.config import TrialConfig
from benchmark.errors import ConfigError
from benchmark.models import MODELS, PAPER_MODELS, resolve_trial

RSGAN = "AlexiaJM/RelativisticGAN code/stable.sh:13 (--loss_D 5)"
RAGAN = "AlexiaJM/RelativisticGAN code/stable.sh:15 (--loss_D 6)"
ALEXIA = "AlexiaJM/RelativisticGAN code/GAN_losses_iter.py"
R3GAN = "brownvc/R3GAN"
MESCHEDER = "LMescheder/GAN_stability"

# (model, field, value, where the source fixes it). lam is the source's strength converted to
# this project's [0, 1] pixels (benchmark.penalties.lam_from_source).
SOURCE_VALUES = [
    *[
        (model, field, value, f"{line}: {what}")
        for model, line in (("rsgan", RSGAN), ("ragan", RAGAN))
        for field, value, what in (
            ("lr", 2e-4, "--lr_D .0002 --lr_G .0002"),
            ("beta1", 0.5, "--beta1 .50"),
            ("beta2", 0.999, "--beta2 .999"),
            ("n_disc", 1, "--Diters 1"),
            ("batch_size", 32, "--batch_size 32"),
            ("spectral_norm", True, "--spectral True"),
            ("d_bn", False, "--spectral True removes D's batch norm (GAN_losses_iter.py:45)"),
        )
    ],
    *[
        (model, field, value, f"{ALEXIA}:{line}")
        for model in ("rsgan", "ragan")
        for field, value, line in (
            ("latent", "normal", "630 z.normal_(0, 1)"),
            ("resample_z_for_g", True, "674 a fresh z for G"),
            ("resample_real_for_g", True, "679 a fresh real batch for G"),
        )
    ],
    ("rpgan", "loss", "rsgan", f"{R3GAN} R3GAN/Trainer.py:21-22, :38-39 softplus(-(l - l'))"),
    ("rpgan", "penalty", "r1r2", f"{R3GAN} R3GAN/Trainer.py:35-41 R1 + R2"),
    ("rpgan", "lr", 2e-4, f"{R3GAN} train.py:194 lr_scheduler base_value 2e-4"),
    ("rpgan", "lam", 0.0125, f"{R3GAN} train.py:195 gamma 0.05, (gamma / 2)(R1 + R2) on [-1, 1]"),
    ("rpgan", "beta1", 0.0, f"{R3GAN} train.py:159-160, training/training_loop.py:331 beta1 0"),
    ("rpgan", "beta2", 0.9, f"{R3GAN} train.py:196 beta2_scheduler base_value 0.9"),
    ("rpgan", "n_disc", 1, f"{R3GAN} training/training_loop.py:317 one D then one G phase"),
    ("rpgan", "d_bn", False, f"{R3GAN} R3GAN/Networks.py: no normalisation in D"),
    ("rpgan", "spectral_norm", False, f"{R3GAN} R3GAN/Networks.py: no normalisation in D"),
    ("rpgan", "latent", "normal", f"{R3GAN} training/training_loop.py:288 torch.randn"),
    ("rpgan", "resample_z_for_g", True, f"{R3GAN} training/training_loop.py:291 G_z"),
    ("rpgan", "resample_real_for_g", True, f"{R3GAN} training/training_loop.py:290 G_img"),
    ("ns_r1", "loss", "ns", f"{MESCHEDER} configs/default.yaml:20 gan_type standard"),
    ("ns_r1", "penalty", "r1", f"{MESCHEDER} configs/default.yaml:21 reg_type real"),
    ("ns_r1", "lam", 5.0, f"{MESCHEDER} configs/default.yaml:22 reg_param 10 on [-1, 1]"),
    ("ns_r1", "batch_size", 64, f"{MESCHEDER} configs/default.yaml:23 batch_size 64"),
    ("ns_r1", "lr", 1e-4, f"{MESCHEDER} configs/default.yaml:36-37 lr_g, lr_d 1e-4"),
    ("ns_r1", "n_disc", 1, f"{MESCHEDER} configs/default.yaml:40 d_steps 1"),
    ("ns_r1", "beta1", 0.0, f"{MESCHEDER} gan_training/config.py:105-108 RMSprop; Adam (0, .99)"),
    ("ns_r1", "beta2", 0.99, f"{MESCHEDER} gan_training/config.py:105-108 alpha 0.99; (0, .99)"),
    ("ns_r1", "d_bn", False, f"{MESCHEDER} gan_training/models/resnet.py: no normalisation"),
    ("ns_r1", "latent", "normal", f"{MESCHEDER} configs/default.yaml:16 z_dist gauss"),
    ("ns_r1", "resample_z_for_g", True, f"{MESCHEDER} train.py:191 a fresh z for G"),
    ("ns_r1", "resample_real_for_g", False, f"{MESCHEDER} gan_training/train.py:21-36 no real"),
]


@pytest.mark.parametrize(
    ("model", "field", "value", "source"),
    SOURCE_VALUES,
    ids=[f"{m}-{f}" for m, f, _, _ in SOURCE_VALUES],
)
def test_a_newer_preset_has_its_sources_value(model, field, value, source):
    assert getattr(MODELS.get(model), field) == value, source
    assert getattr(resolve_trial(model, "cifar10"), field) == value, source


# The paper's seven (and hinge) keep their trials: ids computed before the newer presets took
# their sources' values, on MNIST and CIFAR-10.
PAPER_IDS = {
    "mm": ("befa9af4c491a888", "56b9451f8f557507"),
    "ns": ("60aacecef651d0c7", "9629197736d3d474"),
    "ls": ("20479117fa3d85f1", "34c6409280a34b04"),
    "wgan": ("2b3269bedf3bd149", "ddb2f894d790007b"),
    "wgan_gp": ("b0473969d81eb375", "dfe94b6df8bd636d"),
    "dragan": ("91c7178c74626fad", "13fbe57646523ced"),
    "began": ("2296590ccfb9fd3c", "6bd52615e5b619dc"),
    "hinge": ("156b079f76f1e16d", "47c0e911f7fab8ac"),
}


@pytest.mark.parametrize("model", sorted(PAPER_IDS))
def test_the_paper_models_keep_their_trial_ids(model):
    ids = tuple(resolve_trial(model, dataset).trial_id for dataset in ("mnist", "cifar10"))
    assert ids == PAPER_IDS[model]
    assert set(PAPER_MODELS) <= set(PAPER_IDS)
    trial = resolve_trial(model, "mnist")
    assert "resample_real_for_g" not in trial.to_dict()  # a field left out at its default
    assert TrialConfig.from_dict(trial.to_dict()) == trial


def test_a_fresh_real_batch_needs_a_loss_that_uses_one():
    assert resolve_trial("rsgan", "mnist", resample_real_for_g=False).trial_id != (
        resolve_trial("rsgan", "mnist").trial_id
    )
    with pytest.raises(ConfigError) as error:
        resolve_trial("ns", "mnist", resample_real_for_g=True)
    assert str(error.value) == (
        "resample_real_for_g=True is not allowed; expected false: loss 'ns' uses no real batch "
        "in its G update"
    )
