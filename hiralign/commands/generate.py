"""``hiralign generate --generator NAME --n M --seed S IN… --out DIR``: stage 2a, guide RGBs."""
from __future__ import annotations

import argparse
import json
from typing import Any

from hiralign.commands._common import add_device, add_load_options, emit_json, load_options

#: Kept literal so that ``hiralign --help`` does not import the generators; a test checks it
#: equals :data:`hiralign.generate.GENERATORS`.
GENERATOR_NAMES = ("patchnn", "classic", "shuffle", "unclip", "cleanprior", "exact")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")

#: unCLIP options: command-line destination -> UnCLIPConfig field (help and defaults from its docstring).
_UNCLIP_OPTIONS = {"model": "model", "prompt": "prompt", "negative_prompt": "negative_prompt",
                   "strength": "strength", "noise_level": "noise_level", "clip_encoder": "clip_encoder",
                   "guidance_scale": "guidance_scale", "steps": "steps", "work_side": "work_side"}
_UNCLIP_TYPES = {"model": str, "clip_encoder": str, "prompt": str, "negative_prompt": str, "guidance_scale": float,
                 "strength": float, "noise_level": int, "steps": int, "work_side": int}


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "generate", help="stage 2a: draw guide RGBs from proxy RGBs (unCLIP, patchnn, classic, shuffle)",
        description="For each input (an RGB picture, or a cube whose pseudo-RGB Γ is used) draw --n guide "
                    "RGBs of the same size and write <input>_g<j>.png (j = 0..n-1, 16-bit) and generate.json "
                    "with every setting and seed. unclip needs downloaded weights (docs/generators.md); "
                    "without them the default generator is patchnn.")
    parser.add_argument("inputs", nargs="+", metavar="IN", help="proxy RGB pictures or cubes")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--generator", default="auto", metavar="NAME",
                        help=f"{', '.join(GENERATOR_NAMES)} or auto (unclip when its weights are found "
                             "locally, else patchnn; default)")
    from hiralign.config import AdaptConfig, field_default, field_help
    from hiralign.generate.unclip import UnCLIPConfig

    parser.add_argument("--n", type=int, default=field_default(AdaptConfig, "guides"),
                        help=field_help(AdaptConfig, "guides"))
    parser.add_argument("--seed", type=int, default=0,
                        help="base seed; input i uses seed + 7919·i, as `hiralign adapt` does "
                             "(hiralign.config.target_seed; default: 0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="any generator setting, e.g. --set noise_std=4 (repeatable; docs/generators.md)")
    group = parser.add_argument_group("unclip")
    for dest, kind in _UNCLIP_TYPES.items():
        group.add_argument("--" + dest.replace("_", "-"), type=kind, default=None,
                           help=field_help(UnCLIPConfig, _UNCLIP_OPTIONS[dest]))
    add_device(parser)
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hiralign import io
    from hiralign.atomic import write_json
    from hiralign.config import target_seed
    from hiralign.errors import ConfigError
    from hiralign.generate import default_generator_name, get_generator
    from hiralign.generate.base import settings_dict, variation_seeds
    from hiralign.progress import ConsoleProgress, SubProgress
    from hiralign.runfolder import safe_names

    name = args.generator.strip().lower()
    if name == "auto":
        name = default_generator_name(args.model)
        import logging

        logging.getLogger("hiralign").info("generate: using the %s generator%s", name,
                                           "" if name == "unclip" else " (no unCLIP weights found locally)")
    settings = _settings(args, name)
    generator = get_generator(name, **settings)
    out = Path(args.out)
    paths = [Path(p) for p in args.inputs]
    for p in paths:
        if not p.exists():
            from hiralign.errors import MissingFileError

            raise MissingFileError(f"{p}: no such file or folder")
    names = safe_names([p.with_suffix("") if p.suffix.lower() in IMAGE_SUFFIXES else p for p in paths])
    if args.n < 1:
        raise ConfigError(f"--n must be ≥ 1, got {args.n}")
    progress = ConsoleProgress("generate")
    record: dict[str, Any] = {"generator": name, "settings": settings_dict(generator.settings), "n": args.n,
                              "seed": args.seed, "inputs": []}
    try:
        for i, (path, stem) in enumerate(zip(paths, names)):
            rgb = io.load_rgb(path, **load_options(args))
            seed = target_seed(args.seed, i)
            sub = SubProgress(progress, i / len(paths), (i + 1) / len(paths), f"{stem}: ")
            guides = generator.generate(rgb, args.n, seed, sub)
            outputs = []
            for j, guide in enumerate(guides):
                outputs.append(str(io.save_rgb(guide, out / f"{stem}_g{j}.png", bits=16)))
            entry = {"input": str(path), "size": list(rgb.shape[:2]), "seed": seed,
                     "variation_seeds": variation_seeds(seed, args.n), "outputs": outputs}
            info = getattr(generator, "info", None)
            if info:
                entry["info"] = dict(info)
            record["inputs"].append(entry)
            write_json(out / "generate.json", record)
    finally:
        progress.close()
    emit_json(record)
    return 0


def _settings(args: argparse.Namespace, name: str) -> dict[str, Any]:
    """Generator settings from --set and the unclip options (refused for other generators)."""
    from hiralign.errors import ConfigError

    settings: dict[str, Any] = {}
    for item in args.set:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE")
        try:
            value: Any = json.loads(text)
        except ValueError:
            value = text
        settings[key.strip().replace("-", "_")] = tuple(value) if isinstance(value, list) else value
    given = {field: getattr(args, dest) for dest, field in _UNCLIP_OPTIONS.items() if getattr(args, dest) is not None}
    if given and name != "unclip":
        flags = ", ".join("--" + d.replace("_", "-") for d in _UNCLIP_OPTIONS if getattr(args, d) is not None)
        raise ConfigError(f"{flags}: only for --generator unclip (the {name} generator was chosen)")
    settings.update(given)
    if name in ("patchnn", "unclip") and args.device != "auto":
        settings.setdefault("device", args.device)
    return settings
