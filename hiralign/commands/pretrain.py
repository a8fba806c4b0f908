"""``hiralign pretrain --task T --source DIR --out CKPT``: train a source restorer."""
from __future__ import annotations

import argparse
import json
from typing import Any

from hiralign.commands._common import add_device, emit_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "pretrain", help="train a restorer on the synthetic source set",
        description="Train a restoration network on a source set made by make-source with the one "
                    "training loop (random crops, flips/rotations, degradations re-drawn every step, "
                    "Adam with cosine decay, L1 loss). Logs validation PSNR on held-out cubes; Ctrl-C "
                    "saves a resumable state beside the output (continue with --resume). Writes a "
                    "checkpoint folder (model.safetensors, config.json, provenance.json).")
    parser.add_argument("--task", required=True, help="degradation task: gaussian, complex, sr4, ...")
    parser.add_argument("--arch", default=None, help="architecture (default: compact, or --init's)")
    parser.add_argument("--arch-args", default=None, metavar="JSON",
                        help='architecture arguments as JSON, e.g. \'{"features": 48}\'')
    parser.add_argument("--source", required=True, metavar="DIR", help="source set folder (make-source)")
    parser.add_argument("--out", required=True, metavar="CKPT", help="checkpoint folder to write")
    parser.add_argument("--steps", type=int, default=1000, help="training steps (default: 1000)")
    parser.add_argument("--batch-size", type=int, default=16, help="patches per step (default: 16)")
    parser.add_argument("--patch-size", type=int, default=64, help="clean patch side in pixels (default: 64)")
    parser.add_argument("--lr", type=float, default=1e-3, help="initial learning rate (default: 1e-3)")
    parser.add_argument("--loss", default="l1", choices=("l1", "l2"),
                        help="training loss (default: l1; the shipped sr4 model uses l2, see docs/models.md)")
    parser.add_argument("--seed", type=int, default=0, help="seed of patches and degradations (default: 0)")
    parser.add_argument("--val-cubes", type=int, default=2, help="cubes held out for validation (default: 2)")
    parser.add_argument("--validate-every", type=int, default=0,
                        help="steps between validation PSNRs (default: 0 = only at the end)")
    parser.add_argument("--projector-rank", type=int, default=None,
                        help="rank of the compact model's initial spectral projector (default: per task; 0 = identity)")
    parser.add_argument("--band-layouts", default=None, metavar="MIN:MAX",
                        help="band-agnostic architectures: resample every batch to a random layout of MIN–MAX "
                             "bands (e.g. 8:64) from a make-source --grid fine set (default: the set's own bands)")
    parser.add_argument("--band-step", default="3:15", metavar="MIN:MAX",
                        help="with --band-layouts: range of the mean band spacing in nm (default: 3:15)")
    parser.add_argument("--band-jitter", type=float, default=0.25,
                        help="with --band-layouts: largest move of a band centre, share of the spacing "
                             "(default: 0.25)")
    parser.add_argument("--resume", action="store_true", help="continue a cancelled run with the same settings")
    parser.add_argument("--init", default=None, metavar="CKPT",
                        help="start from this checkpoint's weights instead of a fresh network (continued "
                             "pretraining: a longer schedule or a larger source set; or a warm start from another "
                             "task of the same scale, e.g. a denoiser for inpaint); its architecture and "
                             "arguments are used unless --arch/--arch-args are given")
    add_device(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.errors import ConfigError
    from hiralign.pretrain import PretrainSettings, pretrain
    from hiralign.progress import ConsoleProgress
    from hiralign.train import TrainConfig

    try:
        arch_args = json.loads(args.arch_args) if args.arch_args is not None else {}
    except json.JSONDecodeError as exc:
        raise ConfigError(f"--arch-args is not valid JSON: {exc}") from None
    if not isinstance(arch_args, dict):
        raise ConfigError("--arch-args must be a JSON object")
    arch = args.arch or "compact"
    if args.init:
        from hiralign.models.checkpoint import read_config

        initial = read_config(args.init)
        arch = args.arch or initial.arch
        if args.arch_args is None:
            arch_args = dict(initial.args)
    config = TrainConfig(task=args.task, steps=args.steps, batch_size=args.batch_size, patch_size=args.patch_size,
                         lr=args.lr, loss=args.loss, seed=args.seed,
                         validate_every=args.validate_every)
    layouts = None
    if args.band_layouts:
        from hiralign.patches import BandLayouts

        low, high = _range(args.band_layouts, "--band-layouts", int)
        step_low, step_high = _range(args.band_step, "--band-step", float)
        layouts = BandLayouts(min_bands=low, max_bands=high, min_step_nm=step_low, max_step_nm=step_high,
                              jitter=args.band_jitter)
    settings = PretrainSettings(arch=arch, args=arch_args, val_cubes=args.val_cubes,
                                projector_rank=args.projector_rank, band_layouts=layouts, init=args.init)
    progress = ConsoleProgress(f"pretrain {args.task}")
    try:
        out, result = pretrain(args.source, args.out, config, settings, device=args.device, resume=args.resume,
                               progress=progress)
    finally:
        progress.close()
    emit_json({"out": str(out), "task": args.task, "arch": arch, **result.to_dict()})
    return 0


def _range(text: str, option: str, kind: type) -> tuple[Any, Any]:
    """``"MIN:MAX"`` → (MIN, MAX) of ``kind``; ConfigError naming ``option`` otherwise."""
    from hiralign.errors import ConfigError

    try:
        low, high = (kind(v) for v in text.split(":"))
    except ValueError:
        raise ConfigError(f"{option} expects MIN:MAX (e.g. 8:64), got {text!r}") from None
    return low, high
