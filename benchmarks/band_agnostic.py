"""Band-agnostic restorers against the 31-band compact model, on every band layout we have.

Scores each checkpoint (``LABEL=FOLDER``) under one task with the observation made by
:func:`hiralign.degrade.degrade_cube` (seed 0, each cube on its own), restoring with the
default tiling of :func:`hiralign.proxy.restore_cube`:

* ``kaist`` / ``cave``: the 31-band scenes of ``../shared/data`` as they are;
* ``imec16``: the same scenes linearly resampled to the 16 wavelengths of the real IMEC
  capture ``envi/VIS_leaves_FD1_FN0_original.hdr`` (476–629 nm);
* ``many``: MUUFL (72 bands), ROSIS Pavia (103), AVIRIS (224, two cubes) and Fenix (450),
  each divided by its 99.9th percentile (the noise tasks assume a [0, 1] scale); scored
  against that scaled original, which carries the sensor's own noise (a rough PSNR), plus
  shape in = shape out, finiteness and the time per cube;
* ``seams``: the mean |gradient| of the restored KAIST cubes on the tile borders (the rows
  and columns where one tile's blending ramp starts or ends) over that elsewhere, next to
  the same ratio of the untiled (whole-image) restoration and of the clean cubes (the
  null: ≈ 1 when nothing happens on the tile grid), and the PSNR between tiled and
  whole-image restoration.

The data folder is ``../shared/data`` beside the checkout, or ``$HIRALIGN_DATA``.

A model with a fixed band count (``compact``) gets resampled input (the pipeline's
``match_bands``) and its output resampled back, as ``hiralign adapt`` does today.

    .venv/bin/python benchmarks/band_agnostic.py --task gaussian \\
        --models compact=resources/models/gaussian any=resources/models/gaussian-any \\
        --json .tmp/band_agnostic.json
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

DATA = Path(os.environ.get("HIRALIGN_DATA", REPO.parent / "shared" / "data"))
SETS = {"kaist": "kaist/scene0*.mat", "cave": "cave/*.mat"}
MANY = ("remote/muufl_crop_72.mat", "remote/reg_pavia_dataset.mat", "remote/aviris_crop_224.mat",
        "remote/salton_sea_roi.mat", "envi/fenix_geology.hdr")
IMEC_HEADER = "envi/VIS_leaves_FD1_FN0_original.hdr"


def load_quiet(path: Path, **kwargs):
    """A cube from ``path`` with the loader's warnings (odd headers, bad bands) silenced."""
    import warnings

    from hiralign import io

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cube = io.load(path, zero_nonfinite=True, **kwargs)
    cube.name = path.stem
    return cube


def restorer(model, ckpt):
    """cube → restored cube, resampling the bands when the model has a fixed band count."""
    from hiralign.bands import resample_bands
    from hiralign.proxy import restore_cube

    agnostic = bool(getattr(model, "band_agnostic", False))

    def run(cube, tiles=None):
        kwargs = {"tiles": tiles} if tiles is not None else {}
        if agnostic or (cube.n_bands == ckpt.bands and ckpt.wavelengths is None):
            return restore_cube(model, cube, scale=ckpt.scale, **kwargs)
        if cube.n_bands == ckpt.bands:  # 31-band targets are fed as they are (docs/models.md)
            return restore_cube(model, cube, scale=ckpt.scale, **kwargs)
        mapped = resample_bands(cube, np.asarray(ckpt.wavelengths))
        return resample_bands(restore_cube(model, mapped, scale=ckpt.scale, **kwargs), cube.wavelengths)

    return run


