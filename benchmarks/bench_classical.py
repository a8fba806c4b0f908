"""Speed of the subspace denoiser's stages (hiralign.classical), medians against a same-run baseline.

Cases: a 256² × 31 cube with blind per-band σ (``gaussian``-like, k = 4) and a 256² × 16
cube with a known noise model (``sensor``-like, every component kept), each with the
session-4 denoiser (NLM alone, no robust fit) as the baseline, + the Wiener stage, + the
robust fit with session 5's settings, and today's default. Also a 512² × 31 cube (CAVE size) with the default. Synthetic
low-rank scenes; times only (quality is in docs/benchmarks.md).

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python benchmarks/bench_classical.py [--repeats 5]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiralign.classical import SubspaceConfig, subspace_denoise  # noqa: E402
from hiralign.cube import Cube  # noqa: E402
from hiralign.noise import NoiseModel  # noqa: E402

CONFIGS = {
    "NLM only (baseline)": SubspaceConfig(wiener=False, robust=False, strength=0.8, stabilised_threshold=1.3),
    "+ Wiener": SubspaceConfig(robust=False),
    "+ Wiener + robust, session-5 settings (k ≥ 3, h 0.6, 8² windows)": SubspaceConfig(
        min_components=3, strength=0.6, wiener_patch=8, eigen_noise=False),
    "+ Wiener + robust, session-8 settings (NLM search radius 6)": SubspaceConfig(patch_distance=6),
    "+ Wiener + robust (default)": SubspaceConfig(),
}


def scene(side: int, bands: int, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    maps = gaussian_filter(rng.random((side, side, 4)), sigma=(4, 4, 0))
    spectra = 0.5 + 0.4 * np.sin(np.linspace(0, 3, bands)[None] * (np.arange(4)[:, None] + 1))
    clean = maps @ spectra
    return (clean - clean.min()) / np.ptp(clean)


def timed(cube: Cube, config: SubspaceConfig, noise: NoiseModel | None, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subspace_denoise(cube, config, noise=noise)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    blind = Cube((scene(256, 31) + rng.normal(size=(256, 256, 31)) * 0.1).astype(np.float32), name="blind")
    counts = 250 * scene(256, 16)
    a, b = 0.13, 6.4
    sensor = Cube((counts + rng.normal(size=counts.shape) * np.sqrt(a * counts + b)).astype(np.float32), name="pg")
    model = NoiseModel(sigma=(float(np.sqrt(a * counts.mean() + b)),) * 16, a=(a,) * 16, b=(b,) * 16,
                       mean=tuple(counts.mean((0, 1))), scale=(1.0,) * 16, units="counts")
    print("| case | setting | median (s) | × baseline |\n|---|---|---|---|")
    for label, cube, noise in (("256² × 31, blind σ", blind, None), ("256² × 16, noise model", sensor, model)):
        base = None
        for name, config in CONFIGS.items():
            t = timed(cube, config, noise, args.repeats)
            base = base or t
            print(f"| {label} | {name} | {t:.2f} | {t / base:.2f} |", flush=True)
    large = Cube((scene(512, 31) + rng.normal(size=(512, 512, 31)) * 0.1).astype(np.float32), name="large")
    t = timed(large, SubspaceConfig(), None, max(1, args.repeats // 2))
    print(f"| 512² × 31, blind σ | default | {t:.2f} | |")


if __name__ == "__main__":
    main()
