"""Stage 1 (paper Sec. III-A): restore degraded target cubes with the source model.

Inference is tiled with overlapping windows blended by smooth weights, so any image size
runs within bounded memory on CPU or CUDA, with progress per tile. The tiler works one
row of tiles at a time (:func:`restore_rows`): it asks for the input rows that row of
tiles covers and hands on every output row as soon as no later tile touches it. In memory
(:func:`restore_tensor`, :func:`restore_cube`) the rows land in one output tensor; from
file to file (:func:`restore_file`) they stream from a memory-mapped input into an ENVI
output written row window by row window, so a cube of any size restores in the memory
of one row of tiles. The same functions also restore targets with the adapted model at
the end of a run.
"""
from __future__ import annotations

import dataclasses
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

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
        context: extra input pixels given to the model on every side of a tile and cropped
            off its output (at most the tile size; windows at the image edges shift inwards
            instead), so the network's own border effects fall outside what is kept. 0 feeds the bare tile:
            cheaper (≈ 1/1.4 of the time at 128/16) but with a small seam measurable in the
            blended zones (benchmarks/bench_seams.py, docs/formats.md "Tile seams").
    """

    tile: int = 128
    overlap: int = 16
    batch: int = 4
    context: int = 16

    def __post_init__(self) -> None:
        if self.tile < 8:
            raise ConfigError(f"tile size {self.tile} is too small (minimum 8 pixels)")
        if not 0 <= self.overlap < self.tile // 2 + 1:
            raise ConfigError(f"overlap {self.overlap} must be in [0, tile/2]")
        if self.batch < 1:
            raise ConfigError("tile batch must be at least 1")
        if self.context < 0:
            raise ConfigError(f"tile context {self.context} must be 0 or more pixels")


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


def _axis_weights(length: int, tile: int, overlap: int, scale: int) -> tuple[list[int], list[np.ndarray]]:
    """Tile starts along one axis and each tile's 1-D weights, normalised to sum to 1.

    Tile weights are outer products of these, and the tiles form a grid, so the total
    weight at a pixel factorises too: normalising each axis makes every pixel's weights
    sum to exactly 1 and lets a tile's contribution be final as soon as it is added.
    """
    starts = tile_starts(length, tile, overlap)
    raw = [_blend_ramp(tile * scale, overlap * scale, s == 0, s + tile >= length) for s in starts]
    total = np.zeros(length * scale, dtype=np.float64)
    for s, w in zip(starts, raw):
        total[s * scale:(s + tile) * scale] += w
    normalised = [(w / total[s * scale:(s + tile) * scale]).astype(np.float32) for s, w in zip(starts, raw)]
    return starts, normalised


def restore_rows(
    model: torch.nn.Module,
    read: Callable[[int, int], torch.Tensor],
    shape: tuple[int, int, int],
    emit: Callable[[int, torch.Tensor], None],
    *,
    scale: int = 1,
    tiles: TileConfig = TileConfig(),
    device: torch.device | str | None = None,
    progress: Progress | None = None,
) -> None:
    """The tiler: run ``model`` over a (B, H, W) cube one row of tiles at a time.

    Args:
        model: maps (N, B, h, w) to (N, B, h·scale, w·scale).
        read: ``read(y0, y1)`` returns input rows y0:y1 as a (B, y1-y0, W) tensor.
        shape: (B, H, W) of the input.
        emit: ``emit(row, rows)`` receives finished output rows (B, n, W·scale) starting at
            output row ``row``, in order, each exactly once.
        scale: spatial up-scaling of the model (1 for restoration, 4 for ×4 SR).
        tiles: tiling settings (sizes in input pixels).
        device: where the model runs (default: the model's device).
        progress: reports tiles done; ``check()`` between batches cancels.

    Raises:
        InputError: the model returns the wrong shape.
    """
    import torch

    progress = as_progress(progress)
    if device is None:
        param = next(model.parameters(), None)
        device = param.device if param is not None else torch.device("cpu")
    device = torch.device(device)
    bands, height, width = shape
    tile_h, tile_w = min(tiles.tile, height), min(tiles.tile, width)
    overlap_h, overlap_w = min(tiles.overlap, tile_h // 2), min(tiles.overlap, tile_w // 2)
    rows, row_w = _axis_weights(height, tile_h, overlap_h, scale)
    cols, col_w = _axis_weights(width, tile_w, overlap_w, scale)
    ctx = min(tiles.context, tile_h, tile_w)
    win_h, win_w = min(tile_h + 2 * ctx, height), min(tile_w + 2 * ctx, width)
    total, done = len(rows) * len(cols), 0
    acc = torch.zeros(bands, 0, width * scale, dtype=torch.float32)
    acc_start = 0  # output row of acc[:, 0]
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for i, r in enumerate(rows):
                y0, oy = _window(r, tile_h, height, ctx)
                strip = read(y0, y0 + win_h).float()
                end = (r + tile_h) * scale
                if end - acc_start > acc.shape[1]:
                    grow = torch.zeros(bands, end - acc_start - acc.shape[1], width * scale, dtype=torch.float32)
                    acc = torch.cat([acc, grow], dim=1)
                wr = torch.from_numpy(row_w[i])
                for first in range(0, len(cols), tiles.batch):
                    progress.check()
                    chunk = list(range(first, min(first + tiles.batch, len(cols))))
                    windows = [_window(cols[j], tile_w, width, ctx) for j in chunk]
                    batch = torch.stack([strip[:, :, x0:x0 + win_w] for x0, _ in windows]).to(device)
                    pred = model(batch).float().cpu()
                    expected = (len(chunk), bands, win_h * scale, win_w * scale)
                    if tuple(pred.shape) != expected:
                        raise InputError(f"the model returned shape {tuple(pred.shape)} for input "
                                         f"{tuple(batch.shape)}; expected {expected} (scale {scale})")
                    rs = r * scale - acc_start
                    for j, (_, ox), tile_out in zip(chunk, windows, pred):
                        tile_out = tile_out[:, oy * scale:(oy + tile_h) * scale, ox * scale:(ox + tile_w) * scale]
                        w = (wr[:, None] * torch.from_numpy(col_w[j])[None, :])[None]
                        cs = cols[j] * scale
                        acc[:, rs:rs + tile_h * scale, cs:cs + tile_w * scale] += tile_out * w
                    done += len(chunk)
                    progress.report(done, total, "restoring tiles")
                # Rows above the next tile row are final: hand them on and forget them.
                final = rows[i + 1] * scale if i + 1 < len(rows) else height * scale
                if final > acc_start:
                    emit(acc_start, acc[:, :final - acc_start])
                    acc = acc[:, final - acc_start:].clone()
                    acc_start = final
    finally:
        model.train(was_training)


def _window(start: int, tile: int, length: int, ctx: int) -> tuple[int, int]:
    """(first input pixel, offset of the tile in it) of a tile's window of ``tile + 2·ctx``.

    The window is shifted inside the image at its edges rather than padded, so edge tiles
    see the image border exactly as a whole-image run does, and all windows share a size.
    """
    size = min(tile + 2 * ctx, length)
    first = min(max(start - ctx, 0), length - size)
    return first, start - first


def restore_tensor(
    model: torch.nn.Module,
    x: torch.Tensor,
    *,
    scale: int = 1,
    tiles: TileConfig = TileConfig(),
    device: torch.device | str | None = None,
    progress: Progress | None = None,
) -> torch.Tensor:
    """Apply ``model`` to a (B, H, W) cube tensor tile by tile (see :func:`restore_rows`).

    Returns:
        (B, H·scale, W·scale) float32 tensor on the CPU.
    """
    import torch

    if x.ndim != 3:
        raise InputError(f"expected a (B, H, W) cube tensor, got shape {tuple(x.shape)}")
    bands, height, width = x.shape
    out = torch.empty(bands, height * scale, width * scale, dtype=torch.float32)

    def emit(row: int, rows: torch.Tensor) -> None:
        out[:, row:row + rows.shape[1]] = rows

    restore_rows(model, lambda y0, y1: x[:, y0:y1], (bands, height, width), emit, scale=scale, tiles=tiles,
                 device=device, progress=progress)
    return out


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
    """Restore a :class:`Cube` (see :func:`restore_tensor`); keeps its band metadata and mask."""
    if cube.count_nonfinite():
        raise InputError(f"{cube.name}: {cube.count_nonfinite()} NaN/Inf values; zero them first "
                         "(--zero-nonfinite)")
    restored = restore_tensor(model, cube.to_torch(), scale=scale, tiles=tiles, device=device,
                              progress=progress)
    return Cube.from_torch(restored, like=cube, name=name or cube.name)


def seam_excess(restored: np.ndarray, tiles: TileConfig, scale: int = 1,
                reference: np.ndarray | None = None) -> dict[str, dict[str, float]]:
    """How much stronger the image gradient is where tiles were blended than elsewhere.

    For each axis, the mean |x[p+1] − x[p]| over the other two axes is a profile along
    that axis. The seam zones are where neighbouring tiles of :func:`tile_starts` overlap
    (from one before a tile's start to the end of the tile before it, in output pixels);
    the rest excludes one overlap at each image edge, where a network's own border
    handling is not a seam. ``ratio`` = mean profile in seam zones / mean elsewhere (1: no
    seam); ``z`` = that difference in standard errors of the rest. With ``reference``
    (the same cube restored without tiling) the profile is divided by the reference's
    first, so image content that happens to lie in a zone does not count.

    Args:
        restored: (H·scale, W·scale, B) tiled result.
        tiles: the tiling it was made with.
        scale: the model's spatial factor.
        reference: optional (H·scale, W·scale, B) untiled result.

    Returns:
        {"rows": {"ratio", "z"}, "cols": {...}} for the axes that were cut into tiles.
    """
    out: dict[str, dict[str, float]] = {}
    for axis, label in ((0, "rows"), (1, "cols")):
        others = tuple(a for a in range(3) if a != axis)
        profile = np.abs(np.diff(restored.astype(np.float64), axis=axis)).mean(axis=others)
        if reference is not None:
            base = np.abs(np.diff(reference.astype(np.float64), axis=axis)).mean(axis=others)
            profile = profile / np.maximum(base, 1e-12)
        length = restored.shape[axis] // scale
        tile = min(tiles.tile, length)
        overlap = min(tiles.overlap, tile // 2)
        starts = tile_starts(length, tile, overlap)
        if len(starts) < 2:
            continue
        zone = np.zeros(profile.size, dtype=bool)
        for previous, start in zip(starts, starts[1:]):
            zone[start * scale - 1:max(start * scale, (previous + tile) * scale - 1)] = True
        rest = ~zone
        margin = max(overlap, 1) * scale
        rest[:margin] = rest[-margin:] = False
        ratio = float(profile[zone].mean() / profile[rest].mean())
        z = float((profile[zone].mean() - profile[rest].mean()) / (profile[rest].std() / np.sqrt(zone.sum()) + 1e-12))
        out[label] = {"ratio": ratio, "z": z}
    return out


def restore_file(
    model: torch.nn.Module,
    src: str | os.PathLike,
    dst: str | os.PathLike,
    *,
    scale: int = 1,
    tiles: TileConfig = TileConfig(),
    device: torch.device | str | None = None,
    progress: Progress | None = None,
    model_bands: int | None = None,
    model_wavelengths: Any = None,
    before: Callable[[np.ndarray], np.ndarray] | None = None,
    after: Callable[[np.ndarray], np.ndarray] | None = None,
    dtype: str | None = None,
    load_options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Restore the cube file ``src`` into ``dst`` in bounded memory (rows streamed both ways).

    The input is opened with :func:`hiralign.io.open_cube` (ENVI/NPY memory maps, HDF5
    chunks) and read one row of tiles at a time; finished output rows go straight to an
    ENVI file (``dst`` .hdr/.img) written atomically, so peak memory is about two rows of
    tiles (input and blending buffer) plus the model, whatever the cube's size. Other
    output suffixes are assembled in memory and saved with :func:`hiralign.io.save`.

    Args:
        model: the restorer (see :func:`restore_rows`).
        src: the degraded cube file.
        dst: the output path (ENVI streams; other formats are saved whole).
        scale: the model's spatial factor.
        tiles: tiling settings.
        device: where the model runs.
        progress: tiles done; cancellation between batches (nothing is written then).
        model_bands, model_wavelengths: the model's band set; a target on other bands is
            resampled per row window onto it and back (``hiralign.bands.match_bands``,
            exactly as for a loaded cube: the resampling is per pixel).
        before, after: optional per-window transforms of (h, W, B) float32 values on the
            target's bands, e.g. intensity normalisation and its inverse.
        dtype: output dtype, as for :func:`hiralign.io.save` ("input" keeps uint16 counts).
        load_options: ``var``, ``wavelengths``, ``zero_nonfinite`` for opening ``src``.

    Returns:
        {"input", "output" (the header for ENVI), "shape" [H, W, B], "resampled": bool}.

    Raises:
        InputError, MissingFileError: bad input (nothing is written).
    """
    import torch

    from hiralign.bands import match_bands, resample_bands
    from hiralign.io import open_cube, save
    from hiralign.io.envi_write import EnviWriter

    lazy = open_cube(src, **(load_options or {}))
    h, w, b = lazy.shape
    like = lazy.like()
    model_wl = None if model_wavelengths is None else np.asarray(model_wavelengths, dtype=np.float64)
    _, mapped = match_bands(like, model_bands or b, model_wl)

    def read(y0: int, y1: int) -> torch.Tensor:
        rows, _ = lazy.read_rows(y0, y1)
        if before is not None:
            rows = before(rows)
        if mapped:
            rows = resample_bands(like.with_data(rows), model_wl).data  # type: ignore[arg-type]
        return torch.from_numpy(np.ascontiguousarray(rows.transpose(2, 0, 1)))

    def back(row: int, rows: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        values = rows.numpy().transpose(1, 2, 0)
        if mapped:
            values = resample_bands(Cube(values, wavelengths=model_wl), lazy.wavelengths).data  # type: ignore[arg-type]
        if after is not None:
            values = after(values)
        mask = None
        if lazy.prep.ignore_value is not None:
            y0, y1 = row // scale, -(-(row + values.shape[0]) // scale)
            mask = lazy.read_mask(y0, y1)
            if mask is not None and scale > 1:
                mask = np.repeat(np.repeat(mask, scale, axis=0), scale, axis=1)[row - y0 * scale:][:values.shape[0]]
        return np.ascontiguousarray(values, dtype=np.float32), mask

    in_bands = model_bands if mapped and model_bands else b
    out_shape = (h * scale, w * scale, b)
    dst = Path(dst)
    info = {"input": str(src), "shape": list(out_shape), "resampled": bool(mapped)}
    if dst.suffix.lower() in (".hdr", ".img"):
        with EnviWriter(dst, out_shape, like, dtype) as out:
            restore_rows(model, read, (in_bands, h, w), lambda row, rows: out.write_rows(row, *back(row, rows)),
                         scale=scale, tiles=tiles, device=device, progress=progress)
        info["output"] = str(out.header)
        return info
    data = np.empty(out_shape, dtype=np.float32)
    mask_all = None

    def keep(row: int, rows: torch.Tensor) -> None:
        nonlocal mask_all
        values, mask = back(row, rows)
        data[row:row + values.shape[0]] = values
        if mask is not None:
            if mask_all is None:
                mask_all = np.zeros((*out_shape[:2], mask.shape[2]), dtype=bool)
            mask_all[row:row + values.shape[0]] = mask

    restore_rows(model, read, (in_bands, h, w), keep, scale=scale, tiles=tiles, device=device, progress=progress)
    cube = like.with_data(data)
    cube.mask = mask_all
    info["output"] = str(save(cube, dst, dtype=dtype))
    return info
