"""Choosing the compute device and sane CPU defaults for torch."""
from __future__ import annotations

import functools

from hiralign.errors import ConfigError


@functools.lru_cache(maxsize=1)
def configure_torch() -> None:
    """Process-wide torch settings every stage relies on.

    Flushing denormals matters enormously on CPU: softmax/Adam on tiny values otherwise
    slowed a 128² warp optimisation 5–20× (FACTS.md).
    """
    import torch

    torch.set_flush_denormal(True)


def resolve_device(name: str | None = "auto") -> torch.device:  # noqa: F821
    """Turn ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:1"`` into a usable torch device.

    ``"auto"`` (or None) picks CUDA when available, else CPU.

    Raises:
        ConfigError: a CUDA device was asked for on a machine without one.
    """
    import torch

    configure_torch()
    if name is None or str(name).lower() == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(str(name))
    except RuntimeError:
        raise ConfigError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but torch sees no CUDA GPU on this machine")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ConfigError(f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist")
    return device
