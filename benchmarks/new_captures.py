"""New captures restored with an adapted checkpoint: the recipe (``hiralign restore``) against the network alone.

Reads label folders of ``benchmarks/adaptation.py`` that hold an ``unobserved`` run (adapted
on the first two scenes) and scores, on the scenes that run never saw (the third on):

  source          the shipped source model alone, one pass (``hiralign proxy --task T``)
  network alone   the adapted network, one pass (``hiralign proxy --model``, ``hiralign restore --network-only``)
  restore         ``hiralign restore --model``: the checkpoint's recorded recipe (hiralign.restoration)

Usage::

    python benchmarks/new_captures.py bench-out/adapt6/gaussian-kaist/labels-subspace \\
        bench-out/adapt6-sr4/sr4-kaist/labels-ensemble

Prints one JSON line per folder and a markdown table; ``--log`` appends the JSON lines.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiralign import io  # noqa: E402
from hiralign.evaluate import score_cube  # noqa: E402
from hiralign.models.checkpoint import load_checkpoint  # noqa: E402
from hiralign.proxy import TileConfig  # noqa: E402
from hiralign.resources import shipped_model  # noqa: E402
from hiralign.restoration import CaptureRestorer, Recipe  # noqa: E402


def score_rows(folder: Path, device: str, run: str) -> dict:
    names = sorted(p.stem for p in (folder / "clean").glob("*.hdr"))[2:]
    if not names:
        raise SystemExit(f"{folder}: fewer than three scenes; nothing unobserved to score")
    task = folder.parent.name.split("-")[0]
    observed = [io.load(folder / "observed" / f"{n}.hdr") for n in names]
    clean = [io.load(folder / "clean" / f"{n}.hdr") for n in names]
    adapted = folder / run / "checkpoint"
    out: dict = {"folder": str(folder), "task": task, "scenes": names}
    for row, checkpoint, network_only in (("source", shipped_model(task), True), ("network alone", adapted, True),
                                          ("restore", adapted, False)):
        model, ckpt = load_checkpoint(checkpoint, device)
        recipe = Recipe.network_only(ckpt.task) if network_only else Recipe.from_checkpoint(checkpoint, ckpt)
        restorer = CaptureRestorer.build(model, ckpt, recipe, observed, tiles=TileConfig(), device=device)
        start = time.perf_counter()
        scores = [score_cube(restorer(o), c) for o, c in zip(observed, clean)]
        out[row] = {"psnr": float(np.mean([s.psnr for s in scores])), "sam": float(np.mean([s.sam for s in scores])),
                    "per_image": [[round(s.psnr, 2), round(s.sam, 2)] for s in scores], "recipe": recipe.describe(),
                    "s_per_capture": round((time.perf_counter() - start) / len(observed), 1)}
    return out


def table(results: list[dict]) -> str:
    lines = ["| task / folder (unseen scenes) | source model | adapted network alone | **`hiralign restore`** | "
             "restore is | s / capture |", "|---|---|---|---|---|---|"]
    for r in results:
        cells = [f"`{r['task']}` / {Path(r['folder']).parent.name} ({', '.join(r['scenes'])})"]
        for row in ("source", "network alone", "restore"):
            cells.append(f"{r[row]['psnr']:.2f} dB / {r[row]['sam']:.2f}°")
        cells[-1] = f"**{cells[-1]}**"
        cells += [r["restore"]["recipe"], f"{r['restore']['s_per_capture']:.1f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("folders", nargs="+", type=Path, help="labels-<source> folders with an unobserved run")
    parser.add_argument("--run", default="unobserved", help="the run folder inside each (default: unobserved)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    results = []
    for folder in args.folders:
        result = score_rows(folder, args.device, args.run)
        print(json.dumps(result), flush=True)
        if args.log:
            with args.log.open("a", encoding="utf-8") as f:
                f.write(json.dumps(result) + "\n")
        results.append(result)
    print(table(results))


if __name__ == "__main__":
    main()
