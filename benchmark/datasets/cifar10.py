"""CIFAR-10 from the python batches or from .npz files, with its labels.

Registered as the dataset `cifar10` (benchmark/datasets/__init__.py imports this module).
"""

from __future__ import annotations

import os
import pickle
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from benchmark.datasets.core import DATASETS, DatasetSpec, ImageData, _download, _missing

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
CIFAR10_FILES = (
    "cifar-10-batches-py/{data_batch_1..5, test_batch} (the python version), or .npz files "
    "with x uint8 (N, 32, 32, 3), the test set in a file whose name contains 'test'"
)


def held_out_size(n: int) -> int:
    """Images split off the end of a train-only CIFAR-10 .npz as test: 10%, at most 10,000."""
    return min(n // 10, 10_000)


Split = tuple[np.ndarray, np.ndarray | None]  # images, and their labels when known


def _read_cifar_batches(directory: Path) -> tuple[Split, Split]:
    def read(files: Sequence[str]) -> Split:
        images, labels = [], []
        for file in files:
            # The python version is pickled; only open data files you trust.
            with open(directory / file, "rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.append(np.asarray(batch[b"labels"], dtype=np.int64))
        return np.concatenate(images), np.concatenate(labels)

    return read(CIFAR10_BATCHES), read(["test_batch"])


def _read_cifar_npz(paths: Sequence[Path]) -> Split:
    """Images from `x`; labels from `y` when every file has one."""
    arrays, labels = [], []
    for path in paths:
        with np.load(path) as stored:
            x = stored["x"]
            labels.append(stored["y"].astype(np.int64) if "y" in stored else None)
        if x.dtype != np.uint8 or x.ndim != 4 or x.shape[1:] != (32, 32, 3):
            raise ValueError(f"{path}: x must be uint8 (N, 32, 32, 3), got {x.dtype} {x.shape}")
        arrays.append(x.transpose(0, 3, 1, 2))
    known = None if any(y is None for y in labels) else np.concatenate(labels)
    return np.concatenate(arrays), known


def _load_cifar10(root: Path | None, download: bool) -> ImageData:
    """CIFAR-10 from the python batches, else from .npz files.

    With .npz files and no test file (such as a staged `cifar10_train_first4000_exact.npz`),
    the last `held_out_size(n)` train images (10%, at most 10,000) become the test split, so a
    subset still gives disjoint train and test images, always the same ones.
    """
    directory = Path(root) / "cifar10"
    batches = directory / "cifar-10-batches-py"
    npz = sorted(directory.glob("*.npz"))
    if download and not batches.exists() and not npz:
        archive = directory / "cifar-10-python.tar.gz"
        if not archive.exists():
            _download(CIFAR10_URL, archive, CIFAR10_MD5)
        _extract(archive, directory)
    if all((batches / f).exists() for f in [*CIFAR10_BATCHES, "test_batch"]):
        train, test = _read_cifar_batches(batches)
    elif npz:
        test_files = [p for p in npz if "test" in p.name]
        train = _read_cifar_npz([p for p in npz if "test" not in p.name])
        if test_files:
            test = _read_cifar_npz(test_files)
        else:
            cut = len(train[0]) - held_out_size(len(train[0]))
            (x, y), known = train, train[1] is not None
            train = x[:cut], y[:cut] if known else None
            test = x[cut:], y[cut:] if known else None
    else:
        source = f"download with --download, or fetch and unpack {CIFAR10_URL}"
        raise _missing("cifar10", directory, [CIFAR10_FILES], source)
    labelled = train[1] is not None and test[1] is not None
    labels = [torch.from_numpy(s[1].copy()) if labelled else None for s in (train, test)]
    train_x, test_x = (torch.from_numpy(s[0].copy()) for s in (train, test))
    return ImageData("cifar10", train_x, test_x, *labels)


def _cifar10_missing(root: Path, labels: bool) -> str | None:
    directory = Path(root) / "cifar10"
    batches = directory / "cifar-10-batches-py"
    if all((batches / f).exists() for f in [*CIFAR10_BATCHES, "test_batch"]):
        return None  # the python batches always carry their labels
    npz = sorted(directory.glob("*.npz"))
    if not npz:
        return f"{CIFAR10_FILES} in {directory}"
    if labels:
        unlabelled = []
        for path in npz:
            with np.load(path) as stored:  # lazy: lists the arrays without reading them
                if "y" not in stored.files:
                    unlabelled.append(path.name)
        if unlabelled:
            return f"labels (an array y) in {', '.join(unlabelled)} in {directory}"
    return None


def _extract(archive: Path, directory: Path) -> None:
    """Unpack into a temporary folder first, so a killed extraction leaves no partial batches."""
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        with tarfile.open(archive, "r:gz") as tar:
            # The "data" filter refuses absolute paths and links out of the folder.
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # Python < 3.10.12 has no filters
                tar.extractall(tmp)
        os.replace(Path(tmp) / "cifar-10-batches-py", directory / "cifar-10-batches-py")


DATASETS.register(
    "cifar10",
    DatasetSpec(
        "cifar10",
        (3, 32, 32),
        f"{CIFAR10_FILES} under <root>/cifar10/; from {CIFAR10_URL}",
        _load_cifar10,
        epochs=100,
        classes=10,
        missing=_cifar10_missing,
    ),
)
