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
  bm4d           BM4D with a blind per-band σ (denoising tasks; optional: pip install bm4d)
  bicubic        bicubic ×4 up-sampling of the observation (sr4 only)

With the consistency projection on (``hiralign adapt``'s default; ``--no-consistency`` off), an
sr4 run's proxies and every finetuned row's restoration are projected onto the cubes that
down-sample exactly to the observation (hiralign.consistency), and the source, bicubic and
upper-bound rows get a ``… + consistency`` twin: the same outputs projected (bicubic +
consistency is classical back-projection, what a user could run without any network).
  cleanprior     proxies + M guides that are the edge-preserving filtered proxy RGB, through the warp
  exact          proxies + M exact-transform views (T built directly, no warp)
  round2         the proxy-only model remakes the proxies; proxy-only finetuning of the source
                 model on them (one more round of self-training, same per-round budget)

``--labels`` chooses where every finetuned row's proxies come from (hiralign.ensemble:
auto — ``hiralign adapt``'s default, the BM4D blend for gaussian when bm4d is installed —,
model, ensemble, bm4d, blend); the finetuned rows' configs carry the same proxy source.
Every row reports its label quality: the proxies' PSNR/SAM
against the clean scenes and, where the layout is known (cleanprior: the proxy's own; exact:
T rebuilt from the seed), the synthesized cubes' against the clean scene moved the same way.

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

sys.path.insert(0, str(ROOT / "benchmarks"))
from labels import SETS, bm4d_cached, label_score, load_set, proxy_config, to_model_grid  # noqa: E402

ROWS = ("source", "source + consistency", "bm4d", "bicubic", "bicubic + consistency", "control",
        "proxy-only", "round2", "classic", "hiralign", "cleanprior", "exact",
        "upper-bound", "upper-bound + consistency", "unobserved", "unobserved-proxy-only")
#: Rows that can be asked for (the ``+ consistency`` twins come with their row).
ASKABLE = tuple(row for row in ROWS if not row.endswith(" + consistency"))
#: Rows that are not finetuned by :func:`adapt_row` in the main loop.
OWN_LOOP = ("source", "bm4d", "bicubic", "round2", "unobserved", "unobserved-proxy-only", "control", "upper-bound")
#: Generator of each synthesizing row (``hiralign``: the --generator option).
ROW_GENERATOR = {"classic": "classic", "cleanprior": "cleanprior", "exact": "exact"}


def recipe_scores(checkpoint: Path, observed: list[Cube], clean: list[Cube], device: str) -> dict:
    """``hiralign restore`` on ``observed``: the checkpoint's recorded recipe (hiralign.restoration)."""
    from hiralign.proxy import TileConfig
    from hiralign.restoration import CaptureRestorer, Recipe

    model, ckpt = load_checkpoint(checkpoint, device)
    recipe = Recipe.from_checkpoint(checkpoint, ckpt)
    restorer = CaptureRestorer.build(model, ckpt, recipe, observed, tiles=TileConfig(), device=device)
    rows = [dataclasses.asdict(score_cube(restorer(o), c)) for o, c in zip(observed, clean)]
    return {"recipe": recipe.describe(), **{k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "sam")}}


def mean_scores(outputs: list[Cube], clean: list[Cube]) -> dict:
    rows = [dataclasses.asdict(score_cube(u, c)) for u, c in zip(outputs, clean)]
    return {"per_image": rows, **{k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "ssim", "sam")}}


def projected(outputs: list[Cube], observed: list[Cube], task: str) -> list[Cube]:
    """The outputs projected onto the cubes that ``task`` down-samples exactly to their observation."""
    from hiralign.consistency import consistent_cube

    return [consistent_cube(u, o, task) for u, o in zip(outputs, observed)]


def scores(model, observed: list[Cube], clean: list[Cube], scale: int, results: dict | None = None,
           row: str = "", task: str = "") -> dict:
    """The network alone (one pass) on ``observed``; with ``results``, ``row + consistency`` is filled too
    (sr4, bandmiss, inpaint: :func:`hiralign.consistency.applies`)."""
    start = time.perf_counter()
    from hiralign.consistency import applies

    outputs = [restore_cube(model, o, scale=scale) for o in observed]
    if results is not None and applies(task):
        results[f"{row} + consistency"] = mean_scores(projected(outputs, observed, task), clean)
        results[f"{row} + consistency"]["wall_s"] = round(time.perf_counter() - start, 1)
    return mean_scores(outputs, clean)


