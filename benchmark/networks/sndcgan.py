"""SNDCGAN, the DCGAN-style networks of Miyato et al. 2018 as Kurach et al. 2019 ("A Large-Scale
Study on Regularization and Normalization in GANs") train them, laid out as google/compare_gan
writes them (compare_gan/architectures/sndcgan.py, commit 19922d3; unchanged in substance from
the study's first code, compare_gan/src/gans/dcgan_architecture.py:137-241 at 51029dc):

- G: z -> FC(512 h/8 w/8)-BN-ReLU -> deconv4x4/2 256-BN-ReLU -> deconv4x4/2 128-BN-ReLU ->
  deconv4x4/2 64-BN-ReLU -> deconv3x3/1 C -> (tanh + 1) / 2 (sndcgan.py:53-79), h/8 rounded up
  at each halving as TensorFlow's "SAME" rounds (`conv_out_size_same`, sndcgan.py:32-33);
- D: x -> 2x - 1 -> conv3x3/1 64, conv4x4/2 128, conv3x3/1 128, conv4x4/2 256, conv3x3/1 256,
  conv4x4/2 512, conv3x3/1 512, each followed by LeakyReLU(0.1) -> FC1, a logit per sample
  (sndcgan.py:103-127).

Every image size (C, H, W) builds, as in the reference: convolutions pad as "SAME" does (the
extra row or column of an odd size after the input, a transposed convolution cropped to the
size asked for), so 28x28 runs 28 -> 14 -> 7 -> 4 as there. The reference D has no batch norm
(its `batch_norm_fn` is never called in sndcgan.py:88-127), so `d_bn` changes nothing here;
`spectral_norm` puts spectral normalisation on each of D's weight layers (`use_sn`).

The same pixels in another order: TensorFlow lays out the FC's 512 h/8 w/8 outputs as
(h, w, 512) and D's last features as (h, w, 512) before its FC; here both are (512, h, w). The
two orders are a fixed permutation of one layer's units, the same family of functions under
the same (i.i.d.) initialisation.

Shared with benchmark/networks/resnet.py: the initialisation and the batch norm of the
reference (`init_normal`, `batch_norm`).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmark.networks.core import (
    DISCRIMINATORS,
    FAMILIES,
    GENERATORS,
    BatchNorm1d,
    BatchNorm2d,
    NetworkFamily,
    NetworkOptions,
    _maybe_sn,
    refuse_layer_norm,
)

# Batch norm's epsilon: 1e-5 in the study's code (resnet_architecture.py:49 and
# dcgan_architecture.py:28 at 51029dc) and in every example config of the newest
# (`standardize_batch.epsilon = 1e-5`, example_configs/*.gin), whose `decay = 0.9` is
# `bn_momentum = 0.1` here (the project's default 0.001 is arch_ops.py:198's decay 0.999).
LANDSCAPE_BN_EPS = 1e-5


def init_normal(module: nn.Module) -> None:
    """compare_gan's initialisation: every weight ~ N(0, 0.02) (`weights.initializer`'s default
    "normal", arch_ops.py:46-63, for linear :543-546, conv2d :563-565 and deconv2d :583-585),
    biases 0 (:551-554, :569-571, :590-591); batch norm's scale 1 and shift 0 (:353-366)."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear | nn.Conv2d | nn.ConvTranspose2d):
            nn.init.normal_(layer.weight, 0.0, 0.02)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def batch_norm(features: int, opts: NetworkOptions, spatial: bool, on: bool = True) -> nn.Module:
    """compare_gan's `batch_norm` (arch_ops.py:327-367): batch statistics, a biased moving
    variance, a trainable scale and shift per feature; a 2-D input is normalised per feature
    (arch_ops.py:280-285), as BatchNorm1d does."""
    if not on:
        return nn.Identity()
    kind = BatchNorm2d if spatial else BatchNorm1d
    return kind(features, eps=LANDSCAPE_BN_EPS, momentum=opts.bn_momentum)


def image_shape(opts: NetworkOptions, name: str, supported: str) -> tuple[int, int, int]:
    """(C, H, W) of an image network's options, or a ValueError naming what it builds."""
    if len(opts.shape) != 3 or min(opts.shape) < 1:
        raise ValueError(f"{name} builds {supported}; got samples of shape {opts.shape}")
    c, h, w = opts.shape
    return c, h, w


def _halve(size: int) -> int:
    return math.ceil(size / 2)  # conv_out_size_same(size, 2), sndcgan.py:32-33


