"""What a warp returns."""
from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from hiralign.cube import Cube
from hiralign.warp import transfer


@dataclasses.dataclass(frozen=True, eq=False)
class WarpResult:
    """A realised warp ỹ = T p, r̃ = T r and everything needed to inspect it.

    Coordinates are in pixels, 0-based, in (row, col) order; flat indices are
    row·W + col. Rows of T are guide pixels, columns proxy pixels.

    Attributes:
        synthesized: (H, W, B) float32 synthesized HSI ỹ (Eq. 24).
        transported_rgb: (H, W, 3) float32 transported proxy RGB r̃ (Eq. 17), for QA.
        coords: (H, W, 2) float32 expected proxy coordinate c(u) (Eq. 18).
        displacement: (H, W, 2) float32 d(u) = c(u) − u (Eq. 18).
        operator: scipy.sparse CSR (H·W, H·W) float32 T = B·A (Eq. 25).
        diagnostics: alignment PSNR, operator checks, κ, timings… (see docs/warp.md).
        candidates: (H, W, K) int32 flat proxy indices v_{u,k} (Eq. 13).
        weights: (H, W, K) float32 aggregation weights a* (Eq. 22).
        kernel: (H, W, s²) float32 interpolation weights b*, stencil offsets row-major.
        distances: (H, W, K) float32 descriptor distances d_{u,k} (Eq. 13).
        boundary: the boundary rule π ("clamp" or "reflect").
        like: the proxy cube whose band metadata the synthesized HSI shares, if any.
    """

    synthesized: np.ndarray
    transported_rgb: np.ndarray
    coords: np.ndarray
    displacement: np.ndarray
    operator: Any
    diagnostics: dict
    candidates: np.ndarray
    weights: np.ndarray
    kernel: np.ndarray
    distances: np.ndarray
    boundary: str
    like: Cube | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.synthesized.shape[:2]

    @property
    def stencil(self) -> int:
        return int(round(self.kernel.shape[2] ** 0.5))

    def sources_of(self, row: int, col: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Where the spectrum of guide pixel (row, col) came from in the proxy.

        Returns:
            (rows, cols, weights): proxy pixel coordinates and their weights T_uv (float64,
            summing to 1), heaviest first. Equal to row u = row·W + col of :attr:`operator`.

        Raises:
            IndexError: (row, col) is outside the image.
        """
        height, width = self.shape
        if not (0 <= row < height and 0 <= col < width):
            raise IndexError(f"pixel ({row}, {col}) is outside the {height}×{width} image")
        k = self.candidates.shape[2]
        return transfer.sources_of(int(row), int(col), self.weights.reshape(-1, k),
                                   self.candidates.reshape(-1, k), self.kernel.reshape(height * width, -1),
                                   height, width, self.stencil, self.boundary)

    def as_cube(self, name: str = "warped") -> Cube:
        """The synthesized HSI as a :class:`Cube` with the proxy's band metadata."""
        if self.like is None:
            return Cube(data=self.synthesized, name=name)
        return self.like.with_data(self.synthesized, name=name)
