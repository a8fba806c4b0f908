"""``hiralign make-source --out DIR``: build the synthetic source set from bundled data."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import emit_json


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "make-source", help="build the synthetic source set (no download needed)",
        description="Synthesize the source-domain training set of PROTOCOL.md: scikit-image's bundled "
                    "photographs get per-pixel 31-band reflectances (400–700 nm; --grid fine: 81 bands at "
                    "380–780 nm) from measured spectra "
                    "bundled with colour-science, whose sRGB rendering matches the pixel, rendered as "
                    "radiance under daylight D65. Writes NPZ cubes and manifest.json; prints a JSON summary.")
    parser.add_argument("--out", required=True, metavar="DIR", help="folder to create (replaced when complete)")
    parser.add_argument("--n", type=int, default=24, help="number of cubes (default: 24)")
    parser.add_argument("--size", type=int, default=128, help="side of each square cube in pixels (default: 128)")
    parser.add_argument("--seed", type=int, default=0, help="random seed of crops and spectra (default: 0)")
    parser.add_argument("--illuminant", default="D65", help="colour-science illuminant name (default: D65)")
    parser.add_argument("--grid", default="31", choices=("31", "fine"),
                        help="wavelengths: 31 = 400–700 nm every 10 nm (default); fine = 380–780 nm every 5 nm "
                             "(81 bands), the set band-agnostic models pretrain on (pretrain --band-layouts)")
    parser.add_argument("--layouts", nargs="*", default=[], metavar="IMAGE",
                        help="extra RGB layout images (PNG/JPEG) besides the bundled ones")
    parser.add_argument("--spectra", nargs="*", default=[], metavar="CSV",
                        help="extra reflectances: CSV with a header, wavelength (nm) first, one spectrum per column")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.progress import ConsoleProgress
    from hiralign.source import SourceConfig, make_source_set, read_manifest

    config = SourceConfig(n=args.n, size=args.size, seed=args.seed, illuminant=args.illuminant, grid=args.grid)
    progress = ConsoleProgress("make-source")
    try:
        out = make_source_set(args.out, config, extra_layouts=args.layouts, extra_spectra=args.spectra,
                              progress=progress)
    finally:
        progress.close()
    manifest = read_manifest(out)
    emit_json({"out": str(out), "cubes": len(manifest["cubes"]), "size": args.size,
               "layouts": manifest["layouts"], "config": manifest["config"]})
    return 0
