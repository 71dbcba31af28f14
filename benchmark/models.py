"""Models as named presets (the paper's seven, and newer ones): a loss, a penalty, defaults.

A preset is data, not code: wgan_gp is the wgan loss plus the gp penalty (and a fresh z
for the G update), dragan is the ns loss plus the dragan penalty. The defaults are the
reference study's (docs/options.md, "Models and their defaults"); they are sample #0 of
every hyperparameter search.
A newer model's defaults are every number and choice its authors' code fixes (each preset
names the file and line it follows): the G update's draws, the penalty's strength on this
project's [0, 1] pixel scale, Adam's betas, D's normalisation, the batch size and p(z). The
networks (InfoGAN), the D-step budget, the evaluation and constant hyperparameters are the
study's for every model (docs/options.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from benchmark.config import TrialConfig
from benchmark.data_kinds import DATA_KINDS
from benchmark.datasets import DATASETS
from benchmark.errors import ConfigError
from benchmark.networks import FAMILIES
from benchmark.options import BY_NAME, OPTIONS
from benchmark.penalties import lam_from_source
from benchmark.registry import Registry, load_plugins

#: The options a preset may set (`Option.preset`): loss, penalty, networks, the optimiser's
#: numbers, D's normalisation, the loss's hyperparameters, the batch, p(z) and the G update's
#: draws.
PRESET_OPTIONS = tuple(option.name for option in OPTIONS if option.preset)


class ModelPreset:
    """A model: the values it gives to preset options; every other keeps its declared default
    (benchmark/options.py). `preset.lr` reads the preset's value, or the default."""

    def __init__(self, **values: Any) -> None:
        unknown = sorted(set(values) - set(PRESET_OPTIONS))
        if unknown:
            raise ValueError(f"preset option {unknown[0]!r}: allowed {list(PRESET_OPTIONS)}")
        if "loss" not in values:
            raise ValueError("a model preset names its loss")
        self.values: Mapping[str, Any] = MappingProxyType(dict(values))

    def __getattr__(self, name: str) -> Any:
        if name in PRESET_OPTIONS and "values" in self.__dict__:
            return self.values.get(name, BY_NAME[name].default)
        raise AttributeError(name)

    def settings(self) -> dict[str, Any]:
        """Every preset option's value."""
        return {name: getattr(self, name) for name in PRESET_OPTIONS}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ModelPreset) and self.settings() == other.settings()

    def __hash__(self) -> int:
        return hash(tuple(sorted(self.settings().items())))

    def __repr__(self) -> str:
        return f"ModelPreset({', '.join(f'{k}={v!r}' for k, v in self.values.items())})"


MODELS: Registry[ModelPreset] = Registry("model")

MODELS.register("mm", ModelPreset(loss="mm", lr=5e-5, beta1=0.0, n_disc=1, d_bn=True))
MODELS.register("ns", ModelPreset(loss="ns", lr=5e-5, beta1=0.0, n_disc=1, d_bn=True))
MODELS.register("ls", ModelPreset(loss="ls", lr=2e-4, beta1=0.5, n_disc=1, d_bn=True))
MODELS.register(
    "wgan", ModelPreset(loss="wgan", lr=5e-5, beta1=0.5, n_disc=5, d_bn=True, clip=0.01)
)
MODELS.register(
    "wgan_gp",
    ModelPreset(
        loss="wgan",
        penalty="gp",
        lr=1e-4,
        beta1=0.5,
        n_disc=5,
        d_bn=False,
        lam=10.0,
        resample_z_for_g=True,
    ),
)
MODELS.register(
    "dragan",
    ModelPreset(loss="ns", penalty="dragan", lr=1e-4, beta1=0.5, n_disc=1, d_bn=True, lam=10.0),
)
MODELS.register(
    "began",
    ModelPreset(
        loss="began",
        discriminator="began",
        lr=1e-4,
        beta1=0.5,
        n_disc=5,
        d_bn=False,
        lambda_k=1e-3,
        gamma=0.75,
    ),
)
# The first step beyond the paper (Kurach et al. 2019): hinge loss, with spectral norm
# available to any model through the `spectral_norm` option.
MODELS.register("hinge", ModelPreset(loss="hinge", lr=2e-4, beta1=0.5, n_disc=1, d_bn=True))

