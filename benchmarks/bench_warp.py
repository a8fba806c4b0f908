"""Benchmark of the warp-based spectral transfer on real KAIST proxies.

For each size (128², 256² crops; 512² = the four 256² scenes tiled 2×2), known motion and
index kind, a fresh child process runs one warp and reports wall and CPU seconds per stage,
its peak RSS, the RGB alignment PSNR and the spectral PSNR/SAM of the synthesized HSI
against the truly moved proxy (16-px border excluded). The parent repeats each cell,
prints medians as a Markdown table and writes every run to JSON.

Other processes share this CPU: the table also gives CPU seconds (time the process ran,
less sensitive to contention) and the load average seen during the run.

    .venv/bin/python benchmarks/bench_warp.py --sizes 128 256 512 --repeats 3 --out bench_warp.json
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

DATA = Path(os.environ.get("HIRALIGN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
KAIST_RGB = [24, 13, 5]
INDEXES = {"default": {}, "exact": {"index": "exact"}, "ivf300": {"retrieval_dims": 0}}


def kaist_proxy(size: int, scene: int = 1):
    """A real (size, size, 31) proxy: a centre crop of scene 1–4, or (scene 0) the four tiled 2×2."""
    import numpy as np

    from hiralign import io

    scenes = [io.load(DATA / "kaist" / f"scene{i:02d}.mat", wavelengths="420:720:10").data for i in (1, 2, 3, 4)]
    if scene:
        off = (256 - size) // 2
        return scenes[scene - 1][off:off + size, off:off + size]
    tile = np.concatenate([np.concatenate(scenes[:2], axis=1), np.concatenate(scenes[2:], axis=1)], axis=0)
    return tile[:size, :size]


def child(args: argparse.Namespace) -> None:
    import resource

    import numpy as np
    import torch

    from hiralign.warp import WarpConfig, warp
    from hiralign.warp.motions import move, spectral_angle, spectral_psnr

    torch.set_num_threads(args.threads)
    proxy = kaist_proxy(args.size, args.scene)
    truth = move(proxy, args.motion)
    guide = np.clip(truth[..., KAIST_RGB], 0.0, 1.0)
    config = WarpConfig(iterations=args.iterations, **INDEXES[args.index])
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    result = warp(proxy, guide, config, proxy_rgb=proxy[..., KAIST_RGB], device="cpu")
    wall = time.perf_counter() - start
    d = result.diagnostics
    print(json.dumps({
        "size": args.size, "motion": args.motion, "index": args.index, "threads": args.threads,
        "iterations": args.iterations, "wall": wall, "seconds": d["seconds"], "cpu_seconds": d["cpu_seconds"],
        "peak_rss_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6,
        "align_psnr": d["alignment_psnr_db"], "spectral_psnr": spectral_psnr(result.synthesized, truth, 16),
        "sam_deg": spectral_angle(result.synthesized, truth, 16), "kappa": d["kappa"],
        "best_candidate_psnr": spectral_psnr(proxy.reshape(-1, proxy.shape[2])[result.candidates[..., 0]], truth, 16),
        "scene": args.scene,
        "max_nnz": d["max_nnz_per_row"], "index_built": d["index"],
        "load": [load_before, os.getloadavg()[0]],
    }))


def table(runs: list[dict]) -> str:
    """Medians per (size, motion, index) as Markdown."""
    stages = ["descriptors", "index", "retrieval", "refinement", "optimisation", "transfer", "operator",
              "diagnostics"]
    head = ("| size | scene | motion | index | n | " + " | ".join(stages)
            + " | total wall s | total CPU s | peak RAM GB "
            "| align dB | spectral dB | SAM ° | best-candidate dB | load |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    cells: dict[tuple, list[dict]] = {}
    for run in runs:
        cells.setdefault((run["size"], run["scene"], run["motion"], run["index"]), []).append(run)
    med = statistics.median
    for (size, scene, motion, index), group in sorted(cells.items()):
        stage = [f"{med(r['seconds'].get(s, 0.0) for r in group):.1f}" for s in stages]
        where = f"{scene:02d}" if scene else "01–04 tiled"
        lines.append(f"| {size}² | {where} | {motion} | {index} | {len(group)} | " + " | ".join(stage)
                     + f" | {med(r['seconds']['total'] for r in group):.1f}"
                     + f" | {med(r['cpu_seconds']['total'] for r in group):.1f}"
                     + f" | {max(r['peak_rss_gb'] for r in group):.2f}"
                     + f" | {med(r['align_psnr'] for r in group):.2f}"
                     + f" | {med(r['spectral_psnr'] for r in group):.2f}"
                     + f" | {med(r['sam_deg'] for r in group):.3f}"
                     + f" | {med(r['best_candidate_psnr'] for r in group):.2f}"
                     + f" | {med(max(r['load']) for r in group):.1f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--motions", nargs="+", default=["elastic", "flip"])
    parser.add_argument("--indexes", nargs="+", default=["default", "exact"], choices=sorted(INDEXES))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scenes", type=int, nargs="+", default=[1],
                        help="KAIST scenes cropped for sizes ≤ 256 (512² always tiles all four)")
    parser.add_argument("--exact-max-size", type=int, default=512,
                        help="skip the exact index above this size (≈4 min of FAISS at 512² on 2 idle cores)")
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", default=None, help="write every run as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--motion", help=argparse.SUPPRESS)
    parser.add_argument("--index", help=argparse.SUPPRESS)
    parser.add_argument("--scene", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return
    if not (DATA / "kaist").is_dir():
        sys.exit(f"KAIST data not found under {DATA}")
    runs = []
    cells = [(size, motion, index, scene) for size in args.sizes for motion in args.motions
             for index in args.indexes for scene in (args.scenes if size <= 256 else [0])
             if not (index == "exact" and size > args.exact_max_size)]
    for size, motion, index, scene in cells:
        for _ in range(args.repeats):
            cmd = [sys.executable, __file__, "--child", "--size", str(size), "--motion", motion, "--index", index,
                   "--iterations", str(args.iterations), "--threads", str(args.threads), "--scene", str(scene)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            run = json.loads(out.strip().splitlines()[-1])
            runs.append(run)
            print(json.dumps(run), file=sys.stderr, flush=True)
    print(f"{os.cpu_count()} CPUs, torch threads {args.threads}, {args.iterations} iterations; medians of "
          f"{args.repeats} runs; wall seconds per stage")
    print(table(runs))
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=1))


if __name__ == "__main__":
    main()
