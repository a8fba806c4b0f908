"""Textured colour layouts for a source-set experiment (docs/benchmarks.md, session 9; negative for sr4).

Each of scikit-image's grey textures (brick, grass, gravel, camera, moon, coins) gets the
low-pass colour of one source photograph: colour = G_σ(photo) · texture / G_σ(texture), σ 6 px,
clipped to [0, 1]. The PNGs are passed to ``hiralign make-source --layouts``.

Usage::

    python benchmarks/textured_layouts.py .tmp/tex
    hiralign make-source --n 192 --out .tmp/source192tex --layouts .tmp/tex/*.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiralign.io import load_rgb, save_rgb  # noqa: E402
from hiralign.source import SOURCE_LAYOUTS, skimage_image  # noqa: E402

TEXTURES = ("brick.png", "grass.png", "gravel.png", "camera.png", "moon.png", "coins.png")


def textured(texture: np.ndarray, photo: np.ndarray, sigma: float = 6.0) -> np.ndarray:
    """(H, W, 3) colour layout: the photo's low-pass colour carrying the (H, W) texture's detail."""
    from scipy.ndimage import gaussian_filter

    h, w = min(texture.shape[0], photo.shape[0]), min(texture.shape[1], photo.shape[1])
    texture, photo = texture[:h, :w], photo[:h, :w, :3]
    detail = texture / np.maximum(gaussian_filter(texture, sigma), 0.05)
    return np.clip(gaussian_filter(photo, (sigma, sigma, 0)) * detail[..., None], 0, 1).astype(np.float32)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out", type=Path)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for tex, photo in zip(TEXTURES, SOURCE_LAYOUTS):
        grey = load_rgb(skimage_image(tex)).mean(axis=2)
        path = args.out / f"{Path(tex).stem}_{Path(photo).stem}.png"
        save_rgb(textured(grey, load_rgb(skimage_image(photo))), path)
        print(path)


if __name__ == "__main__":
    main()