# LSGAN on D's raw output as Welfert et al. 2023 train it on the ring (SankarLab/AlphaGan-
# Papers-Results, commit 5460544, experiment1.py): Adam lr 1e-4 with PyTorch's default betas
# (0.9, 0.999) (:185-186), batch 128, z ~ N(0, I) (:91), one D step per G step, the G update
# on the D update's fakes (gan.py :62-70), no batch norm in their networks (:140-181).
MODELS.register(
    "ls_raw",
    ModelPreset(
        loss="ls_raw", lr=1e-4, beta1=0.9, beta2=0.999, d_bn=False, batch_size=128,
        latent="normal",
    ),
)  # fmt: skip

# Relativistic losses (Jolicoeur-Martineau 2018) at the author's "DCGAN setup" for CIFAR-10,
# AlexiaJM/RelativisticGAN code/stable.sh:13 (RSGAN, --loss_D 5) and :15 (RaSGAN, --loss_D 6):
# lr 2e-4, batch 32, one D step per G step, Adam betas (0.5, 0.999), --spectral True, which
# puts spectral norm on D and removes its batch norm (code/GAN_losses_iter.py:45, :241-258).
# z ~ N(0, I) (GAN_losses_iter.py:630, :674); the G update draws a fresh z (:674) and a fresh
# real batch (:679) for its relativistic loss (:695-702).
RELATIVISTIC = dict(
    lr=2e-4,
    beta1=0.5,
    beta2=0.999,
    n_disc=1,
    d_bn=False,
    spectral_norm=True,
    # --spectral normalises the seven convolutions of their "standard CNN" D (arch 1) and not
    # its dense output layer: GAN_losses_iter.py:239 `self.dense = torch.nn.Linear(512 * 4 *
    # 4, 1)` against :241-258 `spectral_norm(torch.nn.Conv2d(...))`, the logit being
    # `self.dense(self.model(input)...)` (:315). So the InfoGAN D's FC1 stays free here.
    spectral_norm_output=False,
    batch_size=32,
    latent="normal",
    resample_z_for_g=True,
    resample_real_for_g=True,
)
MODELS.register("rsgan", ModelPreset(loss="rsgan", **RELATIVISTIC))
MODELS.register("ragan", ModelPreset(loss="ragan", **RELATIVISTIC))


# The relativistic pairing loss with R1 and R2 (Huang et al. 2024): the base values of the
# schedules of their CIFAR-10 preset, brownvc/R3GAN train.py:194 (lr 2e-4), :195 (gamma 0.05),
# :196 (beta2 0.9), with beta1 0 (train.py:159-160, training/training_loop.py:331); one D and
# one G update per iteration on z ~ N(0, I) with a fresh z and real batch for G
# (training_loop.py:287-291); no normalisation in D (R3GAN/Networks.py). The penalty is
# (gamma / 2)(R1 + R2) on [-1, 1] images (R3GAN/Trainer.py:41, training_loop.py:298).
# The batch is a required option of train.py (their README runs CIFAR-10 at 512 on 8 GPUs):
# the study's 64 here.
MODELS.register(
    "rpgan",
    ModelPreset(
        loss="rsgan",
        penalty="r1r2",
        lr=2e-4,
        beta1=0.0,
        beta2=0.9,
        n_disc=1,
        d_bn=False,
        lam=lam_from_source(0.05, scale=0.5),  # 0.0125
        latent="normal",
        resample_z_for_g=True,
        resample_real_for_g=True,
    ),
)
# NS with R1 (Mescheder et al. 2018), LMescheder/GAN_stability configs/default.yaml:20-23
# (standard loss, R1 on real data, reg_param 10, batch 64), :35-37 (RMSprop, lr 1e-4) and :40
# (one D step); RMSprop(alpha 0.99) there (gan_training/config.py:105-106), its `adam` option
# betas (0, 0.99) (config.py:108): Adam (0, 0.99) here. The penalty is reg_param E||grad||^2
# on [-1, 1] images (gan_training/train.py:53, :123-132; inputs.py:13). z ~ N(0, I)
# (default.yaml:16); the G update draws a fresh z (train.py:191); no normalisation in D.
MODELS.register(
    "ns_r1",
    ModelPreset(
        loss="ns",
        penalty="r1",
        lr=1e-4,
        beta1=0.0,
        beta2=0.99,
        n_disc=1,
        d_bn=False,
        lam=lam_from_source(10.0, scale=1.0),  # 5.0
        latent="normal",
        resample_z_for_g=True,
    ),
)

