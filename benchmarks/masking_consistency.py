"""Keeping what a ``bandmiss`` / ``inpaint`` observation saw (hiralign.consistency; docs/benchmarks.md, session 12).

Both tasks observe part of the scene exactly and zero the rest; the consistency projection keeps
the observed bands (``bandmiss``) or values (``inpaint``) and takes only the missing ones from the
network. Scores, against the clean scenes of each set (seed-0 degradations, as adaptation.py):

  interpolation          what a user could run without a network: ``bandmiss`` each pixel's
                         spectrum linearly interpolated over wavelength from its observed bands
                         (nearest observed band beyond the ends); ``inpaint`` each band linearly
                         interpolated over the image from its observed values (Delaunay,
                         scipy.interpolate; nearest value outside their hull):
                         hiralign.completion without its subspace step
  interpolate (+ subspace)  the proxy source ``interpolate`` (what ``auto`` takes for these
                         tasks): the interpolation refined by hard-impute onto the spectra's
                         rank-4 subspace (hiralign.completion)
  source                 the network alone, one pass
  source + consistency   the same output with the observed values put back

and, with ``--runs``, the ``restored/`` of adaptation.py run folders (``WORK/<row>/restored``).

The protocol's PSNR is per band, capped at 100 dB: a ``bandmiss`` output that keeps its observed
bands scores 100 on 70 % of them, so the table also gives PSNR and SAM over what was *missing*
(the missing voxels' RMSE; SAM of ``bandmiss`` over the spectra, which mix both). Usage::

    python benchmarks/masking_consistency.py --model bandmiss=.tmp/models/bandmiss \\
        --model inpaint=.tmp/models/inpaint --sets kaist cave --out bench-out/masking
    python benchmarks/masking_consistency.py --runs bench-out/adapt12/inpaint-kaist --out bench-out/masking
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from labels import observe_set  # noqa: E402

from hiralign import io  # noqa: E402
from hiralign.atomic import write_json  # noqa: E402
from hiralign.completion import CompletionConfig, complete_cube  # noqa: E402
from hiralign.consistency import consistent_cube, observed_mask  # noqa: E402
from hiralign.cube import Cube  # noqa: E402
from hiralign.evaluate import score_cube  # noqa: E402
from hiralign.models.checkpoint import load_checkpoint  # noqa: E402
from hiralign.proxy import TileConfig  # noqa: E402
from hiralign.restoration import Recipe, restore_capture  # noqa: E402
from hiralign.stages import restore_target  # noqa: E402


def interpolated(observed: Cube, task: str, iterations: int = 0) -> Cube:
    """The training-free rows: :func:`hiralign.completion.complete_cube` (0 rounds: interpolation alone)."""
    return complete_cube(observed, CompletionConfig(iterations=iterations), task=task)


def missing_scores(restored: Cube, clean: Cube, observed: Cube, task: str) -> dict[str, float]:
    """The protocol's scores, and PSNR over the missing voxels (peak 1)."""
    score = score_cube(restored, clean)
    missing = ~np.broadcast_to(observed_mask(observed.data, task), observed.data.shape)
    error = (restored.data.astype(np.float64) - clean.data.astype(np.float64))[missing]
    mse = float(np.mean(error ** 2))
    return {"psnr": score.psnr, "ssim": score.ssim, "sam": score.sam,
            "psnr_missing": float(-10 * np.log10(max(mse, 1e-10))),
            "kept_max_error": float(np.abs(restored.data - clean.data)[~missing].max()) if (~missing).any() else 0.0}


def mean_row(rows: list[dict]) -> dict:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]}


