"""``hiralign proxy --model CKPT IN… --out DIR``: stage 1, restore targets into proxies."""
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
    from hiralign.commands.degrade import ALL_TASK_NAMES

    parser = subparsers.add_parser(
        "proxy", help="stage 1: restore degraded targets with the source model (proxy cubes + RGBs)",
        description="Restore each degraded target with a source restorer by tiled inference and write "
                    "<name>.hdr proxy cubes and <name>_rgb.png pseudo-RGBs (bands nearest 660/550/470 nm). "
                    "Each file is divided by a robust intensity scale (its 99.9th percentile when it does not "
                    "fill [0, 1]) before the network and multiplied back after, so proxies are on the input's "
                    "scale. Without --model the shipped model for --task is used: the band-agnostic one for a "
                    "target off the 31-band model's bands (when it ships), which restores it on its own bands; "
                    "a fixed-band model resamples the target to its bands and the result back.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="degraded target cubes")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--model", default=None, help="source checkpoint folder (default: shipped for --task)")
    parser.add_argument("--task", default=None, metavar="TASK",
                        help=f"task of the shipped model when --model is not given: {', '.join(ALL_TASK_NAMES)}")
    parser.add_argument("--no-consistency", dest="consistency", action="store_false",
                        help="sr4, bandmiss, inpaint: keep the network's output as it is instead of making each "
                             "proxy agree exactly with its target, as hiralign adapt's stage 1 does (sr4: "
                             "down-sample to it; bandmiss, inpaint: keep its observed bands or values)")
    add_tile_options(parser)
    add_device(parser)
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from hiralign import io
    from hiralign.config import default_model_folder
    from hiralign.consistency import applies
    from hiralign.device import resolve_device
    from hiralign.errors import ConfigError, ModelError
    from hiralign.intensity import scale_for_task
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.progress import ConsoleProgress, SubProgress
    from hiralign.runfolder import safe_names
    from hiralign.stages import RunScale, normalised, on_input_scale, restore_target

    if args.model is None and args.task is None:
        raise ConfigError("give --model CKPT or --task T (to use the shipped source model)")
    device = resolve_device(args.device)
    models: dict[Path, tuple[Any, Any]] = {}

    def model_for(target: Any) -> tuple[Path, Any, Any]:
        # the shipped model is chosen per target (band-agnostic off the 31-band model's bands)
        folder = Path(args.model) if args.model else default_model_folder(args.task, [target])
        if folder not in models:
            models[folder] = load_checkpoint(folder, device)
            if args.task is not None and models[folder][1].task != args.task:
                raise ModelError(f"{folder}: the model restores {models[folder][1].task!r}, not {args.task!r}")
        return (folder, *models[folder])

    out = Path(args.out)
    progress = ConsoleProgress("proxy")
    written = []
    try:
        for k, (path, name) in enumerate(zip(args.inputs, safe_names(args.inputs))):
            target = io.load(path, **load_options(args))
            target.name = name
            folder, model, ckpt = model_for(target)
            # each file on its own robust scale (dark counts are normal input); restored on the input's
            scale = RunScale(scale_for_task(ckpt.task, target))
            sub = SubProgress(progress, k / len(args.inputs), (k + 1) / len(args.inputs), f"{name}: ")
            # the stage function the pipeline and the GUI use, mapped back onto the target's bands
            restored = restore_target(model, ckpt, normalised(target, scale), tiles=tile_config(args), device=device,
                                      progress=sub, name=name, back=True, consistent=args.consistency)
            proxy = on_input_scale(restored, target, scale)
            io.save_rgb(np.clip(normalised(proxy, scale).pseudo_rgb(), 0, 1), out / f"{name}_rgb.png", bits=16)
            cube_path = io.save(proxy, out / f"{name}.hdr")
            written.append({"input": str(path), "proxy": str(cube_path), "rgb": str(out / f"{name}_rgb.png"),
                            "shape": list(proxy.shape), "model": str(folder), "task": ckpt.task,
                            "intensity": scale.intensity.to_dict(),
                            "projected_onto_observation": bool(args.consistency and applies(ckpt.task))})
    finally:
        progress.close()
    folders = sorted({w["model"] for w in written})
    task = args.task or (written[0]["task"] if written else None)
    emit_json({"model": folders[0] if len(folders) == 1 else folders, "task": task, "device": str(device),
               "proxies": written})
    return 0
