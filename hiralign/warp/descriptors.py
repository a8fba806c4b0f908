"""Patch descriptors ψ(I, u) of Eq. 9.

ψ(I, u) unfolds the s_m × s_m patch centred at u of the 12-channel feature map
[I, λ_c·χ(I), λ_g·∂_y I, λ_g·∂_x I] (RGB, chromaticity, vertical and horizontal
central-difference gradients of each RGB channel). Patches reaching past the border
replicate the edge pixels, so every pixel has a descriptor. The flattened order is
(patch row, patch column, channel); D_ψ = 12·s_m².
"""
from __future__ import annotations

from typing import Iterator

import numpy as np

#: Channels of the per-pixel feature map that patches are cut from.
FEATURE_CHANNELS = 12


def feature_map(image: np.ndarray, chroma_weight: float, gradient_weight: float,
                chroma_eps: float = 1e-6) -> np.ndarray:
    """The per-pixel features whose patches form ψ.

    Args:
        image: (H, W, 3) float RGB in [0, 1].
        chroma_weight: λ_c.
        gradient_weight: λ_g.
        chroma_eps: ε of χ(I) = I / (Σ_c I_c + ε).

    Returns:
        (H, W, 12) float32: [I, λ_c·χ(I), λ_g·∂_y I, λ_g·∂_x I].
    """
    img = np.asarray(image, dtype=np.float32)
    chroma = img / (img.sum(axis=2, keepdims=True) + np.float32(chroma_eps))
    padded = np.pad(img, ((1, 1), (1, 1), (0, 0)), mode="edge")
    grad_y = 0.5 * (padded[2:, 1:-1] - padded[:-2, 1:-1])
    grad_x = 0.5 * (padded[1:-1, 2:] - padded[1:-1, :-2])
    return np.concatenate([img, chroma_weight * chroma, gradient_weight * grad_y,
                           gradient_weight * grad_x], axis=2).astype(np.float32, copy=False)


def padded_features(features: np.ndarray, patch_size: int) -> np.ndarray:
    """Replicate-pad a feature map by s_m // 2 so border pixels get full patches."""
    half = patch_size // 2
    return np.pad(features, ((half, half), (half, half), (0, 0)), mode="edge")


def descriptor_rows(padded: np.ndarray, patch_size: int, row_start: int, row_stop: int) -> np.ndarray:
    """Descriptors of image rows [row_start, row_stop) as a contiguous matrix.

    Args:
        padded: (H + s_m − 1, W + s_m − 1, 12) output of :func:`padded_features`.
        patch_size: s_m.
        row_start, row_stop: image rows (unpadded coordinates).

    Returns:
        ((row_stop − row_start)·W, 12·s_m²) float32, pixels in row-major order.
    """
    width = padded.shape[1] - patch_size + 1
    block = padded[row_start:row_stop + patch_size - 1]
    windows = np.lib.stride_tricks.sliding_window_view(block, (patch_size, patch_size), axis=(0, 1))
    # windows: (rows, W, 12, s_m, s_m) -> order (rows, W, s_m, s_m, 12)
    windows = windows.transpose(0, 1, 3, 4, 2)
    return np.ascontiguousarray(windows).reshape((row_stop - row_start) * width, -1)


def all_descriptors(padded: np.ndarray, patch_size: int) -> np.ndarray:
    """Descriptors of every pixel: (H·W, 12·s_m²) float32."""
    height = padded.shape[0] - patch_size + 1
    return descriptor_rows(padded, patch_size, 0, height)


def row_tiles(height: int, width: int, tile_pixels: int) -> Iterator[tuple[int, int]]:
    """Yield (row_start, row_stop) bands of about ``tile_pixels`` pixels covering the image."""
    rows = max(1, tile_pixels // max(width, 1))
    for start in range(0, height, rows):
        yield start, min(height, start + rows)
