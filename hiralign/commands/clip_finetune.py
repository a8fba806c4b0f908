"""``hiralign clip-finetune --images DIR --out DIR``: blur-robust CLIP vision encoder (Eq. 7)."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import add_device, emit_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "clip-finetune", help="train unCLIP's CLIP vision encoder so blurred images embed like clean ones",
        description="Finetune the CLIP vision encoder of a Stable unCLIP model (paper Eq. 7) on a folder of "
                    "clean images (COCO in the paper) with random Gaussian blur, against the frozen original "
                    "encoder's clean embeddings. Writes a from_pretrained folder for "
                    "`hiralign generate --generator unclip --clip-encoder DIR`. Needs the unCLIP weights "
                    "locally (--model) or a CLIP vision encoder folder (--encoder).")
    parser.add_argument("--images", required=True, help="folder of clean training images (searched recursively)")
    parser.add_argument("--out", required=True, help="output folder for the finetuned encoder")
    parser.add_argument("--model", default=None,
                        help="Stable unCLIP folder or cached hub id whose image_encoder to start from "
                             "(default: stabilityai/stable-diffusion-2-1-unclip)")
    parser.add_argument("--encoder", default=None, help="start from this CLIPVisionModelWithProjection folder instead")
    from hiralign.config import field_default, field_help
    from hiralign.generate.clip_finetune import ClipFinetuneConfig

    for flag, name, kind in (("--steps", "steps", int), ("--batch-size", "batch_size", int), ("--lr", "lr", float),
                             ("--seed", "seed", int)):
        parser.add_argument(flag, type=kind, default=None, help=field_help(ClipFinetuneConfig, name))
    parser.add_argument("--blur-max", type=float, default=None,
                        help="largest blur std in pixels at the CLIP input size "
                             f"(default: {field_default(ClipFinetuneConfig, 'blur_sigma')[1]:g})")
    add_device(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from hiralign.errors import ConfigError
    from hiralign.generate.base import settings_dict
    from hiralign.generate.clip_finetune import ClipFinetuneConfig, finetune_clip_encoder
    from hiralign.progress import ConsoleProgress

    if args.model is not None and args.encoder is not None:
        raise ConfigError("give --model or --encoder, not both")
    given = {"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
             "device": args.device}
    settings = ClipFinetuneConfig(**{k: v for k, v in given.items() if v is not None})
    if args.blur_max is not None:
        settings = dataclasses.replace(settings, blur_sigma=(min(settings.blur_sigma[0], args.blur_max),
                                                              args.blur_max))
    progress = ConsoleProgress("clip-finetune")
    try:
        result = finetune_clip_encoder(args.images, args.out, model=args.model, encoder=args.encoder,
                                       settings=settings, progress=progress)
    finally:
        progress.close()
    emit_json({"out": str(result.folder), "loss_before": result.loss_before, "loss_after": result.loss_after,
               "seconds": result.seconds, "settings": settings_dict(settings)})
    return 0
