"""Seed expansion and candidate refinement (Eqs. 11–13).

Each seed q is expanded to its (2ρ+1)² neighbourhood N_ρ(q) ∩ Ω; every pool entry v is
scored by δ_ψ(u, v) = ‖ψ(g, u) − ψ(r, v)‖₁ / D_ψ and the K best are kept (repeats
allowed, as the paper notes).

Why windows: the descriptors of the (2ρ+1)² expansions of a seed are the s_m × s_m
sub-windows of one (s_m + 2ρ)² window of the proxy feature map, so we gather that
window once per seed (≈ 5× less memory traffic than gathering 9 full descriptors) and
slide over it. Work runs in small blocks of guide pixels so the intermediates stay in
cache on a CPU.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

import numpy as np

from hiralign.warp.descriptors import FEATURE_CHANNELS

if TYPE_CHECKING:
    import torch

#: Guide pixels per inner block: small on CPU (cache), large on GPU (occupancy).
CPU_BLOCK = 64
GPU_BLOCK = 4096


class WindowBank:
    """Proxy feature windows of side s_m + 2ρ, gathered by seed.

    Args:
        proxy_features: (H, W, 12) proxy feature map.
        patch_size: s_m.
        radius: ρ.
        device: torch device holding the bank.
    """

    def __init__(self, proxy_features: np.ndarray, patch_size: int, radius: int, device) -> None:
        import torch

        self.height, self.width = proxy_features.shape[:2]
        self.patch = patch_size
        self.radius = radius
        self.side = patch_size + 2 * radius
        pad = patch_size // 2 + radius
        padded = np.pad(proxy_features, ((pad, pad), (pad, pad), (0, 0)), mode="edge")
        row_len = self.side * FEATURE_CHANNELS
        # chunk[y, x] = the `side` feature pixels of padded row y starting at column x.
        chunks = np.lib.stride_tricks.as_strided(
            padded, shape=(padded.shape[0], self.width, row_len),
            strides=padded.strides, writeable=False)
        self.chunks = torch.from_numpy(np.ascontiguousarray(chunks).reshape(-1, row_len)).to(device)
        self.offsets = [(ey, ex) for ey in range(2 * radius + 1) for ex in range(2 * radius + 1)]
        self._rows = torch.arange(self.side, device=device)

    def windows(self, seeds: torch.Tensor) -> torch.Tensor:  # noqa: F821
        """(n, S, side, side, 12) proxy windows centred on seeds (n, S) flat indices."""
        qy = seeds // self.width
        qx = seeds % self.width
        # Padded row qy + r (r = 0..side−1) holds image row qy − pad + r.
        index = ((qy[..., None] + self._rows) * self.width + qx[..., None]).reshape(-1)
        n, s = seeds.shape
        return self.chunks.index_select(0, index).view(n, s, self.side, self.side, FEATURE_CHANNELS)


def refine_block(bank: WindowBank, guide_desc: torch.Tensor, seeds: torch.Tensor,
                 k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Keep the K best expanded candidates of a block of guide pixels.

    Args:
        bank: proxy windows.
        guide_desc: (n, D_ψ) guide descriptors, order (patch row, patch col, channel).
        seeds: (n, K_s) int64 flat proxy indices.
        k: K.

    Returns:
        (candidates (n, K) int64 flat proxy indices, distances (n, K) float32 δ_ψ),
        sorted by increasing distance.
    """
    import torch

    n, n_seeds = seeds.shape
    p = bank.patch
    dim = p * p * FEATURE_CHANNELS
    win = bank.windows(seeds)
    patch = guide_desc.view(n, 1, p, p, FEATURE_CHANNELS)
    n_off = len(bank.offsets)
    dist = torch.empty((n, n_seeds, n_off), dtype=win.dtype, device=win.device)
    for j, (ey, ex) in enumerate(bank.offsets):
        diff = torch.sub(win[:, :, ey:ey + p, ex:ex + p], patch).abs_()
        torch.sum(diff, dim=(2, 3, 4), out=dist[:, :, j])
    qy = (seeds // bank.width)[..., None]
    qx = (seeds % bank.width)[..., None]
    off = torch.tensor(bank.offsets, device=seeds.device) - bank.radius
    vy = qy + off[:, 0]
    vx = qx + off[:, 1]
    outside = (vy < 0) | (vy >= bank.height) | (vx < 0) | (vx >= bank.width)
    dist.masked_fill_(outside, float("inf"))  # N_ρ(q) only holds pixels inside Ω
    best, order = torch.topk(dist.view(n, -1), k, dim=1, largest=False, sorted=True)
    pool = (vy.clamp(0, bank.height - 1) * bank.width + vx.clamp(0, bank.width - 1)).view(n, -1)
    return pool.gather(1, order), best / dim


def refine(bank: WindowBank, guide_desc: np.ndarray, seeds: np.ndarray, k: int, device,
           check: Callable[[], None] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Refine one tile of guide pixels; see :func:`refine_block`.

    Args:
        guide_desc: (n, D_ψ) float32 numpy guide descriptors.
        seeds: (n, K_s) int flat proxy indices.
        check: called between blocks (cancellation).

    Returns:
        (candidates (n, K) int32, distances (n, K) float32).
    """
    import torch

    block = GPU_BLOCK if torch.device(device).type == "cuda" else CPU_BLOCK
    desc = torch.from_numpy(guide_desc).to(device)
    seeds_t = torch.from_numpy(seeds.astype(np.int64, copy=False)).to(device)
    n = seeds.shape[0]
    cand = torch.empty((n, k), dtype=torch.int64, device=device)
    dist = torch.empty((n, k), dtype=torch.float32, device=device)
    for start in range(0, n, block):
        stop = min(n, start + block)
        cand[start:stop], dist[start:stop] = refine_block(bank, desc[start:stop], seeds_t[start:stop], k)
        if check is not None and (start // block) % 64 == 63:
            check()
    return cand.to(torch.int32).cpu().numpy(), dist.cpu().numpy()
