"""Stage 1 (paper Sec. III-A): restore degraded target cubes with the source model.

Inference is tiled with overlapping windows blended by smooth weights, so any image size
runs within bounded memory on CPU or CUDA, with progress per tile. The same function also
restores targets with the adapted model at the end of a run.
"""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING

import numpy as np

from hiralign.cube import Cube
from hiralign.errors import ConfigError, InputError
from hiralign.progress import Progress, as_progress

if TYPE_CHECKING:
    import torch


@dataclasses.dataclass(frozen=True)
class TileConfig:
    """How a cube is cut for inference.

    Attributes:
        tile: side of a square input tile in pixels (input resolution).
        overlap: overlap between neighbouring tiles in input pixels; blended smoothly.
        batch: tiles evaluated per forward pass.
    """

    tile: int = 128
    overlap: int = 16
    batch: int = 4

    def __post_init__(self) -> None:
        if self.tile < 8:
            raise ConfigError(f"tile size {self.tile} is too small (minimum 8 pixels)")
        if not 0 <= self.overlap < self.tile // 2 + 1:
            raise ConfigError(f"overlap {self.overlap} must be in [0, tile/2]")
        if self.batch < 1:
            raise ConfigError("tile batch must be at least 1")


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of size ``tile`` covering ``length`` with at least ``overlap``."""
    if length <= tile:
        return [0]
    step = tile - overlap
    count = math.ceil((length - tile) / step) + 1
    starts = [min(i * step, length - tile) for i in range(count)]
    return sorted(set(starts))


def _blend_ramp(size: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """1-D weights: 1 in the middle, a raised-cosine ramp across overlaps (not at image edges)."""
    w = np.ones(size, dtype=np.float32)
    if overlap > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(overlap, dtype=np.float32) + 0.5) / overlap)
        if not at_start:
            w[:overlap] = ramp
        if not at_end:
            w[-overlap:] = ramp[::-1]
    return w


def restore_tensor(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    scale: int = 1,
    tiles: TileConfig = TileConfig(),
    device: torch.device | str | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Apply ``model`` to a (B, H, W) cube tensor tile by tile.

    Args:
        model: maps (N, B, h, w) to (N, B, h·scale, w·scale).
        x: (B, H, W) degraded cube (low-resolution for super-resolution).
        scale: spatial up-scaling of the model (1 for restoration, 4 for ×4 SR).
        tiles: tiling settings (sizes in input pixels).
        device: where the model runs (default: the model's device).
        progress: reports tiles done; ``check()`` between batches cancels.

    Returns:
        (B, H·scale, W·scale) float32 tensor on the CPU.
    """
    import torch

    progress = as_progress(progress)
    if x.ndim != 3:
        raise InputError(f"expected a (B, H, W) cube tensor, got shape {tuple(x.shape)}")
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    bands, height, width = x.shape
    tile_h, tile_w = min(tiles.tile, height), min(tiles.tile, width)
    overlap_h = min(tiles.overlap, tile_h // 2)
    overlap_w = min(tiles.overlap, tile_w // 2)
    rows = tile_starts(height, tile_h, overlap_h)
    cols = tile_starts(width, tile_w, overlap_w)
    boxes = [(r, c) for r in rows for c in cols]

    out = torch.zeros(bands, height * scale, width * scale, dtype=torch.float32)
    weight = torch.zeros(1, height * scale, width * scale, dtype=torch.float32)
    x = x.float()
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for first in range(0, len(boxes), tiles.batch):
                progress.check()
                chunk = boxes[first:first + tiles.batch]
                batch = torch.stack([x[:, r:r + tile_h, c:c + tile_w] for r, c in chunk]).to(device)
                pred = model(batch).float().cpu()
                expected = (len(chunk), bands, tile_h * scale, tile_w * scale)
                if tuple(pred.shape) != expected:
                    raise InputError(f"the model returned shape {tuple(pred.shape)} for input "
                                     f"{tuple(batch.shape)}; expected {expected} (scale {scale})")
                for (r, c), tile_out in zip(chunk, pred):
                    wr = _blend_ramp(tile_h * scale, overlap_h * scale, r == 0, r + tile_h >= height)
                    wc = _blend_ramp(tile_w * scale, overlap_w * scale, c == 0, c + tile_w >= width)
                    w = torch.from_numpy(np.outer(wr, wc))[None]
                    rs, cs = r * scale, c * scale
                    out[:, rs:rs + tile_h * scale, cs:cs + tile_w * scale] += tile_out * w
                    weight[:, rs:rs + tile_h * scale, cs:cs + tile_w * scale] += w
                progress.report(min(first + tiles.batch, len(boxes)), len(boxes), "restoring tiles")
    finally:
        model.train(was_training)
    return out / weight.clamp_min(1e-8)


def restore_cube(
    model: torch.nn.Module,
    cube: Cube,
    *,
    scale: int = 1,
    tiles: TileConfig = TileConfig(),
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    name: str | None = None,
) -> Cube:
    """Restore a :class:`Cube` (see :func:`restore_tensor`); keeps its band metadata."""
    if cube.count_nonfinite():
        raise InputError(f"{cube.name}: {cube.count_nonfinite()} NaN/Inf values; zero them first "
                         "(--zero-nonfinite)")
    restored = restore_tensor(model, cube.to_torch(), scale=scale, tiles=tiles, device=device,
                              progress=progress)
    return Cube.from_torch(restored, like=cube, name=name or cube.name)
