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
    parser = subparsers.add_parser(
        "proxy", help="stage 1: restore degraded targets with the source model (proxy cubes + RGBs)",
        description="Restore each degraded target with a source restorer by tiled inference and write "
                    "<name>.hdr proxy cubes and <name>_rgb.png pseudo-RGBs (bands nearest 660/550/470 nm). "
                    "A target on other bands is resampled to the model's, restored, and resampled back.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="degraded target cubes")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--model", default=None, help="source checkpoint folder (default: shipped for --task)")
    parser.add_argument("--task", default=None, help="task of the shipped model when --model is not given")
    add_tile_options(parser)
    add_device(parser)
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    import numpy as np

    from hiralign import io
    from hiralign.device import resolve_device
    from hiralign.errors import ConfigError
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.progress import ConsoleProgress, SubProgress
    from hiralign.resources import shipped_model
    from hiralign.runfolder import safe_names
    from hiralign.stages import restore_target

    if args.model is None and args.task is None:
        raise ConfigError("give --model CKPT or --task T (to use the shipped source model)")
    device = resolve_device(args.device)
    folder = Path(args.model) if args.model else shipped_model(args.task)
    model, ckpt = load_checkpoint(folder, device)
    out = Path(args.out)
    progress = ConsoleProgress("proxy")
    written = []
    try:
        for k, (path, name) in enumerate(zip(args.inputs, safe_names(args.inputs))):
            target = io.load(path, **load_options(args))
            sub = SubProgress(progress, k / len(args.inputs), (k + 1) / len(args.inputs), f"{name}: ")
            # the stage function the pipeline and the GUI use, mapped back onto the target's bands
            proxy = restore_target(model, ckpt, target, tiles=tile_config(args), device=device, progress=sub,
                                   name=name, back=True)
            io.save_rgb(np.clip(proxy.pseudo_rgb(), 0, 1), out / f"{name}_rgb.png", bits=16)
            cube_path = io.save(proxy, out / f"{name}.hdr")
            written.append({"input": str(path), "proxy": str(cube_path), "rgb": str(out / f"{name}_rgb.png"),
                            "shape": list(proxy.shape)})
    finally:
        progress.close()
    emit_json({"model": str(folder), "task": ckpt.task, "device": str(device), "proxies": written})
    return 0
