"""``shuffle``: random patch shuffling, the paper's Eq. 54 counter-example (for ablations).

The image is cut into a grid of square tiles whose positions are permuted at random; a
remainder strip at the bottom/right that does not fill a whole tile stays in place. The
colours and local texture are kept exactly while the scene layout is destroyed, which
is what the paper argues makes the coverage gap larger than semantic-guided synthesis.
"""
from __future__ import annotations

import dataclasses
import logging

import numpy as np

from hiralign.errors import ConfigError
from hiralign.generate.base import check_rgb, generate_independent
from hiralign.progress import Progress

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ShuffleConfig:
    """Settings of the patch-shuffling generator.

    Attributes:
        patch_size: side of the square tiles, pixels; reduced (with a log message) so
            that at least 2×2 tiles fit the image.
    """

    patch_size: int = 32

    def __post_init__(self) -> None:
        if self.patch_size < 2:
            raise ConfigError(f"shuffle: patch_size must be ≥ 2 pixels, got {self.patch_size}")


class ShuffleGenerator:
    """Guide generator by random permutation of image tiles."""

    name = "shuffle"

    def __init__(self, settings: ShuffleConfig | None = None, **overrides: object) -> None:
        base = settings or ShuffleConfig()
        self.settings = dataclasses.replace(base, **overrides) if overrides else base

    def generate(self, rgb: np.ndarray, n: int, seed: int, progress: Progress | None = None) -> list[np.ndarray]:
        """Generate ``n`` tile-shuffled copies of ``rgb`` ((H, W, 3) float32 in [0, 1])."""
        rgb = check_rgb(rgb)
        tile = min(self.settings.patch_size, min(rgb.shape[:2]) // 2)
        if tile < self.settings.patch_size:
            log.info("shuffle: %d px tiles do not fit 2×2 times in a %d×%d image; using %d px tiles",
                     self.settings.patch_size, rgb.shape[0], rgb.shape[1], tile)
        return generate_independent(rgb, n, seed, progress, lambda img, rng: shuffle_tiles(img, tile, rng))


def shuffle_tiles(rgb: np.ndarray, tile: int, rng: np.random.Generator) -> np.ndarray:
    """Permute the (tile × tile) blocks of an (H, W, C) image; never the identity."""
    rows, cols = rgb.shape[0] // tile, rgb.shape[1] // tile
    count = rows * cols
    order = rng.permutation(count)
    while count > 1 and np.array_equal(order, np.arange(count)):
        order = rng.permutation(count)
    region = rgb[: rows * tile, : cols * tile]
    blocks = region.reshape(rows, tile, cols, tile, -1).transpose(0, 2, 1, 3, 4).reshape(count, tile, tile, -1)
    shuffled = blocks[order].reshape(rows, cols, tile, tile, -1).transpose(0, 2, 1, 3, 4)
    out = rgb.copy()
    out[: rows * tile, : cols * tile] = shuffled.reshape(rows * tile, cols * tile, -1)
    return out
