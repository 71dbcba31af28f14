"""Models as named presets (the paper's seven, and newer ones): a loss, a penalty, defaults.

A preset is data, not code: wgan_gp is the wgan loss plus the gp penalty (and a fresh z
for the G update), dragan is the ns loss plus the dragan penalty. The defaults are the
reference study's (DESIGN.md, "Defaults"); they are sample #0 of every hyperparameter search.
A newer model's defaults are its source's, on the study's networks, Adam (beta2 0.999) and
z ~ U[-1, 1] (the `latent` option changes that for any model).
"""

from __future__ import annotations

from dataclasses import dataclass

from benchmark.registry import Registry


@dataclass(frozen=True)
class ModelPreset:
    loss: str
    penalty: str = "none"
    generator: str = "infogan"
    discriminator: str = "infogan"
    lr: float = 1e-4
    beta1: float = 0.5
    n_disc: int = 1
    d_bn: bool = True
    clip: float | None = None
    lam: float | None = None
    lambda_k: float | None = None
    gamma: float | None = None
    # The G update's z: a fresh draw, or the z of that step's D update (the reference's
    # `resample_before_generator`, true only for WGAN-GP).
    resample_z_for_g: bool = False


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

# Relativistic losses (Jolicoeur-Martineau 2018) at the author's "DCGAN setup" for CIFAR-10
# (AlexiaJM/RelativisticGAN code/stable.sh: lr 2e-4, betas (0.5, 0.999), one D step per G
# step; its DCGAN D has batch norm).
MODELS.register("rsgan", ModelPreset(loss="rsgan", lr=2e-4, beta1=0.5, n_disc=1, d_bn=True))
MODELS.register("ragan", ModelPreset(loss="ragan", lr=2e-4, beta1=0.5, n_disc=1, d_bn=True))
# The relativistic pairing loss with R1 and R2 (Huang et al. 2024): the base values of the
# schedules of their CIFAR-10 preset (brownvc/R3GAN train.py: lr 2e-4, betas (0, 0.9),
# gamma 0.05; their D has no normalisation).
MODELS.register(
    "rpgan",
    ModelPreset(loss="rsgan", penalty="r1r2", lr=2e-4, beta1=0.0, n_disc=1, d_bn=False, lam=0.05),
)
# NS with R1 (Mescheder et al. 2018): gamma 10 as in their experiments, lr 1e-4, one D step
# (LMescheder/GAN_stability configs/default.yaml; RMSprop there, Adam with beta1 0 here).
MODELS.register(
    "ns_r1",
    ModelPreset(loss="ns", penalty="r1", lr=1e-4, beta1=0.0, n_disc=1, d_bn=False, lam=10.0),
)

PAPER_MODELS = ("mm", "ns", "ls", "wgan", "wgan_gp", "dragan", "began")
MODERN_MODELS = ("rsgan", "ragan", "rpgan", "ns_r1")
