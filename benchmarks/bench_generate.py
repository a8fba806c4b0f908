"""Benchmark of the guide generators on the real KAIST scenes (stage 2a).

For every scene's pseudo-RGB Γ (bands 24/13/5 = 660/550/470 nm, 256×256) and every
configuration it reports, per variation: wall seconds (median over repeats), CPU seconds
of this process (robust to other processes sharing the machine), the mean absolute
difference to the input and between guides, the largest per-channel mean shift, and the
bidirectional patch similarity of GPNN (coherence: each guide patch's distance to the
nearest source patch; completeness: each source patch's distance to the nearest guide
patch; per-value MSE × 1e4, 1500 random 7×7 patches). Times are also given as ratios to
the default ``patchnn`` measured in the same run, and the load average before/after
says how contended the machine was.

    .venv/bin/python benchmarks/bench_generate.py [--repeats 3] [--quick] [--png out.png]

``--quick`` runs scene01 only and skips the slow original GPNN schedule (≈ 90 CPU s per
guide); ``--only classic,shuffle`` runs the baseline and the configurations whose label contains a word.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

DATA = Path(os.environ.get("HIRALIGN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
SCENES = ("scene01", "scene02", "scene03", "scene04")

#: (label, generator, settings). The first is the baseline of the time ratios.
CONFIGS = [
    ("patchnn default (1 thread)", "patchnn", {}),
    ("patchnn 2 threads", "patchnn", {"threads": 2}),
    ("patchnn PCA-32 search", "patchnn", {"search_dims": 32}),
    ("patchnn completeness alpha=0.005", "patchnn", {"alpha": 0.005}),
    ("patchnn fine_stride=1", "patchnn", {"fine_stride": 1}),
    ("patchnn GPNN schedule (slow)", "patchnn-gpnn", {}),
    ("classic", "classic", {}),
    ("shuffle", "shuffle", {}),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats on scene01 (default: 3)")
    parser.add_argument("--n", type=int, default=3, help="guides per call (default: 3)")
    parser.add_argument("--quick", action="store_true", help="scene01 only, no GPNN schedule")
    parser.add_argument("--only", default=None,
                        help="comma-separated words: run the configurations whose label contains one of them")
    parser.add_argument("--png", default=None, help="write inputs and default patchnn guides side by side")
    parser.add_argument("--json", default=None, help="write the results as JSON")
    args = parser.parse_args()

    from hiralign import io

    scenes = SCENES[:1] if args.quick else SCENES
    images = {}
    for scene in scenes:
        path = DATA / "kaist" / f"{scene}.mat"
        if not path.is_file():
            print(f"missing {path}; set HIRALIGN_SHARED_DATA", file=sys.stderr)
            return 2
        images[scene] = io.load_rgb(path, wavelengths="420:720:10")
    configs = [c for c in CONFIGS if not (args.quick and c[1] == "patchnn-gpnn")]
    if args.only:
        # The baseline stays first: the ratios are always against it.
        words = [w.strip() for w in args.only.split(",") if w.strip()]
        configs = [configs[0]] + [c for c in configs[1:] if any(w in c[0] for w in words)]
    load_before = os.getloadavg()
    rows, panels = [], []
    for label, name, settings in configs:
        generator = _make(name, settings)
        for scene, rgb in images.items():
            repeats = args.repeats if scene == "scene01" and "GPNN" not in label else 1
            walls, cpus, guides = [], [], None
            for _ in range(repeats):
                wall, cpu = time.perf_counter(), time.process_time()
                guides = generator.generate(rgb, args.n, seed=0)
                walls.append((time.perf_counter() - wall) / args.n)
                cpus.append((time.process_time() - cpu) / args.n)
            row = {"config": label, "scene": scene, "wall_s": statistics.median(walls),
                   "cpu_s": statistics.median(cpus), "repeats": repeats, **_quality(rgb, guides)}
            rows.append(row)
            print(_line(row), flush=True)
            if label.startswith("patchnn default") and args.png:
                panels.append(np.concatenate([rgb] + guides, axis=1))
    load_after = os.getloadavg()
    baseline = {r["scene"]: r["wall_s"] for r in rows if r["config"] == configs[0][0]}
    base_cpu = {r["scene"]: r["cpu_s"] for r in rows if r["config"] == configs[0][0]}
    for r in rows:
        r["wall_ratio"] = r["wall_s"] / baseline[r["scene"]]
        r["cpu_ratio"] = r["cpu_s"] / base_cpu[r["scene"]]
    print(f"\nload average before {load_before[0]:.1f}, after {load_after[0]:.1f} (2 cores)")
    print(_table(rows))
    if args.json:
        Path(args.json).write_text(json.dumps({"load_before": load_before, "load_after": load_after,
                                               "rows": rows}, indent=2))
    if args.png and panels:
        grid = np.concatenate(panels, axis=0)
        grid = grid / np.maximum(grid.reshape(-1, grid.shape[1] // 256, 256, 3).max(), 1e-3)
        io.save_rgb(np.clip(grid, 0, 1), args.png)
    return 0


def _make(name: str, settings: dict):
    from hiralign.generate import get_generator
    from hiralign.generate.patchnn import PatchNNConfig, PatchNNGenerator

    if name == "patchnn-gpnn":
        return PatchNNGenerator(PatchNNConfig.gpnn())
    return get_generator(name, **settings)


def _quality(rgb: np.ndarray, guides: list[np.ndarray]) -> dict:
    pairs = [np.abs(a - b).mean() for i, a in enumerate(guides) for b in guides[i + 1:]]
    coherence, completeness = zip(*(_bidirectional(g, rgb) for g in guides))
    return {
        "diff_input_min": float(min(np.abs(g - rgb).mean() for g in guides)),
        "diff_pairs_min": float(min(pairs)) if pairs else float("nan"),
        "mean_shift_max": float(max(np.abs(g.mean((0, 1)) - rgb.mean((0, 1))).max() for g in guides)),
        "coherence_1e4": float(np.mean(coherence)) * 1e4,
        "completeness_1e4": float(np.mean(completeness)) * 1e4,
    }


def _bidirectional(out: np.ndarray, src: np.ndarray, n: int = 1500, seed: int = 0) -> tuple[float, float]:
    import faiss
    import torch

    from hiralign.generate.patchnn import unfold_patches

    rng = np.random.default_rng(seed)
    to_patches = lambda a: unfold_patches(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None], 7, 1)  # noqa: E731
    po, ps = to_patches(out).numpy(), to_patches(src).numpy()

    def nearest(q: np.ndarray, k: np.ndarray) -> float:
        q = q[rng.choice(len(q), min(n, len(q)), replace=False)]
        d, _ = faiss.knn(q, k, 1)
        return float(d.mean() / q.shape[1])

    return nearest(po, ps), nearest(ps, po)


def _line(r: dict) -> str:
    return (f"{r['config']:34s} {r['scene']}  wall {r['wall_s']:6.2f} s  cpu {r['cpu_s']:6.2f} s  "
            f"|g-r| ≥ {r['diff_input_min']:.3f}  |g-g'| ≥ {r['diff_pairs_min']:.3f}  "
            f"mean shift ≤ {r['mean_shift_max']:.3f}  coh {r['coherence_1e4']:.2f}  compl {r['completeness_1e4']:.2f}")


def _table(rows: list[dict]) -> str:
    head = ("| config | scene | wall s/guide | CPU s/guide | wall ratio | CPU ratio | min ‖g−r‖₁ | min ‖g−g′‖₁ "
            "| max mean shift | coherence ×1e4 | completeness ×1e4 |\n|" + "---|" * 11)
    lines = [head]
    for r in rows:
        lines.append(f"| {r['config']} | {r['scene']} | {r['wall_s']:.2f} | {r['cpu_s']:.2f} | {r['wall_ratio']:.2f} "
                     f"| {r['cpu_ratio']:.2f} | {r['diff_input_min']:.3f} | {r['diff_pairs_min']:.3f} "
                     f"| {r['mean_shift_max']:.3f} | {r['coherence_1e4']:.2f} | {r['completeness_1e4']:.2f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
