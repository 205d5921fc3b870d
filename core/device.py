"""Which accelerator to use: CUDA, then Apple's MPS, then the CPU."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass

import torch


def pick_device(prefer: str | None = None) -> torch.device:
    """The best available device, or `prefer` ("cpu", "cuda", "mps") when it is available.

    The environment variable ATLAS_DEVICE overrides the choice (e.g. ATLAS_DEVICE=cpu on a shared GPU box).
    """
    wanted = prefer or os.environ.get("ATLAS_DEVICE")
    if wanted == "cpu":
        return torch.device("cpu")
    if torch.cuda.is_available() and wanted in (None, "cuda"):
        return torch.device("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available() and wanted in (None, "mps"):
        return torch.device("mps")
    return torch.device("cpu")


@dataclass(frozen=True)
class DeviceInfo:
    kind: str  # cpu | cuda | mps
    name: str  # a human name: the GPU model, or the CPU architecture
    torch_version: str
    threads: int

    @property
    def summary(self) -> str:
        return f"{self.kind.upper()} ({self.name}), torch {self.torch_version}"


def describe_device(device: torch.device | None = None) -> DeviceInfo:
    device = device or pick_device()
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    elif device.type == "mps":
        name = "Apple GPU"
    else:
        name = f"{platform.machine() or 'unknown'} CPU, {os.cpu_count() or 1} cores"
    return DeviceInfo(device.type, name, torch.__version__, torch.get_num_threads())
