"""Image preprocessing for feature extraction: quantise, tile gray to RGB, TF1 resize, scale.

Generated images (float in [0, 1]) and real images (uint8) take the same path, so a sample
saved as PNG and read back gives exactly the features it gave in memory:

1. quantise: uint8 = floor(255 * x + 0.5), clamped to [0, 255] (round half up, as
   torchvision's `save_image` does); uint8 input passes unchanged;
2. gray (1 channel) is tiled to 3 channels;
3. TF1-compatible bilinear resize (torch-fidelity's `interpolate_bilinear_2d_like_tensorflow1x`,
   align_corners=False), the resize of the original TF FID code;
4. scale to (x - 128) / 128, the input range of the TF Inception graph.
"""

from __future__ import annotations

from torch import Tensor

from benchmark.errors import ConfigError
from benchmark.images import resize_tf1, to_uint8

__all__ = ["FID_RESIZE", "preprocess", "preprocessing_id", "resize_tf1", "to_rgb", "to_uint8"]

# Stored with every result (`fid_resize`), so the resize behind a number is never guessed.
FID_RESIZE = "tf1-bilinear (torch-fidelity)"


def to_rgb(images: Tensor) -> Tensor:
    """Tile 1-channel images to 3 channels; 3-channel images pass unchanged."""
    if images.ndim != 4:
        raise ValueError(f"images must be (N, C, H, W), got shape {tuple(images.shape)}")
    channels = images.shape[1]
    if channels == 1:
        return images.expand(-1, 3, -1, -1)
    if channels == 3:
        return images
    raise ConfigError("channels", channels, "1 (gray) or 3 (RGB)")


def preprocess(images: Tensor, size: int) -> Tensor:
    """uint8 or [0, 1] float (N, 1|3, H, W) -> float32 (N, 3, size, size) in [-1, 1)."""
    rgb = to_rgb(to_uint8(images))
    return (resize_tf1(rgb, size) - 128.0) / 128.0


def preprocessing_id(size: int) -> str:
    """A string naming every preprocessing step; part of the reference-statistics cache key."""
    return f"uint8-round-half-up|gray-tile3|{FID_RESIZE}|{size}x{size}|(x-128)/128"