def prepare_proxies(folder: Path, observed: list[Cube], source: str, task: str, model_dir: Path, cache: Path,
                    device: str, consistency: bool = True) -> Path:
    """Proxies of ``observed`` from ``source`` (hiralign.ensemble), written as a run folder's proxies/ holds them
    (projected onto the observations where ``consistency`` and the task is sr4, as ``hiralign adapt`` makes them)."""
    from hiralign.consistency import consistent_cube
    from hiralign.ensemble import make_proxy

    if all((folder / f"{o.name}.hdr").is_file() for o in observed):
        return folder
    model, ckpt = load_checkpoint(model_dir, device)
    config = proxy_config(source)
    for o in observed:
        classical = to_model_grid(bm4d_cached(o, cache)[0], ckpt, model) if config.needs_bm4d else None
        grid = to_model_grid(o, ckpt, model)
        proxy = make_proxy(grid, config, model=model, scale=ckpt.scale, device=device, classical=classical,
                           name=o.name, task=task, own_bands=o)
        if consistency:
            proxy = consistent_cube(proxy, grid, task)
        io.save_rgb(np.clip(proxy.pseudo_rgb(), 0, 1), folder / f"{o.name}_rgb.png", bits=16)
        io.save(proxy, folder / f"{o.name}.hdr")
    return folder


def prefill_exact(run: Adaptation, guides: int) -> None:
    """Write exact views (guide T r and synthesized T p) so the pipeline skips generate and warp for them."""
    from hiralign.generate.exact_views import exact_views

    for i, name in enumerate(run.names):
        proxy = io.load(run.run.proxy(name))
        rgb = io.load_rgb(run.run.proxy_rgb(name))
        views = exact_views(proxy.data, guides, run.config.target_seed(i), proxy_rgb=rgb)
        for j, view in enumerate(views):
            for path in (run.run.guide(name, j), run.run.synth(name, j)):
                path.parent.mkdir(parents=True, exist_ok=True)
            io.save_rgb(view.guide_rgb, run.run.guide(name, j), bits=16)
            io.save(proxy.with_data(view.synthesized, name=f"{name}_g{j}"), run.run.synth(name, j))


def synth_labels(run: Adaptation, generator: str, clean: list[Cube], model_dir: Path) -> dict | None:
    """PSNR/SAM of the synthesized cubes where their clean counterpart is known, else None.

    cleanprior keeps the proxy's layout (scored against x); exact views rebuild T from the
    run's seeds (scored against T x). Other generators' layouts are new: see benchmarks/labels.py.
    """
    if generator not in ("cleanprior", "exact"):
        return None
    from hiralign.generate.exact_views import apply_operator, exact_views

    model, ckpt = load_checkpoint(model_dir, "cpu")
    rows = []
    for i, (name, c) in enumerate(zip(run.names, clean)):
        x = to_model_grid(c, ckpt, model).data
        synth = [io.load(run.run.synth(name, j)).data for j in range(run.config.guides)]
        if generator == "exact":
            views = exact_views(x, run.config.guides, run.config.target_seed(i))
            refs = [apply_operator(v.operator, x) for v in views]
        else:
            refs = [x] * len(synth)
        rows += [{"image": f"{name}_g{j}", **label_score(y, r)} for j, (y, r) in enumerate(zip(synth, refs))]
    return {k: float(np.mean([r[k] for r in rows])) for k in ("psnr", "sam")}


def adapt_row(work: Path, row: str, targets: list[Path], clean_paths: list[Path], task: str,
              finetune_config: FinetuneConfig, generator: str, proxies_from: Path | None,
              device: str, model_dir: Path | None = None, labels: str = "model",
              fuse: float = 1.0, consistency: bool = True) -> tuple[Adaptation, dict]:
    mode = "proxy-only" if row.endswith("proxy-only") or row == "round2" else "hiralign"
    config = AdaptConfig(task=task, model=None if model_dir is None else str(model_dir), generator=generator,
                         guides=0 if mode == "proxy-only" else 3,
                         finetune=dataclasses.replace(finetune_config, mode=mode), device=device,
                         proxy=proxy_config(labels), fuse_proxies=fuse, consistency=consistency)
    run = Adaptation(targets, config, work / row, clean=clean_paths)
    run.source_model()
    run.prepare()
    if proxies_from is not None:
        (run.run.root / "proxies").mkdir(exist_ok=True)
        for f in proxies_from.glob("*"):
            if f.name.startswith(tuple(run.names)) and not (run.run.root / "proxies" / f.name).exists():
                shutil.copy2(f, run.run.root / "proxies" / f.name)
    if generator == "exact" and mode == "hiralign":
        prefill_exact(run, config.guides)
    report = run.run_all()
    return run, report


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
    labels = result.get("labels")
    extra = f", labels {labels['psnr']:.2f} dB / {labels['sam']:.2f}°" if labels else ""
    print(f"  {row}: {result['psnr']:.2f} dB, SSIM {result['ssim']:.4f}, SAM {result['sam']:.2f}°, "
          f"{result['wall_s']:.0f} s{extra}", flush=True)


