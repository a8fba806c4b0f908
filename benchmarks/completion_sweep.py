"""The ``interpolate`` completion's subspace rank and rounds (hiralign.completion; docs/benchmarks.md, session 13).

For every seed-0 ``inpaint`` scene of each set, the per-band interpolation is made once and the
hard-impute step is run on it with every (rank, rounds) pair; the table gives PSNR over the
missing values (peak 1), the mean over each set's scenes, and the subspace step's median time.
Usage::

    python benchmarks/completion_sweep.py --sets kaist cave --out bench-out/completion-sweep
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from labels import observe_set  # noqa: E402
from masking_consistency import missing_scores  # noqa: E402

from hiralign.atomic import write_json  # noqa: E402
from hiralign.completion import fill_spatially, missing_entries, refine_low_rank  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sets", nargs="+", default=["kaist", "cave"])
    parser.add_argument("--ranks", nargs="+", type=int, default=[3, 4, 5, 8])
    parser.add_argument("--rounds", nargs="+", type=int, default=[10, 20, 40])
    parser.add_argument("--out", type=Path, default=Path("bench-out/completion-sweep"))
    args = parser.parse_args()
    results: dict = {}
    for set_name in args.sets:
        clean, observed = observe_set("inpaint", set_name)
        rows: dict[str, list[float]] = {}
        seconds: dict[str, list[float]] = {}
        for c, o in zip(clean, observed):
            known = ~missing_entries(o.data, "inpaint")[1]
            spatial = fill_spatially(o.data, known)
            rows.setdefault("interpolation", []).append(
                missing_scores(o.with_data(spatial), c, o, "inpaint")["psnr_missing"])
            flat = spatial.reshape(-1, spatial.shape[2])
            for rank, rounds in itertools.product(args.ranks, args.rounds):
                start = time.perf_counter()
                out = refine_low_rank(flat, o.data.reshape(flat.shape), known.reshape(flat.shape), rank, rounds)
                key = f"rank {rank}, {rounds} rounds"
                seconds.setdefault(key, []).append(time.perf_counter() - start)
                rows.setdefault(key, []).append(
                    missing_scores(o.with_data(out.reshape(o.shape)), c, o, "inpaint")["psnr_missing"])
        results[set_name] = {k: {"psnr_missing": float(np.mean(v)), "per_image": v,
                                 "median_s": float(np.median(seconds[k])) if k in seconds else None}
                             for k, v in rows.items()}
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", {"command": " ".join(sys.argv), "results": results})
    keys = list(next(iter(results.values())))
    print("| setting | " + " | ".join(f"{s} PSNR missing" for s in results) + " | subspace step (s, median) |")
    print("|---|" + "---|" * (len(results) + 1))
    for k in keys:
        t = results[args.sets[0]][k]["median_s"]
        print(f"| {k} | " + " | ".join(f"{results[s][k]['psnr_missing']:.2f}" for s in results)
              + f" | {'' if t is None else f'{t:.2f}'} |")


if __name__ == "__main__":
    main()