def _same_padding(size: int, out: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow's "SAME" padding of one axis: (before, after), the odd one after."""
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class _Pad(nn.Module):
    """Zero padding (left, right, top, bottom) of the last two axes, any leading axes."""

    def __init__(self, pads: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.pads = pads

    def forward(self, x: Tensor) -> Tensor:
        return F.pad(x, self.pads)


class _Crop(nn.Module):
    """The first (h, w) pixels of the last two axes, any leading axes."""

    def __init__(self, h: int, w: int) -> None:
        super().__init__()
        self.h, self.w = h, w

    def forward(self, x: Tensor) -> Tensor:
        return x[..., : self.h, : self.w]


def same_conv(
    c_in: int, c_out: int, kernel: int, stride: int, size: tuple[int, int]
) -> tuple[list[nn.Module], tuple[int, int]]:
    """`tf.nn.conv2d(padding="SAME")` on (c_in, *size): its layers and its output size. An even
    padding is the convolution's own; an odd one (an odd size at stride 2) pads first."""
    out = (math.ceil(size[0] / stride), math.ceil(size[1] / stride))
    (top, bottom), (left, right) = (
        _same_padding(n, o, kernel, stride) for n, o in zip(size, out, strict=True)
    )
    if (top, left) == (bottom, right):
        return [nn.Conv2d(c_in, c_out, kernel, stride, padding=(top, left))], out
    conv = nn.Conv2d(c_in, c_out, kernel, stride, padding=0)
    return [_Pad((left, right, top, bottom)), conv], out


def same_deconv(
    c_in: int, c_out: int, kernel: int, stride: int, out: tuple[int, int]
) -> list[nn.Module]:
    """`tf.nn.conv2d_transpose(output_shape=out, padding="SAME")` (arch_ops.py:579-592): the
    transpose of the "SAME" convolution from `out` to ceil(out / stride), i.e. the full
    transposed convolution less `before` pixels in front and `after` behind; PyTorch's padding
    takes `before` from both ends, and a crop the rest behind when `after` is larger."""
    size = tuple(math.ceil(o / stride) for o in out)
    pads = [_same_padding(o, n, kernel, stride) for o, n in zip(out, size, strict=True)]
    deconv = nn.ConvTranspose2d(c_in, c_out, kernel, stride, padding=(pads[0][0], pads[1][0]))
    full = [
        (n - 1) * stride + kernel - 2 * before for n, (before, _) in zip(size, pads, strict=True)
    ]
    return [deconv] if tuple(full) == tuple(out) else [deconv, _Crop(*out)]


SNDCGAN_SIZES = "any image (C, H, W)"


class SNDCGANGenerator(nn.Module):
    """z -> FC(512 h/8 w/8)-BN-ReLU -> [deconv-BN-ReLU] 256, 128, 64 -> deconv3x3 C ->
    (tanh + 1) / 2 in [0, 1] (sndcgan.py:53-79)."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        c, h, w = image_shape(opts, "the SNDCGAN generator", SNDCGAN_SIZES)
        sizes = [(h, w)]
        for _ in range(3):
            sizes.append((_halve(sizes[-1][0]), _halve(sizes[-1][1])))
        h8, w8 = sizes[3]
        self.base = (512, h8, w8)
        self.fc = nn.Sequential(
            nn.Linear(opts.z_dim, 512 * h8 * w8),  # g_fc1
            batch_norm(512 * h8 * w8, opts, spatial=False),  # g_bn1
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for c_in, c_out, out in ((512, 256, sizes[2]), (256, 128, sizes[1]), (128, 64, sizes[0])):
            layers += [*same_deconv(c_in, c_out, 4, 2, out)]  # g_dc2, g_dc3, g_dc4
            layers += [batch_norm(c_out, opts, spatial=True), nn.ReLU()]  # g_bn2..4
        layers += same_deconv(64, c, 3, 1, (h, w))  # g_dc5
        self.deconv = nn.Sequential(*layers)
        init_normal(self)

    def forward(self, z: Tensor) -> Tensor:
        x = self.deconv(self.fc(z).unflatten(-1, self.base))
        return (torch.tanh(x) + 1) / 2  # sndcgan.py:74-78


# (channels, kernel, stride) of d_conv1..7, sndcgan.py:109-122
SNDCGAN_D_CONVS = ((64, 3, 1), (128, 4, 2), (128, 3, 1), (256, 4, 2), (256, 3, 1), (512, 4, 2))
SNDCGAN_D_CONVS += ((512, 3, 1),)


class SNDCGANDiscriminator(nn.Module):
    """x -> 2x - 1 -> 7 convolutions, each with LeakyReLU(0.1) -> FC1; a logit per sample
    (sndcgan.py:103-127). No batch norm, as there: `opts.d_bn` is not used."""

    def __init__(self, opts: NetworkOptions) -> None:
        super().__init__()
        c_in, h, w = image_shape(opts, "the SNDCGAN discriminator", SNDCGAN_SIZES)
        refuse_layer_norm(opts, "the SNDCGAN discriminator")  # SN or none (v2.0: :122-126)
        layers: list[nn.Module] = []
        size = (h, w)
        for c_out, kernel, stride in SNDCGAN_D_CONVS:
            convolution, size = same_conv(c_in, c_out, kernel, stride, size)
            layers += [*convolution, nn.LeakyReLU(0.1)]
            c_in = c_out
        layers += [nn.Flatten(-3), nn.Linear(512 * size[0] * size[1], 1)]  # d_fc1
        self.net = nn.Sequential(*layers)
        init_normal(self)
        _maybe_sn(self, opts)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x * 2 - 1).squeeze(-1)  # sndcgan.py:108: pixels in [-1, 1]


GENERATORS.register("sndcgan", SNDCGANGenerator)
DISCRIMINATORS.register("sndcgan", SNDCGANDiscriminator)
FAMILIES.register("sndcgan", NetworkFamily("sndcgan", {"infogan": "sndcgan"}))
