"""Datasets as tensors with train and test splits, loaded from a data root or generated.

A dataset is one tensor per split, so the trainer can keep it on the device and sample
batches by index: uint8 images (N, C, H, W), or float32 points (N, D) for the 2-D mixtures.
Datasets with classes (MNIST, Fashion-MNIST, CIFAR-10, and the mixtures: a point's mode) also
carry int64 labels (N,) per split, which conditional trials draw with the images.
Files are read from a data root (the argument, else the `GANBENCH_DATA` environment variable)
holding the standard files, and are downloaded only when asked, so nothing needs a network at
run time; the polygons and the mixtures are generated from a seed.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from benchmark import mixtures, polygons
from benchmark.errors import ConfigError
from benchmark.files import atomic_write
from benchmark.registry import Registry

ENV_DATA = "GANBENCH_DATA"


@dataclass(frozen=True)
class ImageData:
    """A dataset's train and test samples as contiguous CPU tensors: uint8 images
    (N, C, H, W) in [0, 255], or float32 points (N, D) used as they are."""

    name: str
    train: torch.Tensor
    test: torch.Tensor
    train_labels: torch.Tensor | None = None  # int64 (N,), class indices, when known
    test_labels: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for split in ("train", "test"):
            data = getattr(self, split)
            images = data.dtype == torch.uint8 and data.ndim == 4
            points = data.dtype == torch.float32 and data.ndim == 2
            if not (images or points):
                raise ValueError(
                    f"{self.name} {split}: expected uint8 images (N, C, H, W) or float32 "
                    f"points (N, D), got {data.dtype} {tuple(data.shape)}"
                )
            object.__setattr__(self, split, data.cpu().contiguous())
        if self.train.shape[1:] != self.test.shape[1:] or self.train.dtype != self.test.dtype:
            raise ValueError(
                f"{self.name}: train samples {self.train.dtype} {tuple(self.train.shape[1:])} "
                f"differ from test samples {self.test.dtype} {tuple(self.test.shape[1:])}"
            )
        for split in ("train", "test"):
            labels = getattr(self, f"{split}_labels")
            if labels is None:
                continue
            if labels.shape != (len(getattr(self, split)),):
                raise ValueError(
                    f"{self.name} {split}_labels: expected one label per sample "
                    f"({len(getattr(self, split))},), got {tuple(labels.shape)}"
                )
            object.__setattr__(self, f"{split}_labels", labels.cpu().to(torch.int64).contiguous())

    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of one sample: (C, H, W) of an image, (D,) of a point."""
        return tuple(self.train.shape[1:])

    @property
    def is_points(self) -> bool:
        return self.train.dtype != torch.uint8

    @property
    def labelled(self) -> bool:
        return self.train_labels is not None and self.test_labels is not None


@dataclass(frozen=True)
class DatasetSpec:
    """How to load one dataset: its image shape, the files it needs and a loader.

    `load(root, download)` gets the resolved data root, or None when `needs_root` is false
    (a generated dataset).
    """

    name: str
    shape: tuple[int, ...]
    files: str
    load: Callable[[Path | None, bool], ImageData]
    needs_root: bool = True
    # The reference study's epoch (images) and training length (epochs), which set a trial's
    # D-step budget and evaluation schedule (benchmark/schedule.py). compare_gan v1 counts an
    # epoch as 50,000 images for every dataset but CelebA (162,000), and trains 20 epochs
    # (100 for CIFAR-10, 40 for CelebA).
    epoch: int = 50_000
    epochs: int = 20
    # The number of classes of its labels (None: unlabelled): what a conditional trial's
    # networks embed.
    classes: int | None = None
    # `missing(root, labels)`: what of the files a load needs (with the label files when
    # `labels`) is not under the data root, naming the folder looked in; None when all are
    # there. Checked before a sweep writes anything; cheap (no file is read).
    missing: Callable[[Path, bool], str | None] | None = None
    # The network family (benchmark/networks) a model on the paper's networks trains with
    # here unless told otherwise (benchmark/models.py, `networks_for`): the InfoGAN networks
    # for images, the point networks for the 2-D mixtures.
    networks: str = "infogan"

    # What it holds (benchmark/data_kinds.py); unset: "points" for (D,) samples, else "images".
    kind: str = ""

    def __post_init__(self) -> None:
        if not self.kind:
            object.__setattr__(self, "kind", "points" if len(self.shape) == 1 else "images")

    @property
    def is_points(self) -> bool:
        return self.kind == "points"


