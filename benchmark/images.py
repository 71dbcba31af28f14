"""Image arithmetic that data loading and evaluation share: quantising to uint8 and the TF1 resize.

CelebA's loader stores its crops resized as the evaluation resizes images, so both read these
two functions from here (`benchmark/evaluation/preprocess.py` builds the FID input on them).
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_fidelity.interpolate_compat_tensorflow import interpolate_bilinear_2d_like_tensorflow1x


def to_uint8(images: Tensor) -> Tensor:
    """Quantise float images in [0, 1] to uint8 by rounding half up; uint8 passes through."""
    if images.dtype == torch.uint8:
        return images
    if not images.is_floating_point():
        raise TypeError(f"images must be uint8 or float in [0, 1], got {images.dtype}")
    return torch.floor(images.float() * 255.0 + 0.5).clamp_(0, 255).to(torch.uint8)


def resize_tf1(images: Tensor, size: int) -> Tensor:
    """TF1-compatible bilinear resize of float (N, C, H, W) to (size, size)."""
    return interpolate_bilinear_2d_like_tensorflow1x(
        images.float(), size=(size, size), align_corners=False
    )
