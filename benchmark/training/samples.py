"""What a finished trial stores of its final generator, per data kind (benchmark/data_kinds.py):
a grid of images, or the points of the evaluation's fixed z."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import Tensor, nn

from benchmark.config import TrialConfig
from benchmark.datasets import DATASETS
from benchmark.files import atomic_write
from benchmark.latents import LATENTS

SAMPLE_GRID = 64


def save_image_grid(generator: nn.Module, trial: TrialConfig, device: torch.device, path: Path):
    """samples.png: a grid of 64 images of a fixed z (one column per class when conditional)."""
    from torchvision.utils import save_image

    rng = torch.Generator(device=device)
    rng.manual_seed(0)
    was_training = generator.training
    generator.eval()
    labels, columns = sample_labels(trial, SAMPLE_GRID), 8
    with torch.inference_mode():
        z = LATENTS.get(trial.latent).sample(SAMPLE_GRID, trial.z_dim, rng, device)
        if labels is None:
            images = generator(z).float().cpu()
        else:  # one column per class: sample i has class i mod K
            images = generator(z, labels.to(device)).float().cpu()
            columns = DATASETS.get(trial.dataset).classes
    generator.train(was_training)
    atomic_write(path, lambda tmp: save_image(images, tmp, nrow=columns, padding=2, format="png"))


def sample_labels(trial: TrialConfig, n: int) -> Tensor | None:
    """A conditional trial's class-balanced labels for n samples (None: unconditional)."""
    from benchmark.conditional import balanced_labels

    if not trial.conditional:
        return None
    return balanced_labels(n, DATASETS.get(trial.dataset).classes)


def save_points(generator: nn.Module, trial: TrialConfig, device: torch.device, path: Path):
    """samples.npz: the points G makes of the evaluation's fixed z (the ones the mixture
    metrics scored), with the mixture's centres and high-quality radius."""
    import numpy as np

    from benchmark.evaluation import fixed_z
    from benchmark.evaluation.mixture_metrics import HQ_SIGMAS, SAMPLES
    from benchmark.mixtures import MIXTURES

    was_training = generator.training
    generator.eval()
    labels = sample_labels(trial, SAMPLES)
    with torch.inference_mode():
        z = fixed_z(SAMPLES, trial.z_dim, 0, trial.latent).to(device)
        points = generator(z) if labels is None else generator(z, labels.to(device))
    generator.train(was_training)
    mixture = MIXTURES.get(trial.dataset, "dataset")
    arrays = {
        "points": points.float().cpu().numpy(),
        "centres": mixture.centre_array,
        "hq_radius": np.float64(HQ_SIGMAS * mixture.sigma),
    }
    if labels is not None:  # the modes the points were asked for
        arrays["labels"] = labels.numpy()

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as handle:  # a handle: np.savez would append ".npz"
            np.savez(handle, **arrays)

    atomic_write(path, write)