def baseline_rows(task: str, rows: list[str], observed: list[Cube], clean: list[Cube], bm4d_cache: Path,
                  results: dict, consistency: bool = True) -> None:
    """The training-free rows a scientist could use instead: BM4D (denoising) and bicubic (sr4)."""
    import torch

    from hiralign.degrade import scale_factor
    from hiralign.ensemble import bm4d_available
    from hiralign.imresize import resize_bicubic

    def mean(per: list[dict]) -> dict:
        return {"per_image": per, **{k: float(np.mean([r[k] for r in per])) for k in ("psnr", "ssim", "sam")}}

    if "bm4d" in rows and scale_factor(task) == 1:
        if not bm4d_available():
            print("  bm4d: skipped (pip install bm4d)", flush=True)
        else:
            outs = [bm4d_cached(o, bm4d_cache) for o in observed]
            results["bm4d"] = mean([dataclasses.asdict(score_cube(r, c)) for (r, _), c in zip(outs, clean)])
            results["bm4d"]["wall_s"] = round(sum(t for _, t in outs), 1)  # the compute time, even when cached
            _done("bm4d", results["bm4d"])
    if "bicubic" in rows and scale_factor(task) > 1:
        start = time.perf_counter()
        ups = [o.with_data(resize_bicubic(torch.from_numpy(o.data).permute(2, 0, 1).double(), scale_factor(task))
                           .permute(1, 2, 0).float().numpy()) for o in observed]
        results["bicubic"] = mean([dataclasses.asdict(score_cube(u, c)) for u, c in zip(ups, clean)])
        results["bicubic"]["wall_s"] = round(time.perf_counter() - start, 1)
        _done("bicubic", results["bicubic"])
        if consistency:
            results["bicubic + consistency"] = mean_scores(projected(ups, observed, task), clean)
            results["bicubic + consistency"]["wall_s"] = round(time.perf_counter() - start, 1)
            _done("bicubic + consistency", results["bicubic + consistency"])


