"""SERT: Spectral Enhanced Rectangle Transformer (Li, Liu, Fu, Zhang, Dou, CVPR 2023).

A hyperspectral denoiser written from the paper. The cube's bands are embedded by a 3×3
convolution into ``dim`` feature channels; groups of transformer blocks follow, each group
closed by a 3×3 convolution and a residual; a final convolution maps back to the bands and
the input is added (global residual).

Each block (pre-norm) combines, inside non-overlapping ``window × window`` windows (shifted
by half a window in every second block, as in Swin, without a wrap-around mask — as
published):

* **rectangle self-attention** (non-local spatial similarity): half of the channels/heads
  attend within vertical rectangles (window high, ``split`` wide), the other half within
  horizontal ones; each rectangle's values also pass a depth-wise 3×3 convolution that is
  added to the attention output (locally-enhanced positional encoding);
* **spectral enhancement** (global spectral low-rank property): a bottleneck MLP gives
  features whose window average is projected to a rank-``dim/down_rank`` code, matched by
  softmax against a learnt memory of ``memory_blocks`` low-rank atoms; the recalled atom
  gates the features channel-wise; this branch is added with weight ``weight_factor``;

then a linear projection and a GELU MLP (ratio ``mlp_ratio``), both with stochastic depth.

Configurations (names, settings and, for 31 bands, parameter counts — see docs/backbones.md):
``sert_tiny`` (windows 16/32, depths 4/4, 1.00 M), ``sert_small`` (16/32/32, 4/4/4,
1.43 M) and ``sert_base`` (16/32/32, 6/6/6, 1.95 M; the paper's SERT, reported as 1.91 M).

Shapes: (N, B, H, W) → (N, B, H, W) for any band count B and any H, W (padded by reflection
to a multiple of the largest window, then cropped back).
"""
from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from hiralign.models.blocks import DropPath, build_checked, check_bands, pad_to_multiple, require_denoiser_scale


class RectangleAttention(nn.Module):
    """Multi-head attention within (rect_h × rect_w) rectangles tiling the image.

    Because the rectangles are aligned with the window grid and a window is a whole number of
    rectangles, tiling the (shifted) image directly gives the same token groups as tiling
    each window; this avoids materialising the windows.

    Args:
        channels: feature channels this branch owns.
        heads: attention heads (channels must be divisible by it).
        rect_h, rect_w: rectangle size in pixels.
    """

    def __init__(self, channels: int, heads: int, rect_h: int, rect_w: int) -> None:
        super().__init__()
        if channels % heads:
            raise ValueError(f"{channels} channels cannot be split into {heads} heads")
        self.heads = heads
        self.rect_h = rect_h
        self.rect_w = rect_w
        # Locally-enhanced positional encoding on the values, confined to the rectangle.
        self.lepe = nn.Conv2d(channels, channels, 3, padding=1, groups=channels)

    def forward(self, qkv: torch.Tensor) -> torch.Tensor:
        """qkv: (N, H, W, 3, C) → attended (N, H, W, C)."""
        n, height, width, _, channels = qkv.shape
        rh, rw, heads = self.rect_h, self.rect_w, self.heads
        head_dim = channels // heads
        nh, nw = height // rh, width // rw
        tokens = qkv.reshape(n, nh, rh, nw, rw, 3, heads, head_dim)
        tokens = tokens.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, n * nh * nw, heads,
                                                                rh * rw, head_dim)
        q, k, v = tokens[0], tokens[1], tokens[2]
        v_img = v.transpose(2, 3).reshape(n * nh * nw, channels, rh, rw)
        lepe = self.lepe(v_img).reshape(n * nh * nw, heads, head_dim, rh * rw).transpose(2, 3)
        out = F.scaled_dot_product_attention(q, k, v) + lepe
        out = out.reshape(n, nh, nw, heads, rh, rw, head_dim).permute(0, 1, 4, 2, 5, 3, 6)
        return out.reshape(n, height, width, channels)


