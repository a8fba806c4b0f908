"""``hiralign warp --proxy P --guide G --out OUT``: stage 2b, warp-based spectral transfer."""
from __future__ import annotations

import argparse
from typing import Any

from hiralign.commands._common import add_device, add_load_options, emit_json, load_options


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "warp", help="stage 2b: transfer proxy spectra onto a guide RGB's layout (Eqs. 9–26)",
        description="Align the proxy's pseudo-RGB to the guide RGB (patch descriptors, FAISS seeds, "
                    "refinement, optimised soft aggregation + local interpolation) and apply the same "
                    "sparse row-stochastic operator T to every band of the proxy. Writes the synthesized "
                    "cube (with the proxy's wavelengths) and prints the diagnostics as JSON. A guide of "
                    "another size is resized to the proxy's (noted in the diagnostics). docs/warp.md.")
    parser.add_argument("--proxy", required=True, help="proxy HSI (any cube format hiralign reads)")
    parser.add_argument("--guide", required=True,
                        help="guide RGB: PNG/JPEG/BMP, or a cube whose pseudo-RGB is used")
    parser.add_argument("--out", required=True, help="synthesized cube (.hdr, .mat, .npy, .npz or .tif)")
    parser.add_argument("--operator", default=None, metavar="T.npz",
                        help="also save T (H·W × H·W, scipy.sparse CSR) with scipy.sparse.save_npz")
    parser.add_argument("--rgb", default=None, metavar="PNG", help="also save the transported RGB r̃")
    parser.add_argument("--config", default=None, metavar="JSON",
                        help="warp settings as a JSON object (field names of WarpConfig, docs/warp.md)")
    parser.add_argument("--iterations", type=int, default=None, help="Adam iterations (default: 200)")
    parser.add_argument("--index", choices=("exact", "ivf", "hnsw"), default=None,
                        help="FAISS index for the seed retrieval (default: ivf)")
    add_device(parser)
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hiralign import io
    from hiralign.errors import InputError
    from hiralign.progress import ConsoleProgress
    from hiralign.warp import WarpConfig, warp

    if args.operator and Path(args.operator).suffix.lower() != ".npz":
        raise InputError(f"{args.operator}: the operator is written with scipy.sparse.save_npz; use a .npz name")
    config = WarpConfig.from_json(args.config) if args.config else WarpConfig()
    overrides = {name: value for name, value in (("iterations", args.iterations), ("index", args.index))
                 if value is not None}
    if overrides:
        config = WarpConfig.from_dict({**config.to_dict(), **overrides}, source="command line")
    proxy = io.load(args.proxy, **load_options(args))
    guide = io.load_rgb(args.guide)
    progress = ConsoleProgress("warp")
    try:
        result = warp(proxy, guide, config, device=args.device, progress=progress)
    finally:
        progress.close()
    written = {"cube": str(io.save(result.as_cube(name=f"{proxy.name}_warped"), args.out))}
    if args.operator:
        written["operator"] = str(save_operator(result.operator, Path(args.operator)))
    if args.rgb:
        written["rgb"] = str(io.save_rgb(result.transported_rgb.clip(0.0, 1.0), args.rgb))
    emit_json({"written": written, "diagnostics": result.diagnostics})
    return 0


def save_operator(operator: Any, path: Path) -> Path:  # noqa: F821
    """Write T with ``scipy.sparse.save_npz`` atomically (compressed)."""
    import scipy.sparse as sp

    from hiralign.atomic import atomic_path

    with atomic_path(path) as tmp:
        sp.save_npz(tmp, operator, compressed=True)
    return path
