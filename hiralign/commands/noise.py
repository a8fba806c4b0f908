"""``hiralign noise FILE… [--plot out.png] [--shared]``: estimate each capture's own noise.

Prints JSON: per file the per-band σ, the Poisson–Gaussian var = a·μ + b per band and one
all-bands fit, on the file's own scale (counts for integer files), with the wavelengths;
``--shared`` adds one model fitted to all files together (captures of one sensor), the form
``--task sensor`` stores as a run's ``noise.json``. The plot is drawn with numpy and Pillow
(no matplotlib, no Qt): σ per band, and variance against mean level with the fit for a few bands.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hiralign.commands._common import add_load_options, emit_json, load_options

if TYPE_CHECKING:
    from hiralign.noise import NoiseAnalysis

#: Bands whose variance-vs-mean fit the plot shows (spread over the band range).
PLOT_BANDS = 4
_COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189)]


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "noise", help="estimate per-band noise (σ and Poisson–Gaussian a·μ + b) of captures",
        description="Estimate the noise of degraded captures themselves (no clean reference): per band a "
                    "robust σ from the finest Haar diagonal detail and a Poisson–Gaussian model "
                    "var = a·μ + b fitted over level sets, on the file's own scale (counts for integer "
                    "files). Prints JSON; --plot writes a PNG.")
    parser.add_argument("files", nargs="+", metavar="FILE", help="capture files (ENVI, MAT, npy, npz, tif...)")
    parser.add_argument("--shared", action="store_true",
                        help="also fit one model to all files together (captures of one sensor)")
    parser.add_argument("--plot", default=None, metavar="PNG",
                        help="write a plot: σ per band, variance vs mean with the fit (first file, or shared)")
    parser.add_argument("--out", default=None, metavar="JSON",
                        help="write the noise model (the shared one with --shared, else the first file's) "
                             "as JSON, the form a --task sensor run stores as noise.json")
    parser.add_argument("--bins", type=int, default=None, help="level-set bins per band (default: 16)")
    add_load_options(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from hiralign.errors import ConfigError
    from hiralign.io import load
    from hiralign.noise import LEVEL_BINS, analyse

    bins = LEVEL_BINS if args.bins is None else args.bins
    if bins < 1:
        raise ConfigError(f"--bins must be ≥ 1, got {bins}")
    cubes, results, analyses = [], [], []
    for name in args.files:
        cube = load(Path(name), **load_options(args))
        analysis = analyse(cube, bins=bins)
        cubes.append(cube)
        analyses.append(analysis)
        results.append(_entry(analysis, {"file": name, "shape": list(cube.shape)}))
    summary: dict[str, Any] = {"files": results}
    shown = analyses[0]
    if args.shared:
        shown = analyse(cubes, bins=bins)
        summary["shared"] = _entry(shown, {"files": list(args.files)})
    if args.plot:
        from hiralign.io import save_rgb

        summary["plot"] = str(save_rgb(render_plot(shown), Path(args.plot)))
    if args.out:
        from hiralign.atomic import write_json

        write_json(Path(args.out), shown.model.to_dict())
        summary["out"] = args.out
    emit_json(summary)
    return 0


def _entry(analysis: NoiseAnalysis, head: dict[str, Any]) -> dict[str, Any]:
    a, b = analysis.pooled_ab
    return {**head, "model": analysis.model.to_dict(), "all_bands": {"a": a, "b": b}}


# ---------------------------------------------------------------------------- plot
def render_plot(analysis: NoiseAnalysis, width: int = 960, height: int = 420) -> np.ndarray:
    """An (height, width, 3) float image in [0, 1]: σ per band | variance vs mean with the fits.

    Args:
        analysis: the fitted model and its level-set statistics.
        width, height: image size in pixels.
    """
    from PIL import Image, ImageDraw

    model = analysis.model
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    half = width // 2
    left_box = (60, 44, half - 20, height - 45)
    right_box = (half + 60, 44, width - 20, height - 45)
    x = np.asarray(model.wavelengths if model.wavelengths is not None else np.arange(model.n_bands), float)
    sigma = np.asarray(model.sigma)
    _axes(draw, left_box, (x.min(), x.max()), (0.0, float(sigma.max()) * 1.1 or 1.0),
          "wavelength (nm)" if model.wavelengths is not None else "band", f"sigma ({model.units})")
    _polyline(draw, left_box, (x.min(), x.max()), (0.0, float(sigma.max()) * 1.1 or 1.0), x, sigma,
              _COLOURS[0], dots=True)
    bands = np.unique(np.linspace(0, model.n_bands - 1, min(PLOT_BANDS, model.n_bands)).round().astype(int))
    mu, var = analysis.bin_mean[bands], analysis.bin_var[bands]
    xr = (0.0, float(np.nanmax(mu)) * 1.05 or 1.0)
    yr = (0.0, float(np.nanmax(var)) * 1.1 or 1.0)
    _axes(draw, right_box, xr, yr, f"mean level ({model.units})", "noise variance")
    for k, band in enumerate(bands):
        colour = _COLOURS[(k + 1) % len(_COLOURS)]
        _polyline(draw, right_box, xr, yr, mu[k], var[k], colour, dots=True, line=False)
        grid = np.linspace(*xr, 32)
        _polyline(draw, right_box, xr, yr, grid, model.a[band] * grid + model.b[band], colour)
        label = f"band {band}" + (f" {model.wavelengths[band]:.0f} nm" if model.wavelengths else "")
        draw.text((right_box[0] + 8, right_box[1] + 6 + 14 * k),
                  f"{label}: a={model.a[band]:.3g} b={model.b[band]:.3g}", fill=colour)
    title = ", ".join(model.sources) if len(model.sources) <= 3 else f"{len(model.sources)} captures"
    draw.text((10, 8), f"noise of {title}", fill=(0, 0, 0))
    return np.asarray(image, dtype=np.float32) / 255.0


def _to_px(box, xr, yr, x, y) -> tuple[np.ndarray, np.ndarray]:
    x0, y0, x1, y1 = box
    sx = (np.asarray(x, float) - xr[0]) / ((xr[1] - xr[0]) or 1.0)
    sy = (np.asarray(y, float) - yr[0]) / ((yr[1] - yr[0]) or 1.0)
    return x0 + sx * (x1 - x0), y1 - np.clip(sy, -0.02, 1.02) * (y1 - y0)


def _axes(draw, box, xr, yr, xlabel: str, ylabel: str) -> None:
    x0, y0, x1, y1 = box
    draw.rectangle(box, outline=(0, 0, 0))
    for frac in (0.0, 0.5, 1.0):
        xv, yv = xr[0] + frac * (xr[1] - xr[0]), yr[0] + frac * (yr[1] - yr[0])
        px = x0 + frac * (x1 - x0)
        py = y1 - frac * (y1 - y0)
        draw.line((px, y1, px, y1 + 4), fill=(0, 0, 0))
        draw.text((px - 12, y1 + 6), f"{xv:.4g}", fill=(0, 0, 0))
        draw.line((x0 - 4, py, x0, py), fill=(0, 0, 0))
        draw.text((x0 - 52, py - 6), f"{yv:.3g}", fill=(0, 0, 0))
    draw.text(((x0 + x1) // 2 - 40, y1 + 22), xlabel, fill=(0, 0, 0))
    draw.text((x0, y0 - 14), ylabel, fill=(0, 0, 0))


def _polyline(draw, box, xr, yr, x, y, colour, *, dots: bool = False, line: bool = True) -> None:
    ok = np.isfinite(np.asarray(x, float)) & np.isfinite(np.asarray(y, float))
    px, py = _to_px(box, xr, yr, np.asarray(x, float)[ok], np.asarray(y, float)[ok])
    points = list(zip(px.tolist(), py.tolist()))
    if line and len(points) > 1:
        draw.line(points, fill=colour, width=2)
    if dots:
        for u, v in points:
            draw.ellipse((u - 3, v - 3, u + 3, v + 3), fill=colour)
