"""``hiralign adapt``: the whole method, headless, into a resumable run folder."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import (
    add_device,
    add_finetune_options,
    add_load_options,
    add_proxy_options,
    add_tile_options,
    emit_json,
)


def register(subparsers: Any) -> None:
    from hiralign.commands.generate import GENERATOR_NAMES
    from hiralign.config import AdaptConfig, field_default, field_help

    parser = subparsers.add_parser(
        "adapt", help="proxy → generate → warp → finetune → restore, into a run folder",
        description="Adapt a source restorer to degraded target cubes with HIR-ALIGN and write a run "
                    "folder (config.json, proxies/, guides/, synth/, warp.json, checkpoint/, restored/, "
                    "report.json). Finished stages are not recomputed when the same command is run again. "
                    "The whole chain (model and task, bands, generator weights, device) is checked first.")
    parser.add_argument("--target", nargs="+", required=True, metavar="IN", help="degraded target cubes")
    parser.add_argument("--task", required=True, metavar="TASK",
                        help=field_help(AdaptConfig, "task", default=False))
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    parser.add_argument("--model", default=None, help="source checkpoint folder (default: shipped for --task)")
    parser.add_argument("--generator", default=field_default(AdaptConfig, "generator"),
                        help=f"guide generator: {', '.join(GENERATOR_NAMES)} "
                             f"(default: {field_default(AdaptConfig, 'generator')})")
    parser.add_argument("--generator-model", default=None, help="unclip: pipeline folder or hub id (local)")
    parser.add_argument("--guides", type=int, default=field_default(AdaptConfig, "guides"),
                        help=field_help(AdaptConfig, "guides"))
    parser.add_argument("--clean", nargs="+", default=None, metavar="CLEAN",
                        help="clean references of the targets (same order) for the report's metrics")
    parser.add_argument("--seed", type=int, default=field_default(AdaptConfig, "seed"),
                        help=field_help(AdaptConfig, "seed"))
    parser.add_argument("--fuse-proxies", type=float, default=field_default(AdaptConfig, "fuse_proxies"),
                        help=field_help(AdaptConfig, "fuse_proxies"))
    parser.add_argument("--restore-transforms", type=int, default=field_default(AdaptConfig, "restore_transforms"),
                        help=field_help(AdaptConfig, "restore_transforms"))
    parser.add_argument("--no-consistency", dest="consistency", action="store_false",
                        help="sr4, bandmiss, inpaint: keep the network's output as it is instead of making proxies "
                             "and restorations agree exactly with the targets (sr4: down-sample to them; bandmiss, "
                             "inpaint: keep their observed bands or values); for captures that are not a clean "
                             "observation of the scene (AdaptConfig.consistency)")
    parser.add_argument("--config", default=None,
                        help="JSON file with extra settings: {'warp': {...}, 'generator': {...}} "
                             "(field names of WarpConfig and of the generator's config)")
    add_proxy_options(parser)
    add_finetune_options(parser)
    add_tile_options(parser)
    add_device(parser)
    add_load_options(parser)
    parser.set_defaults(func=run)


def adapt_config(args: argparse.Namespace) -> Any:
    """The :class:`hiralign.config.AdaptConfig` these arguments describe."""
    from hiralign.commands._common import finetune_config, proxy_config, read_json_settings, tile_config
    from hiralign.config import AdaptConfig, build_dataclass
    from hiralign.errors import ConfigError
    from hiralign.warp import WarpConfig

    extra = read_json_settings(args.config)
    unknown = sorted(set(extra) - {"warp", "generator"})
    if unknown:
        raise ConfigError(f"{args.config}: unknown section(s) {', '.join(unknown)}; expected 'warp' and 'generator'")
    generator = dict(extra.get("generator", {}))
    if args.generator_model:
        generator["model"] = args.generator_model
    return AdaptConfig(task=args.task, model=args.model, generator=args.generator, generator_config=generator,
                       guides=args.guides, warp=build_dataclass(WarpConfig, extra.get("warp", {}), "warp settings"),
                       finetune=finetune_config(args, seed=args.seed), tiles=tile_config(args),
                       proxy=proxy_config(args), fuse_proxies=args.fuse_proxies,
                       restore_transforms=args.restore_transforms, consistency=args.consistency, seed=args.seed,
                       device=args.device)


def build(args: argparse.Namespace, progress: Any = None, workers: Any = None) -> Any:
    """The :class:`hiralign.pipeline.Adaptation` these arguments describe."""
    from hiralign.commands._common import load_options
    from hiralign.distributed import Workers
    from hiralign.pipeline import Adaptation

    return Adaptation(args.target, adapt_config(args), args.out, clean=args.clean, load_options=load_options(args),
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
        print_quality(report)
        emit_json(report)
    return 0


def print_quality(report: dict[str, Any]) -> None:
    """The scale's warnings, each target's no-reference quality summary and what restored/ is, on stderr
    (stdout is JSON)."""
    import sys

    from hiralign.quality import summary_text

    for warning in report.get("warnings", ()):
        print(f"warning: {warning}", file=sys.stderr)
    for name, quality in (report.get("quality") or {}).items():
        if "noise" in quality:
            text = summary_text(quality).replace("\n", "\n  ")
            print(f"{name}:\n  {text}", file=sys.stderr)
    note = restored_note(report)
    if note:
        print(f"note: {note}", file=sys.stderr)


def restored_note(report: dict[str, Any]) -> str | None:
    """Where restored/ holds the proxies alone (``--fuse-proxies 1``), say that the adapted network is not in it.

    Without this a scientist cannot tell that the minutes of synthesis and finetuning made only
    ``checkpoint/``: both restored/ and ``hiralign restore`` of new captures are the proxy source's.
    """
    weight = report.get("fused_proxy_weight")
    if not isinstance(weight, (int, float)) or weight < 1:
        return None
    return (f"restored/ holds the {report.get('proxy_source', 'classical')} proxies (--fuse-proxies 1, the "
            f"default where they come from a denoiser: they scored higher), and hiralign restore gives new captures "
            f"the same; the adapted network in checkpoint/ enters only with --fuse-proxies below 1, or alone with "
            f"hiralign restore --network-only")
