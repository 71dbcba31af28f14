"""What a dataset holds, registered by name: images (N, C, H, W) or points (N, D).

A kind owns what differs between them outside the networks: what a finished trial stores of
its final generator (`save_samples`, called by the run loop), the metrics a trial scores when
it names none, and which metrics apply at all (`Metric.data` names a kind). A dataset names
its kind (`DatasetSpec.kind`); a new kind is one `DATA_KINDS.register` here or in a plugin.
Torch-free: the sample writers are "module:function", imported on first use.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from benchmark.registry import Registry

SAMPLES_PNG = "samples.png"  # what the final G of an image trial makes
SAMPLES_NPZ = "samples.npz"  # ... of a point trial: the scored points, the centres, the radius


@dataclass(frozen=True)
class DataKind:
    name: str
    description: str
    # The file a finished trial stores in its directory, and what writes it:
    # (generator, trial, device, path) -> None, a callable or "module:function".
    samples_file: str
    save_samples: str | Callable[..., None]
    # The metrics of a trial that names none (`TrialConfig.metrics`).
    metrics: tuple[str, ...]

    def samples_writer(self) -> Callable[..., None]:
        if callable(self.save_samples):
            return self.save_samples
        module, function = self.save_samples.split(":")
        return getattr(importlib.import_module(module), function)

    def save(self, generator: Any, trial: Any, device: Any, directory: Any) -> None:
        """Write what the trial's final generator makes into its directory."""
        self.samples_writer()(generator, trial, device, directory / self.samples_file)


DATA_KINDS: Registry[DataKind] = Registry("data kind")
DATA_KINDS.register(
    "images",
    DataKind(
        "images",
        "images (N, C, H, W), stored as uint8",
        SAMPLES_PNG,
        "benchmark.training.samples:save_image_grid",
        ("fid",),
    ),
)
DATA_KINDS.register(
    "points",
    DataKind(
        "points",
        "points (N, D) of a 2-D mixture",
        SAMPLES_NPZ,
        "benchmark.training.samples:save_points",
        ("mixture",),
    ),
)
