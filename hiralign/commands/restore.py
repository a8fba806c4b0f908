"""``hiralign restore --model CKPT IN… --out DIR``: new captures restored as ``hiralign adapt`` restored its targets."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import (
    add_device,
    add_load_options,
    add_tile_options,
    emit_json,
    load_options,
    tile_config,
)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "restore", help="restore new captures with an adapted checkpoint, the way adapt restored its targets",
        description="Restore each capture with the checkpoint's recorded recipe (provenance.json): with "
                    "classical proxies (gaussian, complex and sensor by default) the classical denoiser's "
                    "restoration fused with the network at the run's --fuse-proxies weight, with model proxies "
                    "(sr4) the network over the run's --restore-transforms views. This is what restored/ of "
                    "the run holds, for captures the run never saw; a source model (no recipe) is the network "
                    "alone, as hiralign proxy. Writes <name>.hdr (the input's bands, dtype and range) and "
                    "<name>_rgb.png.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="degraded captures")
    parser.add_argument("--model", required=True, help="adapted checkpoint folder (a run's checkpoint/)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--network-only", action="store_true",
                        help="the network alone in one pass (what hiralign proxy --model does), not the recipe")
    parser.add_argument("--noise", default=None, metavar="NOISE_JSON",
                        help="sensor checkpoints: the captures' noise model (hiralign noise --out) instead of "
                             "the one the run recorded")
    add_tile_options(parser)
    add_device(parser)
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from hiralign import io
    from hiralign.commands.degrade import read_noise
    from hiralign.device import resolve_device
    from hiralign.errors import InputError
    from hiralign.intensity import scale_for_task
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.progress import ConsoleProgress, SubProgress
    from hiralign.restoration import Recipe, capture_noise, proxy_model, restore_capture
    from hiralign.runfolder import safe_names
    from hiralign.stages import RunScale, normalised

    device = resolve_device(args.device)
    model, ckpt = load_checkpoint(args.model, device)
    recipe = Recipe.network_only(ckpt.task) if args.network_only else Recipe.from_checkpoint(args.model, ckpt)
    if args.noise is not None:
        if ckpt.task != "sensor":
            raise InputError(f"--noise is for sensor checkpoints; {args.model} restores {ckpt.task!r}")
        recipe = Recipe(**{**recipe.__dict__, "noise": read_noise(args.noise)})
    names = safe_names(args.inputs)
    # every capture is read and checked before the first result is written
    targets = []
    for path, name in zip(args.inputs, names):
        target = io.load(path, **load_options(args))
        target.name = name
        targets.append(target)
    noise = capture_noise(recipe, targets)
    source = proxy_model(recipe, (model, ckpt), device)
    out = Path(args.out)
    progress = ConsoleProgress("restore")
    written = []
    try:
        for k, (path, target) in enumerate(zip(args.inputs, targets)):
            sub = SubProgress(progress, k / len(targets), (k + 1) / len(targets), f"{target.name}: ")
            restored = restore_capture(model, ckpt, target, recipe, tiles=tile_config(args), device=device,
                                       noise=noise, progress=sub, source=source)
            rgb_scale = RunScale(scale_for_task(ckpt.task, target))
            io.save_rgb(np.clip(normalised(restored, rgb_scale).pseudo_rgb(), 0, 1), out / f"{target.name}_rgb.png",
                        bits=16)
            cube_path = io.save(restored, out / f"{target.name}.hdr", dtype="input")
            written.append({"input": str(path), "restored": str(cube_path), "rgb": str(out / f"{target.name}_rgb.png"),
                            "shape": list(restored.shape)})
    finally:
        progress.close()
    emit_json({"model": str(args.model), "task": ckpt.task, "device": str(device), "recipe": recipe.to_dict(),
               "noise": None if noise is None else noise.to_dict(), "restored": written})
    return 0
