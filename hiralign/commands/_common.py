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
    from hiralign.config import AdaptConfig, field_default

    parser.add_argument("--device", default=field_default(AdaptConfig, "device"),
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


#: Finetuning options: command-line flag -> FinetuneConfig field (the others, lr_min and seed,
#: come from --seed and the defaults).
FINETUNE_OPTIONS = {"--steps": "steps", "--ratio": "ratio", "--mode": "mode", "--batch-size": "batch_size",
                    "--patch-size": "patch_size", "--lr": "lr", "--source-replay": "source_replay"}
#: Tiled-inference options: flag -> TileConfig field.
TILE_OPTIONS = {"--tile": "tile", "--overlap": "overlap"}


def add_finetune_options(parser: argparse.ArgumentParser) -> None:
    """Aligned-finetuning settings; help texts and defaults from :class:`hiralign.finetune.FinetuneConfig`."""
    from hiralign.config import field_default, field_help
    from hiralign.finetune import MODES, FinetuneConfig

    group = parser.add_argument_group("finetuning")
    for flag, name in FINETUNE_OPTIONS.items():
        kind = float if name == "source_replay" else type(field_default(FinetuneConfig, name))
        extra: dict[str, Any] = {"choices": MODES} if name == "mode" else {"type": kind}
        group.add_argument(flag, default=None, help=field_help(FinetuneConfig, name), **extra)


def finetune_config(args: argparse.Namespace, seed: int = 0) -> Any:
    """A :class:`hiralign.finetune.FinetuneConfig` from the options, defaults elsewhere."""
    from hiralign.finetune import FinetuneConfig

    given = {name: getattr(args, flag[2:].replace("-", "_")) for flag, name in FINETUNE_OPTIONS.items()}
    return FinetuneConfig(seed=seed, **{k: v for k, v in given.items() if v is not None})


def add_tile_options(parser: argparse.ArgumentParser) -> None:
    """Tiled-inference settings; help texts and defaults from :class:`hiralign.proxy.TileConfig`."""
    from hiralign.config import field_default, field_help
    from hiralign.proxy import TileConfig

    for flag, name in TILE_OPTIONS.items():
        parser.add_argument(flag, type=int, default=field_default(TileConfig, name), help=field_help(TileConfig, name))


def tile_config(args: argparse.Namespace) -> Any:
    from hiralign.proxy import TileConfig

    return TileConfig(tile=args.tile, overlap=args.overlap)


#: ``hiralign adapt`` options of :class:`hiralign.ensemble.ProxyConfig`.
PROXY_OPTIONS = {"--proxy-source": "source", "--proxy-classical": "classical", "--blend-weight": "blend_weight",
                 "--proxy-transforms": "transforms"}


def add_proxy_options(parser: argparse.ArgumentParser) -> None:
    """Where stage-1 proxies come from; help texts and defaults from :class:`hiralign.ensemble.ProxyConfig`."""
    from hiralign.config import field_default, field_help
    from hiralign.ensemble import CLASSICAL, PROXY_SOURCES, ProxyConfig

    group = parser.add_argument_group("stage-1 proxies")
    choices = {"source": PROXY_SOURCES, "classical": CLASSICAL}
    for flag, name in PROXY_OPTIONS.items():
        kind = type(field_default(ProxyConfig, name))
        extra: dict[str, Any] = {"choices": choices[name]} if name in choices else {"type": kind}
        group.add_argument(flag, default=None, help=field_help(ProxyConfig, name), **extra)


def proxy_config(args: argparse.Namespace) -> Any:
    """A :class:`hiralign.ensemble.ProxyConfig` from the options, defaults elsewhere."""
    from hiralign.ensemble import ProxyConfig

    given = {name: getattr(args, flag[2:].replace("-", "_"), None) for flag, name in PROXY_OPTIONS.items()}
    return ProxyConfig(**{k: v for k, v in given.items() if v is not None})


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