class DatasetMissing(FileNotFoundError):
    """A dataset's files are not under the data root; the message names them and their source."""


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def data_root(root: str | Path | None = None) -> Path:
    """The data root: `root` if given, else `$GANBENCH_DATA`."""
    if root:
        return Path(root).expanduser()
    env = os.environ.get(ENV_DATA)
    if env:
        return Path(env).expanduser()
    raise ConfigError(
        "data_root", root, f"a directory of datasets, given as data_root or in ${ENV_DATA}"
    )


def check_data(
    name: str, root: str | Path | None, labels: bool, download: bool, where: str = ""
) -> None:
    """Refuse, before anything is written, a data root that lacks the dataset's files (its
    label files too when `labels`), naming the folder looked in; nothing to check for a
    generated dataset or one that is to be downloaded."""
    spec = DATASETS.get(name, field="dataset")
    if not spec.needs_root:
        return
    try:
        path = data_root(root)
    except ConfigError as error:
        raise ConfigError("data_root", error.value, error.allowed, where=where) from None
    if download:
        return
    what = f"{name}'s files" + (" with labels (conditional trials)" if labels else "")
    if spec.missing is not None:
        absent = spec.missing(path, labels)
    else:  # a plugin's dataset: only its root can be checked
        absent = None if path.is_dir() else f"the folder {path}"
    if absent:
        allowed = f"a folder holding {what}; not found: {absent} (or --download)"
        raise ConfigError("data_root", str(path), allowed, where=where)


