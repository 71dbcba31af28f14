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
torch-fidelity's copy is used if it is already in the torch hub cache, and downloaded only
when asked (`download=True`). A missing or unloadable file is refused when the extractor is
built, so a trial finds out before it trains.
"""

from __future__ import annotations

import hashlib
import os
import warnings
import zipfile
from pathlib import Path

import torch
from torch import Tensor, nn

from benchmark.errors import ConfigError
from benchmark.evaluation.preprocess import preprocess, preprocessing_id, to_rgb, to_uint8
from benchmark.results import feature_extractor_factory

ENV_INCEPTION = "GANBENCH_INCEPTION"
INCEPTION_SIZE = 299
TINY_SIZE = 32


class WeightsUnavailable(ConfigError):
    """The Inception weights are neither given, nor cached, nor to be downloaded."""


class FeatureExtractor(nn.Module):
    """Base: `forward(images) -> float32 (N, dim)`; names itself and hashes its weights."""

    name: str
    sha256: str
    dim: int
    size: int

    @property
    def preprocessing(self) -> str:
        return preprocessing_id(self.size)


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

    def __init__(
        self,
        weights: str | Path | None = None,
        device: torch.device | str = "cpu",
        download: bool = False,
    ):
        super().__init__()
        from torch_fidelity.feature_extractor_inceptionv3 import URL_INCEPTION_V3

        self.name = "inception"
        path = weights or os.environ.get(ENV_INCEPTION) or None
        hub_copy = Path(torch.hub.get_dir()) / "checkpoints" / Path(URL_INCEPTION_V3).name
        if path is None and not hub_copy.is_file():
            if not download:
                raise WeightsUnavailable(
                    "weights",
                    None,
                    f"an Inception weights file: pass --weights PATH or set {ENV_INCEPTION}=PATH "
                    "(or pass --download to fetch torch-fidelity's copy)",
                )
            self.net = self._load_state_dict(None)
            path, self.format = hub_copy, "state_dict"
        else:
            path = Path(path or hub_copy)
            if not path.is_file():
                raise ConfigError("weights", str(path), "an existing Inception weights file")
            self.format = weights_format(path)
            self.net = self._load(path)
        self.weights_path = str(path)
        self.sha256 = file_sha256(path)
        self.net.eval()
        for parameter in self.net.parameters():  # ScriptModules lack requires_grad_()
            parameter.requires_grad_(False)
        self._probe(path)
        self.to(device)

    def _load_state_dict(self, path: Path | None) -> nn.Module:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

        try:
            return FeatureExtractorInceptionV3(
                "inception-v3-compat",
                ["2048"],
                feature_extractor_weights_path=None if path is None else str(path),
            )
        except OSError as error:  # urllib's URLError is an OSError
            raise WeightsUnavailable(
                "weights", None, f"a weights file: the download failed ({error})"
            ) from None

    def _load(self, path: Path) -> nn.Module:
        """The network from a file of either format; ConfigError if it is neither."""
        try:
            if self.format == "torchscript":
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", FutureWarning)  # jit.load is deprecated
                    return torch.jit.load(str(path), map_location="cpu")
            return self._load_state_dict(path)
        except ConfigError:
            raise
        except Exception as error:  # whatever a damaged or foreign file makes torch raise
            raise ConfigError("weights", str(path), _weights_allowed(error)) from None

    def _probe(self, path: Path) -> None:
        """One image through the network: a file of the wrong network is refused now."""
        try:
            with torch.inference_mode():
                features = self.forward(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
            ok = tuple(features.shape) == (1, self.dim)
            error: Exception | str = f"it gives features of shape {tuple(features.shape)}"
        except Exception as failure:  # a TorchScript module of another network
            ok, error = False, failure
        if not ok:
            raise ConfigError("weights", str(path), _weights_allowed(error))

    def forward(self, images: Tensor) -> Tensor:
        if self.format == "state_dict":
            # torch-fidelity's module resizes (same TF1 function) and scales by itself.
            (features,) = self.net(to_rgb(to_uint8(images)).contiguous())
        else:
            features = self.net(preprocess(images, self.size))
        return features.float().reshape(len(images), -1)


def _weights_allowed(error: Exception | str) -> str:
    detail = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return (
        "InceptionV3 2015-12-05 weights: pytorch-fid's state dict or NVIDIA's TorchScript "
        f"file ({str(detail).splitlines()[0][:200]})"
    )


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

    def __init__(
        self,
        weights: str | Path | None = None,
        device: torch.device | str = "cpu",
        download: bool = False,
    ):
        super().__init__()
        if weights is not None:
            raise ConfigError("weights", str(weights), "no weights for the tiny extractor")
        self.name = "tiny"
        self.net = TinyNet(self.dim).eval().requires_grad_(False)
        self.sha256 = state_sha256(self.net)
        self.to(device)

    def forward(self, images: Tensor) -> Tensor:
        return self.net(preprocess(images, self.size)).float()


def build_extractor(
    name: str,
    weights: str | Path | None = None,
    device: torch.device | str = "cpu",
    download: bool = False,
) -> FeatureExtractor:
    """The registered extractor `name` on `device`, in eval mode; `download` allows fetching
    weights that are neither given nor cached (nothing reaches for the network otherwise)."""
    factory = feature_extractor_factory(name)
    extra = {"download": True} if download else {}  # a plugin's extractor may not take it
    return factory(weights=weights, device=device, **extra)


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
