"""Known spatial motions of a cube, for checking a warp against the truly moved cube.

Moving the proxy p by a motion M gives both the guide g = Γ(M p) = M Γ(p) (band selection
commutes with resampling) and the ground truth M p that the synthesized HSI should equal.
Used by the tests, the benchmark and the documentation's numbers.
"""
from __future__ import annotations

import numpy as np

#: Motions :func:`move` knows.
MOTIONS = ("identity", "shift", "flip", "zoom", "elastic")


def move(cube: np.ndarray, motion: str, seed: int = 0) -> np.ndarray:
    """Apply a known motion to an (H, W, B) array.

    Args:
        cube: (H, W, B) data.
        motion: "identity"; "shift" (np.roll by (5, −7) px); "flip" (horizontal mirror, then
            roll by (3, 4) px: mirrored patches have no exact descriptor match); "zoom" (1.1×
            about the centre, bilinear); "elastic" (smooth random displacements of about
            3 px, bilinear).
        seed: seed of the elastic field.

    Returns:
        (H, W, B) float32 moved data.
    """
    data = np.asarray(cube, dtype=np.float32)
    if motion == "identity":
        return data.copy()
    if motion == "shift":
        return np.ascontiguousarray(np.roll(data, (5, -7), axis=(0, 1)))
    if motion == "flip":
        return np.ascontiguousarray(np.roll(data[:, ::-1], (3, 4), axis=(0, 1)))
    height, width = data.shape[:2]
    rows, cols = np.meshgrid(np.arange(height, dtype=np.float64), np.arange(width, dtype=np.float64),
                             indexing="ij")
    if motion == "zoom":
        cy, cx = (height - 1) / 2, (width - 1) / 2
        src_r, src_c = cy + (rows - cy) / 1.1, cx + (cols - cx) / 1.1
    elif motion == "elastic":
        from scipy.ndimage import gaussian_filter

        rng = np.random.default_rng(seed)
        field = gaussian_filter(rng.standard_normal((2, height, width)), sigma=(0, 12, 12))
        field *= 3.0 / max(float(np.abs(field).max()), 1e-12)
        src_r, src_c = rows + field[0], cols + field[1]
    else:
        raise ValueError(f"unknown motion {motion!r}; known: {', '.join(MOTIONS)}")
    return bilinear(data, src_r, src_c)


def bilinear(data: np.ndarray, src_rows: np.ndarray, src_cols: np.ndarray) -> np.ndarray:
    """Sample every band of (H, W, B) ``data`` at float coordinates (clamped to the image)."""
    height, width = data.shape[:2]
    r = np.clip(src_rows, 0, height - 1)
    c = np.clip(src_cols, 0, width - 1)
    r0 = np.minimum(np.floor(r).astype(np.int64), height - 2)
    c0 = np.minimum(np.floor(c).astype(np.int64), width - 2)
    fr = (r - r0)[..., None].astype(np.float32)
    fc = (c - c0)[..., None].astype(np.float32)
    top = data[r0, c0] * (1 - fc) + data[r0, c0 + 1] * fc
    bottom = data[r0 + 1, c0] * (1 - fc) + data[r0 + 1, c0 + 1] * fc
    return np.ascontiguousarray(top * (1 - fr) + bottom * fr, dtype=np.float32)


def spectral_psnr(estimate: np.ndarray, reference: np.ndarray, border: int = 16) -> float:
    """Per-band PSNR (peak 1) averaged over bands, excluding a ``border``-pixel frame."""
    if border:
        estimate = estimate[border:-border, border:-border]
        reference = reference[border:-border, border:-border]
    diff = np.asarray(estimate, np.float64) - np.asarray(reference, np.float64)
    mse = np.maximum(np.mean(diff ** 2, axis=(0, 1)), 1e-20)
    return float(np.mean(10 * np.log10(1.0 / mse)))


def spectral_angle(estimate: np.ndarray, reference: np.ndarray, border: int = 16) -> float:
    """Mean spectral angle in degrees, skipping all-zero spectra, excluding a border."""
    if border:
        estimate = estimate[border:-border, border:-border]
        reference = reference[border:-border, border:-border]
    a = np.asarray(estimate, np.float64).reshape(-1, estimate.shape[-1])
    b = np.asarray(reference, np.float64).reshape(-1, reference.shape[-1])
    na, nb = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
    keep = (na > 0) & (nb > 0)
    cos = np.sum(a[keep] * b[keep], axis=1) / (na[keep] * nb[keep])
    return float(np.degrees(np.mean(np.arccos(np.clip(cos, -1.0, 1.0)))))
