"""Devices: the one a trial runs on (checked before anything is written), and its description."""

from __future__ import annotations

import platform
from typing import Any

import torch

import benchmark
from benchmark.errors import ConfigError


def default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def resolve_device(name: str | torch.device | None) -> torch.device:
    """The torch device `name` (None or "auto": cuda if available, else cpu), or ConfigError if
    this machine cannot run on it; checked before anything is written."""
    if name is None or name == "auto":
        return default_device()
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigError("device", name, "a torch device: cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ConfigError("device", name, "cpu (this machine has no usable CUDA GPU)")
        if device.index is not None and device.index >= count:
            raise ConfigError("device", name, f"cuda or cuda:0 .. cuda:{count - 1}")
    elif device.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError("device", name, "cpu (MPS is not available here)")
    elif device.type != "cpu":
        raise ConfigError("device", name, "cpu, cuda or cuda:N")
    return device


def environment(device: torch.device) -> dict[str, Any]:
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor()
    return {
        "device": f"{device.type}:{name or platform.machine()}",
        "torch_version": torch.__version__,
        "ganbench_version": benchmark.__version__,
        "host": platform.node(),
        "cpu_threads": torch.get_num_threads(),
    }


def runs_on_cpu(device: str | None) -> bool:
    """Whether a trial given `device` (None or "auto": the default) runs on the CPU."""
    if device not in (None, "auto"):
        return device == "cpu"
    return not torch.cuda.is_available()