def score_set(run, clean: list, task: str) -> dict:
    """Mean PSNR/SSIM/SAM of ``run`` and of the observation on degraded ``clean`` cubes."""
    import torch.nn.functional as F

    from hiralign.degrade import crop_to_scale, degrade_cube, scale_factor
    from hiralign.evaluate import score_cube

    scale = scale_factor(task)
    rows, observed_rows, seconds = [], [], 0.0
    for cube in clean:
        cube = crop_to_scale(cube, task)
        observed = degrade_cube(cube, task, 0)
        started = time.perf_counter()
        restored = run(observed)
        seconds += time.perf_counter() - started
        rows.append(score_cube(restored, cube))
        if scale > 1:
            up = F.interpolate(observed.to_torch()[None], scale_factor=scale, mode="bicubic")[0]
            observed = cube.with_data(up.permute(1, 2, 0).numpy())
        observed_rows.append(score_cube(observed, cube))

    def mean(scores):
        return {k: round(float(np.mean([getattr(s, k) for s in scores])), 3) for k in ("psnr", "ssim", "sam")}

    return {"model": mean(rows), "observation": mean(observed_rows), "seconds_per_cube": round(seconds / len(clean), 2)}


def many_band(run, task: str) -> list[dict]:
    """Run on the many-band cubes: shape, finiteness, time, rough PSNR against the scaled original."""
    import torch.nn.functional as F

    from hiralign.degrade import crop_to_scale, degrade_cube, scale_factor
    from hiralign.evaluate import score_cube

    scale = scale_factor(task)
    rows = []
    for rel in MANY:
        path = DATA / rel
        if not path.exists():
            continue
        cube = load_quiet(path)
        cube = cube.with_data((cube.data / max(float(np.percentile(cube.data, 99.9)), 1e-6)).astype(np.float32))
        cube = crop_to_scale(cube, task)
        observed = degrade_cube(cube, task, 0)
        started = time.perf_counter()
        restored = run(observed)
        seconds = time.perf_counter() - started
        if scale > 1:  # the observation's score is that of its bicubic up-sampling
            up = F.interpolate(observed.to_torch()[None], scale_factor=scale, mode="bicubic")[0]
            observed = cube.with_data(up.permute(1, 2, 0).numpy())
        rows.append({"cube": path.name, "shape": list(cube.shape), "same_shape": restored.shape == cube.shape,
                     "finite": bool(np.isfinite(restored.data).all()), "seconds": round(seconds, 2),
                     "psnr_observed": round(score_cube(observed, cube).psnr, 2),
                     "psnr_restored": round(score_cube(restored, cube).psnr, 2)})
    return rows


def border_mask(length: int, tile: int, overlap: int) -> np.ndarray:
    """(length,) True at the pixels where a tile's blending ramp begins or ends."""
    from hiralign.proxy import tile_starts

    mask = np.zeros(length, dtype=bool)
    if length <= tile:
        return mask
    for start in tile_starts(length, tile, overlap):
        for edge in (start, start + overlap - 1, start + tile - overlap, start + tile - 1):
            if 0 < edge < length - 1:
                mask[edge] = True
    return mask


def seam_ratio(data: np.ndarray, tile: int, overlap: int) -> float:
    """Mean |∂| across tile borders / mean |∂| elsewhere, both directions, (H, W, B) data."""
    rows, cols = border_mask(data.shape[0], tile, overlap), border_mask(data.shape[1], tile, overlap)
    dy = np.abs(np.diff(data, axis=0)).mean(axis=(1, 2))  # (H-1,) between rows i and i+1
    dx = np.abs(np.diff(data, axis=1)).mean(axis=(0, 2))
    at = np.concatenate([dy[rows[:-1]], dx[cols[:-1]]])
    off = np.concatenate([dy[~rows[:-1]], dx[~cols[:-1]]])
    return float(at.mean() / off.mean()) if at.size else 1.0