def run_benchmark(task: str, set_name: str, finetune_config: FinetuneConfig, generator: str, rows: list[str],
                  out: Path, device: str, labels: str = "model", bm4d_cache: Path | None = None,
                  crop: int = 0, fuse: float = 1.0, model: Path | None = None, consistency: bool = True) -> dict:
    from hiralign.ensemble import resolve_source

    labels = resolve_source(labels, task, 4 if task == "sr4" else 1)
    tag = f"{set_name}-{crop}" if crop else set_name
    work = out / f"{task}-{tag}" / (f"labels-{labels}" if labels != "model" else "")
    work.mkdir(parents=True, exist_ok=True)
    clean = [crop_to_scale(c, task) for c in load_set(set_name, crop)]
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
    model_dir = model or shipped_model(task)
    source_model, ckpt = load_checkpoint(model_dir, device)
    start = time.perf_counter()
    twins: dict = {}
    results["source"] = scores(source_model, observed, clean, ckpt.scale, twins if consistency else None, "source",
                               task)
    results["source"]["wall_s"] = round(time.perf_counter() - start, 1)
    _done("source", results["source"])
    results.update(twins)
    bm4d_cache = bm4d_cache or out / "bm4d"
    cache = bm4d_cache / f"{task}-{tag}"
    baseline_rows(task, rows, observed, clean, cache, results, consistency)
    proxies_from = None
    if any(r not in ("source", "bm4d", "bicubic", "control", "upper-bound") for r in rows):
        start = time.perf_counter()
        from hiralign.consistency import applies

        projects = consistency and applies(task)
        proxies_from = prepare_proxies(work / ("proxies-consistent" if projects else "proxies"), observed, labels,
                                       task, model_dir, cache, device, consistency)
        results["labels_s"] = {"wall_s": round(time.perf_counter() - start, 1), "source": labels}
    for row in rows:
        if row in OWN_LOOP:
            continue
        start = time.perf_counter()
        gen = ROW_GENERATOR.get(row, generator)
        run, report = adapt_row(work, row, targets, clean_paths, task, finetune_config, gen, proxies_from, device,
                                model_dir=model, labels=labels, fuse=fuse, consistency=consistency)
        m = report["metrics"]["mean"]
        results[row] = {**m["adapted"], "per_image": report["metrics"]["per_image"]["adapted"],
                        "labels": m["source"], "wall_s": round(time.perf_counter() - start, 1),
                        "timings_s": report["timings_s"]}
        synth = synth_labels(run, gen, clean, model_dir)
        if synth:
            results[row]["synth_labels"] = synth
        _done(row, results[row])
    if "round2" in rows:
        if "proxy-only" not in results:
            raise SystemExit("round2 needs the proxy-only row (its adapted model makes the new proxies)")
        start = time.perf_counter()
        adapted = work / "proxy-only" / "checkpoint"
        round_labels = "ensemble" if labels.startswith(("ensemble", "blend")) else "model"
        proxies2 = prepare_proxies(work / "proxies-round2", observed, round_labels, task, adapted, cache, device,
                                   consistency)
        run, report = adapt_row(work, "round2", targets, clean_paths, task, finetune_config, generator, proxies2,
                                device, labels=round_labels, consistency=consistency)
        m = report["metrics"]["mean"]
        results["round2"] = {**m["adapted"], "per_image": report["metrics"]["per_image"]["adapted"],
                             "labels": m["source"], "wall_s": round(time.perf_counter() - start, 1),
                             "timings_s": report["timings_s"]}
        _done("round2", results["round2"])
    if "control" in rows:
        start = time.perf_counter()
        net, ck, _ = continue_on_source(task, finetune_config, device, out)
        results["control"] = scores(net, observed, clean, ck.scale)
        results["control"]["wall_s"] = round(time.perf_counter() - start, 1)
        _done("control", results["control"])
    if "upper-bound" in rows:
        start = time.perf_counter()
        net, ck = load_checkpoint(model_dir, device)  # not `model`: that is the rows' source folder
        finetune(net, task, clean, [], dataclasses.replace(finetune_config, mode="proxy-only"), device=device)
        results["upper-bound"] = scores(net, observed, clean, ck.scale, twins if consistency else None,
                                        "upper-bound", task)
        if "upper-bound + consistency" in twins:
            results["upper-bound + consistency"] = twins["upper-bound + consistency"]
        results["upper-bound"]["wall_s"] = round(time.perf_counter() - start, 1)
        _done("upper-bound", results["upper-bound"])
    for row in ("unobserved", "unobserved-proxy-only"):
        if row not in rows or len(targets) <= 2:
            continue
        start = time.perf_counter()
        run, _ = adapt_row(work, row, targets[:2], clean_paths[:2], task, finetune_config, generator, proxies_from,
                           device, model_dir=model, labels=labels, consistency=consistency)
        net, ck = load_checkpoint(run.run.root / "checkpoint", device)
        results[row] = scores(net, observed[2:], clean[2:], ck.scale)  # the network alone
        results[row]["restore"] = recipe_scores(run.run.root / "checkpoint", observed[2:], clean[2:], device)
        results[row]["source_on_same"] = {
            k: float(np.mean([r[k] for r in results["source"]["per_image"][2:]])) for k in ("psnr", "ssim", "sam")}
        results[row]["wall_s"] = round(time.perf_counter() - start, 1)
        _done(row, results[row])
    results.pop("labels_s", None)
    return results


