"""RGB images: read PNG/JPEG/TIFF (or a cube's pseudo-RGB Γ) and write PNG/JPEG.

Values are float32 in [0, 1]: 8-bit images are divided by 255, 16-bit by 65535. Grey
images are repeated to three channels and an alpha channel is dropped.

Pillow (imageio's PNG backend) writes no 16-bit colour PNG and reads one as 8-bit, so
16-bit colour PNGs are encoded and decoded here (:func:`encode_png16`,
:func:`decode_png16`): the format is a zlib stream of filtered rows, and the five
row filters are undone exactly as the PNG specification defines them.
"""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

from hiralign.atomic import atomic_path
from hiralign.errors import InputError, MissingFileError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_CHANNELS = {0: 1, 2: 3, 4: 2, 6: 4}  # PNG colour type -> samples per pixel

#: Suffixes read as ordinary pictures (TIFF is tried as a picture, then as a cube).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def read_image(path: Path) -> np.ndarray:
    """An (H, W, 3) float32 image in [0, 1] from a picture file.

    Raises:
        MissingFileError: the file is absent.
        InputError: the file cannot be decoded or is not a 2-D picture.
    """
    import imageio.v3 as iio

    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    try:
        img = decode_png16(path.read_bytes()) if _is_png16_colour(path) else np.asarray(iio.imread(path))
    except Exception as exc:  # noqa: BLE001 - any decoder failure means an unreadable image
        raise InputError(f"{path}: cannot read this image: {exc}") from None
    return as_rgb(img, path)


def as_rgb(img: np.ndarray, path: Path | str = "image") -> np.ndarray:
    """Normalise an image array (H, W), (H, W, 1|2|3|4) of any dtype to (H, W, 3) float32 [0, 1]."""
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4):
        raise InputError(f"{path}: expected an RGB or grey image, not shape {img.shape}")
    if img.shape[2] in (2, 4):  # drop alpha
        img = img[..., :-1]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if img.dtype.kind in "ui":
        rgb = img.astype(np.float32) / np.float32(np.iinfo(img.dtype).max)
    elif img.dtype.kind == "b":
        rgb = img.astype(np.float32)
    elif img.dtype.kind == "f":
        rgb = img.astype(np.float32)
    else:
        raise InputError(f"{path}: unsupported image data type {img.dtype}")
    if not np.all(np.isfinite(rgb)):
        raise InputError(f"{path}: the image contains NaN or Inf values")
    return np.clip(rgb, 0.0, 1.0)


def write_image(rgb: np.ndarray, path: Path, bits: int = 8) -> Path:
    """Write an (H, W, 3) (or (H, W)) image in [0, 1] atomically as PNG (8/16-bit) or JPEG (8-bit).

    Raises:
        InputError: bad shape, bit depth or suffix.
    """
    import imageio.v3 as iio

    arr = np.asarray(rgb)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3)):
        raise InputError(f"{path}: an RGB image must be (H, W, 3) or (H, W), not {arr.shape}")
    suffix = path.suffix.lower()
    if suffix not in (".png", ".jpg", ".jpeg"):
        raise InputError(f"{path}: RGB images are written as .png or .jpg, not {suffix or 'no suffix'}")
    if bits not in (8, 16) or (bits == 16 and suffix != ".png"):
        raise InputError(f"{path}: {bits}-bit output is not possible for {suffix} (PNG: 8 or 16, JPEG: 8)")
    if arr.dtype.kind in "ui":
        arr = arr.astype(np.float32) / np.float32(np.iinfo(arr.dtype).max)
    arr = np.nan_to_num(np.asarray(arr, dtype=np.float64), nan=0.0, posinf=1.0, neginf=0.0)
    top = 255 if bits == 8 else 65535
    out = np.round(np.clip(arr, 0.0, 1.0) * top).astype(np.uint8 if bits == 8 else np.uint16)
    if out.ndim == 3 and out.shape[2] == 1:
        out = out[..., 0]
    with atomic_path(path) as tmp:
        if bits == 16:
            tmp.write_bytes(encode_png16(out))
        else:
            iio.imwrite(tmp, out, extension=suffix)
    return path


