"""The real-sensor benchmark (PROTOCOL.md "Real-sensor benchmark"): captures like the IMEC files, with ground truth.

Clean KAIST (or CAVE) scenes are linearly resampled to the 16 wavelengths of
``VIS_leaves_FD1_FN0_original.hdr``, scaled so their 99th percentile is 250 counts, given
Poisson–Gaussian noise var = a·μ + b in counts — per band (a, b) as ``hiralign noise``
estimates them on the two real IMEC captures (shared model), and a variant with 4× that
variance (the issue's measurement) or 4× darker (p99 62.5 counts, the same sensor) —
rounded, clipped to [0, 1023] and stored as uint16 ENVI with that header's wavelengths:
exactly the form of the real files. Rows:

* ``noisy``: the capture itself;
* ``source``: the shipped (or ``--model``) sensor model without adaptation (``hiralign proxy``);
* ``proxies``: the run's stage-1 labels (its ``auto`` proxy source: the subspace denoiser on
  the stabilised capture), multiplied back by the run's intensity scale;
* ``adapt``: ``hiralign adapt --task sensor`` with its defaults (no clean references);
* ``bm4d``: BM4D with a blind per-band σ (the benchmark engineer's cached helper,
  ``labels.bm4d_cached``; FACTS.md).

PSNR per band with peak = the clean cube's maximum, averaged over bands and scenes; SAM in
degrees; wall time of every stage (from the run's ``report.json``) and of BM4D.

``--real-captures`` instead runs ``hiralign adapt --task sensor`` with its defaults on the two
real IMEC captures (one run: one sensor, one shared noise model; no ground truth) and
checks what issue #12 asks of it: the restored cube has the input's shape, wavelengths and
uint16 counts; the mean spectrum drifts < 2 %; the estimated noise drops ≥ 3×; no seam in
the method noise. It renders before/after pseudo-RGBs (one
stretch for both) and a 4× crop zoom into ``--figures`` (docs/figures/real_<name>*.png).

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/real_sensor.py --out bench-out/real_sensor
    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/real_sensor.py --real-captures --out bench-out/real_captures
    .venv/bin/python benchmarks/real_sensor.py --quick --out bench-out/quick/real_sensor   # 64² crops, 2 scenes
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiralign import io  # noqa: E402
from hiralign.atomic import write_json, write_text  # noqa: E402
from hiralign.bands import resample_bands  # noqa: E402
from hiralign.cube import Cube  # noqa: E402
from hiralign.noise import NoiseModel, estimate_noise  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
from labels import SETS, bm4d_cached, load_set  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
CAPTURES = ("VIS_leaves_FD1_FN0_original.hdr", "RedYellowSet_3_FD1_FN0.hdr")
#: Robust peak of the simulated captures (counts): the 99th percentile, as in PROTOCOL.md.
P99_COUNTS = 250.0
#: The sensor's largest count (10 bits).
MAX_COUNT = 1023
#: Variants: name -> (p99 in counts, variance factor on a and b).
VARIANTS = {"real": (P99_COUNTS, 1.0), "noisy4": (P99_COUNTS, 4.0), "dark4": (P99_COUNTS / 4, 1.0)}


def real_noise() -> tuple[NoiseModel, np.ndarray]:
    """The shared noise model of the two real IMEC captures (counts) and their wavelengths (nm)."""
    cubes = [io.load(SHARED / "envi" / name) for name in CAPTURES]
    model = estimate_noise(cubes)
    return model, np.asarray(cubes[0].wavelengths, dtype=np.float64)


def simulate(clean: Cube, wavelengths: np.ndarray, noise: NoiseModel, p99: float, factor: float,
             seed: int) -> tuple[Cube, Cube]:
    """(clean counts cube, noisy uint16-like capture), both on the loaded scale (counts / 65535)."""
    on_bands = resample_bands(clean, wavelengths)
    data = np.clip(on_bands.data.astype(np.float64), 0, None)
    counts = data * (p99 / max(float(np.percentile(data, 99)), 1e-12))
    a, b = (np.asarray(v, dtype=np.float64) * factor for v in noise.arrays())
    rng = np.random.default_rng(seed)
    noisy = counts + rng.standard_normal(counts.shape) * np.sqrt(a * counts + b)
    noisy = np.clip(np.round(noisy), 0, MAX_COUNT)
    name = clean.name
    ref = Cube((counts / 65535).astype(np.float32), wavelengths=wavelengths, name=name)
    return ref, Cube((noisy / 65535).astype(np.float32), wavelengths=wavelengths, name=name)


def scores(est: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """PSNR (dB, per band with peak = the clean maximum, averaged) and SAM (degrees)."""
    peak = float(ref.max())
    e, r = est.astype(np.float64) / peak, ref.astype(np.float64) / peak
    mse = np.mean((e - r) ** 2, axis=(0, 1))
    psnr = float(np.mean(-10 * np.log10(np.maximum(mse, 1e-12))))
    dot = np.sum(e * r, axis=-1)
    norms = np.linalg.norm(e, axis=-1) * np.linalg.norm(r, axis=-1)
    valid = norms > 0
    sam = float(np.degrees(np.mean(np.arccos(np.clip(dot[valid] / norms[valid], -1, 1)))))
    return {"psnr": psnr, "sam": sam}


def mean_rows(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: round(float(np.mean([r[k] for r in rows])), 3) for k in rows[0]}



def run_adapt(captures: list[Path], run: Path, args: argparse.Namespace, label: str = "") -> tuple[dict, float, str]:
    """``hiralign adapt --task sensor`` on ``captures`` into ``run``: (report.json, wall s, stderr)."""
    command = [sys.executable, "-m", "hiralign.cli", "adapt", "--task", "sensor", "--target", *map(str, captures),
               "--out", str(run), "--device", "cpu", *(["--model", args.model] if args.model else []),
               *args.adapt_args]
    print(" ".join(command), flush=True)
    begin = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - begin
    if done.returncode != 0:
        print(done.stderr[-3000:], file=sys.stderr)
        raise SystemExit(f"adapt failed{label} (exit {done.returncode})")
    return json.loads((run / "report.json").read_text()), wall, done.stderr

def source_only(captures: list[Path], refs: list[Cube], folder: Path, args: argparse.Namespace) -> dict:
    """The ``source`` row: ``hiralign proxy`` with the sensor model alone (no adaptation, no classical help)."""
    command = [sys.executable, "-m", "hiralign.cli", "proxy", *map(str, captures), "--out", str(folder),
               "--device", "cpu", *(["--model", args.model] if args.model else ["--task", "sensor"])]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return mean_rows([scores(io.load(folder / cap.name).data, ref.data) for cap, ref in zip(captures, refs)])


def run_variant(variant: str, clean_set: list[Cube], wavelengths: np.ndarray, noise: NoiseModel, out: Path,
                args: argparse.Namespace) -> dict:
    p99, factor = VARIANTS[variant]
    folder = out / variant
    captures, refs = [], []
    for i, clean in enumerate(clean_set):
        ref, noisy = simulate(clean, wavelengths, noise, p99, factor, seed=1000 + i)
        captures.append(io.save(noisy, folder / "captures" / f"{clean.name}.hdr", dtype="uint16"))
        refs.append(ref)
    loaded = [io.load(p) for p in captures]
    result: dict = {"variant": variant, "p99_counts": p99, "variance_factor": factor, "scenes": len(refs),
                    "rows": {}, "wall_s": {}}
    result["rows"]["noisy"] = mean_rows([scores(c.data, r.data) for c, r in zip(loaded, refs)])

    run = folder / "run"
    report, wall, _ = run_adapt(captures, run, args, f" on {variant}")
    scale = np.asarray(report["intensity"]["values"], dtype=np.float32)
    source, adapted = [], []
    for cap, ref in zip(captures, refs):
        proxy = io.load(run / "proxies" / cap.name).data * scale  # proxies are on the network's scale
        source.append(scores(proxy, ref.data))
        adapted.append(scores(io.load(run / "restored" / cap.name).data, ref.data))
    result["rows"]["source"] = source_only(captures, refs, folder / "source", args)
    result["rows"]["proxies"] = mean_rows(source)
    result["rows"]["adapt"] = mean_rows(adapted)
    result["wall_s"]["adapt"] = round(wall, 1)
    result["wall_s"]["adapt_stages"] = {**report["timings_s"], **report.get("other_timings_s", {})}
    result["quality"] = {name: {"noise_ratio": q["noise"]["median_ratio"],
                                "drift_percent": q["spectra"]["max_abs_drift_percent"],
                                "seam": (q.get("seams") or {}).get("method_noise_border_step_ratio")}
                         for name, q in report["quality"].items()}
    if not args.skip_bm4d:
        from hiralign.ensemble import bm4d_available

        if bm4d_available():
            outs = [bm4d_cached(c, folder / "bm4d") for c in loaded]
            result["rows"]["bm4d"] = mean_rows([scores(o.data, r.data) for (o, _), r in zip(outs, refs)])
            result["wall_s"]["bm4d"] = round(sum(t for _, t in outs), 1)
        else:
            print("bm4d: skipped (pip install bm4d)", flush=True)
    return result


# ------------------------------------------------------------------ the real captures
#: Stretch of the figures: each channel divided by the input's percentile (the same for before and after).
STRETCH_PERCENTILE = 99.5
#: The crop zoom: side of the crop (px, from the image centre) and its magnification.
ZOOM_SIDE, ZOOM = 64, 4


def rgb_image(cube: Cube, white: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 pseudo-RGB (bands nearest 660/550/470 nm) divided by ``white``, gamma 1/2.2."""
    rgb = np.clip(cube.pseudo_rgb().astype(np.float64) / white, 0, 1) ** (1 / 2.2)
    return np.round(255 * rgb).astype(np.uint8)


