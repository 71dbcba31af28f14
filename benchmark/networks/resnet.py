"""The ResNets of Kurach et al. 2019 ("A Large-Scale Study on Regularization and Normalization in
GANs") as google/compare_gan writes them (compare_gan/architectures/, commit 19922d3; the same
layers as the study's first code, compare_gan/src/gans/resnet_architecture.py at 51029dc):

- `resnet_cifar` (resnet_cifar.py), Miyato et al. 2018's CIFAR ResNet: G z -> FC(4 4 256) ->
  3 up-blocks 256 -> BN-ReLU -> conv3x3 C -> sigmoid, 32x32 only (resnet_cifar.py:71-72,
  90-112); D 2 down-blocks 128, 2 blocks 128 -> ReLU -> mean over pixels -> FC1
  (resnet_cifar.py:144-158);
- `resnet5`, the study's "ResNet19" (resnet5.py), for 128x128: G z -> FC(4 4 512) -> 5 blocks
  512, 256, 256, 128, 64 -> BN-ReLU -> conv3x3 C -> sigmoid (resnet5.py:57-93); D 6 down-blocks
  64, 128, 256, 256, 512, 512 -> ReLU -> mean over pixels -> FC1 (resnet5.py:125-145). Its G
  upsamples in its first log2(H/4) blocks only (resnet5.py:71-84), so the same weights build
  every square power of two from 4 to 128: 64x64 is G's last block at full size and D's last
  pooling on a 1x1 map, as the reference builds it; compare_gan has no other 64x64 ResNet in
  the study (its 64x64 configuration, example_configs/dcgan_celeba64.gin, is the DCGAN).

A block (resnet_ops.py:136-182) is the sum of a shortcut, a 3x3 convolution with the block's
resampling (a 3x3 one even when the channels agree, resnet_ops.py:156-158), and
BN-ReLU-conv3x3-BN-ReLU-conv3x3; G's block upsamples before its shortcut and first convolution,
D's averages 2x2 after its shortcut and second convolution (resnet_ops.py:101-104, 131-133).
Upsampling is compare_gan's `unpool` (resnet_ops.py:35-56): each pixel at the top left of a
2x2 square of zeros, not a nearest-neighbour copy. G keeps its batch norm (the study's
`G.batch_norm_fn = @batch_norm`); D has it where the reference's `batch_norm_fn` goes (both
places of each block) when `d_bn` is on, and spectral norm on every weight layer
(`use_sn`) with `spectral_norm`, or layer norm at those places with `d_norm = "layer_norm"`.

The reference's last layers put sigmoid on G's output (resnet_cifar.py:112, resnet5.py:92) and
read D's logit before its sigmoid (resnet_cifar.py:158, resnet5.py:142), as here. Weights as
compare_gan initialises them (benchmark/networks/sndcgan.py `init_normal`).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from benchmark.networks.core import (
    DISCRIMINATORS,
    FAMILIES,
    GENERATORS,
    LayerNorm,
    NetworkFamily,
    NetworkOptions,
    _maybe_sn,
)
from benchmark.networks.sndcgan import batch_norm, image_shape, init_normal


def unpool(x: Tensor) -> Tensor:
    """(..., H, W) -> (..., 2H, 2W): x at the even rows and columns, zeros elsewhere
    (compare_gan's `unpool`, resnet_ops.py:35-56: a zero after each pixel, then a row of zeros
    after each row)."""
    x = torch.stack((x, torch.zeros_like(x)), dim=-1).flatten(-2)
    return torch.stack((x, torch.zeros_like(x)), dim=-2).flatten(-3, -2)


def average_pool(x: Tensor) -> Tensor:
    """`tf.nn.pool([2, 2], "AVG", "SAME", strides=[2, 2])` (resnet_ops.py:131-133) on (..., C,
    H, W): 2x2 means; on an odd size the last window holds one row or column and is divided
    by what it holds, as "SAME" pooling does. Pooling takes a 4-D input: the leading axes
    (a population's members and batch) are folded into one and restored."""
    lead = x.shape[:-3]
    out = F.avg_pool2d(x.reshape(-1, *x.shape[-3:]), 2, 2, ceil_mode=True)
    return out.reshape(*lead, *out.shape[-3:])


def _conv3x3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)  # "SAME" at stride 1: one pixel each side