def network_rows(task: str, set_name: str, model_dir: Path) -> dict[str, dict]:
    clean, observed = observe_set(task, set_name)
    model, ckpt = load_checkpoint(model_dir, "cpu")
    if ckpt.task != task:
        raise SystemExit(f"{model_dir} restores {ckpt.task}, not {task}")
    rows: dict[str, list] = {"interpolation": [], "interpolate (+ subspace)": [], "source": [],
                             "source + consistency": []}
    walls = dict.fromkeys(rows, 0.0)
    for c, o in zip(clean, observed):
        for row, rounds in (("interpolation", 0), ("interpolate (+ subspace)", CompletionConfig().iterations)):
            start = time.perf_counter()
            rows[row].append(missing_scores(interpolated(o, task, rounds), c, o, task))
            walls[row] += time.perf_counter() - start
        start = time.perf_counter()
        out = restore_target(model, ckpt, o, tiles=TileConfig(), device="cpu", back=True)
        network_s = time.perf_counter() - start
        walls["source"] += network_s
        rows["source"].append(missing_scores(out, c, o, task))
        start = time.perf_counter()
        kept = consistent_cube(out, o, task)
        walls["source + consistency"] += network_s + time.perf_counter() - start
        rows["source + consistency"].append(missing_scores(kept, c, o, task))
    return {row: {**mean_row(v), "per_image_psnr_missing": [r["psnr_missing"] for r in v],
                  "wall_s": round(walls[row], 1)} for row, v in rows.items()}


def run_rows(work: Path, task: str) -> dict[str, dict]:
    """Rescore the ``restored/`` of adaptation.py's run folders under ``work``, and their exported
    networks alone (``hiralign restore --network-only``, with and without the kept values)."""
    observed = {p.stem: io.load(p) for p in sorted((work / "observed").glob("*.hdr"))}
    clean = {p.stem: io.load(p) for p in sorted((work / "clean").glob("*.hdr"))}
    out = {}
    for row in sorted(p.parent.name for p in work.glob("*/restored")):
        scores = [missing_scores(io.load(work / row / "restored" / f"{n}.hdr"), clean[n], observed[n], task)
                  for n in observed]
        out[row] = mean_row(scores)
        if not (work / row / "checkpoint" / "config.json").is_file():
            continue
        model, ckpt = load_checkpoint(work / row / "checkpoint", "cpu")
        for kept in (False, True):
            recipe = dataclasses.replace(Recipe.network_only(task), consistency=kept)
            made = [restore_capture(model, ckpt, o, recipe, tiles=TileConfig()) for o in observed.values()]
            out[f"{row}: exported network{' + consistency' if kept else ''}"] = mean_row(
                [missing_scores(m, clean[n], observed[n], task) for m, n in zip(made, observed)])
    return out


def table(results: dict) -> str:
    lines = ["| task / set | row | PSNR (protocol) | PSNR missing | SAM | observed kept (max error) | wall (s) |",
             "|---|---|---|---|---|---|---|"]
    for key, rows in results.items():
        for row, m in rows.items():
            lines.append(f"| {key} | {row} | {m['psnr']:.2f} | {m['psnr_missing']:.2f} | {m['sam']:.2f} | "
                         f"{m['kept_max_error']:.1e} | {m.get('wall_s', '')} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=[], metavar="TASK=CKPT",
                        help="source checkpoint of a masking task (none ships)")
    parser.add_argument("--sets", nargs="+", default=["kaist"], choices=["kaist", "cave"])
    parser.add_argument("--runs", nargs="*", default=[], metavar="WORK",
                        help="adaptation.py task-set folders (TASK-SET, or its labels-* folder) whose rows' restored/ "
                             "to rescore")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("bench-out/masking"))
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, dict] = {}
    for spec in args.model:
        task, _, folder = spec.partition("=")
        for set_name in args.sets:
            results[f"{task} / {set_name}"] = network_rows(task, set_name, Path(folder))
            print(f"{task} / {set_name}: done", flush=True)
    for work in map(Path, args.runs):  # WORK or a labels-* folder under it
        named = next(f for f in (work, *work.parents) if f.name.split("-")[0] in ("bandmiss", "inpaint"))
        results[f"{work} (runs)"] = run_rows(work, named.name.split("-")[0])
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "results.json", {"command": " ".join(sys.argv), "results": results})
    print(table(results))


if __name__ == "__main__":
    main()
