"""``hiralign metrics --ref CLEAN --est EST``: PSNR / SSIM / SAM of a restored cube (JSON)."""
from __future__ import annotations

import argparse
import logging
import math
from typing import TYPE_CHECKING, Any

from hiralign.commands._common import add_device, add_load_options, emit_json

if TYPE_CHECKING:
    from hiralign.cube import Cube

log = logging.getLogger("hiralign.metrics")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "metrics", help="PSNR / SSIM / SAM of an estimate against a clean reference (JSON)",
        description="Compare an estimated (restored or degraded) cube with its clean reference: "
                    "PSNR (dB, per band with peak 1, averaged), SSIM (per band, data range 1, "
                    "Gaussian window σ=1.5, averaged), SAM (degrees, mean over pixels with non-zero "
                    "spectra) and the PSNR of every band, as JSON.")
    parser.add_argument("--ref", required=True, metavar="CLEAN", help="clean reference cube")
    parser.add_argument("--est", required=True, metavar="EST", help="estimated cube, same shape")
    add_load_options(parser)
    add_device(parser)
    parser.set_defaults(func=run)


def check_same_shape(est: Cube, ref: Cube, est_path: str, ref_path: str) -> None:
    """Raise a clear :class:`InputError` when the cubes cannot be compared pixel by pixel."""
    from hiralign.errors import InputError

    if est.shape == ref.shape:
        return
    (h, w, b), (rh, rw, rb) = est.shape, ref.shape
    hint = ""
    if b == rb and (h * 4, w * 4) == ((rh // 4) * 4, (rw // 4) * 4):
        hint = "; the estimate looks like an sr4 (low-resolution) observation: compare the restored cube"
    elif b == rb and (h, w) == ((rh // 4) * 4, (rw // 4) * 4):
        hint = ("; the estimate looks cropped to a multiple of 4 (as sr4 does): crop the reference to "
                f"{h}×{w} first")
    raise InputError(f"cannot compare {est_path} ({h}×{w}×{b}) with the reference {ref_path} "
                     f"({rh}×{rw}×{rb}): the shapes (H×W×bands) differ{hint}")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from hiralign.device import resolve_device
    from hiralign.io import load
    from hiralign.metrics import psnr_per_band, sam, ssim

    options = dict(var=args.var, wavelengths=args.wavelengths, zero_nonfinite=args.zero_nonfinite)
    ref = load(args.ref, **options)
    est = load(args.est, **options)
    check_same_shape(est, ref, args.est, args.ref)
    if est.wavelengths is not None and ref.wavelengths is not None \
            and not np.allclose(est.wavelengths, ref.wavelengths, atol=0.5):
        log.warning("%s and %s have different wavelengths; comparing band by band anyway", args.est, args.ref)
    device = resolve_device(args.device)
    e, r = est.to_torch(device)[None], ref.to_torch(device)[None]
    per_band = psnr_per_band(e, r)[0].tolist()
    angle = float(sam(e, r)[0])
    emit_json({
        "reference": args.ref,
        "estimate": args.est,
        "shape": list(ref.shape),
        "psnr": float(np.mean(per_band)),
        "ssim": float(ssim(e, r)[0]),
        "sam": None if math.isnan(angle) else angle,
        "psnr_per_band": per_band,
        "wavelengths_nm": None if ref.wavelengths is None else ref.wavelengths.tolist(),
    })
    return 0
