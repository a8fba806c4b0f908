"""PNG through libpng (imagecodecs): 16-bit colour and interlaced images, band folders, guides."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from hiralign.io import load, load_rgb, save_rgb
from hiralign.io.images import read_picture

# Adam7 passes: (row start, column start, row step, column step), PNG spec 8.2.
_ADAM7 = [(0, 0, 8, 8), (0, 4, 8, 8), (4, 0, 8, 4), (0, 2, 4, 4), (2, 0, 4, 2), (0, 1, 2, 2), (1, 0, 2, 1)]


def _png16(img: np.ndarray, interlace: bool) -> bytes:
    """A 16-bit PNG written by hand (independent of the code under test), rows unfiltered."""
    h, w = img.shape[:2]
    colour = 0 if img.ndim == 2 else 2
    raw = b""
    passes = _ADAM7 if interlace else [(0, 0, 1, 1)]
    for r0, c0, dr, dc in passes:
        sub = img[r0::dr, c0::dc]
        if sub.size == 0:
            continue
        rows = np.ascontiguousarray(sub, dtype=">u2").reshape(sub.shape[0], -1).view(np.uint8)
        raw += b"".join(b"\x00" + row.tobytes() for row in rows)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    header = struct.pack(">IIBBBBB", w, h, 16, colour, 0, 0, 1 if interlace else 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw))
            + chunk(b"IEND", b""))


def test_interlaced_16_bit_colour_png_keeps_every_bit(tmp_path: Path, rng: np.random.Generator) -> None:
    img = rng.integers(0, 65535, size=(13, 11, 3), endpoint=True).astype(np.uint16)
    (tmp_path / "i.png").write_bytes(_png16(img, interlace=True))
    np.testing.assert_array_equal(read_picture(tmp_path / "i.png"), img)
    np.testing.assert_allclose(load_rgb(tmp_path / "i.png"), img / 65535.0, rtol=1e-6)


def test_cave_folder_of_16_bit_colour_band_pngs_stays_16_bit(tmp_path: Path, rng: np.random.Generator) -> None:
    # Some CAVE scenes store each band as an RGB PNG with equal channels; the low byte matters.
    planes = rng.integers(0, 65535, size=(6, 5, 4), endpoint=True).astype(np.uint16)
    folder = tmp_path / "scene_ms"
    folder.mkdir()
    for b in range(planes.shape[2]):
        rgb = np.repeat(planes[:, :, b:b + 1], 3, axis=2)
        (folder / f"scene_ms_{b + 1:02d}.png").write_bytes(_png16(rgb, interlace=b % 2 == 1))
    cube = load(folder, wavelengths="450:600:50")
    assert cube.metadata["dtype"] == "uint16"
    np.testing.assert_allclose(cube.data, planes / 65535.0, rtol=1e-6)


@pytest.mark.parametrize("bits", [8, 16])
def test_saved_png_is_read_back_exactly_by_libpng(tmp_path: Path, rng: np.random.Generator, bits: int) -> None:
    rgb = rng.random((7, 9, 3)).astype(np.float32)
    path = save_rgb(rgb, tmp_path / "g.png", bits=bits)
    stored = read_picture(path)
    top = 2 ** bits - 1
    assert stored.dtype == (np.uint8 if bits == 8 else np.uint16)
    np.testing.assert_array_equal(stored, np.round(rgb.astype(np.float64) * top))
