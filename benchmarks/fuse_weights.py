"""Score restored = w · proxy + (1 − w) · adapted network over w, from ``benchmarks/adaptation.py`` run folders.

    python benchmarks/fuse_weights.py bench-out/s14-gauss-c1600 bench-out/s14-complex-c1600

Each ``<task>-<set>/labels-*`` folder's ``proxy-only`` checkpoint restores the folder's
observed scenes by its recorded views (the network alone, no classical share); the mix with
the folder's proxies is scored against its clean scenes at every weight, so the network runs
once per scene. Prints one line per folder and writes ``--json`` (mean PSNR dB, mean SAM °
per weight).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np

from hiralign import io
from hiralign.evaluate import score_cube
from hiralign.models.checkpoint import load_checkpoint
from hiralign.proxy import TileConfig
from hiralign.restoration import Recipe, restore_capture

WEIGHTS = (1.0, 0.95, 0.9, 0.8, 0.7, 0.0)


def fuse_scores(folder: Path, weights: tuple[float, ...] = WEIGHTS) -> dict[float, tuple[float, float]]:
    """Mean (PSNR dB, SAM °) over the folder's scenes of w · proxy + (1 − w) · network, per weight."""
    checkpoint = folder / "proxy-only" / "checkpoint"
    model, ckpt = load_checkpoint(checkpoint)
    network_alone = dataclasses.replace(Recipe.from_checkpoint(checkpoint, ckpt), fuse=0.0)
    scores: dict[float, list[tuple[float, float]]] = {w: [] for w in weights}
    for observed_path in sorted((folder / "observed").glob("*.hdr")):
        clean = io.load(folder / "clean" / observed_path.name)
        proxy = io.load(folder / "proxies" / observed_path.name)
        network = restore_capture(model, ckpt, io.load(observed_path), network_alone, tiles=TileConfig())
        for w in weights:
            mixed = (w * proxy.data + (1 - w) * network.data).astype(np.float32)
            score = score_cube(dataclasses.replace(proxy, data=mixed), clean)
            scores[w].append((score.psnr, score.sam))
    return {w: (float(np.mean([s[0] for s in v])), float(np.mean([s[1] for s in v]))) for w, v in scores.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="benchmarks/adaptation.py --out folders")
    parser.add_argument("--json", type=Path, default=Path("fuse_weights.json"))
    args = parser.parse_args()
    results = {}
    for run in args.runs:
        for folder in sorted(run.glob("*/labels-*")):
            if not (folder / "proxy-only" / "checkpoint").is_dir():
                continue
            results[str(folder)] = {str(w): [round(p, 2), round(s, 2)] for w, (p, s) in fuse_scores(folder).items()}
            print(folder, results[str(folder)], flush=True)
    args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