class SpectralEnhancement(nn.Module):
    """Low-rank spectral memory gating, one gate per window.

    Args:
        dim: feature channels.
        window: window size in pixels (the pooling extent).
        compress_ratio: bottleneck ratio of the feature MLP.
        down_rank: ``dim // down_rank`` is the rank of the spectral code.
        memory_blocks: number of learnt low-rank memory atoms.
    """

    def __init__(self, dim: int, window: int, compress_ratio: int = 4, down_rank: int = 4,
                 memory_blocks: int = 64) -> None:
        super().__init__()
        rank = dim // down_rank
        if rank < 1:
            raise ValueError(f"down_rank {down_rank} leaves no rank for {dim} channels")
        self.window = window
        self.features = nn.Sequential(nn.Linear(dim, dim // compress_ratio), nn.GELU(),
                                      nn.Linear(dim // compress_ratio, dim))
        self.to_rank = nn.Linear(dim, rank)
        self.from_rank = nn.Linear(rank, dim)
        self.memory = nn.Parameter(torch.randn(rank, memory_blocks))
        self.temperature = rank ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, H, W, C) with H, W multiples of the window → (N, H, W, C)."""
        n, height, width, channels = x.shape
        w = self.window
        feats = self.features(x).reshape(n, height // w, w, width // w, w, channels)
        code = self.to_rank(feats.mean(dim=(2, 4)))                     # (N, nh, nw, r)
        recall = torch.softmax(code @ self.memory * self.temperature, dim=-1)
        gate = torch.sigmoid(self.from_rank(recall @ self.memory.t()))  # (N, nh, nw, C)
        return (feats * gate[:, :, None, :, None, :]).reshape(n, height, width, channels)


class SERTBlock(nn.Module):
    """One spectral-enhanced rectangle transformer block, on (N, H, W, C) features."""

    def __init__(self, dim: int, heads: int, window: int, split: int, shift: int,
                 mlp_ratio: float, weight_factor: float, memory_blocks: int, down_rank: int,
                 drop_path: float) -> None:
        super().__init__()
        if heads % 2 or dim % 2:
            raise ValueError(f"dim ({dim}) and heads ({heads}) must be even: half of each "
                             f"goes to the vertical and half to the horizontal rectangles")
        if window % split:
            raise ValueError(f"window {window} is not a multiple of split size {split}")
        self.shift = shift
        self.weight_factor = weight_factor
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.vertical = RectangleAttention(dim // 2, heads // 2, window, split)
        self.horizontal = RectangleAttention(dim // 2, heads // 2, split, window)
        self.spectral = SpectralEnhancement(dim, window, down_rank=down_rank,
                                            memory_blocks=memory_blocks)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
        self.drop_path = DropPath(drop_path)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, H, W, C) → (N, H, W, C)."""
        y = self.norm1(x)
        if self.shift > 0:
            y = torch.roll(y, shifts=(-self.shift, -self.shift), dims=(1, 2))
        n, height, width, dim = y.shape
        qkv = self.qkv(y).reshape(n, height, width, 3, dim)
        half = dim // 2
        attended = torch.cat([self.vertical(qkv[..., :half]),
                              self.horizontal(qkv[..., half:])], dim=-1)
        y = self.proj(attended + self.weight_factor * self.spectral(y))
        if self.shift > 0:
            y = torch.roll(y, shifts=(self.shift, self.shift), dims=(1, 2))
        x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class SERTGroup(nn.Module):
    """``depth`` blocks (alternately unshifted/shifted) + 3×3 conv, with a group residual."""

    def __init__(self, dim: int, depth: int, heads: int, window: int, split: int,
                 mlp_ratio: float, weight_factor: float, memory_blocks: int, down_rank: int,
                 drop_paths: Sequence[float]) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([
            SERTBlock(dim, heads, window, split, 0 if i % 2 == 0 else window // 2, mlp_ratio,
                      weight_factor, memory_blocks, down_rank, drop_paths[i])
            for i in range(depth)])
        self.conv = nn.Conv2d(dim, dim, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, C, H, W) → (N, C, H, W)."""
        y = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            y = block(y)
        return self.conv(y.permute(0, 3, 1, 2)) + x


class SERT(nn.Module):
    """Spectral Enhanced Rectangle Transformer for HSI denoising.

    Args:
        bands: spectral bands B of input and output.
        dim: feature channels.
        window_sizes, depths, num_heads, split_sizes: one entry per group.
        mlp_ratio: hidden width of the block MLP relative to ``dim``.
        weight_factor: weight of the spectral-enhancement branch.
        memory_blocks: number of low-rank spectral memory atoms.
        down_rank: ``dim // down_rank`` is the rank of the spectral code.
        drop_path_rate: stochastic depth, rising linearly to this value over all blocks.
    """

    def __init__(self, bands: int, dim: int = 96, window_sizes: Sequence[int] = (16, 32, 32),
                 depths: Sequence[int] = (6, 6, 6), num_heads: Sequence[int] = (6, 6, 6),
                 split_sizes: Sequence[int] = (1, 2, 4), mlp_ratio: float = 2.0,
                 weight_factor: float = 0.1, memory_blocks: int = 64, down_rank: int = 4,
                 drop_path_rate: float = 0.1) -> None:
        super().__init__()
        groups = len(depths)
        if not (len(window_sizes) == len(num_heads) == len(split_sizes) == groups) or not groups:
            raise ValueError("window_sizes, depths, num_heads and split_sizes need one entry "
                             "per group (and at least one group)")
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.multiple = max(window_sizes)
        self.embed = nn.Conv2d(bands, dim, 3, padding=1)
        self.groups = nn.ModuleList()
        start = 0
        for window, depth, heads, split in zip(window_sizes, depths, num_heads, split_sizes):
            if self.multiple % window:
                raise ValueError(f"window {window} does not divide the largest window "
                                 f"{self.multiple}")
            self.groups.append(SERTGroup(dim, depth, heads, window, split, mlp_ratio,
                                         weight_factor, memory_blocks, down_rank,
                                         rates[start:start + depth]))
            start += depth
        self.fuse = nn.Conv2d(dim, dim, 3, padding=1, bias=False)
        self.to_bands = nn.Conv2d(dim, bands, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (N, B, H, W) degraded cube → (N, B, H, W) restored."""
        height, width = x.shape[-2], x.shape[-1]
        padded = pad_to_multiple(x, self.multiple)
        shallow = self.embed(padded)
        deep = shallow
        for group in self.groups:
            deep = group(deep)
        out = self.to_bands(self.fuse(deep + shallow)) + padded
        return out[..., :height, :width]


#: Published configurations (CVPR 2023 code release): tiny, small, and the paper's SERT.
SERT_CONFIGS: dict[str, dict[str, Any]] = {
    "sert_tiny": dict(window_sizes=[16, 32], depths=[4, 4], num_heads=[6, 6],
                      split_sizes=[2, 4]),
    "sert_small": dict(window_sizes=[16, 32, 32], depths=[4, 4, 4], num_heads=[6, 6, 6],
                       split_sizes=[1, 2, 4]),
    "sert_base": dict(window_sizes=[16, 32, 32], depths=[6, 6, 6], num_heads=[6, 6, 6],
                      split_sizes=[1, 2, 4]),
}


def _build(name: str, bands: int, scale: int, args: dict[str, Any]) -> SERT:
    check_bands(name, bands)
    require_denoiser_scale(name, scale)
    return build_checked(name, SERT, {**SERT_CONFIGS[name], **args, "bands": bands})


def sert_tiny(bands: int, scale: int = 1, **args: Any) -> SERT:
    """SERT-tiny: 2 groups × 4 blocks (≈1.0 M parameters at 31 bands)."""
    return _build("sert_tiny", bands, scale, args)


def sert_small(bands: int, scale: int = 1, **args: Any) -> SERT:
    """SERT-small: 3 groups × 4 blocks (≈1.4 M parameters at 31 bands)."""
    return _build("sert_small", bands, scale, args)


def sert_base(bands: int, scale: int = 1, **args: Any) -> SERT:
    """SERT (the paper's model): 3 groups × 6 blocks (≈1.9 M parameters at 31 bands)."""
    return _build("sert_base", bands, scale, args)
