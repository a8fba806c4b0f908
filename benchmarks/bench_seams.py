"""Tile seams of the shipped models: gradient excess in the blended zones (``seam_excess``).

Each shipped model restores a degraded KAIST scene (its task, seed 0) and, for the
denoisers, the real IMEC capture ``VIS_leaves`` (scaled by its 99.9th percentile and
resampled 16 → 31 bands), tiled with several settings; the tiled result is compared with
the same model run on the whole image at once (``reference``), so only what tiling adds
is measured. A ratio of 1 means no seam; z is in standard errors of the non-seam profile.

Usage::

    .venv/bin/python benchmarks/bench_seams.py            # ≈ 2 min on 2 cores
    .venv/bin/python benchmarks/bench_seams.py --quick    # gaussian on KAIST, default tiles only
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"
SETTINGS = [(128, 16, 16), (128, 16, 0), (32, 8, 16), (32, 8, 8), (32, 8, 0)]  # first: the default


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["gaussian", "complex", "sr4"])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from hiralign.bands import match_bands
    from hiralign.degrade import degrade_cube
    from hiralign.io import load
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.proxy import TileConfig, restore_cube, seam_excess
    from hiralign.resources import shipped_model

    warnings.simplefilter("ignore")
    kaist = load(DATA / "kaist" / "scene01.mat")
    imec_path = DATA / "envi" / "VIS_leaves_FD1_FN0_original.hdr"
    imec = load(imec_path) if imec_path.is_file() else None
    if imec is not None:
        imec = imec.with_data(imec.data / np.percentile(imec.data, 99.9))
    tasks = ["gaussian"] if args.quick else args.tasks
    settings = SETTINGS[:1] if args.quick else SETTINGS
    rows = []
    print(f"{'model':9} {'target':6} {'tile/overlap/context':>21} {'rows ratio':>11} {'z':>6} "
          f"{'cols ratio':>11} {'z':>6}")
    for task in tasks:
        model, ckpt = load_checkpoint(shipped_model(task), "cpu")
        targets = {"kaist": degrade_cube(kaist, task, 0)}
        if imec is not None and ckpt.scale == 1 and not args.quick:
            targets["imec"] = match_bands(imec, ckpt.bands, np.asarray(ckpt.wavelengths))[0]
        for name, obs in targets.items():
            whole = restore_cube(model, obs, scale=ckpt.scale, tiles=TileConfig(tile=max(obs.shape[:2]), overlap=0))
            for tile, overlap, context in settings:
                if tile >= max(obs.shape[:2]):
                    continue
                tiles = TileConfig(tile=tile, overlap=overlap, context=context)
                out = restore_cube(model, obs, scale=ckpt.scale, tiles=tiles)
                seams = seam_excess(out.data, tiles, ckpt.scale, reference=whole.data)
                r, c = seams.get("rows", {}), seams.get("cols", {})
                rows.append({"model": task, "target": name, "tile": tile, "overlap": overlap, "context": context,
                             **{f"{k}_{m}": v for k, d in (("rows", r), ("cols", c)) for m, v in d.items()}})
                print(f"{task:9} {name:6} {f'{tile}/{overlap}/{context}':>21} {r.get('ratio', np.nan):11.6f} "
                      f"{r.get('z', np.nan):6.1f} {c.get('ratio', np.nan):11.6f} {c.get('z', np.nan):6.1f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
