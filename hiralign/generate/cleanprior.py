"""``cleanprior``: the proxy RGB passed through an edge-preserving filter, as the guide.

The guide keeps the proxy's layout but not its residual noise and artefacts, so the warp
(which matches guide patches to proxy patches by appearance and averages up to K = 16
candidate spectra per pixel) acts as a guided non-local filter on the proxy's spectra:
each synthesized spectrum is a convex combination of proxy spectra whose neighbourhoods
look like the *cleaner* guide's. That is the paper's coverage argument turned around
(Sec. III-B: every synthesized spectrum is a convex combination of proxy spectra, so a
guide can only help through cleaner layouts or new geometry) — here through a cleaner
layout. Label quality (``benchmarks/labels.py``) measures whether ‖T E‖ < ‖E‖.

Filters (all on the [0, 1] RGB, per variation a strength drawn log-uniformly in
[strength / spread, strength · spread]):

* ``tv``: total-variation denoising (Chambolle, scikit-image); strength = its weight.
* ``bilateral``: scikit-image's bilateral filter; strength = σ_color, σ_spatial fixed.
* ``guided``: the self-guided filter (He et al. 2010), box radius ``radius``; strength = ε
  (the variance below which detail is smoothed away), vectorised with box sums.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from hiralign.errors import ConfigError
from hiralign.generate.base import generate_independent
from hiralign.progress import Progress

FILTERS: tuple[str, ...] = ("tv", "bilateral", "guided")


@dataclasses.dataclass(frozen=True)
class CleanPriorConfig:
    """Settings of the clean-prior guide generator.

    Defaults: on 128² crops of the four KAIST scenes (``gaussian``, shipped model, proxies
    30.17 dB) the guided filter with ε = 0.002 gave the best synthesized labels against the
    clean scene (31.73 dB; TV 0.05: 31.58, bilateral 0.05: 29.36; stronger filters score
    higher against T x but lose detail against x), see docs/benchmarks.md.

    Attributes:
        filter: one of :data:`FILTERS`.
        strength: the filter's central strength (``tv``: weight; ``bilateral``: σ_color;
            ``guided``: ε) on a [0, 1] image.
        spread: strengths are drawn log-uniformly in [strength/spread, strength·spread]
            (1: every variation the same).
        radius: spatial radius in pixels (``guided`` box radius; ``bilateral`` σ_spatial).
    """

    filter: str = "guided"
    strength: float = 0.002
    spread: float = 1.5
    radius: int = 2

    def __post_init__(self) -> None:
        if self.filter not in FILTERS:
            raise ConfigError(f"cleanprior: unknown filter {self.filter!r}; choose one of {', '.join(FILTERS)}")
        if self.strength <= 0:
            raise ConfigError(f"cleanprior: strength must be > 0, got {self.strength}")
        if self.spread < 1:
            raise ConfigError(f"cleanprior: spread must be ≥ 1, got {self.spread}")
        if self.radius < 1:
            raise ConfigError(f"cleanprior: radius must be ≥ 1, got {self.radius}")


def guided_filter(image: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Self-guided filter of an (H, W, C) image, each channel its own guide.

    q = a·I + b with a = var/(var + ε), b = (1 − a)·mean over (2r+1)² boxes, then a and b
    box-averaged (He et al. 2010, Alg. 1). Borders: reflected box means.
    """
    from scipy.ndimage import uniform_filter

    size = (2 * radius + 1, 2 * radius + 1, 1)
    x = image.astype(np.float64)
    mean = uniform_filter(x, size, mode="reflect")
    var = np.maximum(uniform_filter(x * x, size, mode="reflect") - mean * mean, 0.0)
    a = var / (var + eps)
    b = (1 - a) * mean
    return (uniform_filter(a, size, mode="reflect") * x + uniform_filter(b, size, mode="reflect")).astype(np.float32)


def clean_prior(rgb: np.ndarray, s: CleanPriorConfig, strength: float | None = None) -> np.ndarray:
    """Filter an (H, W, 3) [0, 1] image with ``s.filter`` at ``strength`` (default ``s.strength``)."""
    value = s.strength if strength is None else strength
    if s.filter == "tv":
        from skimage.restoration import denoise_tv_chambolle

        out = denoise_tv_chambolle(rgb, weight=value, channel_axis=-1)
    elif s.filter == "bilateral":
        from skimage.restoration import denoise_bilateral

        out = denoise_bilateral(rgb, sigma_color=value, sigma_spatial=s.radius, channel_axis=-1)
    else:
        out = guided_filter(rgb, s.radius, value)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


class CleanPriorGenerator:
    """Guide generator: edge-preserving filtered copies of the proxy RGB."""

    name = "cleanprior"

    def __init__(self, settings: CleanPriorConfig | None = None, **overrides: object) -> None:
        base = settings or CleanPriorConfig()
        self.settings = dataclasses.replace(base, **overrides) if overrides else base

    def generate(self, rgb: np.ndarray, n: int, seed: int, progress: Progress | None = None) -> list[np.ndarray]:
        """``n`` filtered copies of ``rgb`` ((H, W, 3) float32 in [0, 1]), strengths drawn per seed."""
        s = self.settings
        spread = math.log(s.spread)

        def draw(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
            return clean_prior(img, s, s.strength * math.exp(rng.uniform(-spread, spread)))

        return generate_independent(rgb, n, seed, progress, draw)


