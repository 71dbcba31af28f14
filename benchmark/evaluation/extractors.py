"""Feature extractors for FID, KID and precision/recall: `inception` (2015-12-05 pool3) and `tiny`.

Every extractor takes uint8 or [0, 1] float images (N, 1|3, H, W), preprocesses them as in
`benchmark.evaluation.preprocess`, and returns float32 features (N, dim). It names itself and
the sha256 of its weights, both of which go into results and into the reference-statistics
cache key.

Inception weights come from a path (argument, else `GANBENCH_INCEPTION`) in either format,
detected from the file: the pytorch-fid / torch-fidelity state dict
(`pt_inception-2015-12-05-6726825d.pth`, loaded into torch-fidelity's
`FeatureExtractorInceptionV3`), or NVIDIA's TorchScript layout of the same network (takes
(N, 3, 299, 299) already scaled to (x - 128) / 128, returns 2048 features). Without a path,
torch-fidelity downloads its copy, which needs a network.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmark.evaluation.preprocess import preprocess, preprocessing_id, to_rgb, to_uint8
from benchmark.registry import ConfigError, Registry

ENV_INCEPTION = "GANBENCH_INCEPTION"
INCEPTION_SIZE = 299
TINY_SIZE = 32


class WeightsUnavailable(RuntimeError):
    """The Inception weights are neither given nor downloadable."""


class FeatureExtractor(nn.Module):
    """Base: `forward(images) -> float32 (N, dim)`; names itself and hashes its weights."""

    name: str
    sha256: str
    dim: int
    size: int

    @property
    def preprocessing(self) -> str:
        return preprocessing_id(self.size)


FEATURE_EXTRACTORS: Registry[Callable[..., FeatureExtractor]] = Registry("feature_extractor")


def file_sha256(path: str | Path, _memo: dict[tuple[str, int, int], str] = {}) -> str:  # noqa: B006
    """sha256 of a file, remembered per (path, size, mtime) so an 87 MB file is hashed once."""
    stat = Path(path).stat()
    memo_key = (str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)
    if memo_key not in _memo:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _memo[memo_key] = digest.hexdigest()
    return _memo[memo_key]


def state_sha256(module: nn.Module) -> str:
    """sha256 over the names, shapes and bytes of a module's state (parameters and buffers)."""
    digest = hashlib.sha256()
    for key, value in module.state_dict().items():
        tensor = value.detach().cpu().contiguous()
        digest.update(f"{key}:{tuple(tensor.shape)}:{tensor.dtype}".encode())
        digest.update(tensor.view(torch.uint8).numpy().tobytes() if tensor.numel() else b"")
    return digest.hexdigest()


def weights_format(path: str | Path) -> str:
    """`torchscript` or `state_dict`, from the archive layout (TorchScript zips hold code/)."""
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except zipfile.BadZipFile:
        return "state_dict"  # the legacy (pre-zip) torch.save format
    is_script = any(name.split("/", 1)[-1].startswith("code/") for name in names) or any(
        name.endswith("constants.pkl") for name in names
    )
    return "torchscript" if is_script else "state_dict"


class InceptionExtractor(FeatureExtractor):
    """InceptionV3 (TF graph 2015-12-05) pool3 features, 2048-d."""

    dim = 2048
    size = INCEPTION_SIZE

    def __init__(self, weights: str | Path | None = None, device: torch.device | str = "cpu"):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import (
            URL_INCEPTION_V3,
            FeatureExtractorInceptionV3,
        )

        self.name = "inception"
        path = weights or os.environ.get(ENV_INCEPTION) or None
        if path is None:
            try:
                self.net = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
            except OSError as error:  # urllib's URLError is an OSError
                raise WeightsUnavailable(
                    "Inception weights unavailable offline: set GANBENCH_INCEPTION=PATH "
                    f"or pass --weights PATH ({type(error).__name__})"
                ) from None
            path = Path(torch.hub.get_dir()) / "checkpoints" / Path(URL_INCEPTION_V3).name
            self.format = "state_dict"
        else:
            if not Path(path).is_file():
                raise ConfigError("weights", str(path), "an existing Inception weights file")
            self.format = weights_format(path)
            if self.format == "torchscript":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # jit.load is deprecated
                    self.net = torch.jit.load(str(path), map_location="cpu")
            else:
                self.net = FeatureExtractorInceptionV3(
                    "inception-v3-compat", ["2048"], feature_extractor_weights_path=str(path)
                )
        self.weights_path = str(path)
        self.sha256 = file_sha256(path)
        self.net.eval()
        for parameter in self.net.parameters():  # ScriptModules lack requires_grad_()
            parameter.requires_grad_(False)
        self.to(device)

    def forward(self, images: Tensor) -> Tensor:
        if self.format == "state_dict":
            # torch-fidelity's module resizes (same TF1 function) and scales by itself.
            (features,) = self.net(to_rgb(to_uint8(images)).contiguous())
        else:
            features = self.net(preprocess(images, self.size))
        return features.float().reshape(len(images), -1)


class TinyNet(nn.Module):
    """A small conv net (32x32 input, 64-d output) with a fixed-seed random init, for tests."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.body = nn.Sequential(
                nn.Conv2d(3, 16, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(16, 32, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.Conv2d(32, dim, 3, stride=2, padding=1),
                nn.LeakyReLU(0.2),
                nn.AdaptiveAvgPool2d(1),
                nn.Flatten(),
            )

    def forward(self, x: Tensor) -> Tensor:
        return self.body(x)


class TinyExtractor(FeatureExtractor):
    """Deterministic 64-d features of a random conv net; needs no weights (tests, smoke runs)."""

    dim = 64
    size = TINY_SIZE

    def __init__(self, weights: str | Path | None = None, device: torch.device | str = "cpu"):
        super().__init__()
        if weights is not None:
            raise ConfigError("weights", str(weights), "no weights for the tiny extractor")
        self.name = "tiny"
        self.net = TinyNet(self.dim).eval().requires_grad_(False)
        self.sha256 = state_sha256(self.net)
        self.to(device)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(preprocess(images, self.size)).float()


FEATURE_EXTRACTORS.register("inception", InceptionExtractor)
FEATURE_EXTRACTORS.register("tiny", TinyExtractor)


def build_extractor(
    name: str, weights: str | Path | None = None, device: torch.device | str = "cpu"
) -> FeatureExtractor:
    """The registered extractor `name` on `device`, in eval mode."""
    return FEATURE_EXTRACTORS.get(name, "feature_extractor")(weights=weights, device=device)


def device_of(module: nn.Module) -> torch.device:
    tensor = next(iter(module.parameters()), None)
    if tensor is None:
        tensor = next(iter(module.buffers()), None)
    return tensor.device if tensor is not None else torch.device("cpu")


def extract_features(
    extractor: FeatureExtractor,
    images: Tensor,
    batch_size: int = 500,
    device: torch.device | str | None = None,
) -> Tensor:
    """Features (N, dim) float32 on the CPU, computed batch by batch on the extractor's device.

    Images may live anywhere (a CPU uint8 dataset, or generated floats on the GPU); each batch
    is moved to the extractor's device, quantised there, and its features brought back.
    """
    target = torch.device(device) if device is not None else device_of(extractor)
    out = torch.empty(len(images), extractor.dim, dtype=torch.float32)
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(target, non_blocking=True)
            out[start : start + len(batch)] = extractor(batch).float().cpu()
    return out
