"""Time of the sr4 consistency projection (hiralign.consistency) per cube size, median of repeats.

Each size's random cube is shrunk by sr4's own degradation, perturbed, and projected back;
the script prints the median time and how far the projection's own down-sampling misses the
observation (float32 rounding).

Usage::

    python benchmarks/bench_consistency.py [--sizes 256 1024] [--bands 31] [--repeats 5] [--threads 2]
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hiralign.consistency import project_onto_observation  # noqa: E402
from hiralign.degrade import degrade  # noqa: E402


def shrink(data: np.ndarray) -> np.ndarray:
    return degrade(torch.from_numpy(np.ascontiguousarray(data)).permute(2, 0, 1), "sr4", 0).permute(1, 2, 0).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 1024], help="high-resolution side (pixels)")
    parser.add_argument("--bands", type=int, default=31)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    for side in args.sizes:
        scene = rng.random((side, side, args.bands)).astype(np.float32)
        observed = shrink(scene)
        guess = scene + 0.01 * rng.standard_normal(scene.shape).astype(np.float32)
        project_onto_observation(guess, observed, "sr4")  # the cached pseudo-inverses
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            projected = project_onto_observation(guess, observed, "sr4")
            times.append(time.perf_counter() - start)
        miss = float(np.abs(shrink(projected) - observed).max())
        print(f"{side}²×{args.bands}: median {np.median(times):.3f} s over {args.repeats}, "
              f"largest |A x − y| {miss:.2g}")


if __name__ == "__main__":
    main()