def figures(before: Cube, after: Cube, stem: Path) -> list[Path]:
    """``<stem>.png`` (before | after) and ``<stem>_zoom.png`` (the centre crop, ×4, before | after)."""
    from PIL import Image

    white = np.maximum(np.percentile(before.pseudo_rgb(), STRETCH_PERCENTILE, axis=(0, 1)), 1e-9)
    a, b = rgb_image(before, white), rgb_image(after, white)
    gap = np.full((a.shape[0], 6, 3), 255, np.uint8)
    stem.parent.mkdir(parents=True, exist_ok=True)
    whole = stem.with_suffix(".png")
    Image.fromarray(np.concatenate([a, gap, b], axis=1)).save(whole)
    top, left = (a.shape[0] - ZOOM_SIDE) // 2, (a.shape[1] - ZOOM_SIDE) // 2
    crops = [np.kron(x[top:top + ZOOM_SIDE, left:left + ZOOM_SIDE], np.ones((ZOOM, ZOOM, 1), np.uint8))
             for x in (a, b)]
    zoom = stem.with_name(stem.name + "_zoom.png")
    Image.fromarray(np.concatenate([crops[0], np.full((crops[0].shape[0], 6, 3), 255, np.uint8), crops[1]],
                                   axis=1)).save(zoom)
    return [whole, zoom]


