"""``hiralign demo``: the whole method, headless, on the embedded demo target set."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import add_device, add_finetune_options, emit_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "demo", help="run hiralign adapt on the embedded demo (degraded cubes + clean references)",
        description="Adapt the shipped gaussian source model to the embedded demo target set "
                    "(resources/demo) and report source vs adapted PSNR/SSIM/SAM against its clean "
                    "references. The run folder resumes when the command is repeated.")
    parser.add_argument("--out", default="hiralign-demo-run", help="run folder (default: ./hiralign-demo-run)")
    from hiralign.config import AdaptConfig, field_default, field_help

    parser.add_argument("--generator", default=field_default(AdaptConfig, "generator"),
                        help=f"guide generator (default: {field_default(AdaptConfig, 'generator')})")
    parser.add_argument("--guides", type=int, default=field_default(AdaptConfig, "guides"),
                        help=field_help(AdaptConfig, "guides"))
    parser.add_argument("--seed", type=int, default=field_default(AdaptConfig, "seed"),
                        help=field_help(AdaptConfig, "seed"))
    add_finetune_options(parser)
    add_device(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.commands._common import finetune_config
    from hiralign.config import AdaptConfig
    from hiralign.errors import InputError
    from hiralign.pipeline import Adaptation
    from hiralign.progress import ConsoleProgress
    from hiralign.resources import demo_dir
    from hiralign.source import read_manifest

    folder = demo_dir()
    manifest = read_manifest(folder)
    entries = manifest.get("cubes") or []
    if not entries:
        raise InputError(f"{folder}/manifest.json lists no demo cubes")
    task = manifest.get("config", {}).get("task", "gaussian")
    targets = [folder / e["file"] for e in entries]
    clean = [folder / e["clean"] for e in entries]
    config = AdaptConfig(task=task, generator=args.generator, guides=args.guides,
                         finetune=finetune_config(args, seed=args.seed), seed=args.seed, device=args.device)
    progress = ConsoleProgress("demo")
    try:
        report = Adaptation(targets, config, args.out, clean=clean, progress=progress).run_all()
    finally:
        progress.close()
    emit_json(report)
    return 0
