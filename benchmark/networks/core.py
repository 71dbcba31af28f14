"""The study's networks (InfoGAN-style G and D, BEGAN's autoencoder D), small MLPs, registries.

One architecture for every model and dataset, as in the reference study, so that a
difference in FID is a difference of the loss. Shapes are (C, H, W) with H, W
divisible by 4 (28x28x1, 32x32x3, 64x64x3). Weights ~ N(0, 0.02), biases 0;
batch norm with momentum 0.001 and eps 1e-3, its moving variance biased, as in the
reference code (TF's `batch_norm(decay=0.999, epsilon=0.001)`). The MLP family
(`networks = "mlp"`) is for a CPU: the polygon demonstration trains it in well under a minute.
The point family (`networks = "points"`, the 2-D mixtures') is in `points.py`.
Every forward pass indexes features from the end (`Flatten(-3)`, `unflatten(-1, ...)`,
`squeeze(-1)`), so the same code runs a population's (M, B, ...) inputs through its
member-batched layers (benchmark/training/stacked_layers.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm as _spectral_norm

from benchmark.errors import ConfigError
from benchmark.registry import Registry

BN_EPS = 1e-3


@dataclass(frozen=True)
class NetworkOptions:
    """What a network constructor needs: image shape, latent size and the D options."""

    shape: tuple[int, int, int]
    z_dim: int = 64
    d_bn: bool = True
    spectral_norm: bool = False
    bn_momentum: float = 0.001
    # With spectral_norm: whether D's output layer is normalised too (`_maybe_sn`).
    spectral_norm_output: bool = True
    # Layer norm in D where its batch norm would be (`d_norm = "layer_norm"`, `_d_norm1d`).
    d_layer_norm: bool = False


NetworkFactory = Callable[[NetworkOptions], nn.Module]
GENERATORS: Registry[NetworkFactory] = Registry("generator")
DISCRIMINATORS: Registry[NetworkFactory] = Registry("discriminator")


class _BiasedMovingVariance:
    """Batch norm as TensorFlow keeps it: the moving variance averages the biased batch
    variance (PyTorch's own averages the unbiased one, 64/63 larger at batch 64 in a BN1d).

    Training mode normalises with the batch statistics exactly as `nn.BatchNorm` does;
    only the running statistics, which G uses in eval mode when sampled, differ.
    """

    def forward(self, x: Tensor) -> Tensor:
        if not self.training:
            return super().forward(x)
        with torch.no_grad():
            stats = x.to(self.running_mean.dtype)
            var, mean = torch.var_mean(stats, dim=[0, *range(2, x.dim())], correction=0)
            # r + m (x - r): lerp's formula, written with ops that vmap batches (a stacked
            # population updates every member's statistics in one kernel).
            self.running_mean.add_(mean - self.running_mean, alpha=self.momentum)
            self.running_var.add_(var - self.running_var, alpha=self.momentum)
            self.num_batches_tracked.add_(1)
        return F.batch_norm(x, None, None, self.weight, self.bias, True, 0.0, self.eps)


class BatchNorm1d(_BiasedMovingVariance, nn.BatchNorm1d):
    pass


class BatchNorm2d(_BiasedMovingVariance, nn.BatchNorm2d):
    pass


def _bn1d(n: int, opts: NetworkOptions, on: bool = True) -> nn.Module:
    return BatchNorm1d(n, eps=BN_EPS, momentum=opts.bn_momentum) if on else nn.Identity()


def _bn2d(n: int, opts: NetworkOptions, on: bool = True) -> nn.Module:
    return BatchNorm2d(n, eps=BN_EPS, momentum=opts.bn_momentum) if on else nn.Identity()


# tf.contrib.layers.layer_norm's variance epsilon, which compare_gan's layer norm calls
# (v2.0 src/gans/ops.py:55-57; architectures/arch_ops.py:448-450 at its newest).
LN_EPS = 1e-12


class LayerNorm(nn.Module):
    """Layer norm as compare_gan puts it in D (`tf.contrib.layers.layer_norm`: begin_norm_axis
    1, begin_params_axis -1): each sample normalised over all its features (its channels and
    pixels), then a scale and a shift per channel. `spatial`: features (..., C, H, W), else
    (..., C). Any leading axes are batch axes."""

    def __init__(self, channels: int, spatial: bool) -> None:
        super().__init__()
        self.spatial = spatial
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        dims = (-3, -2, -1) if self.spatial else (-1,)
        var, mean = torch.var_mean(x, dim=dims, correction=0, keepdim=True)
        shape = (-1, 1, 1) if self.spatial else (-1,)
        out = (x - mean) * torch.rsqrt(var + LN_EPS)
        return out * self.weight.view(shape) + self.bias.view(shape)


def _d_norm1d(n: int, opts: NetworkOptions) -> nn.Module:
    """D's normalisation where the InfoGAN D has batch norm: batch norm with `d_bn`, layer
    norm with `d_layer_norm` (compare_gan v2.0 resnet_architecture.py:146-149), else none."""
    return LayerNorm(n, spatial=False) if opts.d_layer_norm else _bn1d(n, opts, opts.d_bn)


def _d_norm2d(n: int, opts: NetworkOptions) -> nn.Module:
    return LayerNorm(n, spatial=True) if opts.d_layer_norm else _bn2d(n, opts, opts.d_bn)


def refuse_layer_norm(opts: NetworkOptions, name: str) -> None:
    """A D without a place for normalisation refuses layer norm rather than ignore it."""
    if opts.d_layer_norm:
        raise ValueError(f"{name} has no normalisation layer for d_norm 'layer_norm'")


def _lrelu() -> nn.Module:
    return nn.LeakyReLU(0.2)


def _conv(c_in: int, c_out: int) -> nn.Conv2d:
    # 4x4 stride 2 with padding 1 halves H and W like TensorFlow's "SAME".
    return nn.Conv2d(c_in, c_out, 4, stride=2, padding=1)


def _deconv(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1)


def init_weights(module: nn.Module) -> None:
    """The reference init: N(0, 0.02) weights (truncated at 2 std for convolutions, as
    TensorFlow's truncated_normal), zero biases; BN scale 1, shift 0."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.trunc_normal_(layer.weight, 0.0, 0.02, a=-0.04, b=0.04)
            nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            nn.init.zeros_(layer.bias)


WEIGHT_LAYERS = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)


def output_layer(module: nn.Module) -> nn.Module | None:
    """D's output layer: its last weight layer in module order (None if it has none). The
    final FC1 of the logit Ds (InfoGAN, MLP, points); for BEGAN's autoencoder Ds, whose output
    is a reconstruction error, the decoder's last layer (the one that draws the reconstruction).
    A D whose output comes from a convolution (a DCGAN D ending in a 4x4 conv to one channel)
    has that convolution as its output layer."""
    layers = [layer for layer in module.modules() if isinstance(layer, WEIGHT_LAYERS)]
    return layers[-1] if layers else None


def _maybe_sn(module: nn.Module, opts: NetworkOptions) -> nn.Module:
    """Spectral normalisation (Miyato et al. 2018) on every weight layer of D, if asked; with
    `spectral_norm_output` false, on every one but its output layer (`output_layer`)."""
    if not opts.spectral_norm:
        return module
    free = None if opts.spectral_norm_output else output_layer(module)
    for layer in list(module.modules()):
        if isinstance(layer, WEIGHT_LAYERS) and layer is not free:
            _spectral_norm(layer)
    return module


class Generator(nn.Module):
    """FC1024-BN-LReLU, FC(128 h/4 w/4)-BN-LReLU, deconv64-BN-LReLU, deconv c, sigmoid."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        c, h, w = opts.shape
        self.base = (128, h // 4, w // 4)
        self.fc = nn.Sequential(
            nn.Linear(opts.z_dim, 1024),
            _bn1d(1024, opts),
            _lrelu(),
            nn.Linear(1024, 128 * (h // 4) * (w // 4)),
            _bn1d(128 * (h // 4) * (w // 4), opts),
            _lrelu(),
        )
        self.deconv = nn.Sequential(
            _deconv(128, 64), _bn2d(64, opts), _lrelu(), _deconv(64, c), nn.Sigmoid()
        )
        init_weights(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.deconv(self.fc(z).unflatten(-1, self.base))


class Discriminator(nn.Module):
    """conv64-LReLU, conv128-[BN]-LReLU, FC1024-[BN]-LReLU, FC1; returns logits (N,)."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        c, h, w = opts.shape
        self.net = nn.Sequential(
            _conv(c, 64),
            _lrelu(),
            _conv(64, 128),
            _d_norm2d(128, opts),
            _lrelu(),
            nn.Flatten(-3),
            nn.Linear(128 * (h // 4) * (w // 4), 1024),
            _d_norm1d(1024, opts),
            _lrelu(),
            nn.Linear(1024, 1),
        )
        init_weights(self)
        _maybe_sn(self, opts)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


class AutoencoderDiscriminator(nn.Module):
    """BEGAN's D: an autoencoder; returns each sample's mean |AE(x) - x| (N,).

    conv64-LReLU, conv128, FC64-[BN]-LReLU | FC(128 h/4 w/4)-[BN]-LReLU, deconv64-[BN]-LReLU,
    deconv c, sigmoid (the reference's layout, 1.07M parameters at 28x28x1).
    """

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        c, h, w = self.shape = opts.shape
        self.base = (128, h // 4, w // 4)
        flat = 128 * (h // 4) * (w // 4)
        self.encode = nn.Sequential(
            _conv(c, 64),
            _lrelu(),
            _conv(64, 128),
            nn.Flatten(-3),
            nn.Linear(flat, 64),
            _d_norm1d(64, opts),
            _lrelu(),
        )
        self.decode_fc = nn.Sequential(nn.Linear(64, flat), _d_norm1d(flat, opts), _lrelu())
        self.decode = nn.Sequential(
            _deconv(128, 64),
            _d_norm2d(64, opts),
            _lrelu(),
            _deconv(64, c),
            nn.Sigmoid(),
        )
        init_weights(self)
        _maybe_sn(self, opts)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.decode_fc(self.encode(x)).unflatten(-1, self.base))

    def forward(self, x: Tensor) -> Tensor:
        return (self.reconstruct(x) - x).abs().flatten(-len(self.shape)).mean(dim=-1)


MLP_HIDDEN = 256


def _images_only(opts: NetworkOptions, name: str) -> None:
    """The MLP networks are for images: their sigmoid output is a pixel's range [0, 1], which
    2-D mixture points (spread over [-5, 5]) lie mostly outside."""
    if len(opts.shape) != 3:
        raise ValueError(
            f"{name} is made for images (C, H, W), whose pixels lie in [0, 1]; "
            f"for points use the point networks (networks = 'points')"
        )


class MLPGenerator(nn.Module):
    """FC256-BN-LReLU, FC256-BN-LReLU, FC(c h w), sigmoid: the original GAN's kind of network
    (Goodfellow et al. 2014). On polygons it draws triangles after 3,000 steps, about half a
    minute on one CPU core; with 128 units it did far worse, with 512 it is 2.3 times slower."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        _images_only(opts, "the MLP generator")
        self.shape = opts.shape
        self.net = nn.Sequential(
            nn.Linear(opts.z_dim, MLP_HIDDEN),
            _bn1d(MLP_HIDDEN, opts),
            _lrelu(),
            nn.Linear(MLP_HIDDEN, MLP_HIDDEN),
            _bn1d(MLP_HIDDEN, opts),
            _lrelu(),
            nn.Linear(MLP_HIDDEN, math.prod(opts.shape)),
            nn.Sigmoid(),
        )
        init_weights(self)

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z).unflatten(-1, self.shape)


class MLPDiscriminator(nn.Module):
    """FC256-LReLU, FC256-[BN]-LReLU, FC1; returns logits (N,). BN where the InfoGAN D has it,
    after the first layer; it is off in the quick space (see benchmark.search)."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        _images_only(opts, "the MLP discriminator")
        self.net = nn.Sequential(
            nn.Flatten(-len(opts.shape)),
            nn.Linear(math.prod(opts.shape), MLP_HIDDEN),
            _lrelu(),
            nn.Linear(MLP_HIDDEN, MLP_HIDDEN),
            _d_norm1d(MLP_HIDDEN, opts),
            _lrelu(),
            nn.Linear(MLP_HIDDEN, 1),
        )
        init_weights(self)
        _maybe_sn(self, opts)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x).squeeze(-1)


class MLPAutoencoderDiscriminator(AutoencoderDiscriminator):
    """BEGAN's D as an MLP, laid out like the conv one: FC256-LReLU, FC64-[BN]-LReLU |
    FC256-[BN]-LReLU, FC(c h w), sigmoid; returns each sample's mean |AE(x) - x| (N,)."""

    def __init__(self, opts: NetworkOptions) -> None:
        nn.Module.__init__(self)
        _images_only(opts, "the MLP autoencoder discriminator")
        self.shape = opts.shape
        pixels = math.prod(opts.shape)
        self.encode = nn.Sequential(
            nn.Flatten(-len(opts.shape)),
            nn.Linear(pixels, MLP_HIDDEN),
            _lrelu(),
            nn.Linear(MLP_HIDDEN, 64),
            _d_norm1d(64, opts),
            _lrelu(),
        )
        self.decode = nn.Sequential(
            nn.Linear(64, MLP_HIDDEN),
            _d_norm1d(MLP_HIDDEN, opts),
            _lrelu(),
            nn.Linear(MLP_HIDDEN, pixels),
            nn.Sigmoid(),
        )
        init_weights(self)
        _maybe_sn(self, opts)

    def reconstruct(self, x: Tensor) -> Tensor:
        return self.decode(self.encode(x)).unflatten(-1, self.shape)


GENERATORS.register("infogan", Generator)
DISCRIMINATORS.register("infogan", Discriminator)
DISCRIMINATORS.register("began", AutoencoderDiscriminator)
GENERATORS.register("mlp", MLPGenerator)
DISCRIMINATORS.register("mlp", MLPDiscriminator)
DISCRIMINATORS.register("mlp_began", MLPAutoencoderDiscriminator)


@dataclass(frozen=True)
class NetworkFamily:
    """A set of networks that stands in for the paper's: a generator, and for each of the
    paper's discriminators (a model preset names one) this family's counterpart, so that
    BEGAN keeps an autoencoder D whichever family it trains with."""

    generator: str
    discriminators: Mapping[str, str]

    def networks_for(self, discriminator: str) -> dict[str, str]:
        """The generator and discriminator that replace a preset's `discriminator`."""
        if discriminator not in self.discriminators:
            raise ConfigError(
                "discriminator",
                discriminator,
                f"one with a counterpart in the family: {sorted(self.discriminators)}",
            )
        return {"generator": self.generator, "discriminator": self.discriminators[discriminator]}


FAMILIES: Registry[NetworkFamily] = Registry("networks")
FAMILIES.register("infogan", NetworkFamily("infogan", {"infogan": "infogan", "began": "began"}))
FAMILIES.register("mlp", NetworkFamily("mlp", {"infogan": "mlp", "began": "mlp_began"}))
FAMILIES.register("points", NetworkFamily("points", {"infogan": "points", "began": "points_began"}))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def clip_parameters(module: nn.Module, clip: float) -> None:
    """WGAN's weight clipping: every parameter of D, batch-norm scale and shift included."""
    with torch.no_grad():
        for param in module.parameters():
            param.clamp_(-clip, clip)
