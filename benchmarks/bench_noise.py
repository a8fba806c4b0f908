"""Accuracy and speed of the blind noise estimator (:mod:`hiralign.noise`) on known synthetic noise.

Captures shaped like the IMEC files (256×512×16, 10-bit counts stored as uint16): a smooth
random scene at 20–250 counts, Poisson–Gaussian noise var = a_b·μ + b_b with a_b from 0.1 to
0.3 and b_b from 3 to 9 counts² across the bands, rounded and clipped like the real files.
Per band, the relative errors of σ_b (against sqrt(a_b·mean_b + b_b + 1/12)), a_b and b_b
(+1/12 of rounding) over several seeds: bias, rms and worst; and the median estimation time.

Usage:
    python benchmarks/bench_noise.py [--seeds 5] [--height 256] [--width 512] [--bands 16] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
from scipy.ndimage import gaussian_filter

from hiralign.cube import Cube
from hiralign.noise import analyse

COUNTS = {"scaling": {"divisor": 65535.0, "reason": "uint16 full scale"}, "dtype": "uint16"}


def capture(rng: np.random.Generator, shape: tuple[int, int, int], a: np.ndarray,
            b: np.ndarray) -> tuple[Cube, np.ndarray]:
    """(a loaded-like uint16 capture, its clean counts)."""
    base = gaussian_filter(rng.random(shape), (6, 6, 1))
    clean = 20 + 230 * (base - base.min()) / (base.max() - base.min())
    noisy = rng.poisson(clean / a) * a + rng.normal(size=shape) * np.sqrt(b)
    stored = np.clip(np.rint(noisy), 0, 1023)
    return Cube(data=(stored / 65535).astype(np.float32), name="synthetic", metadata=dict(COUNTS)), clean


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--height", type=int, default=256)
    parser.add_argument("--width", type=int, default=512)
    parser.add_argument("--bands", type=int, default=16)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    shape = (args.height, args.width, args.bands)
    a_true, b_true = np.linspace(0.1, 0.3, args.bands), np.linspace(3.0, 9.0, args.bands)
    errors: dict[str, list[np.ndarray]] = {"sigma": [], "a": [], "b": []}
    seconds = []
    for seed in range(args.seeds):
        cube, clean = capture(np.random.default_rng(100 + seed), shape, a_true, b_true)
        start = time.perf_counter()
        model = analyse(cube).model
        seconds.append(time.perf_counter() - start)
        sigma_true = np.sqrt(a_true * clean.mean(axis=(0, 1)) + b_true + 1 / 12)
        errors["sigma"].append(np.array(model.sigma) / sigma_true - 1)
        errors["a"].append(np.array(model.a) / a_true - 1)
        errors["b"].append(np.array(model.b) / (b_true + 1 / 12) - 1)
    result = {"shape": list(shape), "seeds": args.seeds, "median_seconds": round(statistics.median(seconds), 3)}
    for name, values in errors.items():
        e = np.concatenate(values)
        result[name] = {"bias": round(float(e.mean()), 4), "rms": round(float(np.sqrt(np.mean(e ** 2))), 4),
                        "worst": round(float(np.abs(e).max()), 4)}
        print(f"{name:>5}: bias {e.mean():+.3f}  rms {np.sqrt(np.mean(e ** 2)):.3f}  worst {np.abs(e).max():.3f}")
    print(f"median time {result['median_seconds']:.3f} s for {shape}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