class ResNetBlock(nn.Module):
    """compare_gan's `ResNetBlock` (resnet_ops.py:70-182) with `scale` "up" (G), "down" (D) or
    "none"; `norm(channels)`: the normalisation at bn1 and bn2 (batch norm, D's layer norm as
    v2.0 resnet_architecture.py:146-161 puts it there, or none)."""

    def __init__(
        self,
        c_in: int,
        c_out: int,
        scale: str,
        opts: NetworkOptions,
        norm: Callable[[int], nn.Module],
    ) -> None:
        super().__init__()
        if scale not in ("up", "down", "none"):
            raise ValueError(f"scale must be 'up', 'down' or 'none', not {scale!r}")
        self.up, self.down = scale == "up", scale == "down"
        self.shortcut = _conv3x3(c_in, c_out)  # conv_shortcut
        self.bn1 = norm(c_in)
        self.conv1 = _conv3x3(c_in, c_out)
        self.bn2 = norm(c_out)
        self.conv2 = _conv3x3(c_out, c_out)

    def forward(self, x: Tensor) -> Tensor:
        shortcut = self.shortcut(unpool(x) if self.up else x)
        out = F.relu(self.bn1(x))
        out = self.conv1(unpool(out) if self.up else out)  # G's scale1 = scale
        out = self.conv2(F.relu(self.bn2(out)))
        if self.down:  # D's scale2 = scale, the shortcut's too
            out, shortcut = average_pool(out), average_pool(shortcut)
        return out + shortcut


class _ResNetGenerator(nn.Module):
    """z -> FC(4 4 c0) -> blocks -> BN-ReLU -> conv3x3 C -> sigmoid."""

    def __init__(
        self, opts: NetworkOptions, channels: tuple[int, ...], ups: int, colors: int
    ) -> None:
        super().__init__()
        self.base = (channels[0], 4, 4)

        def g_norm(features: int) -> nn.Module:
            return batch_norm(features, opts, spatial=True)

        self.fc = nn.Linear(opts.z_dim, channels[0] * 16)  # fc_noise
        pairs = zip(channels[:-1], channels[1:], strict=True)
        self.blocks = nn.Sequential(
            *(
                ResNetBlock(c_in, c_out, "up" if k < ups else "none", opts, norm=g_norm)
                for k, (c_in, c_out) in enumerate(pairs)
            )
        )
        self.final_norm = batch_norm(channels[-1], opts, spatial=True)
        self.final_conv = _conv3x3(channels[-1], colors)
        init_normal(self)

    def forward(self, z: Tensor) -> Tensor:
        x = self.blocks(self.fc(z).unflatten(-1, self.base))
        return torch.sigmoid(self.final_conv(F.relu(self.final_norm(x))))


class _ResNetDiscriminator(nn.Module):
    """x -> blocks -> ReLU -> mean over pixels -> FC1; a logit per sample."""

    def __init__(self, opts: NetworkOptions, blocks: list[tuple[int, int, str]]) -> None:
        super().__init__()

        def d_norm(features: int) -> nn.Module:
            if opts.d_layer_norm:
                return LayerNorm(features, spatial=True)
            return batch_norm(features, opts, spatial=True, on=opts.d_bn)

        self.blocks = nn.Sequential(
            *(ResNetBlock(c_in, c_out, scale, opts, norm=d_norm) for c_in, c_out, scale in blocks)
        )
        self.fc = nn.Linear(blocks[-1][1], 1)  # disc_final_fc
        init_normal(self)
        _maybe_sn(self, opts)

    def forward(self, x: Tensor) -> Tensor:
        features = F.relu(self.blocks(x)).mean(dim=(-2, -1))
        return self.fc(features).squeeze(-1)


