"""Do the sr4 observations help as extra clean labels? (docs/benchmarks.md, session 11; negative).

With consistency the projected proxy p satisfies A p = y exactly, so the observation y is the
exact-transform view of p at scale 1/4, and it is noise-free: pairs (A y, y) are clean labels at
a coarser scale (the scale-shift assumption of zero-shot SR). Finetunes the shipped sr4 model
(400 steps, the run's defaults) on the projected proxies alone and with the observations as the
"synthesized" branch at ratio 1 and 3, restores over 8 views with the projection, and scores.
Reads the proxies ``benchmarks/adaptation.py`` wrote (``--out bench-out/adapt11-sr4-consistency``).

Usage::

    python benchmarks/sr4_observation_labels.py kaist cave
"""
from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from labels import observe_set, to_model_grid  # noqa: E402

from hiralign import io  # noqa: E402
from hiralign.evaluate import score_cube  # noqa: E402
from hiralign.finetune import FinetuneConfig, finetune  # noqa: E402
from hiralign.models.checkpoint import load_checkpoint  # noqa: E402
from hiralign.proxy import TileConfig  # noqa: E402
from hiralign.resources import shipped_model  # noqa: E402
from hiralign.stages import restore_target  # noqa: E402

#: (row, synthesized:proxy ratio; 0: the proxies alone)
VARIANTS = (("proxy-only", 0.0), ("+ observations, ratio 1", 1.0), ("+ observations, ratio 3", 3.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sets", nargs="+", choices=("kaist", "cave"))
    parser.add_argument("--runs", type=Path, default=Path("bench-out/adapt11-sr4-consistency"))
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")  # the KAIST bands are matched index by index, said once per scene
    for set_name in args.sets:
        clean, observed = observe_set("sr4", set_name)
        folder = args.runs / f"sr4-{set_name}" / "labels-ensemble" / "proxies-consistent"
        proxies = [io.load(folder / f"{o.name}.hdr") for o in observed]
        for row, ratio in VARIANTS:
            model, ckpt = load_checkpoint(shipped_model("sr4"))
            grids = [to_model_grid(o, ckpt, model) for o in observed]
            start = time.perf_counter()
            finetune(model, "sr4", proxies, grids if ratio else [],
                     FinetuneConfig(mode="hiralign" if ratio else "proxy-only", ratio=ratio or 3.0), device="cpu")
            took = time.perf_counter() - start
            model.eval()
            outs = [restore_target(model, ckpt, o, tiles=TileConfig(), device="cpu", back=True, transforms=8,
                                   consistent=True) for o in observed]
            scores = [score_cube(u, c) for u, c in zip(outs, clean)]
            print(f"{set_name} {row}: {np.mean([x.psnr for x in scores]):.2f} dB / "
                  f"{np.mean([x.sam for x in scores]):.2f}°, finetune {took:.0f} s", flush=True)


if __name__ == "__main__":
    main()
