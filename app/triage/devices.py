"""Where the models run: CUDA, then Apple MPS, then CPU, and how many CPU cores."""

from __future__ import annotations

import os

import torch


def resolve_device(requested: str | None = None) -> torch.device:
    """``requested`` (``PTM_TRIAGE_DEVICE``), else CUDA, then Apple MPS, then CPU."""
    name = (requested or "auto").strip().lower()
    if name != "auto":
        device = torch.device(name)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {name!r} requested but CUDA is not available")
        if device.type == "mps" and not _mps_available():
            raise RuntimeError(f"device {name!r} requested but Apple MPS is not available")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def use_available_cores() -> None:
    torch.set_num_threads(available_cores())


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps and mps.is_available())
