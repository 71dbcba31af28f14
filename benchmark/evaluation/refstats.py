"""Reference (real-data) feature statistics, cached on disk under `cache_dir()/refstats/`.

The key is the sha256 of everything that changes the statistics: dataset name and split,
image count, a hash of the image bytes, extractor name and weights sha256, the
preprocessing id (quantisation, resize, scaling) and the file-format version. A file whose
stored key fields differ from the requested ones, or that cannot be read or fails its checks
(zip CRCs, shapes, finite values), is recomputed and overwritten atomically, so a killed
writer never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from benchmark.evaluation.metrics import mean_cov
from benchmark.files import cache_dir, write_cache

# Bump when the stored arrays or their meaning change: every old file becomes a miss.
FORMAT_VERSION = 1
# At most this many real feature rows are stored for KID and precision/recall (the study's 10k).
FEATURE_CAP = 10_000


@dataclass(frozen=True)
class RefStats:
    """Real-data statistics: mean and covariance (float64) and the first `FEATURE_CAP` features."""

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray
    n: int
    key: str


def images_sha256(images: Tensor) -> str:
    """sha256 of a uint8 image tensor's shape and bytes (so a regenerated dataset is a miss)."""
    data = images.detach().cpu().contiguous()
    digest = hashlib.sha256(f"{tuple(data.shape)}:{data.dtype}".encode())
    digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def key_fields(
    *,
    dataset: str,
    split: str,
    count: int,
    extractor: str,
    weights_sha256: str,
    preprocessing: str,
    data_sha256: str | None = None,
) -> dict[str, object]:
    """The inputs of the cache key, as a JSON-able dict (also stored in the file)."""
    return {
        "format": FORMAT_VERSION,
        "feature_cap": FEATURE_CAP,
        "dataset": dataset,
        "split": split,
        "count": int(count),
        "extractor": extractor,
        "weights_sha256": weights_sha256,
        "preprocessing": preprocessing,
        "data_sha256": data_sha256,
    }


def refstats_key(fields: Mapping[str, object]) -> str:
    return hashlib.sha256(json.dumps(dict(fields), sort_keys=True).encode()).hexdigest()


def refstats_path(fields: Mapping[str, object], root: str | Path | None = None) -> Path:
    base = Path(root) if root is not None else cache_dir() / "refstats"
    return base / f"{refstats_key(fields)}.npz"


def _read(path: Path, fields: Mapping[str, object]) -> RefStats | None:
    """The stored statistics if the file is intact and was made for exactly `fields`.

    Every member is read in full, so zip's CRC check catches flipped bytes; shapes and
    finiteness are checked too. Anything else is a miss, and the file is recomputed.
    """
    try:
        with np.load(path, allow_pickle=False) as stored:
            if json.loads(str(stored["fields"])) != json.loads(json.dumps(dict(fields))):
                return None
            stats = RefStats(
                mu=stored["mu"],
                sigma=stored["sigma"],
                features=stored["features"],
                n=int(stored["n"]),
                key=refstats_key(fields),
            )
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile):
        return None
    dim = stats.mu.shape[0] if stats.mu.ndim == 1 else -1
    intact = (
        stats.sigma.shape == (dim, dim)
        and stats.features.ndim == 2
        and stats.features.shape[1] == dim
        and np.isfinite(stats.mu).all()
        and np.isfinite(stats.sigma).all()
    )
    return stats if intact else None


def load_or_compute(
    fields: Mapping[str, object],
    compute_features: Callable[[], Tensor],
    root: str | Path | None = None,
) -> tuple[RefStats, bool]:
    """(statistics, hit): read the cache file for `fields`, else compute, store and return.

    `compute_features()` returns the real features (n, d); it runs only on a miss.
    """
    path = refstats_path(fields, root)
    if path.exists():
        stats = _read(path, fields)
        if stats is not None:
            return stats, True
    features = compute_features().detach().cpu().float()
    mu, sigma = mean_cov(features)
    kept = features[:FEATURE_CAP].numpy()
    arrays = {
        "mu": mu,
        "sigma": sigma,
        "features": kept,
        "n": np.int64(len(features)),
        "fields": np.str_(json.dumps(dict(fields), sort_keys=True)),
    }

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append ".npz" to a path
            np.savez(handle, **arrays)

    write_cache(path, write)
    return RefStats(mu, sigma, kept, len(features), refstats_key(fields)), False
