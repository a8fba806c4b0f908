"""``hiralign finetune``: stage 3 alone, from proxy and synthesized cube files."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import add_device, add_finetune_options, emit_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "finetune", help="stage 3: finetune a restorer on proxies + synthesized cubes (aligned pairs)",
        description="Finetune a source restorer on aligned pairs (D_task(p), p) and (D_task(ỹ), ỹ), "
                    "re-drawing the degradation for every sampled patch, and save the adapted checkpoint.")
    parser.add_argument("--model", required=True, help="source checkpoint folder")
    parser.add_argument("--proxies", nargs="+", required=True, metavar="CUBE", help="proxy cubes")
    parser.add_argument("--synth", nargs="*", default=[], metavar="CUBE", help="synthesized cubes")
    parser.add_argument("--out", required=True, help="adapted checkpoint folder to write")
    parser.add_argument("--seed", type=int, default=0, help="sampling and degradation seed (default: 0)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT.state.pt when present")
    parser.add_argument("--noise", default=None, metavar="NOISE_JSON",
                        help="a sensor model: the captures' noise model (hiralign noise --out) for the proxies "
                             "as written by hiralign proxy (the input's scale); without it, random sensor "
                             "parameters")
    add_finetune_options(parser)
    add_device(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hiralign import io
    from hiralign.commands._common import finetune_config
    from hiralign.device import resolve_device
    from hiralign.finetune import finetune
    from hiralign.models.checkpoint import load_checkpoint, read_provenance, save_checkpoint
    from hiralign.progress import ConsoleProgress
    from hiralign.replay import replay_for

    config = finetune_config(args, seed=args.seed)
    device = resolve_device(args.device)
    model, ckpt = load_checkpoint(args.model, device)
    noise = None
    if args.noise:
        from hiralign.commands.degrade import read_noise

        noise = read_noise(args.noise).on_scale(1.0, "loaded")  # the proxy files' loaded scale
    proxies = [io.load(p) for p in args.proxies]
    synth = [io.load(p) for p in args.synth]
    replay = replay_for(config.source_replay or 0, read_provenance(args.model), proxies)
    out = Path(args.out)
    state = out.with_name(out.name + ".state.pt")
    progress = ConsoleProgress("finetune")
    try:
        result = finetune(model, ckpt.task, proxies, synth, config, state_path=state, resume=args.resume,
                          device=device, progress=progress, noise=noise, replay=replay.cubes)
    finally:
        progress.close()
    provenance = {"kind": "hiralign-finetuned", "source_model": str(args.model),
                  "source_provenance": read_provenance(args.model), "proxies": args.proxies,
                  "synthesized": args.synth, "finetune": config.__dict__, "training": result.to_dict(),
                  "source_replay": {"weight": config.source_replay, **replay.to_dict()}}
    save_checkpoint(model, out, ckpt, provenance)
    state.unlink(missing_ok=True)
    emit_json({"checkpoint": str(out), "training": result.to_dict()})
    return 0
