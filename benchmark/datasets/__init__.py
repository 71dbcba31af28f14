"""Datasets by name (`DATASETS`): `core.py` holds the registry, MNIST, Fashion-MNIST, the
2-D mixtures and the polygons; `cifar10.py` and `celeba.py` register theirs when this package
is imported, so whoever reads the registry sees every dataset.
"""

from benchmark.datasets import celeba, cifar10  # noqa: E402,F401  (their registrations)
from benchmark.datasets.core import (
    DATASETS,
    ENV_DATA,
    FASHION_MNIST_URLS,
    MNIST_URLS,
    SPLIT_ARRAYS,
    DatasetMissing,
    DatasetSpec,
    ImageData,
    check_data,
    data_root,
    load_dataset,
    polygons_holdout,
    read_idx,
    to_float,
)

__all__ = [
    "ENV_DATA",
    "ImageData",
    "DatasetSpec",
    "DatasetMissing",
    "DATASETS",
    "data_root",
    "check_data",
    "load_dataset",
    "to_float",
    "read_idx",
    "MNIST_URLS",
    "FASHION_MNIST_URLS",
    "polygons_holdout",
    "SPLIT_ARRAYS",
]
