"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (the machine-readable result of a command)."""
    from hiralign.atomic import _json_default

    json.dump(obj, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")
    sys.stdout.flush()


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N (default: auto)")


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that reads cubes accepts."""
    parser.add_argument("--var", default=None,
                        help="MAT files: the variable holding the cube when there are several")
    parser.add_argument("--wavelengths", default=None,
                        help="wavelengths in nm for files without them: start:stop:step or a list")
    parser.add_argument("--zero-nonfinite", action="store_true",
                        help="replace NaN/Inf values by 0 instead of refusing the file")


def load_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword options of :func:`hiralign.io.load` given on the command line."""
    return {"var": getattr(args, "var", None), "wavelengths": getattr(args, "wavelengths", None),
            "zero_nonfinite": bool(getattr(args, "zero_nonfinite", False))}


def add_finetune_options(parser: argparse.ArgumentParser) -> None:
    """Aligned-finetuning settings (defaults from :class:`hiralign.finetune.FinetuneConfig`)."""
    group = parser.add_argument_group("finetuning")
    group.add_argument("--steps", type=int, default=None, help="finetuning step budget (default: 400)")
    group.add_argument("--ratio", type=float, default=None,
                       help="r, synthesized:proxy sampling ratio (default: 3, Table VII)")
    group.add_argument("--mode", choices=("hiralign", "proxy-only", "generated-only"), default=None,
                       help="training pairs: proxies + synthesized (default), or one group alone (Table VI)")
    group.add_argument("--batch-size", type=int, default=None, help="patches per step (default: 16)")
    group.add_argument("--patch-size", type=int, default=None, help="patch side in pixels (default: 64)")
    group.add_argument("--lr", type=float, default=None, help="initial learning rate (default: 2e-4)")


def finetune_config(args: argparse.Namespace, seed: int = 0) -> Any:
    """A :class:`hiralign.finetune.FinetuneConfig` from the options, defaults elsewhere."""
    from hiralign.finetune import FinetuneConfig

    given = {"steps": args.steps, "ratio": args.ratio, "mode": args.mode, "batch_size": args.batch_size,
             "patch_size": args.patch_size, "lr": args.lr}
    return FinetuneConfig(seed=seed, **{k: v for k, v in given.items() if v is not None})


def add_tile_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--tile", type=int, default=128, help="inference tile side in pixels (default: 128)")
    parser.add_argument("--overlap", type=int, default=16, help="tile overlap in pixels (default: 16)")


def tile_config(args: argparse.Namespace) -> Any:
    from hiralign.proxy import TileConfig

    return TileConfig(tile=args.tile, overlap=args.overlap)


def read_json_settings(path: str | None) -> dict[str, Any]:
    """Settings from a JSON file (``--config``), or {}."""
    if not path:
        return {}
    from pathlib import Path

    from hiralign.errors import ConfigError, MissingFileError

    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingFileError(f"{p}: no such settings file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"{p}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: expected a JSON object of settings")
    return data