# --------------------------------------------------------------------------- 16-bit PNG
def encode_png16(img: np.ndarray) -> bytes:
    """PNG bytes of a (H, W) or (H, W, 3) uint16 image (rows unfiltered, zlib level 6)."""
    h, w = img.shape[:2]
    colour_type = 0 if img.ndim == 2 else 2
    rows = np.ascontiguousarray(img, dtype=">u2").reshape(h, -1).view(np.uint8)
    raw = np.concatenate([np.zeros((h, 1), np.uint8), rows], axis=1).tobytes()  # filter byte 0
    header = struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0)
    return _PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw, 6)) + _chunk(b"IEND", b"")


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def _is_png16_colour(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(33)
    if len(head) < 33 or not head.startswith(_PNG_SIGNATURE) or head[12:16] != b"IHDR":
        return False
    depth, colour_type, interlace = head[24], head[25], head[28]
    return depth == 16 and colour_type in (2, 4, 6) and interlace == 0


def decode_png16(data: bytes) -> np.ndarray:
    """Decode a non-interlaced 16-bit PNG into an (H, W, C) uint16 array.

    Raises:
        ValueError: the bytes are not such a PNG or are damaged.
    """
    if not data.startswith(_PNG_SIGNATURE):
        raise ValueError("not a PNG file")
    pos, header, idat = len(_PNG_SIGNATURE), None, []
    while pos + 8 <= len(data):
        length, tag = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length:
            raise ValueError("truncated PNG chunk")
        if tag == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif tag == b"IDAT":
            idat.append(body)
        elif tag == b"IEND":
            break
        pos += 12 + length
    if header is None or not idat:
        raise ValueError("PNG without IHDR or IDAT")
    w, h, depth, colour_type, _, _, interlace = header
    if depth != 16 or colour_type not in _CHANNELS or interlace:
        raise ValueError("only non-interlaced 16-bit PNGs are decoded here")
    bpp = 2 * _CHANNELS[colour_type]
    stride = w * bpp
    raw = np.frombuffer(zlib.decompress(b"".join(idat)), np.uint8)
    if raw.size != h * (stride + 1):
        raise ValueError(f"PNG data holds {raw.size} bytes, expected {h * (stride + 1)}")
    rows = raw.reshape(h, stride + 1)
    out = np.empty((h, stride), np.uint8)
    prior = np.zeros(stride, np.uint8)
    for r in range(h):
        out[r] = prior = _unfilter(int(rows[r, 0]), rows[r, 1:], prior, bpp)
    return out.view(">u2").reshape(h, w, _CHANNELS[colour_type]).astype(np.uint16)


def _unfilter(kind: int, line: np.ndarray, prior: np.ndarray, bpp: int) -> np.ndarray:
    """Undo one PNG row filter (0 None, 1 Sub, 2 Up, 3 Average, 4 Paeth)."""
    if kind == 0:
        return line
    if kind == 2:
        return line + prior  # uint8 arithmetic wraps modulo 256, as the spec wants
    if kind == 1:  # running sum along each byte lane
        lanes = line.reshape(-1, bpp).astype(np.int64)
        return (np.cumsum(lanes, axis=0) % 256).astype(np.uint8).ravel()
    if kind not in (3, 4):
        raise ValueError(f"unknown PNG filter type {kind}")
    # Average and Paeth depend on the byte just reconstructed: sequential by definition.
    cur, up = bytearray(line.tobytes()), prior.tobytes()
    for i in range(len(cur)):
        left = cur[i - bpp] if i >= bpp else 0
        if kind == 3:
            cur[i] = (cur[i] + ((left + up[i]) >> 1)) & 0xFF
        else:
            corner = up[i - bpp] if i >= bpp else 0
            p = left + up[i] - corner
            pa, pb, pc = abs(p - left), abs(p - up[i]), abs(p - corner)
            pred = left if pa <= pb and pa <= pc else (up[i] if pb <= pc else corner)
            cur[i] = (cur[i] + pred) & 0xFF
    return np.frombuffer(bytes(cur), np.uint8)
