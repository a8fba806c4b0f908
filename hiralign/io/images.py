"""RGB images: read PNG/JPEG/TIFF (or a cube's pseudo-RGB Γ) and write PNG/JPEG.

Values are float32 in [0, 1]: 8-bit images are divided by 255, 16-bit by 65535. Grey
images are repeated to three channels and an alpha channel is dropped.

PNG goes through ``imagecodecs`` (libpng) for every bit depth, colour type and interlace
mode: Pillow (imageio's backend) writes no 16-bit colour PNG and reads one as its high
bytes, so it is used only for the other picture formats (JPEG, BMP, GIF, WebP).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hiralign.atomic import atomic_path
from hiralign.errors import InputError, MissingFileError

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

#: Suffixes read as ordinary pictures (TIFF is tried as a picture, then as a cube).
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp")


def read_image(path: Path) -> np.ndarray:
    """An (H, W, 3) float32 image in [0, 1] from a picture file.

    Raises:
        MissingFileError: the file is absent.
        InputError: the file cannot be decoded or is not a 2-D picture.
    """
    if not path.is_file():
        raise MissingFileError(f"{path}: no such file")
    try:
        img = read_picture(path)
    except Exception as exc:  # noqa: BLE001 - any decoder failure means an unreadable image
        raise InputError(f"{path}: cannot read this image: {exc}") from None
    return as_rgb(img, path)


def read_picture(path: Path) -> np.ndarray:
    """The pixels of a picture file in its own dtype: (H, W) or (H, W, C), uint8 or uint16.

    PNGs (any bit depth, colour type, interlaced or not) are decoded by libpng through
    ``imagecodecs``, so 16-bit colour stays 16-bit; other formats by imageio.

    Raises:
        Exception: whatever the decoder raises for a damaged file (callers name the file).
    """
    with open(path, "rb") as fh:
        data = fh.read()
    if data.startswith(_PNG_SIGNATURE):
        import imagecodecs

        return np.asarray(imagecodecs.png_decode(data))
    import imageio.v3 as iio

    return np.asarray(iio.imread(path))


def encode_png(img: np.ndarray) -> bytes:
    """PNG bytes of an (H, W) or (H, W, 3|4) uint8/uint16 image (libpng, zlib level 6)."""
    import imagecodecs

    return bytes(imagecodecs.png_encode(np.ascontiguousarray(img), level=6))


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
        if suffix == ".png":
            tmp.write_bytes(encode_png(out))
        else:
            iio.imwrite(tmp, out, extension=suffix)
    return path