def seams(run, clean: list, task: str) -> dict:
    """Seam ratios of tiled restorations (and of the clean cubes) and tiled-vs-whole PSNR."""
    from hiralign.degrade import degrade_cube
    from hiralign.metrics import psnr
    from hiralign.proxy import TileConfig

    tiles = TileConfig()
    restored_ratio, whole_ratio, clean_ratio, agreement = [], [], [], []
    for cube in clean:
        observed = degrade_cube(cube, task, 0)
        tiled = run(observed)
        whole = run(observed, TileConfig(tile=max(cube.shape[:2]), overlap=0))
        restored_ratio.append(seam_ratio(tiled.data, tiles.tile, tiles.overlap))
        whole_ratio.append(seam_ratio(whole.data, tiles.tile, tiles.overlap))
        clean_ratio.append(seam_ratio(cube.data, tiles.tile, tiles.overlap))
        agreement.append(float(psnr(tiled.to_torch()[None], whole.to_torch()[None])[0]))
    return {"tile": tiles.tile, "overlap": tiles.overlap, "ratio_restored": round(float(np.mean(restored_ratio)), 4),
            "ratio_whole": round(float(np.mean(whole_ratio)), 4), "ratio_clean": round(float(np.mean(clean_ratio)), 4),
            "psnr_tiled_vs_whole": round(float(np.mean(agreement)), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, metavar="LABEL=FOLDER")
    parser.add_argument("--task", default="gaussian")
    parser.add_argument("--parts", nargs="+", default=["kaist", "cave", "imec16", "many", "seams"],
                        choices=["kaist", "cave", "imec16", "many", "seams"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", default=None, help="write the numbers here")
    args = parser.parse_args()

    import torch

    from hiralign.bands import resample_bands
    from hiralign.models.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    if not DATA.is_dir():
        print(f"no data under {DATA}; nothing to measure")
        return 0
    sets = {name: [load_quiet(p) for p in sorted(DATA.glob(pattern))] for name, pattern in SETS.items()}
    imec = load_quiet(DATA / IMEC_HEADER).wavelengths
    sets["imec16"] = [resample_bands(c, imec) for c in sets["kaist"] + sets["cave"]]
    report: dict = {"task": args.task, "threads": args.threads, "models": {}}
    for item in args.models:
        label, _, folder = item.partition("=")
        model, ckpt = load_checkpoint(folder, "cpu")
        run = restorer(model, ckpt)
        entry: dict = {"folder": folder, "arch": ckpt.arch, "band_agnostic": bool(getattr(model, "band_agnostic",
                                                                                           False))}
        for part in args.parts:
            if part in ("kaist", "cave", "imec16"):
                entry[part] = score_set(run, sets[part], args.task)
            elif part == "many":
                entry[part] = many_band(run, args.task)
            elif part == "seams" and args.task != "sr4":
                entry[part] = seams(run, sets["kaist"], args.task)
            print(f"{label} {part}: {entry.get(part)}", flush=True)
        report["models"][label] = entry
    print(markdown(report))
    if args.json:
        from hiralign.atomic import write_json

        write_json(args.json, report)
    return 0


def markdown(report: dict) -> str:
    """The comparison table (PSNR dB / SAM ° per set) and the many-band check."""
    lines = ["| model | KAIST | CAVE | IMEC-16 (KAIST+CAVE) | s / 256² cube | seam ratio tiled (untiled) |",
             "|---|---|---|---|---|---|"]
    for label, entry in report["models"].items():
        cells = []
        for part in ("kaist", "cave", "imec16"):
            row = entry.get(part)
            cells.append(f"{row['model']['psnr']:.2f} / {row['model']['sam']:.1f}°" if row else "–")
        seconds = entry.get("kaist", {}).get("seconds_per_cube", "–")
        seam = entry.get("seams")
        seam_cell = f"{seam['ratio_restored']:.3f} ({seam['ratio_whole']:.3f})" if seam else "–"
        lines.append(f"| {label} | {' | '.join(cells)} | {seconds} | {seam_cell} |")
    first = next(iter(report["models"].values()), {})
    if "kaist" in first:
        obs = [f"{first[p]['observation']['psnr']:.2f} / {first[p]['observation']['sam']:.1f}°"
               for p in ("kaist", "cave", "imec16") if p in first]
        lines.append(f"| observation | {' | '.join(obs)} | | |")
    many = [(label, row) for label, entry in report["models"].items() for row in entry.get("many", [])]
    if many:
        lines += ["", "| model | cube | shape | same shape, finite | s | PSNR observed → restored |",
                  "|---|---|---|---|---|---|"]
        for label, row in many:
            lines.append(f"| {label} | {row['cube']} | {'×'.join(map(str, row['shape']))} | "
                         f"{row['same_shape'] and row['finite']} | {row['seconds']} | "
                         f"{row['psnr_observed']:.2f} → {row['psnr_restored']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