def load_dataset(name: str, root: str | Path | None = None, download: bool = False) -> ImageData:
    """Load a registered dataset's train and test images.

    Raises ConfigError for an unknown name or a missing data root, and DatasetMissing when
    the files are not there (and `download` is false).
    """
    spec = DATASETS.get(name, field="dataset")
    data = spec.load(data_root(root) if spec.needs_root else None, download)
    if data.shape != spec.shape:
        raise ValueError(f"{name}: loaded images of shape {data.shape}, expected {spec.shape}")
    return data


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images to float32 in [0, 1] (x / 255), on the same device."""
    if images.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    return images.to(torch.float32).div_(255.0)


def _missing(name: str, directory: Path, expected: Sequence[str], source: str) -> DatasetMissing:
    return DatasetMissing(
        f"dataset {name!r} not found: expected {', '.join(expected)} under {directory}; {source}"
    )


def _download(url: str, path: Path, md5: str) -> None:
    """Fetch `url` to `path` atomically; refuse a file whose MD5 is not the published one."""

    def write(tmp: Path) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as handle:
            while chunk := response.read(1 << 20):
                digest.update(chunk)
                handle.write(chunk)
        if digest.hexdigest() != md5:
            raise OSError(f"{url}: MD5 {digest.hexdigest()} differs from the published {md5}")

    atomic_write(path, write)


# ---- MNIST and Fashion-MNIST: idx files ------------------------------------------------


def read_idx(path: str | Path) -> np.ndarray:
    """Read an idx file of unsigned bytes (gzipped if its name ends in .gz), e.g. MNIST images.

    The header is two zero bytes, the type code 0x08 (uint8), the number of dimensions and one
    big-endian int32 per dimension; the values follow.
    """
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path}: not an idx file of unsigned bytes (header {raw[:4].hex()})")
    ndim = raw[3]
    dims = tuple(int(d) for d in np.frombuffer(raw, dtype=">i4", count=ndim, offset=4))
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {dims}, found {data.size} values")
    return data.reshape(dims)


def _idx_loader(name: str, folder: str, urls: Sequence[str], md5: dict[str, str]) -> DatasetSpec:
    """A spec for an MNIST-like dataset: `train-` and `t10k-images-idx3-ubyte[.gz]` in `folder`."""
    files = ("train-images-idx3-ubyte.gz", "t10k-images-idx3-ubyte.gz")
    # The labels are optional: without them the images still train unconditional trials.
    label_files = ("train-labels-idx1-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    source = f"download with --download, or fetch them from {urls[0]}"

    def find(directory: Path, file: str) -> Path | None:
        for candidate in (directory / file, directory / file.removesuffix(".gz")):
            if candidate.exists():
                return candidate
        return None

    def load(root: Path | None, download: bool) -> ImageData:
        directory = Path(root) / folder
        if download:
            for file in (*files, *label_files):
                if find(directory, file) is None:
                    _download_first(urls, file, directory / file, md5[file])
        paths = [find(directory, file) for file in files]
        if None in paths:
            raise _missing(name, directory, [f"{f} (or un-gzipped)" for f in files], source)
        train, test = (torch.from_numpy(read_idx(p)[:, None].copy()) for p in paths)
        label_paths = [find(directory, file) for file in label_files]
        labels = [None, None]
        if None not in label_paths:
            labels = [torch.from_numpy(read_idx(p).astype(np.int64)) for p in label_paths]
        return ImageData(name, train, test, *labels)

    def missing(root: Path, labels: bool) -> str | None:
        directory = Path(root) / folder
        wanted = (*files, *label_files) if labels else files
        absent = [f"{file} (or un-gzipped)" for file in wanted if find(directory, file) is None]
        return f"{', '.join(absent)} in {directory}" if absent else None

    listing = f"{', '.join(files)} (labels: {', '.join(label_files)})"
    return DatasetSpec(
        name,
        (1, 28, 28),
        f"{listing} under <root>/{folder}/; {source}",
        load,
        classes=10,
        missing=missing,
    )


def _download_first(urls: Sequence[str], file: str, path: Path, md5: str) -> None:
    """Try each mirror in turn; the first that serves the right file wins."""
    errors = []
    for base in urls:
        try:
            _download(base + file, path, md5)
            return
        except OSError as error:
            errors.append(f"{base}: {error}")
    raise OSError(f"could not download {file}: " + "; ".join(errors))


# The original MNIST site often refuses scripts; torchvision's mirror serves the same files.
MNIST_URLS = ("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/")
FASHION_MNIST_URLS = ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",)

DATASETS.register(
    "mnist",
    _idx_loader(
        "mnist",
        "mnist",
        MNIST_URLS,
        {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
)
DATASETS.register(
    "fashion_mnist",
    _idx_loader(
        "fashion_mnist",
        "fashion-mnist",
        FASHION_MNIST_URLS,
        {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
)


# ---- Convex polygons: generated, no files ------------------------------------------------


def _load_polygons(root: Path | None, download: bool) -> ImageData:
    """The 60k train and 10k test triangles of the default generation (seed 0, colab rotation)."""
    splits = polygons.generate_polygons()
    train, test = (torch.from_numpy(splits[s]) for s in ("train", "test"))
    return ImageData("polygons", train, test)


def polygons_holdout() -> torch.Tensor:
    """The 10k hold-out triangles (uint8 (N, 1, 28, 28)) of the default generation."""
    return torch.from_numpy(polygons.generate_polygons()["holdout"])


DATASETS.register(
    "polygons",
    DatasetSpec(
        "polygons",
        (1, polygons.SIZE, polygons.SIZE),
        "none: generated from a seed and cached in the cache directory",
        _load_polygons,
        needs_root=False,
    ),
)


# ---- 2-D Gaussian mixtures: generated, no files --------------------------------------------


SPLIT_ARRAYS = ("train", "test", "train_labels", "test_labels")


def _mixture_loader(name: str) -> Callable[[Path | None, bool], ImageData]:
    def load(root: Path | None, download: bool) -> ImageData:
        splits = mixtures.generate(mixtures.MIXTURES.get(name))
        return ImageData(name, *(torch.from_numpy(splits[k]) for k in SPLIT_ARRAYS))

    return load


for _name in mixtures.MIXTURES:
    DATASETS.register(
        _name,
        DatasetSpec(
            _name,
            (2,),
            "none: generated from a seed (benchmark/mixtures.py)",
            _mixture_loader(_name),
            needs_root=False,
            # An epoch is the training points; the reference length is the mixture's own
            # (benchmark/mixtures.py).
            epoch=mixtures.MIXTURES.get(_name).train_points,
            epochs=mixtures.MIXTURES.get(_name).epochs,
            classes=mixtures.MIXTURES.get(_name).modes,  # a point's label: its mode
            networks="points",
        ),
    )
