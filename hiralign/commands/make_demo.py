"""``hiralign make-demo --out DIR``: rebuild the embedded demo target set."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import emit_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "make-demo", help="build the small demo target set (degraded cubes + clean references)",
        description="Synthesize a small target domain that differs from the source set in layouts "
                    "(procedural dead-leaves scenes), materials (another reflectance library) and light "
                    "(incandescent A), and save its cubes degraded with seed 0 (observed/) beside their "
                    "clean references (clean/) and manifest.json. The repository ships the result in "
                    "resources/demo.")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to create (replaced when complete)")
    parser.add_argument("--n", type=int, default=4, help="number of scenes (default: 4)")
    parser.add_argument("--size", type=int, default=96, help="side of each scene in pixels (default: 96)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the layouts (default: 0)")
    parser.add_argument("--task", default="gaussian", help="degradation of the observed cubes (default: gaussian)")
    parser.add_argument("--illuminant", default="A", help="light of the target scenes (default: A)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.degrade import check_task
    from hiralign.source import DemoConfig, make_demo_set, read_manifest

    check_task(args.task)
    config = DemoConfig(n=args.n, size=args.size, seed=args.seed, task=args.task, illuminant=args.illuminant)
    out = make_demo_set(args.out, config)
    manifest = read_manifest(out)
    emit_json({"out": str(out), "scenes": [e["file"] for e in manifest["cubes"]],
               "clean": [e["clean"] for e in manifest["cubes"]], "config": manifest["config"]})
    return 0
