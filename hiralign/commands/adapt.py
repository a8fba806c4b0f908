"""``hiralign adapt``: the whole method, headless, into a resumable run folder."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import add_device, add_finetune_options, add_load_options, add_tile_options, emit_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "adapt", help="proxy → generate → warp → finetune → restore, into a run folder",
        description="Adapt a source restorer to degraded target cubes with HIR-ALIGN and write a run "
                    "folder (config.json, proxies/, guides/, synth/, warp.json, checkpoint/, restored/, "
                    "report.json). Finished stages are not recomputed when the same command is run again.")
    parser.add_argument("--target", nargs="+", required=True, metavar="IN", help="degraded target cubes")
    parser.add_argument("--task", required=True, help="degradation task of the targets")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    parser.add_argument("--model", default=None, help="source checkpoint folder (default: shipped for --task)")
    parser.add_argument("--generator", default="patchnn",
                        help="guide generator: patchnn (default), unclip, classic, shuffle")
    parser.add_argument("--generator-model", default=None, help="unclip: pipeline folder or hub id (local)")
    parser.add_argument("--guides", type=int, default=3, help="M, guides per proxy (default: 3)")
    parser.add_argument("--clean", nargs="+", default=None, metavar="CLEAN",
                        help="clean references of the targets (same order) for the report's metrics")
    parser.add_argument("--seed", type=int, default=0, help="seed of generation and finetuning (default: 0)")
    parser.add_argument("--config", default=None,
                        help="JSON file with extra settings: {'warp': {...}, 'generator': {...}}")
    add_finetune_options(parser)
    add_tile_options(parser)
    add_device(parser)
    add_load_options(parser)
    parser.set_defaults(func=run)


def build(args: argparse.Namespace, progress: Any = None, workers: Any = None) -> Any:
    """The :class:`hiralign.pipeline.Adaptation` these arguments describe."""
    from hiralign.commands._common import finetune_config, load_options, read_json_settings, tile_config
    from hiralign.pipeline import Adaptation, AdaptConfig, Workers

    extra = read_json_settings(args.config)
    generator_settings = dict(extra.get("generator", {}))
    if args.generator_model:
        generator_settings["model"] = args.generator_model
    config = AdaptConfig(task=args.task, model=args.model, generator=args.generator,
                         generator_settings=generator_settings, guides=args.guides,
                         warp_settings=dict(extra.get("warp", {})), finetune=finetune_config(args, seed=args.seed),
                         tiles=tile_config(args), seed=args.seed, device=args.device)
    return Adaptation(args.target, config, args.out, clean=args.clean, load_options=load_options(args),
                      workers=workers or Workers(), progress=progress)


def run(args: argparse.Namespace) -> int:
    from hiralign.distributed import process_group
    from hiralign.progress import ConsoleProgress, NullProgress

    # Under torchrun / accelerate launch every process runs this; alone, workers is 1 of 1.
    with process_group(args.device) as workers:
        progress = ConsoleProgress("adapt") if workers.is_main else NullProgress()
        try:
            report = build(args, progress, workers).run_all()
        finally:
            if workers.is_main:
                progress.close()
    if workers.is_main:
        emit_json(report)
    return 0
