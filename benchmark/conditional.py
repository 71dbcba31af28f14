"""Class-conditional networks: any registered G and D made to take labels, and their labels.

A conditional trial (`conditional = true`) trains G(z, y) and D(x, y); the losses and the
penalties do not change, since conditioning lives in the networks only (docs/conditional.md).
Both wrap the registered networks of any family:

- G: a learned embedding of the label (K -> K numbers) concatenated to z, as the conditional
  GAN (Mirza and Osindero 2014) and InfoGAN's FC front feed their codes. It fits every
  family: each G's first layer is a linear map of z (the point MLP, the polygon MLP, the
  InfoGAN FC), so the base G is built with z_dim + K inputs and nothing else changes.
  Conditional batch norm (the other common choice) needs batch norm, which the point G has not.
- D, `projection` (Miyato and Koyama 2018, "cGANs with projection discriminator"): with
  phi(x) the last hidden features and h the unconditional head, D(x, y) = h(phi(x)) +
  <embed(y), phi(x)>. It needs a logit head, so it is the default of the logit Ds. With
  spectral norm the embedding matrix E (K x C) is normalised as their code does it,
  E / sigma(E) (pfnet-research/sngan_projection source/links/sn_embed_id.py:51-61), as part
  of the head: so with `spectral_norm_output` false it stays free like the head.
- D, `concat` (the original CGAN): the one-hot label concatenated to the input of D's first
  fully connected layer (the flattened input of the MLP and point Ds, the flattened conv
  features of the InfoGAN D and of BEGAN's encoder). BEGAN's D is an autoencoder whose output
  is a reconstruction error: a projection term added to it would be unbounded below, and its
  loss (E r(x) - k E r(x^)) would drive it to minus infinity, so a conditional BEGAN is
  `concat` only (the encoder sees the label, the reconstruction error stays an error).

Labels: training draws a fake label with each z; evaluation uses fixed, class-balanced labels
(`balanced_labels`), so every evaluation of a trial sees the same (z, y) pairs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from benchmark.errors import ConfigError
from benchmark.networks.core import (
    AutoencoderDiscriminator,
    NetworkOptions,
    init_weights,
)
from benchmark.networks.points import (
    PointAutoencoderDiscriminator,
    PointDiscriminator,
    _init_points,
)

CONDITIONINGS = ("projection", "concat")
EMBED_STD = 0.02  # D's embedding: the scale of the project's other D weights


def default_conditioning(discriminator: type[nn.Module]) -> str:
    """`concat` for an autoencoder D (BEGAN's: no logit to project onto), else `projection`."""
    return "concat" if issubclass(discriminator, AutoencoderDiscriminator) else "projection"


def check_conditioning(discriminator: type[nn.Module], conditioning: str) -> None:
    """ConfigError unless `conditioning` is registered and fits the discriminator."""
    if conditioning not in CONDITIONINGS:
        raise ConfigError("conditioning", conditioning, f"one of {list(CONDITIONINGS)}")
    if conditioning == "projection" and issubclass(discriminator, AutoencoderDiscriminator):
        raise ConfigError(
            "conditioning",
            conditioning,
            "concat: BEGAN's autoencoder D outputs a reconstruction error, which a projection "
            "term would make unbounded below",
        )


def balanced_labels(n: int, classes: int) -> Tensor:
    """Evaluation labels: sample i gets class i mod K (int64 (n,)), so every class is scored
    on n / K samples (within one) and every evaluation sees the same labels."""
    return torch.arange(n, dtype=torch.int64) % classes


class ConditionalGenerator(nn.Module):
    """G(z, y) = base([z, embed(y)]): the base G built for z_dim + K inputs."""

    def __init__(
        self, factory: Callable[[NetworkOptions], nn.Module], opts: NetworkOptions, classes: int
    ):
        super().__init__()
        wider = NetworkOptions(**{**opts.__dict__, "z_dim": opts.z_dim + classes})
        self.base = factory(wider)
        # N(0, 1), PyTorch's default: the scale of z itself (U[-1, 1] or N(0, I)).
        self.embed = nn.Embedding(classes, classes)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:
        return self.base(torch.cat([z, self.embed(y).to(z.dtype)], dim=-1))


def _initialiser(base: nn.Module) -> Callable[[nn.Module], None]:
    """The family's own init for a layer added to `base`."""
    points = isinstance(base, PointDiscriminator | PointAutoencoderDiscriminator)
    return _init_points if points else init_weights


class LabelConcat(nn.Module):
    """Concatenates the call's one-hot labels to its input's last axis (set by its owner,
    `ConditionalDiscriminator`, around each call)."""

    def __init__(self) -> None:
        super().__init__()
        self.labels: Tensor | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.labels is None:
            raise RuntimeError("LabelConcat called outside a conditional discriminator's call")
        return torch.cat([x, self.labels.to(x.dtype)], dim=-1)


def _first_linear(module: nn.Module) -> tuple[nn.Module, str, nn.Linear]:
    for parent in module.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.Linear):
                return parent, name, child
    raise ConfigError(
        "conditioning", "concat", "a discriminator with a fully connected layer to feed labels"
    )


