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
    parser.add_argument("--generator", default="patchnn", help="guide generator (default: patchnn)")
    parser.add_argument("--guides", type=int, default=3, help="guides per proxy (default: 3)")
    parser.add_argument("--seed", type=int, default=0)
    add_finetune_options(parser)
    add_device(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.commands._common import finetune_config
    from hiralign.errors import InputError
    from hiralign.pipeline import Adaptation, AdaptConfig
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
