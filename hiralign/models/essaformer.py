"""ESSAformer: efficient transformer for HSI super-resolution (Zhang et al., ICCV 2023).

Written from the paper. A 3×3 convolution embeds the low-resolution cube into ``dim``
channels; an *iterative refining* structure then alternates between the high- and the
low-resolution grid, with **shared** weights: a pixel-shuffle up-sampler, an ESSA block at
high resolution, a pixel-unshuffle down-sampler and an ESSA block at low resolution, each
new state being added to the previous state at the same resolution (back-projection style).
A final convolution maps the high-resolution features to the bands.

The **ESSA** attention (efficient SCC-kernel-based self-attention) treats every pixel as a
token. Its similarity is the spectral correlation coefficient (SCC) of query and key, which
is invariant to a shift of the spectrum (shading) — queries and keys are centred over the
channels. Rather than forming the N×N matrix, the SCC-based kernel is factored through a
feature map (squared, energy-normalised centred vectors, unit-normalised across tokens for
the keys and across channels for the queries), so the attention is linear in the number of
pixels, ``φ(Q) (φ(K)ᵀ V) / √N``, and is added to the values before the output projection.

Each ESSA block: LayerNorm → ESSA → dropout, concatenated with the block input, then a
1×1 / 3×3 / 1×1 convolution stack (LeakyReLU 0.2, spatial dropout) and a residual.

Defaults follow the authors' release at ``dim=64`` (the size timed in FACTS.md): two
refinement cycles (five ESSA applications), dropout 0.2; 0.73 M parameters at 31 bands, ×4.
``bicubic_skip`` (off by default, as released) adds the bicubically up-sampled input to
the output — a deviation that helps short trainings, measured in docs/backbones.md.

Shapes: (N, B, h, w) → (N, B, scale·h, scale·w), any band count, any size.
"""
from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from hiralign.models.blocks import build_checked, check_bands, require_sr_scale

#: Scales the pixel-(un)shuffle samplers support: powers of two and 3.
ESSAFORMER_SCALES = (2, 3, 4, 8)


class ESSAttention(nn.Module):
    """SCC-kernel self-attention, linear in the token count.

    Args:
        dim: token channels.
        eps: guards the energy normalisation of constant (zero-variance) spectra.
    """

    def __init__(self, dim: int, eps: float = 1e-7) -> None:
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, L, C) tokens → (N, L, C)."""
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        q = q - q.mean(dim=-1, keepdim=True)
        k = k - k.mean(dim=-1, keepdim=True)
        q2 = q * q
        k2 = k * k
        q2 = F.normalize(q2 / (q2.sum(dim=-1, keepdim=True) + self.eps), dim=-1)
        k2 = F.normalize(k2 / (k2.sum(dim=-1, keepdim=True) + self.eps), dim=-2)
        context = k2.transpose(-2, -1) @ v                       # (N, C, C)
        attended = q2 @ context / math.sqrt(x.shape[1])
        return self.proj(v + attended)


class ESSABlock(nn.Module):
    """LayerNorm + ESSA, fused with the input by a small conv stack, plus a residual."""

    def __init__(self, dim: int, dropout: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.attention = ESSAttention(dim)
        self.drop = nn.Dropout2d(dropout)
        self.fuse = nn.Sequential(
            nn.Conv2d(2 * dim, 2 * dim, 1), nn.LeakyReLU(0.2), nn.Dropout2d(dropout),
            nn.Conv2d(2 * dim, 2 * dim, 3, padding=1), nn.LeakyReLU(0.2), nn.Dropout2d(dropout),
            nn.Conv2d(2 * dim, dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) → (N, C, H, W)."""
        n, channels, height, width = x.shape
        tokens = self.attention(self.norm(x.flatten(2).transpose(1, 2)))
        attended = self.drop(tokens.transpose(1, 2).reshape(n, channels, height, width))
        return self.fuse(torch.cat([attended, x], dim=1)) + x


def _sampler(dim: int, scale: int, up: bool) -> nn.Sequential:
    """Pixel-shuffle up-sampler or pixel-unshuffle down-sampler by ``scale`` (2^n or 3)."""
    steps = [3] if scale == 3 else [2] * int(round(math.log2(scale)))
    layers: list[nn.Module] = []
    for factor in steps:
        if up:
            layers += [nn.Conv2d(dim, dim * factor ** 2, 3, padding=1), nn.PixelShuffle(factor)]
        else:
            layers += [nn.Conv2d(dim, dim // factor ** 2, 3, padding=1),
                       nn.PixelUnshuffle(factor)]
    return nn.Sequential(*layers)


class ESSAformer(nn.Module):
    """Iterative-refining ESSA transformer for HSI super-resolution.

    Args:
        bands: spectral bands of input and output.
        scale: up-sampling factor (2, 3, 4 or 8).
        dim: feature channels (a multiple of scale² so the down-sampler can unshuffle).
        refinements: up/down back-projection cycles after the first up-sampling.
        dropout: spatial dropout in the ESSA blocks.
        bicubic_skip: add the bicubically interpolated input to the output.
    """

    def __init__(self, bands: int, scale: int = 4, dim: int = 64, refinements: int = 2,
                 dropout: float = 0.2, bicubic_skip: bool = False) -> None:
        super().__init__()
        if scale not in ESSAFORMER_SCALES:
            raise ValueError(f"scale {scale} not in {ESSAFORMER_SCALES}")
        if dim % (9 if scale == 3 else 4):
            raise ValueError(f"dim {dim} must be a multiple of {9 if scale == 3 else 4}")
        self.scale = scale
        self.refinements = refinements
        self.bicubic_skip = bicubic_skip
        self.embed = nn.Conv2d(bands, dim, 3, padding=1)
        self.up = _sampler(dim, scale, up=True)
        self.down = _sampler(dim, scale, up=False)
        self.high_block = ESSABlock(dim, dropout)
        self.low_block = ESSABlock(dim, dropout)
        self.to_bands = nn.Conv2d(dim, bands, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, B, h, w) low-resolution cube → (N, B, scale·h, scale·w)."""
        low = self.embed(x)
        high = self.high_block(self.up(low))
        for _ in range(self.refinements):
            low = self.low_block(self.down(high) + low)
            high = self.high_block(self.up(low) + high)
        out = self.to_bands(high)
        if self.bicubic_skip:
            out = out + F.interpolate(x, scale_factor=float(self.scale), mode="bicubic",
                                      align_corners=False)
        return out


def essaformer(bands: int, scale: int = 1, **args: Any) -> ESSAformer:
    """ESSAformer at dim 64 (0.73 M parameters at 31 bands, ×4); ``scale`` must be given."""
    check_bands("essaformer", bands)
    require_sr_scale("essaformer", scale, ESSAFORMER_SCALES)
    return build_checked("essaformer", ESSAformer, {**args, "bands": bands, "scale": scale})