def table(all_results: dict) -> str:
    """Markdown tables, one per (task, set); Δ columns are against the source model."""
    lines = []
    for key, res in all_results.items():
        src = res["source"]
        control = "control" in res
        head = "| row | PSNR (dB) | SSIM | SAM (°) | ΔPSNR vs source | ΔSAM vs source |"
        head += " ΔPSNR vs control |" if control else ""
        head += " labels: proxies (dB / °) | labels: synthesized (dB / °) |"
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
            for part in ("labels", "synth_labels"):
                cells.append(f"{r[part]['psnr']:.2f} / {r[part]['sam']:.2f}" if part in r else "")
            cells.append(f"{r.get('wall_s', 0):.0f}")
            lines.append("| " + " | ".join(cells) + " |")
        notes = []
        if "unobserved" in res and "source_on_same" in res["unobserved"]:
            same = res["unobserved"]["source_on_same"]
            n = len(res["unobserved"].get("per_image", [])) or "the"
            new = res["unobserved"].get("restore")
            notes.append(f"*unobserved*: adapted on the first two scenes only and scored on the other {n}; its Δ "
                         f"columns compare with the source model on those scenes ({same['psnr']:.2f} dB, "
                         f"{same['ssim']:.4f}, {same['sam']:.2f}°). The row is the network alone; `hiralign "
                         f"restore` with its checkpoint (the recorded recipe) gives those scenes "
                         + (f"{new['psnr']:.2f} dB / {new['sam']:.2f}° ({new['recipe']})." if new
                            else "(not scored in this run)."))
        if "upper-bound" in res and "hiralign" in res:
            # the adapted rows' restorations are projected where the twin exists: so is their upper bound
            bound = "upper-bound + consistency" if "upper-bound + consistency" in res else "upper-bound"
            ub, ha = res[bound], res["hiralign"]
            gap_psnr = (ha["psnr"] - src["psnr"]) / max(1e-9, ub["psnr"] - src["psnr"])
            gap_sam = (src["sam"] - ha["sam"]) / max(1e-9, src["sam"] - ub["sam"])
            notes.append(f"HIR-ALIGN closes {100 * gap_psnr:.0f} % of the source→{bound} PSNR gap and "
                         f"{100 * gap_sam:.0f} % of the SAM gap.")
        best = max((row for row in ROWS if row in res and row not in (
            "upper-bound", "upper-bound + consistency", "unobserved", "unobserved-proxy-only", "bm4d", "bicubic",
            "bicubic + consistency")), key=lambda row: res[row]["psnr"])
        for base in ("bm4d", "bicubic", "bicubic + consistency"):
            if base in res and best:
                b = res[base]
                notes.append(f"Best adapted row ({best}) against {base}: {res[best]['psnr'] - b['psnr']:+.2f} dB PSNR, "
                             f"{res[best]['sam'] - b['sam']:+.2f}° SAM.")
        for note in notes:
            lines += ["", note]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["gaussian", "complex", "sr4"])
    parser.add_argument("--sets", nargs="+", default=["kaist", "cave"], choices=sorted(SETS))
    parser.add_argument("--rows", nargs="+", default=list(ASKABLE), choices=ASKABLE)
    parser.add_argument("--steps", type=int, default=FinetuneConfig().steps)
    parser.add_argument("--generator", default="patchnn")
    parser.add_argument("--labels", default="auto", choices=("auto", "model", "ensemble", "subspace", "bm4d",
                                                             "interpolate", "blend", "blend-subspace", "blend-bm4d"),
                        help="where every finetuned row's proxies come from (hiralign.ensemble; auto: "
                             "hiralign adapt's default for the task)")
    parser.add_argument("--fuse-proxies", type=float, default=AdaptConfig.__dataclass_fields__["fuse_proxies"].default,
                        help="weight of classical proxies in each finetuned row's restoration (default: hiralign "
                             "adapt's; 0: the network alone)")
    parser.add_argument("--no-consistency", dest="consistency", action="store_false",
                        help="sr4: no consistency projection of proxies and restorations "
                             "(hiralign adapt --no-consistency)")
    parser.add_argument("--bm4d-cache", default="bench-out/labels/bm4d",
                        help="BM4D restorations shared with benchmarks/labels.py (computed when missing)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model", default=None,
                        help="source model folder for every row (default: the task's shipped 31-band model)")
    parser.add_argument("--out", default="bench-out/adaptation")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch/FAISS threads (0: torch's default); 1 when two benchmarks share 2 cores")
    parser.add_argument("--quick", action="store_true", help="tiny budgets: checks that the script runs")
    parser.add_argument("--crop", type=int, default=0, help="centred crop side of every scene (0: whole scenes)")
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
            key = f"{task} / {set_name}" + (f" / {args.crop}²" if args.crop else "")
            from hiralign.ensemble import resolve_source

            resolved = resolve_source(args.labels, task, 4 if task == "sr4" else 1)
            key += f" / labels {resolved}" if resolved != "model" else ""
            all_results[key] = run_benchmark(task, set_name, finetune_config, args.generator, args.rows, out, device,
                                             args.labels, Path(args.bm4d_cache), args.crop, args.fuse_proxies,
                                             Path(args.model) if args.model else None, args.consistency)
            write_json(out / "results.json", {"machine": platform.platform(), "threads": torch.get_num_threads(),
                                              "load_average": os.getloadavg(),
                                              "finetune": dataclasses.asdict(finetune_config),
                                              "results": all_results})
    text = table(all_results)
    write_text(out / "table.md", text)
    print(text)


if __name__ == "__main__":
    main()