def real_captures(args: argparse.Namespace) -> None:
    """adapt --task sensor on both real captures (one run, one sensor) with defaults; the checks and figures."""
    captures = [SHARED / "envi" / name for name in CAPTURES]
    run = args.out / "run"
    report, wall, stderr = run_adapt(captures, run, args)
    print(stderr[-2000:], flush=True)
    rows = []
    for capture in captures:
        stem = capture.stem
        before, after = io.load(capture), io.load(run / "restored" / f"{stem}.hdr")
        q = report["quality"][stem]
        seams = q.get("seams") or {}
        row = {"capture": capture.name, "shape_in": list(before.shape), "shape_out": list(after.shape),
               "same_wavelengths": bool(np.allclose(before.wavelengths, after.wavelengths)),
               "dtype_out": after.metadata.get("dtype"),
               "counts_out_max": int(round(float(after.data.max()) * 65535)),
               "counts_in_max": int(round(float(before.data.max()) * 65535)),
               "mean_drift_percent": q["spectra"]["max_abs_drift_percent"],
               "region_drift_percent": q["spectra"]["max_abs_region_drift_percent"],
               "noise_median_ratio": q["noise"]["median_ratio"], "noise_min_ratio": q["noise"]["min_ratio"],
               "sigma_before_counts": round(float(np.median(q["noise"]["sigma_before"])), 3),
               "sigma_after_counts": round(float(np.median(q["noise"]["sigma_after"])), 3),
               "seam_border": seams.get("method_noise_border_step_ratio"),
               "seam_null": seams.get("method_noise_null_step_ratio"),
               "seam_restored": seams.get("restored_border_step_ratio"),
               "seam_input": seams.get("input_border_step_ratio"),
               "method_noise": {k: q["method_noise"][k] for k in ("mean_abs_corr_with_restored",
                                                                  "mean_lag1_autocorr",
                                                                  "mean_lowpass_energy_fraction")},
               "figures": [str(p) for p in figures(before, after, args.figures / f"real_{stem}")]}
        rows.append(row)
        print(json.dumps(row, indent=1), flush=True)
    write_json(args.out / "real_captures.json", {"model": args.model or "shipped", "adapt_args": args.adapt_args,
                                                "wall_s": round(wall, 1), "timings_s": report["timings_s"],
                                                "noise": report["noise"], "intensity": report["intensity"],
                                                "captures": rows})
    lines = ["| capture | shape in = out | wavelengths | stored | mean-spectrum drift (image / regions) | "
             "noise σ before → after (median, counts) | noise drop (median / worst band) | seam ratio "
             "(method noise at borders / off borders; restored; input) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        shape = "×".join(map(str, r["shape_in"]))
        lines.append(f"| {Path(r['capture']).stem} | {r['shape_in'] == r['shape_out']} ({shape}) "
                     f"| {'same' if r['same_wavelengths'] else 'DIFFER'} | {r['dtype_out']} "
                     f"| {r['mean_drift_percent']:.2f} % / {r['region_drift_percent']:.2f} % "
                     f"| {r['sigma_before_counts']} → {r['sigma_after_counts']} "
                     f"| {r['noise_median_ratio']}× / {r['noise_min_ratio']}× "
                     f"| {r['seam_border']} / {r['seam_null']}; {r['seam_restored']}; {r['seam_input']} |")
    stages = ", ".join(f"{k} {v} s" for k, v in {**report["timings_s"], **report.get("other_timings_s", {})}.items())
    text = "\n".join(lines) + f"\n\nadapt wall time {wall:.0f} s ({stages})\n"
    write_text(args.out / "real_captures.md", text)
    print(text)


def table(results: list[dict], noise: NoiseModel) -> str:
    a, b = noise.arrays()
    lines = [f"Simulated IMEC captures ({results[0]['scenes']} scenes, 16 bands, uint16 counts); real-capture noise "
             f"a = {np.median(a):.3f} (median, {a.min():.3f}–{a.max():.3f}), b = {np.median(b):.2f} counts² "
             f"(median, {b.min():.2f}–{b.max():.2f}).", "",
             "| variant | row | PSNR (dB) | SAM (°) | wall (s) |", "|---|---|---|---|---|"]
    for res in results:
        label = {"real": "real noise", "noisy4": "4× variance", "dark4": "4× darker"}[res["variant"]]
        for row, vals in res["rows"].items():
            wall = res["wall_s"].get(row, "")
            lines.append(f"| {label} | {row} | {vals['psnr']:.2f} | {vals['sam']:.2f} | {wall} |")
    lines.append("")
    for res in results:
        stages = ", ".join(f"{k} {v}" for k, v in res["wall_s"]["adapt_stages"].items())
        lines.append(f"- {res['variant']}: adapt stages (s): {stages}")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "bench-out" / "real_sensor")
    parser.add_argument("--set", default="kaist", choices=sorted(SETS))
    parser.add_argument("--scenes", type=int, default=4, help="first N scenes of the set")
    parser.add_argument("--crop", type=int, default=0, help="centred crop side (0: whole 256² scenes)")
    parser.add_argument("--variants", nargs="+", default=["real", "noisy4"], choices=sorted(VARIANTS))
    parser.add_argument("--model", default=None, help="sensor source model (default: the shipped one)")
    parser.add_argument("--skip-bm4d", action="store_true")
    parser.add_argument("--quick", action="store_true", help="64² crops of 2 scenes, 20 finetuning steps")
    parser.add_argument("--real-captures", action="store_true",
                        help="adapt the two real IMEC captures instead (checks and figures, no ground truth)")
    parser.add_argument("--figures", type=Path, default=ROOT / "docs" / "figures",
                        help="where --real-captures writes real_<capture>.png and real_<capture>_zoom.png")
    parser.add_argument("adapt_args", nargs=argparse.REMAINDER, help="after --: extra hiralign adapt options")
    args = parser.parse_args()
    args.adapt_args = [a for a in args.adapt_args if a != "--"]
    if args.quick:
        args.scenes, args.crop = min(args.scenes, 2), args.crop or 64
        args.adapt_args += ["--steps", "20", "--guides", "1", "--tile", "64"]
        args.variants = args.variants[:1]
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    if args.real_captures:
        real_captures(args)
        return
    noise, wavelengths = real_noise()
    clean_set = load_set(args.set, args.crop)[: args.scenes]
    results = [run_variant(v, clean_set, wavelengths, noise, args.out, args) for v in args.variants]
    write_json(args.out / "results.json", {"noise": noise.to_dict(), "results": results,
                                           "set": args.set, "crop": args.crop, "adapt_args": args.adapt_args})
    text = table(results, noise)
    write_text(args.out / "results.md", text)
    print(text)


if __name__ == "__main__":
    main()