class ConditionalDiscriminator(nn.Module):
    """D(x, y) by projection (default) or concatenation; see the module docstring."""

    def __init__(
        self,
        factory: Callable[[NetworkOptions], nn.Module],
        opts: NetworkOptions,
        classes: int,
        conditioning: str,
    ) -> None:
        super().__init__()
        self.base = base = factory(opts)
        check_conditioning(type(base), conditioning)
        self.conditioning, self.classes = conditioning, classes
        if conditioning == "projection":
            net = getattr(base, "net", None)
            last = net[-1] if isinstance(net, nn.Sequential) else None
            if not (isinstance(last, nn.Linear) and last.out_features == 1):
                raise ConfigError(
                    "conditioning", conditioning, "concat (this D has no `net` ending in a logit)"
                )
            self.embed = nn.Embedding(classes, last.in_features)
            nn.init.normal_(self.embed.weight, 0.0, EMBED_STD)
            if opts.spectral_norm and opts.spectral_norm_output:
                # SNEmbedID (sngan_projection source/links/sn_embed_id.py:46-61) divides W,
                # (K, C) as stored, by its largest singular value, estimated by power
                # iteration with u over the K classes (:48, source/functions/max_sv.py:27-30).
                # dim 0 keeps that matrix as it is, u of size K: the same sigma.
                _spectral_norm(self.embed, dim=0)
            return
        parent, name, first = _first_linear(base)
        wider = nn.Linear(first.in_features + classes, first.out_features)
        _initialiser(base)(nn.Sequential(wider))
        if parametrize.is_parametrized(first, "weight"):  # normalised as the layer it replaces
            _spectral_norm(wider)
        # Not a registered child of this module (it is one of base's): one name per layer.
        self.__dict__["concat"] = concat = LabelConcat()
        setattr(parent, name, nn.Sequential(concat, wider))

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        if self.conditioning == "projection":
            net = self.base.net
            features = net[:-1](x)
            head = net[-1](features).squeeze(-1)
            # An elementwise product and a sum over the features: each sample's own inner
            # product, the same bits whatever the batch or population around it.
            return head + (self.embed(y).to(features.dtype) * features).sum(dim=-1)
        self.concat.labels = F.one_hot(y, self.classes)
        try:
            return self.base(x)
        finally:
            self.concat.labels = None


def conditional_networks(
    generator: Callable[[NetworkOptions], nn.Module],
    discriminator: Callable[[NetworkOptions], nn.Module],
    opts: NetworkOptions,
    classes: int,
    conditioning: str,
) -> tuple[nn.Module, nn.Module]:
    """G(z, y) and D(x, y) around the registered factories (G built first, as unconditioned)."""
    g = ConditionalGenerator(generator, opts, classes)
    d = ConditionalDiscriminator(discriminator, opts, classes, conditioning)
    return g, d