def _power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _d_shape(opts: NetworkOptions, name: str) -> int:
    """compare_gan's D input check (resnet_ops.py:59-67, resnet_cifar.py:139-142,
    resnet5.py:119-123): square, a power of two, 1 or 3 colours; returns the colours."""
    supported = "square images with a side a power of two, 1 or 3 channels"
    c, h, w = image_shape(opts, name, supported)
    if h != w or not _power_of_two(h) or c not in (1, 3):
        raise ValueError(f"{name} builds {supported}; got {opts.shape}")
    return c


CIFAR_G_SIZES = "32x32 images, any number of channels"


class ResNetCifarGenerator(_ResNetGenerator):
    """FC(4 4 256), 3 up-blocks 256 -> 256, BN-ReLU, conv3x3 C, sigmoid: 32x32
    (resnet_cifar.py:71-112; the options `hierarchical_z`, `embed_z`, `embed_y` off, their
    defaults)."""

    def __init__(self, opts: NetworkOptions) -> None:
        c, h, w = image_shape(opts, "the resnet_cifar generator", CIFAR_G_SIZES)
        if (h, w) != (32, 32):
            raise ValueError(f"the resnet_cifar generator builds {CIFAR_G_SIZES}; got {opts.shape}")
        super().__init__(opts, (256, 256, 256, 256), ups=3, colors=c)


class ResNetCifarDiscriminator(_ResNetDiscriminator):
    """Blocks C -> 128 down, 128 down, 128, 128; ReLU, mean, FC1 (resnet_cifar.py:144-158;
    `project_y` off)."""

    def __init__(self, opts: NetworkOptions) -> None:
        c = _d_shape(opts, "the resnet_cifar discriminator")
        blocks = [(c, 128, "down"), (128, 128, "down"), (128, 128, "none"), (128, 128, "none")]
        super().__init__(opts, blocks)


RESNET5_CH = 64  # resnet5.py:39, 99: ch=64
RESNET5_G_CHANNELS = (8, 8, 4, 4, 2, 1)  # resnet5.py:39
RESNET5_D_CHANNELS = (1, 2, 4, 4, 8, 8)  # resnet5.py:99
RESNET5_G_SIZES = "square images of side 4, 8, 16, 32, 64 or 128 (the study's: 128)"


class ResNet5Generator(_ResNetGenerator):
    """The study's ResNet19 G: FC(4 4 512), blocks 512 -> 512 -> 256 -> 256 -> 128 -> 64, the
    first log2(H / 4) upsampling; BN-ReLU, conv3x3 C, sigmoid (resnet5.py:44-93)."""

    def __init__(self, opts: NetworkOptions) -> None:
        c, h, w = image_shape(opts, "the resnet5 generator", RESNET5_G_SIZES)
        ups = math.log2(h / 4)
        if h != w or not ups.is_integer() or not 0 <= ups <= 5:
            raise ValueError(f"the resnet5 generator builds {RESNET5_G_SIZES}; got {opts.shape}")
        channels = tuple(RESNET5_CH * k for k in RESNET5_G_CHANNELS)
        super().__init__(opts, channels, ups=int(ups), colors=c)


class ResNet5Discriminator(_ResNetDiscriminator):
    """The study's ResNet19 D: down-blocks C -> 64 -> 128 -> 256 -> 256 -> 512 -> 512; ReLU,
    mean, FC1 (resnet5.py:119-145)."""

    def __init__(self, opts: NetworkOptions) -> None:
        c = _d_shape(opts, "the resnet5 discriminator")
        channels = [RESNET5_CH * k for k in RESNET5_D_CHANNELS]
        blocks = [(c, channels[0], "down")]  # B0
        blocks += [(a, b, "down") for a, b in zip(channels[:-1], channels[1:], strict=True)]
        super().__init__(opts, blocks)


GENERATORS.register("resnet_cifar", ResNetCifarGenerator)
DISCRIMINATORS.register("resnet_cifar", ResNetCifarDiscriminator)
FAMILIES.register("resnet_cifar", NetworkFamily("resnet_cifar", {"infogan": "resnet_cifar"}))
GENERATORS.register("resnet5", ResNet5Generator)
DISCRIMINATORS.register("resnet5", ResNet5Discriminator)
FAMILIES.register("resnet5", NetworkFamily("resnet5", {"infogan": "resnet5"}))
