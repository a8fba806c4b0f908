"""``classic``: geometric and photometric augmentation, the "no generative model" baseline.

Each variation draws exact flips and quarter turns, then one smooth warp (small rotation,
zoom and shift plus an elastic displacement field) resampled with reflection at the
borders, then a colour jitter (brightness, contrast, saturation, gamma). The output keeps
the input's size: quarter turns of non-square images are limited to half turns.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from hiralign.errors import ConfigError
from hiralign.generate.base import generate_independent
from hiralign.progress import Progress


@dataclasses.dataclass(frozen=True)
class ClassicConfig:
    """Settings of the classic augmentation generator.

    Attributes:
        flips: draw horizontal and vertical flips.
        quarter_turns: draw rotations by multiples of 90° (180° only when not square).
        max_rotation_deg: largest extra rotation, degrees.
        max_zoom: zoom drawn in [1 - max_zoom, 1 + max_zoom].
        max_shift: largest shift, as a fraction of the image size.
        elastic_px: std of the elastic displacement at its control points, pixels.
        elastic_grid: control points per side of the elastic field (its smoothness).
        brightness: gain drawn in [1 - brightness, 1 + brightness].
        contrast: contrast factor drawn in [1 - contrast, 1 + contrast].
        saturation: saturation factor drawn in [1 - saturation, 1 + saturation].
        gamma: exponent drawn in [1 - gamma, 1 + gamma].
    """

    flips: bool = True
    quarter_turns: bool = True
    max_rotation_deg: float = 10.0
    max_zoom: float = 0.1
    max_shift: float = 0.05
    elastic_px: float = 3.0
    elastic_grid: int = 4
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.1
    gamma: float = 0.1

    def __post_init__(self) -> None:
        for name in ("max_rotation_deg", "max_zoom", "max_shift", "elastic_px", "brightness",
                     "contrast", "saturation", "gamma"):
            if getattr(self, name) < 0:
                raise ConfigError(f"classic: {name} must be ≥ 0, got {getattr(self, name)}")
        for name in ("max_zoom", "brightness", "contrast", "saturation", "gamma"):
            if getattr(self, name) >= 1:
                raise ConfigError(f"classic: {name} must be < 1, got {getattr(self, name)}")
        if self.elastic_grid < 2:
            raise ConfigError(f"classic: elastic_grid must be ≥ 2, got {self.elastic_grid}")


class ClassicGenerator:
    """Guide generator by random flips, rotations, warps and colour jitter."""

    name = "classic"

    def __init__(self, settings: ClassicConfig | None = None, **overrides: object) -> None:
        base = settings or ClassicConfig()
        self.settings = dataclasses.replace(base, **overrides) if overrides else base

    def generate(self, rgb: np.ndarray, n: int, seed: int, progress: Progress | None = None) -> list[np.ndarray]:
        """Generate ``n`` augmented copies of ``rgb`` ((H, W, 3) float32 in [0, 1])."""
        return generate_independent(rgb, n, seed, progress, lambda img, rng: augment(img, rng, self.settings))


def augment(rgb: np.ndarray, rng: np.random.Generator, s: ClassicConfig) -> np.ndarray:
    """One random augmentation of an (H, W, 3) image; see :class:`ClassicConfig`."""
    out = rgb
    if s.flips and rng.random() < 0.5:
        out = out[:, ::-1]
    if s.flips and rng.random() < 0.5:
        out = out[::-1]
    if s.quarter_turns:
        turns = int(rng.integers(4)) if out.shape[0] == out.shape[1] else 2 * int(rng.integers(2))
        out = np.rot90(out, turns)
    out = _warp(np.ascontiguousarray(out), rng, s)
    return _jitter(out, rng, s)


def _warp(rgb: np.ndarray, rng: np.random.Generator, s: ClassicConfig) -> np.ndarray:
    """Rotation + zoom + shift + elastic field, reflection at the borders (torch grid_sample)."""
    import torch
    import torch.nn.functional as F

    height, width = rgb.shape[:2]
    angle = math.radians(rng.uniform(-s.max_rotation_deg, s.max_rotation_deg))
    zoom = rng.uniform(1 - s.max_zoom, 1 + s.max_zoom)
    shift = rng.uniform(-s.max_shift, s.max_shift, size=2) * np.array([width, height])
    # Output pixel (x, y), centred, in pixels → source position: rotate, unzoom, shift.
    ys, xs = torch.meshgrid(torch.arange(height, dtype=torch.float32) - (height - 1) / 2,
                            torch.arange(width, dtype=torch.float32) - (width - 1) / 2, indexing="ij")
    cos, sin = math.cos(angle) / zoom, math.sin(angle) / zoom
    src_x = cos * xs - sin * ys + float(shift[0])
    src_y = sin * xs + cos * ys + float(shift[1])
    if s.elastic_px > 0:
        coarse = torch.from_numpy(rng.normal(0.0, s.elastic_px, size=(1, 2, s.elastic_grid, s.elastic_grid)))
        field = F.interpolate(coarse.float(), size=(height, width), mode="bicubic", align_corners=True)[0]
        src_x = src_x + field[0]
        src_y = src_y + field[1]
    grid = torch.stack([src_x / max((width - 1) / 2, 1), src_y / max((height - 1) / 2, 1)], dim=-1)[None]
    image = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    out = F.grid_sample(image, grid, mode="bilinear", padding_mode="reflection", align_corners=True)
    return out[0].permute(1, 2, 0).numpy()


def _jitter(rgb: np.ndarray, rng: np.random.Generator, s: ClassicConfig) -> np.ndarray:
    """Brightness, contrast, saturation and gamma drawn from their ranges."""
    out = rgb * rng.uniform(1 - s.brightness, 1 + s.brightness)
    mean = out.mean()
    out = (out - mean) * rng.uniform(1 - s.contrast, 1 + s.contrast) + mean
    grey = out @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
    out = grey[..., None] + (out - grey[..., None]) * rng.uniform(1 - s.saturation, 1 + s.saturation)
    out = np.clip(out, 0.0, 1.0) ** rng.uniform(1 - s.gamma, 1 + s.gamma)
    return out.astype(np.float32)
