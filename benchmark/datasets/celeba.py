"""CelebA: aligned faces from an image folder, decoded once and cached (compare_gan v1's crop).

Registered as the dataset `celeba` (benchmark/datasets/__init__.py imports this module).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from benchmark.datasets.core import DATASETS, DatasetMissing, DatasetSpec, ImageData, _missing
from benchmark.files import atomic_write, cache_dir

CELEBA_URL = "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html"
CELEBA_TRAIN_SIZE = 162_770  # the standard split: the first 162,770 files (sorted) are train
CELEBA_CROP = 160
CELEBA_SIZE = 64
_CELEBA_VERSION = 2  # bump when the decoded pixels change (2: TF1 bilinear, was PIL bicubic)


def celeba_preprocess(image: np.ndarray) -> np.ndarray:
    """uint8 (H, W, 3) -> uint8 (3, 64, 64): the reference's crop and resize, then rounding.

    compare_gan v1 (`gan_lib.unpack_celeba_image`) centre-crops 160x160
    (`resize_image_with_crop_or_pad`: offset (size - 160) // 2) and resizes to 64x64 with
    TF1's `resize_images` (bilinear, no antialiasing, align_corners False), keeping floats;
    torch-fidelity's TF1-compatible bilinear is the same resize. The result is stored as
    uint8, rounded half up: at most 0.5/255 from the reference's float pixels.
    """
    from benchmark.images import resize_tf1, to_uint8

    height, width = image.shape[:2]
    top, left = (height - CELEBA_CROP) // 2, (width - CELEBA_CROP) // 2
    crop = image[top : top + CELEBA_CROP, left : left + CELEBA_CROP]
    pixels = torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1)))[None].float()
    resized = resize_tf1(pixels, CELEBA_SIZE) / 255.0
    return to_uint8(resized)[0].numpy()


def _celeba_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as image:
        return celeba_preprocess(np.asarray(image.convert("RGB"), dtype=np.uint8))


def _celeba_key(files: Sequence[Path]) -> str:
    """Hash of the file names and sizes and of the preprocessing, naming the cache file."""
    listing = [[f.name, f.stat().st_size] for f in files]
    params = {"version": _CELEBA_VERSION, "crop": CELEBA_CROP, "size": CELEBA_SIZE}
    text = json.dumps({"params": params, "files": listing})
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _celeba_missing(root: Path, labels: bool) -> str | None:
    directory = Path(root) / "celeba" / "img_align_celeba"
    if any(p.suffix.lower() in (".jpg", ".jpeg", ".png") for p in directory.glob("*")):
        return None  # the count is checked on loading, which lists them anyway
    return f"*.jpg or *.png (img_align_celeba) in {directory}"


def _load_celeba(root: Path | None, download: bool) -> ImageData:
    """CelebA aligned faces as 3x64x64, split by the standard rule (first 162,770 sorted: train).

    Decoding 200k JPEGs takes minutes, so the decoded tensor is cached in `cache_dir()`
    under a hash of the file list; PIL releases the GIL while decoding, so threads help.
    """
    directory = Path(root) / "celeba" / "img_align_celeba"
    files = sorted(p for p in directory.glob("*") if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    source = f"CelebA has no --download; fetch img_align_celeba.zip from {CELEBA_URL}"
    if not files:
        raise _missing("celeba", directory, ["*.jpg or *.png (img_align_celeba)"], source)
    if len(files) <= CELEBA_TRAIN_SIZE:
        raise DatasetMissing(
            f"dataset 'celeba' incomplete: {len(files)} images under {directory}, but the "
            f"standard split needs more than {CELEBA_TRAIN_SIZE:,} (202,599 in all); {source}"
        )
    path = cache_dir() / f"celeba-{_celeba_key(files)}.npy"
    if path.exists():
        images = np.load(path)
    else:
        images = np.empty((len(files), 3, CELEBA_SIZE, CELEBA_SIZE), dtype=np.uint8)
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            for i, image in enumerate(pool.map(_celeba_image, files, chunksize=256)):
                images[i] = image

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as handle:  # a handle: np.save would append ".npy"
                np.save(handle, images)

        atomic_write(path, write)
    train = torch.from_numpy(images[:CELEBA_TRAIN_SIZE])
    test = torch.from_numpy(images[CELEBA_TRAIN_SIZE:])
    return ImageData("celeba", train, test)


DATASETS.register(
    "celeba",
    DatasetSpec(
        "celeba",
        (3, CELEBA_SIZE, CELEBA_SIZE),
        f"img_align_celeba/*.jpg under <root>/celeba/; from {CELEBA_URL}",
        _load_celeba,
        missing=_celeba_missing,
        epoch=162_000,
        epochs=40,
    ),
)
