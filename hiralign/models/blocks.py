"""Building blocks shared by the published backbones: argument checks, padding, DropPath.

The published networks have architectural constraints (windows of 32 px, two 2× down-
samplings, pixel-shuffle upsamplers) that the user should not have to know about: every
backbone pads its input to what it needs and crops the result back, and every factory turns
a wrong setting into one clear :class:`~hiralign.errors.HiralignError`.
"""
from __future__ import annotations

import inspect
from typing import Any, Callable, Sequence, TypeVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from hiralign.errors import ConfigError, ModelError

ModuleT = TypeVar("ModuleT", bound=nn.Module)


def check_bands(arch: str, bands: int) -> int:
    """Return ``bands`` as an int, or raise ConfigError when it is not a positive integer."""
    if isinstance(bands, bool) or not isinstance(bands, int) or bands < 1:
        raise ConfigError(f"{arch}: band count must be a positive integer, got {bands!r}")
    return bands


def require_denoiser_scale(arch: str, scale: int) -> None:
    """Raise ModelError unless ``scale`` is 1: ``arch`` keeps the spatial size."""
    if scale != 1:
        raise ModelError(f"{arch} is a same-size restorer (denoising, deblurring, inpainting) and "
                         f"cannot super-resolve: scale must be 1, got {scale!r}; "
                         f"use a super-resolution backbone such as gdrrn or essaformer")


def require_sr_scale(arch: str, scale: int, allowed: Sequence[int]) -> int:
    """Raise ModelError unless ``scale`` is one of ``allowed`` (all ≥ 2)."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale not in allowed:
        raise ModelError(f"{arch} is a super-resolution backbone: scale must be one of "
                         f"{', '.join(map(str, allowed))}, got {scale!r}"
                         + ("; for same-size restoration use sert_*, qrnn3d or the compact "
                            "restorer" if scale == 1 else ""))
    return scale


def build_checked(arch: str, constructor: Callable[..., ModuleT], args: dict[str, Any]) -> ModuleT:
    """Call ``constructor(**args)`` after checking every name in ``args`` is one it accepts.

    Raises:
        ConfigError: an unknown setting name (listing the known ones), or a value the
            constructor rejects with ValueError/TypeError.
    """
    accepted = [name for name in inspect.signature(constructor).parameters if name != "self"]
    unknown = sorted(set(args) - set(accepted))
    if unknown:
        raise ConfigError(f"{arch}: unknown setting(s) {', '.join(unknown)}; "
                          f"known: {', '.join(accepted)}")
    try:
        return constructor(**args)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{arch}: invalid settings {args}: {exc}") from exc


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad the last two dims of ``x`` at the bottom/right up to multiples of ``multiple``.

    Reflection keeps image statistics at the border (so the network does not see a hard
    edge); inputs smaller than the padding fall back to edge replication, which reflection
    cannot do.

    Args:
        x: (..., H, W) tensor with at least 3 dims (4 for the pad modes used here).
        multiple: the size both H and W must be a multiple of.

    Returns:
        (..., H', W') with H' = ceil(H / multiple) · multiple, likewise W'.
    """
    height, width = x.shape[-2], x.shape[-1]
    pad_h = (multiple - height % multiple) % multiple
    pad_w = (multiple - width % multiple) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < height and pad_w < width else "replicate"
    return F.pad(x, [0, pad_w, 0, pad_h], mode=mode)


class DropPath(nn.Module):
    """Stochastic depth: drop a whole residual branch per sample while training.

    Args:
        probability: chance of dropping the branch for one sample; the kept branches are
            scaled by 1 / (1 − probability) so the expectation is unchanged.
    """

    def __init__(self, probability: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= probability < 1.0:
            raise ValueError(f"drop-path probability must be in [0, 1), got {probability}")
        self.probability = float(probability)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.probability == 0.0:
            return x
        keep = 1.0 - self.probability
        shape = [x.shape[0]] + [1] * (x.dim() - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask / keep


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
