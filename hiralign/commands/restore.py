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
                    "alone in one pass, made to agree with the capture for sr4, bandmiss and inpaint, as hiralign "
                    "proxy --model does. Writes <name>.hdr (the input's bands, dtype and range) and "
                    "<name>_rgb.png.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="degraded captures")
    parser.add_argument("--model", required=True, help="adapted checkpoint folder (a run's checkpoint/)")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--network-only", action="store_true",
                        help="the network alone in one pass (what hiralign proxy --model --no-consistency does), "
                             "not the recipe")
    parser.add_argument("--no-consistency", dest="consistency", action="store_const", const=False, default=None,
                        help="sr4, bandmiss and inpaint source models and checkpoints adapted with consistency: "
                             "keep the network's output instead of making it agree exactly with each capture "
                             "(sr4: down-sample to it; bandmiss, inpaint: keep its observed bands or values); "
                             "for captures that are not a clean observation of the scene")
    parser.add_argument("--noise", default=None, metavar="NOISE_JSON",
                        help="sensor checkpoints: the captures' noise model (hiralign noise --out) instead of "
                             "the one the run recorded")
    add_tile_options(parser)
    add_device(parser)
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.commands.degrade import read_noise
    from hiralign.device import resolve_device
    from hiralign.progress import ConsoleProgress
    from hiralign.restoration import restore_files

    device = resolve_device(args.device)
    noise = read_noise(args.noise) if args.noise is not None else None
    progress = ConsoleProgress("restore")
    try:
        report = restore_files(args.model, args.inputs, args.out, tiles=tile_config(args), device=device,
                               network_only=args.network_only, consistency=args.consistency, noise=noise,
                               load=load_options(args),
                               progress=progress)
    finally:
        progress.close()
    emit_json(report)
    return 0
