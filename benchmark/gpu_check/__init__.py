"""`python -m benchmark gpu-check`: check and measure a GPU install in one command.

In at most `--time-limit` seconds (default 480, fits one modern GPU): (1) equivalence: each
paper model trained a few float64 steps on the device and on the CPU from the same draws, a
population against its members alone on the device, FID features of the same images on
both; (2) speed: D steps/s per model and population size (1, 16, 64 and `auto`'s choice),
FID extraction images/s and the FID of one generated set in fp32, TF32 and bf16 against the
spread over z seeds; (3) Welfert et al. 2023's ring study, minimax and NS, as many seeds as
fit at its full length, beside the published rates (ring.py); (4) a short real study in the
remaining time: the seven MNIST defaults at the paper's length, as many seeds as fit, one
population per model. Each part
has its own budget (BUDGET); an item that does not fit is skipped and named. The JSON and
Markdown summaries in `--out` are rewritten after every item, so a run stopped at any moment
leaves both, holding what finished.

`--tiny` runs every part on the CPU in under two minutes (CI): the MLP networks, a generated
28x28 dataset, the tiny feature network (Inception when weights are given), and the CPU as
its own reference: the equivalence part then checks that two runs are identical.
"""

from __future__ import annotations

import importlib
import os
import platform
from typing import Any

import torch

from benchmark.datasets import DATASETS, DatasetSpec, ImageData
from benchmark.errors import ConfigError

# Seconds per part at the default limit of each mode; the same shares of a shorter limit.
# The study takes whatever is left, less the margin kept for the last summary.
DEFAULT_TIME_LIMIT = {"full": 480.0, "tiny": 125.0}
#: The longest limit taken (a day): the watchdog's timer cannot wait past threading.TIMEOUT_MAX.
MAX_TIME_LIMIT = 86_400.0
BUDGET = {
    "full": {"equivalence": 45.0, "speed": 120.0, "ring": 150.0, "margin": 10.0},
    "tiny": {"equivalence": 40.0, "speed": 30.0, "ring": 25.0, "margin": 3.0},  # a loaded CPU
}
# The ring study (gpu_check/ring.py) takes the same share of a longer limit too: its length
# is the published protocol's, so a run that needs more time is given a longer limit.
GROWS = ("ring",)
# Time a study child needs before it trains: importing torch, loading data and weights.
CHILD_START_S = {"cpu": 8.0, "cuda": 20.0}
TINY_DATASET = "gpu_check_tiny"
# The watchdog stops the run this long before the limit (writing the summary takes less).
WATCHDOG_S = 0.5
# Imports the command needs, and why (the GPU machines may lack some).
REQUIRED = {
    "numpy": "everything",
    "torchvision": "sample grids (torchvision.utils.save_image)",
    "PIL": "sample grids (PNG)",
    "torchmetrics": "the Frechet distance (benchmark/evaluation/metrics.py)",
    "torch_fidelity": "the FID resize and Inception port (benchmark/evaluation/preprocess.py, "
    "imported by every trial's validation)",
}
OPTIONAL = {
    "submitit": "population = 'auto' (benchmark/sweep/executors.py imports it); without it the "
    "auto size is not measured",
    "scipy": "the ring part's exact intervals and Fisher's test (analysis/welfert.py); without "
    "it that part is skipped",
}


def _tiny_images(n: int, seed: int) -> torch.Tensor:
    """28x28 gray images of a bright 10x10 square at a random place: structure to learn."""
    generator = torch.Generator().manual_seed(seed)
    images = torch.zeros(n, 1, 28, 28, dtype=torch.uint8)
    for i, (r, c) in enumerate(torch.randint(0, 19, (n, 2), generator=generator).tolist()):
        images[i, 0, r : r + 10, c : c + 10] = 255
    return images


if TINY_DATASET not in DATASETS:
    DATASETS.register(
        TINY_DATASET,
        DatasetSpec(
            name=TINY_DATASET,
            shape=(1, 28, 28),
            files="generated (gpu-check --tiny)",
            load=lambda root, download: ImageData(
                TINY_DATASET, _tiny_images(512, 0), _tiny_images(256, 1)
            ),
            needs_root=False,
            # An epoch of 16 images at batch 16: 20 epochs = 20 D steps, evaluated after 6,
            # 11, 16 and 20, four checkpoints as the paper's 3,907 ... 15,625 on MNIST.
            epoch=16,
        ),
    )


def _versions() -> dict[str, str]:
    import benchmark

    versions = {"python": platform.python_version(), "torch": torch.__version__}
    versions["ganbench"] = benchmark.__version__
    versions["cuda"] = str(torch.version.cuda)
    versions["cudnn"] = str(torch.backends.cudnn.version())
    return versions


def check_imports() -> dict[str, str]:
    """name -> version (or 'missing: why needed'); ConfigError for a required one missing."""
    found = {}
    for name, why in {**REQUIRED, **OPTIONAL}.items():
        try:
            module = importlib.import_module(name)
            found[name] = str(getattr(module, "__version__", "present"))
        except ImportError:
            found[name] = f"missing ({why})"
            if name in REQUIRED:
                raise ConfigError(
                    "import",
                    name,
                    f"an installed package: needed for {why}; on a machine without a network, "
                    "copy its wheel over and put the .whl file on PYTHONPATH "
                    "(torch-fidelity is pure Python)",
                ) from None
    return found


def _device_record(device: torch.device, reference: torch.device) -> dict[str, Any]:
    record: dict[str, Any] = {"type": device.type, "reference": str(reference)}
    if device.type == "cuda":
        properties = torch.cuda.get_device_properties(device)
        record.update(
            name=properties.name,
            memory_gb=round(properties.total_memory / 2**30, 1),
            capability=f"{properties.major}.{properties.minor}",
        )
    else:
        record["name"] = platform.processor() or platform.machine()
    record["cpu_count"] = os.cpu_count()
    record["torch_threads"] = torch.get_num_threads()
    record["tf32_default"] = {
        "cudnn.allow_tf32": torch.backends.cudnn.allow_tf32,
        "cuda.matmul.allow_tf32": torch.backends.cuda.matmul.allow_tf32,
    }
    return record


def budgets(time_limit: float, tiny: bool) -> dict[str, float]:
    """Each part's seconds: BUDGET at the mode's default limit, the same shares of a shorter."""
    mode = "tiny" if tiny else "full"
    scale = min(1.0, time_limit / DEFAULT_TIME_LIMIT[mode])
    shares = {name: seconds * scale for name, seconds in BUDGET[mode].items()}
    for name in GROWS:
        shares[name] = BUDGET[mode][name] * time_limit / DEFAULT_TIME_LIMIT[mode]
    # Stopping the study's children and writing the last summary take about a second.
    shares["margin"] = max(shares["margin"], min(2.0, 0.2 * time_limit))
    return shares
