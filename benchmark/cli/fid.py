"""`python -m benchmark fid A B`: FID (and KID, precision/recall) between two image sets.

A and B are folders of images (png/jpg/jpeg, sorted by name) or .npz files whose `x` holds
uint8 images (N, H, W), (N, H, W, C) or (N, C, H, W). A is the reference ("real") set, B the
evaluated one: precision is the share of B inside A's k-NN balls, recall the reverse.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np
import torch

from benchmark.errors import ConfigError
from benchmark.evaluation.extractors import (
    build_extractor,
    extract_features,
)
from benchmark.evaluation.metrics import frechet_distance, improved_precision_recall, kid, mean_cov
from benchmark.results import FEATURE_EXTRACTORS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def to_nchw(x: np.ndarray) -> torch.Tensor:
    """uint8 images (N, H, W), (N, H, W, C) or (N, C, H, W) -> uint8 tensor (N, C, H, W)."""
    if x.dtype != np.uint8:
        raise ConfigError("x", str(x.dtype), "uint8 images")
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
        x = x.transpose(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ConfigError("x", tuple(x.shape), "(N, H, W), (N, H, W, C) or (N, C, H, W), C 1 or 3")
    return torch.from_numpy(np.ascontiguousarray(x))


def load_images(path: str | Path) -> torch.Tensor:
    """A folder of images or an .npz with `x`, as uint8 (N, C, H, W); gray stays 1 channel.

    Anything else (a damaged archive, a file that is not an image, fewer than two images)
    is a ConfigError naming the file.
    """
    path = Path(path)
    if path.is_file() and path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as data:
                if "x" not in data.files:
                    raise ConfigError("npz", str(path), "an .npz file with an array `x`")
                images = to_nchw(data["x"])
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as error:
            if isinstance(error, ConfigError):
                raise
            allowed = f"an .npz file with uint8 images `x` ({type(error).__name__})"
            raise ConfigError("npz", str(path), allowed) from None
        return _at_least_two(images, path)
    if path.is_dir():
        from PIL import Image, UnidentifiedImageError

        files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        if not files:
            raise ConfigError("images", str(path), f"a folder with {'/'.join(IMAGE_SUFFIXES)}")
        arrays = []
        for file in files:
            try:
                with Image.open(file) as image:
                    arrays.append(np.asarray(image.convert("L" if image.mode == "L" else "RGB")))
            except (OSError, UnidentifiedImageError, ValueError) as error:
                allowed = f"a readable image ({type(error).__name__})"
                raise ConfigError("image", str(file), allowed) from None
        if len({a.shape[:2] for a in arrays}) != 1:
            raise ConfigError("images", str(path), "images of one size")
        if len({a.ndim for a in arrays}) != 1:  # mixed gray and colour: tile gray to RGB
            arrays = [np.repeat(a[..., None], 3, axis=-1) if a.ndim == 2 else a for a in arrays]
        return _at_least_two(to_nchw(np.stack(arrays)), path)
    raise ConfigError("path", str(path), "an image folder or an .npz file")


def _at_least_two(images: torch.Tensor, path: Path) -> torch.Tensor:
    if len(images) < 2:
        raise ConfigError("images", str(path), f"at least 2 images (found {len(images)})")
    return images


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("a", help="reference images: a folder (png/jpg) or an .npz with `x`")
    parser.add_argument("b", help="evaluated images: a folder (png/jpg) or an .npz with `x`")
    parser.add_argument("--kid", action="store_true", help="also print KID")
    parser.add_argument("--pr", action="store_true", help="also print precision and recall")
    parser.add_argument(
        "--weights", default=None, help="Inception weights (default: $GANBENCH_INCEPTION)"
    )
    parser.add_argument(
        "--extractor",
        default="inception",
        choices=FEATURE_EXTRACTORS.names(),
        help="feature network (default: inception, FID's InceptionV3 pool3)",
    )
    parser.add_argument(
        "--batch-size", type=int, default=100, help="images per forward pass (default: 100)"
    )
    parser.add_argument(
        "--device",
        default="cuda" if torch.cuda.is_available() else "cpu",
        help="torch device (default: cuda if available, else cpu)",
    )
    parser.add_argument(
        "--download", action="store_true", help="fetch missing Inception weights (default: off)"
    )


def run(args: argparse.Namespace) -> int:
    """Print `FID: x.xxx` (and KID / Precision / Recall lines); 2 on bad input."""
    from benchmark.options import MAX_BATCH
    from benchmark.training.devices import resolve_device

    if not 1 <= args.batch_size <= MAX_BATCH:
        raise ConfigError("batch_size", args.batch_size, f"an integer in [1, {MAX_BATCH:,}]")
    device = resolve_device(args.device)
    real_images, fake_images = load_images(args.a), load_images(args.b)
    extractor = build_extractor(args.extractor, args.weights, device, args.download)
    real = extract_features(extractor, real_images, args.batch_size)
    fake = extract_features(extractor, fake_images, args.batch_size)
    print(f"FID: {frechet_distance(*mean_cov(real), *mean_cov(fake)):.3f}")
    if getattr(args, "kid", False):
        mean, std = kid(real, fake)
        print(f"KID: {mean:.6f} ± {std:.6f}")
    if getattr(args, "pr", False):
        precision, recall = improved_precision_recall(real, fake)
        print(f"Precision: {precision:.4f}")
        print(f"Recall: {recall:.4f}")
    return 0
