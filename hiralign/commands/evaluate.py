"""``hiralign evaluate``: degrade clean cubes with a seed, restore with each model, score."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import add_device, add_load_options, add_tile_options, emit_json


def register(subparsers: Any) -> None:
    from hiralign.commands.degrade import ALL_TASK_NAMES

    parser = subparsers.add_parser(
        "evaluate", help="score restorers on clean cubes degraded with a seed (PSNR/SSIM/SAM)",
        description="Degrade the clean cubes with the task and seed (exactly as hiralign degrade), "
                    "restore them with each model, print a markdown table and write JSON. An adapted "
                    "checkpoint restores by its recorded recipe, as hiralign restore does (--network-only: "
                    "the network alone); a source model by its network in one pass, made to agree with the "
                    "observation for sr4, bandmiss and inpaint, as hiralign proxy --model does.")
    parser.add_argument("--clean", nargs="+", required=True, metavar="CLEAN", help="clean reference cubes")
    parser.add_argument("--task", required=True, metavar="TASK",
                        help=f"degradation task: {', '.join(ALL_TASK_NAMES)}")
    parser.add_argument("--noise", default=None, metavar="NOISE_JSON",
                        help="sensor task: the noise model the clean cubes are degraded with (hiralign noise "
                             "--out, a run's noise.json); without it, random sensor parameters")
    parser.add_argument("--model", nargs="+", required=True, metavar="CKPT",
                        help="checkpoint folders ('shipped' for the shipped source model)")
    parser.add_argument("--seed", type=int, default=0, help="degradation seed (default: 0)")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the results as JSON here")
    parser.add_argument("--network-only", action="store_true",
                        help="score adapted checkpoints' networks alone in one pass instead of their recorded "
                             "recipe (what hiralign restore does: the run's classical proxy fused at its weight, "
                             "or the network over its views)")
    add_tile_options(parser)
    add_device(parser)
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys
    from pathlib import Path

    from hiralign import io
    from hiralign.atomic import write_json
    from hiralign.commands._common import load_options, tile_config
    from hiralign.commands.degrade import read_noise
    from hiralign.degrade import check_task, crop_to_scale
    from hiralign.device import resolve_device
    from hiralign.errors import ConfigError, ModelError
    from hiralign.evaluate import evaluate_models, format_table, observe
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.progress import ConsoleProgress
    from hiralign.resources import shipped_model
    from hiralign.restoration import CaptureRestorer, Recipe
    from hiralign.runfolder import safe_names

    check_task(args.task)
    if args.noise and args.task != "sensor":
        raise ConfigError(f"--noise is used by the sensor task only, not by {args.task}")
    noise = read_noise(args.noise) if args.noise else None
    device = resolve_device(args.device)
    clean = []
    for path, name in zip(args.clean, safe_names(args.clean)):
        cube = io.load(path, **load_options(args))
        cube.name = name
        clean.append(cube)
    references = [crop_to_scale(c, args.task) for c in clean]
    observed = observe(references, args.task, args.seed, noise)
    models = []
    for spec in args.model:
        folder = shipped_model(args.task) if spec == "shipped" else Path(spec)
        model, ckpt = load_checkpoint(folder, device)
        if ckpt.task != args.task:
            raise ModelError(f"{folder}: the model restores {ckpt.task!r}, not {args.task!r}")
        from hiralign.models.build import is_band_agnostic

        for cube in clean:
            if cube.n_bands != ckpt.bands and not is_band_agnostic(model):
                raise ModelError(f"{cube.name}: {cube.n_bands} bands, but {folder} expects {ckpt.bands}")
        label = "shipped" if spec == "shipped" else folder.name if folder.name != "checkpoint" else folder.parent.name
        recipe = Recipe.from_checkpoint(folder, ckpt)
        if args.network_only or recipe.plain_network:
            models.append((label, model, ckpt.scale))
        else:
            # sensor: the cubes were degraded with --noise, so that is the model they are restored with
            restorer = CaptureRestorer.build(model, ckpt, recipe, observed, tiles=tile_config(args), device=device,
                                             noise=noise)
            models.append((f"{label} (recipe)", restorer, ckpt.scale))
    progress = ConsoleProgress("evaluate")
    try:
        results = evaluate_models(references, args.task, models, seed=args.seed, observed=observed,
                                  tiles=tile_config(args),
                                  device=device, progress=progress)
    finally:
        progress.close()
    print(format_table(results), file=sys.stderr)
    payload = {"task": args.task, "seed": args.seed, "models": [r.as_dict() for r in results]}
    if args.json:
        write_json(args.json, payload)
    emit_json(payload)
    return 0
