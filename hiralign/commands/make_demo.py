"""``hiralign make-demo --out DIR``: rebuild the embedded demo target set (:mod:`hiralign.demo`)."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import emit_json


def register(subparsers: Any) -> None:
    from hiralign.demo import SCENES, DemoConfig

    defaults = DemoConfig()
    parser = subparsers.add_parser(
        "make-demo", help="build the small demo target set (degraded cubes + clean references)",
        description="Turn photographs bundled with scikit-image (a stained tissue section, a retina, "
                    "scikit-image's logo, the Hubble deep field; none of them a source-set layout) into 31-band "
                    "cubes with another reflectance library and another light than the source set, and save "
                    "them degraded with seed 0 (observed/) beside their clean references (clean/) and "
                    "manifest.json. The repository ships the result in resources/demo.")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to create (replaced when complete)")
    parser.add_argument("--scenes", nargs="+", default=list(defaults.scenes), choices=list(SCENES),
                        metavar="NAME", help=f"scenes, in order (default: {' '.join(defaults.scenes)})")
    parser.add_argument("--size", type=int, default=defaults.size,
                        help=f"side of each scene in pixels (default: {defaults.size})")
    parser.add_argument("--task", default=defaults.task,
                        help=f"degradation of the observed cubes (default: {defaults.task})")
    parser.add_argument("--illuminant", default=defaults.illuminant,
                        help=f"light of the target scenes (default: {defaults.illuminant}; the source set's is D65)")
    parser.add_argument("--bits", type=int, default=defaults.bits,
                        help=f"precision the observations are stored at, 0 = float32 (default: {defaults.bits})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.degrade import check_task
    from hiralign.demo import DemoConfig, make_demo_set
    from hiralign.source import read_manifest

    check_task(args.task)
    config = DemoConfig(scenes=tuple(args.scenes), size=args.size, task=args.task, illuminant=args.illuminant,
                        bits=args.bits)
    out = make_demo_set(args.out, config)
    manifest = read_manifest(out)
    emit_json({"out": str(out), "scenes": [e["file"] for e in manifest["cubes"]],
               "clean": [e["clean"] for e in manifest["cubes"]], "config": manifest["config"]})
    return 0
