"""CAVE-style folders: one 16-bit grey PNG per band, named ``<scene>_ms_01.png … _31.png``.

The CAVE archive nests each scene as ``<scene>_ms/<scene>_ms/*.png``; a folder holding a
single sub-folder (and no band images) is followed one level down. CAVE bands are
400–700 nm in 10 nm steps, so a 31-band folder gets those wavelengths unless the caller
gives others.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from hiralign.cube import DEFAULT_31_BANDS_NM
from hiralign.errors import InputError
from hiralign.io.common import RawCube, warn

_BAND_FILE = re.compile(r"^(?P<prefix>.*?)_?(?P<number>\d{1,3})\.png$", re.IGNORECASE)


def band_files(folder: Path) -> list[Path]:
    """The band images of ``folder`` in band order.

    Raises:
        InputError: no numbered PNGs, or numbers with gaps.
    """
    groups = _numbered_pngs(folder)
    if not groups:
        subfolders = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
        if len(subfolders) == 1:
            folder = subfolders[0]
            groups = _numbered_pngs(folder)
    if not groups:
        raise InputError(f"{folder}: a folder must hold one PNG per band named like scene_ms_01.png, "
                         "scene_ms_02.png, …; none found")
    prefix = max(groups, key=lambda p: len(groups[p]))
    numbered = groups[prefix]
    numbers = sorted(numbered)
    expected = list(range(numbers[0], numbers[0] + len(numbers)))
    if numbers != expected:
        missing = sorted(set(range(numbers[0], numbers[-1] + 1)) - set(numbers))
        raise InputError(f"{folder}: band images of {prefix!r} have gaps: missing numbers "
                         f"{', '.join(str(m) for m in missing[:10])}")
    return [numbered[n] for n in numbers]


def _numbered_pngs(folder: Path) -> dict[str, dict[int, Path]]:
    groups: dict[str, dict[int, Path]] = {}
    for p in folder.iterdir():
        m = _BAND_FILE.match(p.name)
        if m and p.is_file():
            groups.setdefault(m["prefix"], {})[int(m["number"])] = p
    return groups


def read_folder(folder: Path) -> RawCube:
    """Stack a CAVE-style PNG folder into an (H, W, B) cube in the images' dtype.

    Band images are decoded by libpng (:func:`~hiralign.io.images.read_picture`), so a
    16-bit band stored as a colour PNG keeps its 16 bits.
    """
    from hiralign.io.images import read_picture

    files = band_files(folder)
    planes = []
    for f in files:
        try:
            img = read_picture(f)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a bad band file
            raise InputError(f"{f}: cannot read this band image: {exc}") from None
        if img.ndim == 3:
            # Some CAVE scenes store bands as RGB(A) PNGs; their colour channels are equal.
            if not all(np.array_equal(img[..., 0], img[..., c]) for c in range(1, min(img.shape[2], 3))):
                warn(f, "band image has differing colour channels; using the first")
            img = img[..., 0]
        if img.ndim != 2:
            raise InputError(f"{f}: a band image must be 2-D, not shape {img.shape}")
        if planes and (img.shape != planes[0].shape or img.dtype != planes[0].dtype):
            raise InputError(f"{f}: shape {img.shape} {img.dtype} differs from the first band "
                             f"({files[0].name}: {planes[0].shape} {planes[0].dtype})")
        planes.append(img)
    data = np.stack(planes, axis=2)
    wavelengths = DEFAULT_31_BANDS_NM.copy() if len(files) == DEFAULT_31_BANDS_NM.size else None
    return RawCube(data=data, format="PNG folder", wavelengths=wavelengths, wavelength_unit="nm",
                   metadata={"band_files": [f.name for f in files], "folder": str(files[0].parent),
                             **({"wavelength_convention": "CAVE 400–700 nm, 10 nm steps"}
                                if wavelengths is not None else {})})
