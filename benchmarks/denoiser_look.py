"""A real IMEC capture next to its subspace-denoiser restorations, for the eye (docs/benchmarks.md, session 9).

Both captures of ``../shared/data/envi`` give the shared noise model and intensity scale, as
``hiralign adapt --task sensor`` makes them; the leaves capture is denoised on that scale with
each eigen-image filter (the built-in NLM + Wiener, and BM3D when ``bm3d`` is installed) and a
crop of capture | filters is written as one PNG, with the RMS difference and the mean-spectrum
drift printed.

Usage::

    python benchmarks/denoiser_look.py --out docs/figures/real_imec_leaves_bm3d.png
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiralign import io  # noqa: E402
from hiralign.classical import SubspaceConfig, bm3d_available, subspace_denoise  # noqa: E402
from hiralign.intensity import noise_on_network_scale, scale_for_task  # noqa: E402
from hiralign.noise import estimate_noise  # noqa: E402

ENVI = ROOT.parent / "shared" / "data" / "envi"
CAPTURES = ("VIS_leaves_FD1_FN0_original.hdr", "RedYellowSet_3_FD1_FN0.hdr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--crop", type=int, nargs=3, default=(60, 200, 128), metavar=("TOP", "LEFT", "SIDE"))
    parser.add_argument("--zoom", type=int, default=3)
    args = parser.parse_args()
    captures = [io.load(ENVI / name) for name in CAPTURES]
    scale, model = scale_for_task("sensor", captures), estimate_noise(captures)
    capture = captures[0]
    per_band = scale.per_band(capture.n_bands)
    normalised = capture.with_data((capture.data / per_band).astype(np.float32))
    noise = noise_on_network_scale(model, scale)
    filters = ["nlm"] + (["bm3d"] if bm3d_available() else [])
    outs = [subspace_denoise(normalised, SubspaceConfig(eigen_filter=f), noise=noise) for f in filters]
    for f, out in zip(filters, outs):
        drift = np.max(np.abs(out.data.mean((0, 1)) / normalised.data.mean((0, 1)) - 1)) * 100
        print(f"{f}: mean-spectrum drift {drift:.3f} %")
    if len(outs) == 2:
        diff = np.sqrt(np.mean((outs[1].data.astype(float) - outs[0].data) ** 2))
        print(f"RMS bm3d − nlm {diff:.3g} ({100 * diff / np.sqrt(np.mean(outs[0].data.astype(float) ** 2)):.2f} % of "
              f"the signal's RMS)")
    top, left, side = args.crop
    rgbs = [c.pseudo_rgb()[top:top + side, left:left + side] for c in [normalised, *outs]]
    peak = np.percentile(rgbs[0], 99.5)  # one stretch for all panels
    panel = np.concatenate([np.clip(r / peak, 0, 1) for r in rgbs], axis=1)
    panel = panel.repeat(args.zoom, axis=0).repeat(args.zoom, axis=1)
    print(io.save_rgb(panel, args.out))


if __name__ == "__main__":
    main()
