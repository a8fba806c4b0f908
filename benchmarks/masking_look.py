"""``inpaint`` on a real IMEC capture: the network, kept values, and the ``interpolate`` completion, for the eye.

A crop of ``../shared/data/envi/VIS_leaves_FD1_FN0_original.hdr`` (16 bands, raw sensor noise),
divided by its maximum, is the reference; ``inpaint`` zeroes 90 % of its values (seed 0). The
warm-started 31-band ``inpaint`` network (``.tmp/models/inpaint-800``, docs/benchmarks.md
session 12) restores it through :func:`hiralign.restoration.restore_capture` (what ``hiralign
restore`` runs; the 16 bands are resampled onto the model's and back, so the values are kept on
the capture's own bands), once as it is and once with the observed values kept (session 12); beside
them the per-band interpolation and what ``hiralign restore`` makes with ``auto``'s proxy source
for this task since session 13, ``interpolate`` (the interpolation refined on the spectra's
subspace, :mod:`hiralign.completion`, through the same ``restore_capture``). Prints PSNR (peak = the
reference's maximum, PROTOCOL.md's real-sensor rule) and SAM against the capture. Usage::

    python benchmarks/masking_look.py --model .tmp/models/inpaint-800 --out docs/figures/inpaint_real_imec.png
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
from masking_consistency import interpolated  # noqa: E402

from hiralign import io  # noqa: E402
from hiralign.degrade import degrade_cube  # noqa: E402
from hiralign.ensemble import ProxyConfig  # noqa: E402
from hiralign.evaluate import score_cube  # noqa: E402
from hiralign.models.checkpoint import load_checkpoint  # noqa: E402
from hiralign.proxy import TileConfig  # noqa: E402
from hiralign.restoration import Recipe, restore_capture  # noqa: E402

DATA = ROOT.parent / "shared" / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--side", type=int, default=160)
    args = parser.parse_args()
    torch.set_num_threads(2)
    capture = io.load(DATA / "envi" / "VIS_leaves_FD1_FN0_original.hdr")
    capture = capture.crop(60, 240, args.side, args.side)
    reference = capture.with_data((capture.data / capture.data.max()).astype(np.float32))
    observed = degrade_cube(reference, "inpaint", 0)
    model, ckpt = load_checkpoint(args.model)
    outputs = {}
    for kept in (False, True):
        recipe = Recipe(task="inpaint", proxy=ProxyConfig(source="model"), consistency=kept)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # 16 bands resampled onto the model's 31
            outputs["network + kept values" if kept else "network"] = restore_capture(
                model, ckpt, observed, recipe, tiles=TileConfig())
    outputs["interpolation"] = interpolated(observed, "inpaint")
    completion = Recipe(task="inpaint", proxy=ProxyConfig(source="interpolate"), fuse=1.0, consistency=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        outputs["interpolate (auto)"] = restore_capture(model, ckpt, observed, completion, tiles=TileConfig())
    titles = [(reference, "real IMEC capture (reference)"), (observed, "inpaint: 90 % zeroed")]
    for label, cube in outputs.items():
        s = score_cube(cube, reference)
        print(f"IMEC leaves {label}: {s.psnr:.2f} dB, SSIM {s.ssim:.3f}, SAM {s.sam:.2f}")
        titles.append((cube, f"{label} ({s.psnr:.2f} dB, SAM {s.sam:.1f}°)"))
    peak = np.percentile(reference.pseudo_rgb(), 99.5)
    print(save_image_grid([[(cube.pseudo_rgb() / peak, title) for cube, title in titles]], args.out, (1800, 340)))


if __name__ == "__main__":
    main()