# NS with compare_gan's L2 penalty on D's weights (Kurach et al. 2019), at the defaults of its
# first study's code (google/compare_gan commit 51029dc): the "GAN_PENALTY" model is NS
# (compare_gan/src/gans/gans_with_penalty.py:358-368) plus lambda * penalty (:398-400), with
# lambda 0.01 for L2 (compare_gan/src/params.py:271-273), beta2 0.999 (:277-278) and the
# GAN_PENALTY defaults beta1 0, lr 5e-5, one D step, batch norm in D (:280-283), the paper's
# `ns` otherwise. The penalty is one of weights, so the pixel scale does not change lambda.
MODELS.register(
    "ns_l2",
    ModelPreset(
        loss="ns", penalty="l2", lr=5e-5, beta1=0.0, beta2=0.999, n_disc=1, d_bn=True, lam=0.01
    ),
)

PAPER_MODELS = ("mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began")
MODERN_MODELS = ("rsgan", "ragan", "rpgan", "ns_r1")


def networks_for(model: str, dataset: str, family: str | None = None) -> dict[str, str]:
    """The generator and discriminator of `model` on `dataset`: those of `family` when given,
    else the model's own, except that a model with the paper's networks takes the dataset's
    family (`DatasetSpec.networks`: points for the 2-D mixtures), BEGAN's autoencoder D
    becoming that family's autoencoder."""
    preset = MODELS.get(model, "model")
    own = {"generator": preset.generator, "discriminator": preset.discriminator}
    if family is None:
        family = DATASETS.get(dataset, "dataset").networks
        paper = FAMILIES.get("infogan")
        on_paper_networks = (
            own["generator"] == paper.generator
            and own["discriminator"] in paper.discriminators.values()
        )
        if family == "infogan" or not on_paper_networks:
            return own
    return FAMILIES.get(family, "networks").networks_for(preset.discriminator)


def resolve_trial(model: str, dataset: str, **overrides: Any) -> TrialConfig:
    """The model's preset on the dataset's networks (`networks_for`) and its kind's metrics
    (benchmark/data_kinds.py), with `overrides` applied; None in overrides means "keep the
    preset"."""
    load_plugins(overrides.get("plugins") or ())
    values = MODELS.get(model, "model").settings()
    if dataset in DATASETS:  # else TrialConfig names the unknown dataset
        values.update(networks_for(model, dataset))
        values["metrics"] = DATA_KINDS.get(DATASETS.get(dataset).kind).metrics
    values.update({key: value for key, value in overrides.items() if value is not None})
    if values.get("d_norm") is not None:  # one normalisation: the flags follow it
        implied = {
            "d_bn": values["d_norm"] == "batch_norm",
            "spectral_norm": values["d_norm"] == "spectral_norm",
        }
        values.update({k: v for k, v in implied.items() if overrides.get(k) is None})
    unknown = sorted(set(values) - set(TrialConfig.options))
    if unknown:
        raise ConfigError("parameter", unknown[0], f"one of {sorted(TrialConfig.options)}")
    for name, value in values.items():
        if isinstance(value, list):
            values[name] = tuple(value)
    return TrialConfig(dataset=dataset, model=model, **values)
