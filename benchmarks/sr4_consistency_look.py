"""sr4 with and without the consistency projection, for the eye (docs/benchmarks.md, session 11).

Two rows, each restored by :func:`hiralign.restoration.restore_capture` (what ``hiralign
restore`` runs) with the shipped ``sr4`` model over 8 dihedral views, once as it is and once
projected onto the cubes that down-sample exactly to the observation:

1. a KAIST scene's sr4 observation (the clean scene known): clean | bicubic | network |
   network + consistency | |error| of the network | |error| with consistency (errors ×8);
2. a real IMEC capture (``../shared/data/envi``, raw sensor noise, 16 bands) taken as the
   low-resolution observation itself — no reference, nothing was down-sampled bicubically:
   capture (pixel-repeated ×4) | bicubic | network | network + consistency | the
   projection's change ×8.

Crop PSNRs and the projection's RMS change are printed.

Usage::

    python benchmarks/sr4_consistency_look.py --out docs/figures/sr4_consistency.png
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from image_grid import save_image_grid  # noqa: E402

from hiralign import io  # noqa: E402
from hiralign.degrade import crop_to_scale, degrade_cube  # noqa: E402
from hiralign.ensemble import ProxyConfig  # noqa: E402
from hiralign.imresize import resize_bicubic  # noqa: E402
from hiralign.metrics import psnr  # noqa: E402
from hiralign.models.checkpoint import load_checkpoint  # noqa: E402
from hiralign.proxy import TileConfig  # noqa: E402
from hiralign.resources import shipped_model  # noqa: E402
from hiralign.restoration import Recipe, restore_capture  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def bicubic(cube):
    up = resize_bicubic(torch.from_numpy(cube.data).permute(2, 0, 1).double(), 4).permute(1, 2, 0).float().numpy()
    return cube.with_data(up)


def restorations(model, ckpt, observed):
    """(network, network + consistency) of one observation, as ``hiralign restore`` makes them."""
    out = []
    for consistency in (False, True):
        recipe = Recipe(task="sr4", proxy=ProxyConfig(source="model"), transforms=8, consistency=consistency)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the IMEC bands are resampled onto the model's: said once below
            out.append(restore_capture(model, ckpt, observed, recipe, tiles=TileConfig()))
    return out


def rgb(cube, top, left, side):
    return cube.pseudo_rgb()[top:top + side, left:left + side]


def scene_row(model, ckpt, side: int, top: int, left: int) -> list[tuple[np.ndarray, str]]:
    clean = crop_to_scale(io.load(DATA / "kaist" / "scene02.mat", wavelengths="420:720:10"), "sr4")
    observed = degrade_cube(clean, "sr4", 0)
    network, projected = restorations(model, ckpt, observed)
    up = bicubic(observed)
    win = (slice(top, top + side), slice(left, left + side))
    scores = {}
    for label, cube in (("bicubic", up), ("network", network), ("network + consistency", projected)):
        whole = float(psnr(cube.data.transpose(2, 0, 1), clean.data.transpose(2, 0, 1))[0])
        crop = float(psnr(cube.data[win].transpose(2, 0, 1), clean.data[win].transpose(2, 0, 1))[0])
        scores[label] = whole
        print(f"KAIST scene02 {label}: {whole:.2f} dB (crop {crop:.2f} dB)")
    images = [rgb(c, top, left, side) for c in (clean, up, network, projected)]
    peak = np.percentile(images[0], 99.5)
    images = [np.clip(p / peak, 0, 1) for p in images]
    errors = [np.clip(8 * np.abs(p - images[0]), 0, 1) for p in images[2:4]]
    return [(images[0], "KAIST scene02, clean"), (images[1], f"bicubic ({scores['bicubic']:.2f} dB)"),
            (images[2], f"network ({scores['network']:.2f} dB)"),
            (images[3], f"+ consistency ({scores['network + consistency']:.2f} dB)"),
            (errors[0], "|error| ×8, network"), (errors[1], "|error| ×8, + consistency")]


def capture_row(model, ckpt, side: int, top: int, left: int) -> list[tuple[np.ndarray, str]]:
    capture = io.load(DATA / "envi" / "VIS_leaves_FD1_FN0_original.hdr")
    low = side // 4
    capture = capture.crop(top // 4, left // 4, low, low)
    capture = capture.with_data(capture.data.astype(np.float32))
    network, projected = restorations(model, ckpt, capture)
    change = np.sqrt(np.mean((projected.data.astype(float) - network.data) ** 2))
    share = 100 * change / np.sqrt(np.mean(network.data.astype(float) ** 2))
    print(f"IMEC leaves: the projection's RMS change {change:.4g} ({share:.2f} % of the signal's RMS)")
    repeated = capture.with_data(capture.data.repeat(4, 0).repeat(4, 1))
    images = [rgb(c, 0, 0, side) for c in (repeated, bicubic(capture), network, projected)]
    peak = np.percentile(images[0], 99.5)
    images = [np.clip(p / peak, 0, 1) for p in images]
    return [(images[0], "real IMEC capture (noisy), ×4 pixels"), (images[1], "bicubic"), (images[2], "network"),
            (images[3], "+ consistency"), (np.clip(0.5 + 8 * (images[3] - images[2]), 0, 1),
                                           f"its change ×8 ({share:.1f} % RMS)"),
            (np.ones_like(images[0]), "")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--side", type=int, default=96, help="crop side on the high-resolution grid (pixels)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model, ckpt = load_checkpoint(shipped_model("sr4"))
    rows = [scene_row(model, ckpt, args.side, 80, 60), capture_row(model, ckpt, args.side, 240, 640)]
    print(save_image_grid(rows, args.out, (1500, 560)))


if __name__ == "__main__":
    main()
