"""The PROTOCOL.md adaptation benchmark: rows × {tasks} × {target sets}, equal budgets.

Rows (PROTOCOL.md "Adaptation benchmark"):
  source         the shipped source model restores the observed targets
  control        the source model trained further on the *source* set, same step budget
  proxy-only     finetuned on proxies alone (Table VI row 1)
  classic        proxies + M classic-augmented views, transferred by the warp
  hiralign       proxies + M synthesized HSIs from the default generator (Table VI row 3)
  upper-bound    finetuned on the clean targets themselves (Table XI "UB")
  unobserved     HIR-ALIGN adapted on the first two scenes, scored on the others (Table X)
  unobserved-proxy-only  the same split finetuned on the two proxies alone

Every finetuned row uses the same FinetuneConfig (steps, batch, patch, lr, seed). Proxies
are computed once per (task, set) and copied into each run folder (the source model is the
same, so they are identical). Usage::

    python benchmarks/adaptation.py --tasks gaussian --sets kaist --steps 400 --out bench-out
    python benchmarks/adaptation.py --quick     # tiny budgets, to check the script runs

Writes ``OUT/results.json`` and ``OUT/table.md`` (the markdown table for docs/benchmarks.md).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiralign import io  # noqa: E402
from hiralign.atomic import write_json, write_text  # noqa: E402
from hiralign.cube import Cube  # noqa: E402
from hiralign.degrade import crop_to_scale, degrade_cube  # noqa: E402
from hiralign.evaluate import score_cube  # noqa: E402
from hiralign.finetune import FinetuneConfig, finetune  # noqa: E402
from hiralign.models.checkpoint import load_checkpoint, read_provenance  # noqa: E402
from hiralign.pipeline import Adaptation, AdaptConfig  # noqa: E402
from hiralign.proxy import restore_cube  # noqa: E402
from hiralign.resources import shipped_model  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SETS = {
    "kaist": ("kaist", "scene0*.mat", "420:720:10"),
    "cave": ("cave", "*_ms_256.mat", "400:700:10"),
}
ROWS = ("source", "control", "proxy-only", "classic", "hiralign", "upper-bound", "unobserved",
        "unobserved-proxy-only")


def load_set(name: str) -> list[Cube]:
    folder, pattern, wavelengths = SETS[name]
    paths = sorted((SHARED / folder).glob(pattern))
    if not paths:
        raise SystemExit(f"no {name} data under {SHARED / folder}")
    cubes = []
    for p in paths:
        cube = io.load(p, wavelengths=wavelengths)
        cube.name = p.stem
        cubes.append(cube)
    return cubes


def scores(model, observed: list[Cube], clean: list[Cube], scale: int) -> dict:
    rows = [dataclasses.asdict(score_cube(restore_cube(model, o, scale=scale), c)) for o, c in zip(observed, clean)]
    return {"per_image": rows, **{k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "sam")}}


def adapt_row(work: Path, row: str, targets: list[Path], clean_paths: list[Path], task: str,
              finetune_config: FinetuneConfig, generator: str, proxies_from: Path | None,
              device: str) -> tuple[Path, dict]:
    mode = "proxy-only" if row.endswith("proxy-only") else "hiralign"  # also "unobserved-proxy-only"
    config = AdaptConfig(task=task, generator=generator, guides=0 if mode == "proxy-only" else 3,
                         finetune=dataclasses.replace(finetune_config, mode=mode), device=device)
    run = Adaptation(targets, config, work / row, clean=clean_paths)
    run.source_model()
    run.prepare()
    if proxies_from is not None:
        for f in proxies_from.glob("*"):
            if not (run.run.root / "proxies" / f.name).exists():
                (run.run.root / "proxies").mkdir(exist_ok=True)
                shutil.copy2(f, run.run.root / "proxies" / f.name)
    report = run.run_all()
    return run.run.root, report


def continue_on_source(task: str, finetune_config: FinetuneConfig, device: str, cache: Path):
    """The control row: the source model trained further on its own source set."""
    from hiralign.patches import CubeSampler
    from hiralign.source import SourceConfig, load_cube_set, make_source_set
    from hiralign.train import train

    folder = shipped_model(task)
    source_config = read_provenance(folder)["source"]["config"]
    source_dir = cache / "source-set"
    if not (source_dir / "manifest.json").is_file():
        make_source_set(source_dir, SourceConfig(**source_config))
    model, ckpt = load_checkpoint(folder, device)
    cubes = load_cube_set(source_dir)
    config = dataclasses.replace(finetune_config, mode="proxy-only")
    result = train(model, CubeSampler(cubes, name="source cubes"), config.train_config(task), device=device)
    return model, ckpt, result


def _done(row: str, result: dict) -> None:
    print(f"  {row}: {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}, SAM {result['sam']:.2f}°, "
          f"{result['wall_s']:.0f} s", flush=True)


def run_benchmark(task: str, set_name: str, finetune_config: FinetuneConfig, generator: str, rows: list[str],
                  out: Path, device: str) -> dict:
    work = out / f"{task}-{set_name}"
    work.mkdir(parents=True, exist_ok=True)
    clean = [crop_to_scale(c, task) for c in load_set(set_name)]
    observed_dir = work / "observed"
    targets, clean_paths = [], []
    for c in clean:
        obs = degrade_cube(c, task, 0)
        targets.append(observed_dir / f"{c.name}.hdr")
        clean_paths.append(work / "clean" / f"{c.name}.hdr")
        if not targets[-1].is_file():
            io.save(obs, targets[-1])
        if not clean_paths[-1].is_file():
            io.save(c, clean_paths[-1])
    observed = [io.load(t) for t in targets]
    for o, c in zip(observed, clean):
        o.name = c.name
    results: dict[str, dict] = {}
    source_model, ckpt = load_checkpoint(shipped_model(task), device)
    start = time.perf_counter()
    results["source"] = scores(source_model, observed, clean, ckpt.scale)
    results["source"]["wall_s"] = round(time.perf_counter() - start, 1)
    _done("source", results["source"])
    proxies_from = None
    for row in rows:
        if row in ("source", "unobserved", "unobserved-proxy-only", "control", "upper-bound"):
            continue
        start = time.perf_counter()
        gen = "classic" if row == "classic" else generator
        root, report = adapt_row(work, row, targets, clean_paths, task, finetune_config, gen, proxies_from, device)
        proxies_from = proxies_from or root / "proxies"
        m = report["metrics"]["mean"]["adapted"]
        results[row] = {**m, "per_image": report["metrics"]["per_image"]["adapted"],
                        "wall_s": round(time.perf_counter() - start, 1), "timings_s": report["timings_s"]}
        _done(row, results[row])
    if "control" in rows:
        start = time.perf_counter()
        model, ck, _ = continue_on_source(task, finetune_config, device, out)
        results["control"] = scores(model, observed, clean, ck.scale)
        results["control"]["wall_s"] = round(time.perf_counter() - start, 1)
        _done("control", results["control"])
    if "upper-bound" in rows:
        start = time.perf_counter()
        model, ck = load_checkpoint(shipped_model(task), device)
        finetune(model, task, clean, [], dataclasses.replace(finetune_config, mode="proxy-only"), device=device)
        results["upper-bound"] = scores(model, observed, clean, ck.scale)
        results["upper-bound"]["wall_s"] = round(time.perf_counter() - start, 1)
        _done("upper-bound", results["upper-bound"])
    for row in ("unobserved", "unobserved-proxy-only"):
        if row not in rows or len(targets) <= 2:
            continue
        start = time.perf_counter()
        root, _ = adapt_row(work, row, targets[:2], clean_paths[:2], task, finetune_config, generator, None, device)
        model, ck = load_checkpoint(root / "checkpoint", device)
        results[row] = scores(model, observed[2:], clean[2:], ck.scale)
        results[row]["source_on_same"] = {
            k: float(np.mean([r[k] for r in results["source"]["per_image"][2:]])) for k in ("psnr", "ssim", "sam")}
        results[row]["wall_s"] = round(time.perf_counter() - start, 1)
        _done(row, results[row])
    return results


def table(all_results: dict) -> str:
    """Markdown tables, one per (task, set); Δ columns are against the source model."""
    lines = []
    for key, res in all_results.items():
        src = res["source"]
        control = "control" in res
        head = "| row | PSNR (dB) | SSIM | SAM (°) | ΔPSNR vs source | ΔSAM vs source |"
        head += " ΔPSNR vs control |" if control else ""
        lines += [f"### {key}", "", head + " wall (s) |", "|---" * (head.count("|") - 1 + 1) + "|"]
        for row in ROWS:
            if row not in res:
                continue
            r = res[row]
            ref = r.get("source_on_same", src)
            cells = [row, f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", f"{r['sam']:.2f}", f"{r['psnr'] - ref['psnr']:+.2f}",
                     f"{r['sam'] - ref['sam']:+.2f}"]
            if control:
                cells.append(f"{r['psnr'] - res['control']['psnr']:+.2f}")
            cells.append(f"{r.get('wall_s', 0):.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        notes = []
        if "unobserved" in res and "source_on_same" in res["unobserved"]:
            same = res["unobserved"]["source_on_same"]
            n = len(res["unobserved"].get("per_image", [])) or "the"
            notes.append(f"*unobserved*: adapted on the first two scenes only and scored on the other {n}; its Δ "
                         f"columns compare with the source model on those scenes ({same['psnr']:.2f} dB, "
                         f"{same['ssim']:.4f}, {same['sam']:.2f}°).")
        if "upper-bound" in res and "hiralign" in res:
            ub, ha = res["upper-bound"], res["hiralign"]
            gap_psnr = (ha["psnr"] - src["psnr"]) / max(1e-9, ub["psnr"] - src["psnr"])
            gap_sam = (src["sam"] - ha["sam"]) / max(1e-9, src["sam"] - ub["sam"])
            notes.append(f"HIR-ALIGN closes {100 * gap_psnr:.0f} % of the source→upper-bound PSNR gap and "
                         f"{100 * gap_sam:.0f} % of the SAM gap.")
        for note in notes:
            lines += ["", note]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["gaussian", "complex", "sr4"])
    parser.add_argument("--sets", nargs="+", default=["kaist", "cave"], choices=sorted(SETS))
    parser.add_argument("--rows", nargs="+", default=list(ROWS), choices=ROWS)
    parser.add_argument("--steps", type=int, default=FinetuneConfig().steps)
    parser.add_argument("--generator", default="patchnn")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default="bench-out/adaptation")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch/FAISS threads (0: torch's default); 1 when two benchmarks share 2 cores")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks that the script runs")
    parser.add_argument("--render", nargs="+", default=None, metavar="RESULTS_JSON",
                        help="only print the tables of earlier runs' results.json files (in this order)")
    args = parser.parse_args()
    if args.render:
        merged: dict = {}
        for path in args.render:
            merged.update(json.loads(Path(path).read_text())["results"])
        print(table(merged))
        return
    import torch

    from hiralign.device import resolve_device

    torch.set_flush_denormal(True)
    if args.threads > 0:
        import faiss

        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)
    device = str(resolve_device(args.device))
    finetune_config = FinetuneConfig(steps=10 if args.quick else args.steps)
    out = Path(args.out)
    all_results = {}
    for task in args.tasks:
        for set_name in args.sets:
            print(f"== {task} on {set_name}", flush=True)
            all_results[f"{task} / {set_name}"] = run_benchmark(task, set_name, finetune_config, args.generator,
                                                                args.rows, out, device)
            write_json(out / "results.json", {"machine": platform.platform(), "threads": torch.get_num_threads(),
                                              "load_average": os.getloadavg(),
                                              "finetune": dataclasses.asdict(finetune_config),
                                              "results": all_results})
    text = table(all_results)
    write_text(out / "table.md", text)
    print(text)


if __name__ == "__main__":
    main()
