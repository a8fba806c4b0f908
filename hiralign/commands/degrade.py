"""``hiralign degrade IN OUT --task T --seed S``: simulate an observation of a clean cube."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from hiralign.commands._common import add_load_options, emit_json

#: Kept literal so that ``hiralign --help`` does not import torch; tests check they equal
#: :data:`hiralign.degrade.TASKS` and :data:`hiralign.degrade.ALL_TASKS`.
TASK_NAMES = ("gaussian", "complex", "sr4", "deblur", "bandmiss", "inpaint")
ALL_TASK_NAMES = TASK_NAMES + ("sensor",)


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "degrade", help="degrade a clean cube with a task operator D_task (seeded)",
        description="Load a clean cube, apply the degradation of a restoration task exactly as "
                    "evaluation and finetuning do (PROTOCOL.md), and save the observation. sr4 "
                    "writes the ×4 smaller low-resolution cube (an image whose size is not a "
                    "multiple of 4 is first cropped at its bottom/right edge, with a warning). "
                    "Prints a JSON summary.")
    parser.add_argument("input", metavar="IN", help="clean cube file (or CAVE folder)")
    parser.add_argument("output", metavar="OUT",
                        help="observation to write (.hdr/.img ENVI, .mat, .npy, .npz, .tif)")
    parser.add_argument("--task", required=True, metavar="TASK",
                        help=f"degradation: {', '.join(ALL_TASK_NAMES)} (sensor: a sensor's own noise, "
                             "from --noise)")
    parser.add_argument("--noise", default=None, metavar="NOISE_JSON",
                        help="sensor task: the noise model to draw from, as written by hiralign noise --out or "
                             "a run's noise.json (per band var = a·μ + b on its own scale, e.g. counts); "
                             "without it, random sensor parameters as in source pretraining")
    parser.add_argument("--dtype", default="float32", choices=("float32", "input"),
                        help="stored data type: float32 (default) or input (the input file's, e.g. uint16 "
                             "counts, rounded and clipped like a real capture)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default: the same observation on every machine) or cuda/auto "
                             "(faster, reproducible only on the same kind of GPU)")
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.degrade import check_task, degrade_cube
    from hiralign.device import resolve_device
    from hiralign.errors import ConfigError
    from hiralign.io import load, save, would_replace

    check_task(args.task)
    if args.noise and args.task != "sensor":
        raise ConfigError(f"--noise is used by the sensor task only, not by {args.task}")
    noise = read_noise(args.noise) if args.noise else None
    source, target = Path(args.input), Path(args.output)
    if would_replace(source, target):
        raise ConfigError(f"{target}: the output would overwrite the clean input {source}; choose another name")
    device = resolve_device(args.device)
    cube = load(source, var=args.var, wavelengths=args.wavelengths, zero_nonfinite=args.zero_nonfinite)
    observed = degrade_cube(cube, args.task, args.seed, device=device, noise=noise)
    written = save(observed, target, dtype=None if args.dtype == "float32" else "input")
    emit_json({
        "input": str(source),
        "output": str(written),
        "task": args.task,
        "seed": args.seed,
        "device": str(device),
        "input_shape": list(cube.shape),
        "output_shape": list(observed.shape),
        "cropped_to": observed.metadata["degradation"]["cropped_to"],
        "noise": args.noise,
    })
    return 0


def read_noise(path: str | Path) -> Any:
    """The :class:`hiralign.noise.NoiseModel` in a JSON file (``hiralign noise --out``, ``noise.json``).

    Raises:
        MissingFileError, InputError: no such file, not JSON, or not a noise model (naming it).
    """
    import json

    from hiralign.errors import InputError, MissingFileError
    from hiralign.noise import NoiseModel

    p = Path(path).expanduser()
    if not p.is_file():
        raise MissingFileError(f"{p}: no such noise model file")
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"{p}: not a JSON noise model ({exc})") from None
    return NoiseModel.from_dict(data, str(p))
