"""Label quality: how close the finetuning labels are to the clean scenes (issue 13).

Stage-1 proxies p and synthesized cubes ỹ = T p are the labels of every finetuning pair;
their error against the clean scene x is inherited by the adapted model. This script
scores, for each (task, target set), with PSNR (dB) / SAM (°) means over the scenes:

* proxies from each source of :mod:`hiralign.ensemble` (``model``, ``ensemble``, ``bm4d``,
  ``blend``) against x;
* synthesized cubes of each generator (``--generators``) against T x, the clean scene moved
  by the same operator, and the error ratio ‖T E‖ / ‖E‖ with E = p − x (below 1: the
  synthesis filtered the proxy's error; near 1: it only moved it).

BM4D restorations (a minute or more per cube) are cached under ``OUT/bm4d`` and shared
with ``benchmarks/adaptation.py``'s ``bm4d`` row. Usage::

    OMP_NUM_THREADS=1 python benchmarks/labels.py --tasks gaussian --sets kaist cave --out bench-out/labels
    python benchmarks/labels.py --bm4d-only --tasks gaussian complex      # fill the BM4D cache
    python benchmarks/labels.py --render bench-out/labels/results.json    # the markdown tables
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiralign import io  # noqa: E402
from hiralign.atomic import write_json, write_text  # noqa: E402
from hiralign.cube import Cube  # noqa: E402
from hiralign.degrade import crop_to_scale, degrade_cube  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
SETS = {
    "kaist": ("kaist", "scene0*.mat", "420:720:10"),
    "cave": ("cave", "*_ms_256.mat", "400:700:10"),
}


def load_set(name: str, crop: int = 0) -> list[Cube]:
    """The clean scenes of a target set (sorted by file name), optionally a centred crop²."""
    folder, pattern, wavelengths = SETS[name]
    paths = sorted((SHARED / folder).glob(pattern))
    if not paths:
        raise SystemExit(f"no {name} data under {SHARED / folder}")
    cubes = []
    for p in paths:
        cube = io.load(p, wavelengths=wavelengths)
        if crop and min(cube.height, cube.width) > crop:
            cube = cube.crop((cube.height - crop) // 2, (cube.width - crop) // 2, crop, crop)
        cube.name = p.stem
        cubes.append(cube)
    return cubes


def observe_set(task: str, set_name: str, crop: int = 0) -> tuple[list[Cube], list[Cube]]:
    """(clean, observed) cubes of a set under ``task`` with seed 0, as adaptation.py makes them."""
    clean = [crop_to_scale(c, task) for c in load_set(set_name, crop)]
    observed = []
    for c in clean:
        o = degrade_cube(c, task, 0)
        o.name = c.name
        observed.append(o)
    return clean, observed


def bm4d_cached(observed: Cube, cache: Path) -> tuple[Cube, float]:
    """BM4D (blind per-band σ) of one observation, computed once and kept in ``cache``.

    Returns:
        (restored cube on the observation's bands, seconds the restoration took when computed).
    """
    from hiralign.ensemble import bm4d_restore

    path = cache / f"{observed.name}.npy"
    meta = cache / f"{observed.name}.json"
    if path.is_file() and meta.is_file():
        return observed.with_data(np.load(path)), float(json.loads(meta.read_text())["seconds"])
    start = time.perf_counter()
    restored = bm4d_restore(observed)
    seconds = time.perf_counter() - start
    cache.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npy")
    np.save(tmp, restored.data)
    os.replace(tmp, path)
    write_json(meta, {"seconds": round(seconds, 1), "threads": os.environ.get("OMP_NUM_THREADS", "default"),
                      "load_average": os.getloadavg()})
    return restored, seconds


def fill_bm4d(tasks: list[str], sets: list[str], out: Path, crop: int) -> None:
    for task in tasks:
        for set_name in sets:
            _, observed = observe_set(task, set_name, crop)
            for o in observed:
                _, seconds = bm4d_cached(o, out / "bm4d" / f"{task}-{set_name}{f'-{crop}' if crop else ''}")
                print(f"bm4d {task} {set_name} {o.name}: {seconds:.0f} s", flush=True)


def to_model_grid(cube: Cube, ckpt, model=None) -> Cube:
    """``cube`` on the model's bands (as the pipeline's proxy stage gives it to the model).

    A band-agnostic model (``band_agnostic = True`` on it or its wrapped module) takes the
    cube as it is.
    """
    from hiralign.bands import match_bands

    if model is not None and (getattr(model, "band_agnostic", False)
                              or getattr(getattr(model, "module", None), "band_agnostic", False)):
        return cube
    wl = None if ckpt.wavelengths is None else np.asarray(ckpt.wavelengths)
    return match_bands(cube, ckpt.bands, wl)[0]


def label_score(label: np.ndarray, reference: np.ndarray) -> dict:
    """PSNR (dB) / SAM (°) of an (H, W, B) label against its (H, W, B) clean reference."""
    from hiralign.metrics import psnr, sam

    est = np.ascontiguousarray(label.transpose(2, 0, 1))
    ref = np.ascontiguousarray(reference.transpose(2, 0, 1))
    return {"psnr": float(psnr(est, ref)[0]), "sam": float(sam(est, ref)[0])}


def mean_rows(rows: list[dict]) -> dict:
    keys = [k for k in rows[0] if isinstance(rows[0][k], (int, float))]
    return {"per_image": rows, **{k: float(np.mean([r[k] for r in rows])) for k in keys}}


def proxy_labels(task: str, set_name: str, sources: list[str], model_dir: Path, out: Path, crop: int,
                 transforms: int, blend_weight: float, device: str) -> tuple[dict, dict]:
    """Label quality of each proxy source; returns (results, the proxies on the model grid)."""
    from hiralign.bands import resample_bands
    from hiralign.ensemble import make_proxy
    from hiralign.models.checkpoint import load_checkpoint

    clean, observed = observe_set(task, set_name, crop)
    model, ckpt = load_checkpoint(model_dir, device)
    cache = out / "bm4d" / f"{task}-{set_name}{f'-{crop}' if crop else ''}"
    results: dict = {}
    proxies: dict = {"clean": [to_model_grid(c, ckpt, model) for c in clean]}
    for source in sources:
        start = time.perf_counter()
        rows, made = [], []
        for o, c in zip(observed, clean):
            grid = to_model_grid(o, ckpt, model)
            config = proxy_config(source, transforms=transforms, blend_weight=blend_weight)
            classical = to_model_grid(bm4d_cached(o, cache)[0], ckpt, model) if config.needs_bm4d else None
            proxy = make_proxy(grid, config, model=model, scale=ckpt.scale, device=device, classical=classical,
                               name=c.name, task=task, own_bands=o)
            made.append(proxy)
            scored = resample_bands(proxy, c.wavelengths) if proxy.n_bands != c.n_bands or (
                c.wavelengths is not None and not np.allclose(proxy.wavelengths_or_default(), c.wavelengths)) else proxy
            rows.append({"image": c.name, **label_score(scored.data, c.data)})
        results[source] = {**mean_rows(rows), "wall_s": round(time.perf_counter() - start, 1)}
        proxies[source] = made
        r = results[source]
        print(f"  proxy {source}: {r['psnr']:.2f} dB, SAM {r['sam']:.2f}°, {r['wall_s']:.0f} s", flush=True)
    return results, proxies


def proxy_config(source: str, **settings: Any) -> Any:
    """The :class:`hiralign.ensemble.ProxyConfig` a benchmark source name stands for.

    ``blend-bm4d`` and ``blend-subspace`` name the blend's classical restorer; a plain
    ``blend`` is the library default (subspace). Results before 2026-12-01 13:30 called the
    model + BM4D blend ``blend``.
    """
    from hiralign.ensemble import ProxyConfig

    name, _, classical = source.partition("-")
    return ProxyConfig(source=name, **({"classical": classical} if classical else {}), **settings)


def synthesize(generator: str, proxy: Cube, n: int, seed: int, settings: dict, device: str) -> list[tuple]:
    """(synthesized (H, W, B), T, diagnostics) of ``n`` views of one proxy with ``generator``."""
    from hiralign.generate import get_generator
    from hiralign.warp import warp

    rgb = np.clip(proxy.pseudo_rgb(), 0, 1).astype(np.float32)
    if generator == "exact":
        from hiralign.generate.exact_views import ExactConfig, exact_views

        views = exact_views(proxy.data, n, seed, ExactConfig(**settings), proxy_rgb=rgb)
        return [(v.synthesized, v.operator, {**v.diagnostics, **v.params}) for v in views]
    guides = get_generator(generator, **settings).generate(rgb, n, seed)
    out = []
    for g in guides:
        result = warp(proxy, g, proxy_rgb=rgb, device=device)
        d = result.diagnostics
        out.append((result.synthesized, result.operator,
                    {"kappa": d["kappa"], "alignment_psnr_db": d["alignment_psnr_db"],
                     "mean_displacement_px": d["mean_displacement_px"], "warp_s": d["seconds"]["total"]}))
    return out


def synthesized_labels(proxies: dict, source: str, generators: list[str], n: int, settings: dict,
                       device: str) -> dict:
    """Label quality of synthesized cubes: PSNR/SAM of T p against T x, ‖TE‖/‖E‖, κ."""
    from hiralign.generate.exact_views import apply_operator

    results = {}
    for generator in generators:
        start = time.perf_counter()
        rows = []
        for i, (p, x) in enumerate(zip(proxies[source], proxies["clean"])):
            error = p.data.astype(np.float64) - x.data
            for j, (synth, operator, diag) in enumerate(synthesize(generator, p, n, 7919 * i,
                                                                   settings.get(generator, {}), device)):
                tx = apply_operator(operator, x.data)
                moved = float(np.linalg.norm(synth.astype(np.float64) - tx) / np.linalg.norm(error))
                row = {"image": f"{p.name}_g{j}", **label_score(synth, tx), "te_over_e": moved,
                       "psnr_vs_x": label_score(synth, x.data)["psnr"], "kappa": float(diag["kappa"])}
                for key in ("alignment_psnr_db", "mean_displacement_px"):
                    if key in diag:
                        row[key] = float(diag[key])
                rows.append(row)
        results[generator] = {**mean_rows(rows), "wall_s": round(time.perf_counter() - start, 1)}
        r = results[generator]
        print(f"  synth {generator} from {source}: {r['psnr']:.2f} dB vs Tx, SAM {r['sam']:.2f}°, "
              f"‖TE‖/‖E‖ {r['te_over_e']:.3f}, κ {r['kappa']:.2f}, {r['wall_s']:.0f} s", flush=True)
    return results


def render(results: dict) -> str:
    """Markdown tables of a results.json's ``results``."""
    lines = []
    for key, res in results.items():
        lines += [f"### {key}", "", "| proxy source | label PSNR (dB) | label SAM (°) | wall (s) |",
                  "|---|---|---|---|"]
        base = res["proxies"].get("model")
        for source, r in res["proxies"].items():
            delta = f" ({r['psnr'] - base['psnr']:+.2f})" if base and source != "model" else ""
            lines.append(f"| {source} | {r['psnr']:.2f}{delta} | {r['sam']:.2f} | {r['wall_s']:.0f} |")
        for source, gens in res.get("synthesized", {}).items():
            p = res["proxies"][source]
            lines += ["", f"Synthesized cubes from the `{source}` proxies ({p['psnr']:.2f} dB / {p['sam']:.2f}°), "
                      "scored against T x (the clean scene moved by the same T):", "",
                      "| generator | PSNR vs T x (dB) | SAM vs T x (°) | ‖TE‖/‖E‖ | κ | PSNR vs x (dB) | wall (s) |",
                      "|---|---|---|---|---|---|---|"]
            for gen, r in gens.items():
                lines.append(f"| {gen} | {r['psnr']:.2f} | {r['sam']:.2f} | {r['te_over_e']:.3f} | {r['kappa']:.2f} | "
                             f"{r['psnr_vs_x']:.2f} | {r['wall_s']:.0f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=["gaussian"])
    parser.add_argument("--sets", nargs="+", default=["kaist", "cave"], choices=sorted(SETS))
    parser.add_argument("--crop", type=int, default=0, help="centred crop side (0: whole 256² scenes)")
    parser.add_argument("--sources", nargs="+", default=["model", "ensemble", "subspace", "bm4d", "blend-subspace",
                                                         "blend-bm4d"],
                        help="proxy sources (hiralign.ensemble; blend-bm4d / blend-subspace name the blend's partner)")
    parser.add_argument("--transforms", type=int, default=8, help="dihedral transforms of the ensemble")
    parser.add_argument("--blend-weight", type=float, default=0.25, help="model share of the blend")
    parser.add_argument("--generators", nargs="*", default=[], help="e.g. patchnn cleanprior exact classic")
    parser.add_argument("--synth-from", nargs="+", default=["model"], help="proxy sources the generators use")
    parser.add_argument("--guides", type=int, default=1, help="views per proxy for the synthesized rows")
    parser.add_argument("--settings", default="{}", help='JSON {generator: {setting: value}}')
    parser.add_argument("--model", default=None, help="source model folder (default: the shipped one)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--out", default="bench-out/labels")
    parser.add_argument("--tag", default="", help="suffix of the results key (e.g. a setting under test)")
    parser.add_argument("--bm4d-only", action="store_true", help="only fill the BM4D cache")
    parser.add_argument("--render", nargs="+", default=None, metavar="RESULTS_JSON")
    args = parser.parse_args()
    if args.render:
        merged: dict = {}
        for path in args.render:
            merged.update(json.loads(Path(path).read_text())["results"])
        print(render(merged))
        return
    out = Path(args.out)
    if args.bm4d_only:
        fill_bm4d(args.tasks, args.sets, out, args.crop)
        return
    import torch

    from hiralign.resources import shipped_model

    torch.set_flush_denormal(True)
    results_path = out / "results.json"
    saved = json.loads(results_path.read_text()) if results_path.is_file() else {"results": {}}
    settings = json.loads(args.settings)
    for task in args.tasks:
        for set_name in args.sets:
            key = f"{task} / {set_name}" + (f" / {args.crop}²" if args.crop else "")
            key += f" {args.tag}" if args.tag else ""
            print(f"== {key}", flush=True)
            model_dir = Path(args.model) if args.model else shipped_model(task)
            sources = [s for s in args.sources if task != "sr4" or s in ("model", "ensemble")]
            res, proxies = proxy_labels(task, set_name, sources, model_dir, out, args.crop, args.transforms,
                                        args.blend_weight, args.device)
            entry = {"proxies": res, "model": str(model_dir), "settings": settings, "guides": args.guides}
            if args.generators:
                entry["synthesized"] = {s: synthesized_labels(proxies, s, args.generators, args.guides, settings,
                                                              args.device) for s in args.synth_from}
            saved["results"][key] = entry
            saved.update(machine=platform.platform(), threads=torch.get_num_threads(), load_average=os.getloadavg())
            write_json(results_path, saved)
    text = render(saved["results"])
    write_text(out / "table.md", text)
    print(text)


if __name__ == "__main__":
    main()
