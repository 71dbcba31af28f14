"""FID timings of the throughput benchmark: feature extraction images/s and the Frechet
distance's own cost, with Inception weights or a random network of the same shape."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from benchmark.datasets import DATASETS
from benchmark.perf.bench_populations import log

FID_INPUTS = {"mnist": (1, 28, 28), "cifar10": (3, 32, 32)}


def random_images(shape: tuple[int, ...], n: int, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, *shape), dtype=torch.uint8, generator=generator)


class RandomInception(torch.nn.Module):
    """The FID Inception network (torch-fidelity's InceptionV3) with random weights: same cost."""

    name = "inception (random weights)"
    dim = 2048

    def __init__(self) -> None:
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        class Unloaded(FeatureExtractorInceptionV3):
            def load_state_dict(self, state_dict, strict=True, assign=False):  # keep the init
                return None

        with tempfile.TemporaryDirectory() as folder:
            empty = Path(folder) / "empty.pt"
            torch.save({}, empty)
            self.net = Unloaded("inception-v3-compat", ["2048"], str(empty))

    def forward(self, images: Tensor) -> Tensor:
        from benchmark.evaluation.preprocess import to_rgb, to_uint8

        (features,) = self.net(to_rgb(to_uint8(images)).contiguous())
        return features.float()


def fid_extractor(device: torch.device) -> tuple[torch.nn.Module, str]:
    """The real Inception network when GANBENCH_INCEPTION names weights, else a random one."""
    from benchmark.evaluation import ENV_INCEPTION, build_extractor

    if os.environ.get(ENV_INCEPTION):
        extractor = build_extractor("inception", device=device)
        return extractor, f"inception ({ENV_INCEPTION} weights, {extractor.format})"
    extractor = RandomInception().to(device).eval().requires_grad_(False)
    return extractor, RandomInception.name


def bench_fid(
    extractor: torch.nn.Module,
    device: torch.device,
    seconds: float,
    batch_size: int,
    datasets: list[str],
) -> list[dict[str, Any]]:
    """Images/s of feature extraction (quantise, resize to 299, Inception) per input shape."""
    from benchmark.evaluation import extract_features

    rows = []
    for dataset in datasets:
        shape = FID_INPUTS.get(dataset, DATASETS.get(dataset, "dataset").shape)
        images = random_images(shape, batch_size)
        extract_features(extractor, images, batch_size, device)  # warm-up
        n, start = 0, time.perf_counter()
        while n == 0 or time.perf_counter() - start < seconds:
            extract_features(extractor, images, batch_size, device)  # brings features back
            n += batch_size
        rate = n / (time.perf_counter() - start)
        rows.append({"input": "x".join(map(str, shape)), "images_per_s": rate})
        log(f"  FID extraction {rows[-1]['input']}: {rate:.1f} images/s (batch {batch_size})")
    return rows


def frechet_seconds(dim: int = 2048) -> float:
    """Time of one Fréchet distance at the Inception feature size (float64 eigenvalues)."""
    from benchmark.evaluation import frechet_distance

    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2, dim + 8, dim))
    sigma1, sigma2 = np.cov(a.T), np.cov(b.T)
    start = time.perf_counter()
    frechet_distance(np.zeros(dim), sigma1, np.zeros(dim), sigma2)
    return time.perf_counter() - start
