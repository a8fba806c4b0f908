"""The figures of docs/method.md, made by hiralign itself on a real scene.

    .venv/bin/python docs/figures.py [--scene PATH] [--size 128] [--generator patchnn]

Stage 1 restores a degraded scene with the shipped source model (the proxy p and its RGB
r = Γ(p)); stage 2a generates one guide RGB g from r; stage 2b warps p onto g. The
figures show r vs g vs the transported RGB r̃ = T r (and Γ of the synthesized HSI
ỹ = T p), the displacement field d (Eq. 18), and spectra of ỹ next to the proxy spectra
they were drawn from and the clean spectra there.

The scene is the first KAIST scene of ../shared/data when present (degraded with the
task's seed-0 noise), else the embedded demo's first target with its clean reference.
Rendering uses pyqtgraph offscreen (QT_QPA_PLATFORM=offscreen is set here).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hiralign import io  # noqa: E402
from hiralign.cube import Cube  # noqa: E402

KAIST = ROOT.parent / "shared" / "data" / "kaist" / "scene01.mat"
OUT = Path(__file__).resolve().parent / "figures"
TASK = "gaussian"


def scene(path: Path | None, size: int) -> tuple[Cube, Cube, str]:
    """(degraded, clean, description) centre-cropped to ``size``."""
    from hiralign.degrade import degrade_cube

    wavelengths = None
    if path is None and KAIST.is_file():
        path, wavelengths = KAIST, "420:720:10"  # KAIST files carry no wavelengths (data README)
    if path is not None:
        clean = io.load(path, wavelengths=wavelengths)
        label = f"{path.name} ({clean.height}×{clean.width}×{clean.n_bands})"
        clean = centre_crop(clean, size)
        return degrade_cube(clean, TASK, 0), clean, label
    from hiralign.resources import demo_dir
    from hiralign.source import read_manifest

    entry = read_manifest(demo_dir())["cubes"][0]
    degraded, clean = io.load(demo_dir() / entry["file"]), io.load(demo_dir() / entry["clean"])
    return centre_crop(degraded, size), centre_crop(clean, size), f"demo {entry['file']}"


def centre_crop(cube: Cube, size: int) -> Cube:
    top, left = max(0, (cube.height - size) // 2), max(0, (cube.width - size) // 2)
    return cube.crop(top, left, min(size, cube.height), min(size, cube.width))


def run_method(degraded: Cube, generator: str, model_folder: Path | None = None) -> dict:
    """Stages 1, 2a and 2b on one scene; returns every intermediate."""
    from hiralign.bands import match_bands, resample_bands
    from hiralign.generate import get_generator
    from hiralign.models.checkpoint import load_checkpoint
    from hiralign.proxy import restore_cube
    from hiralign.resources import shipped_model
    from hiralign.warp import WarpConfig, warp

    times = {}
    begin = time.perf_counter()
    model, ckpt = load_checkpoint(model_folder or shipped_model(TASK), "cpu")
    model_wl = None if ckpt.wavelengths is None else np.asarray(ckpt.wavelengths)
    on_model, mapped = match_bands(degraded, ckpt.bands, model_wl)
    proxy = restore_cube(model, on_model, scale=ckpt.scale, device="cpu")
    if mapped:
        proxy = resample_bands(proxy, degraded.wavelengths_or_default())
    proxy_rgb = np.clip(proxy.pseudo_rgb(), 0, 1)
    times["proxy_s"] = time.perf_counter() - begin
    begin = time.perf_counter()
    guide = get_generator(generator).generate(proxy_rgb, 1, 0)[0]
    times["generate_s"] = time.perf_counter() - begin
    begin = time.perf_counter()
    result = warp(proxy, guide, WarpConfig(), proxy_rgb=proxy_rgb, device="cpu")
    times["warp_s"] = time.perf_counter() - begin
    return {"proxy": proxy, "proxy_rgb": proxy_rgb, "guide": guide, "result": result, "times": times}


# ------------------------------------------------------------------ rendering
def _pg():
    import pyqtgraph as pg
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication([])
    pg.setConfigOptions(imageAxisOrder="row-major", antialias=True, background="w", foreground="k")
    return pg, app


def _save(widget, path: Path, app) -> None:
    widget.show()
    app.processEvents()
    widget.grab().save(str(path))
    widget.close()
    print(f"wrote {path}")


def _image_panel(layout, image: np.ndarray, title: str, row: int, col: int):
    import pyqtgraph as pg

    plot = layout.addPlot(row=row, col=col, title=title)
    plot.hideAxis("left"), plot.hideAxis("bottom")
    plot.invertY(True)
    plot.setAspectLocked(True)
    plot.addItem(pg.ImageItem(np.clip(image, 0, 1) * 255, levels=(0, 255)))
    plot.setMouseEnabled(False, False)
    return plot


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / max(float(np.mean((a - b) ** 2)), 1e-12)))


def figure_rgb(data: dict, degraded: Cube, clean: Cube, path: Path) -> None:
    """Observed, proxy r, guide g, transported r̃ = T r, Γ(ỹ) and the clean reference."""
    pg, app = _pg()
    result = data["result"]
    synth_rgb = np.clip(degraded.with_data(result.synthesized).pseudo_rgb(), 0, 1)
    panels = [
        (degraded.pseudo_rgb(), f"observed x ({psnr(degraded.data, clean.data):.1f} dB)"),
        (data["proxy_rgb"], f"proxy r = Γ(p) ({psnr(data['proxy'].data, clean.data):.1f} dB)"),
        (data["guide"], "guide g (generated)"),
        (result.transported_rgb, f"r̃ = T r ({psnr(result.transported_rgb, data['guide']):.1f} dB to g)"),
        (synth_rgb, "Γ(ỹ), ỹ = T p"),
        (clean.pseudo_rgb(), "clean y (reference)"),
    ]
    widget = pg.GraphicsLayoutWidget()
    widget.resize(1500, 300)
    for col, (image, title) in enumerate(panels):
        _image_panel(widget, image, title, 0, col)
    _save(widget, path, app)


def flow_colours(displacement: np.ndarray, scale: float) -> np.ndarray:
    """Colour-wheel image of a (H, W, 2) (row, col) displacement.

    Hue is the direction, saturation the length (white: no displacement, full colour:
    ``scale`` pixels or more), as in the usual optical-flow colour coding.
    """
    from skimage.color import hsv2rgb

    dy, dx = displacement[..., 0], displacement[..., 1]
    hue = (np.arctan2(-dy, dx) / (2 * np.pi)) % 1.0
    saturation = np.clip(np.hypot(dy, dx) / max(scale, 1e-6), 0, 1)
    return hsv2rgb(np.stack([hue, saturation, np.ones_like(hue)], axis=-1)).astype(np.float32)


def figure_displacement(data: dict, path: Path, step: int = 8) -> None:
    """d(u) as a colour wheel, as decimated arrows over the guide, and its length histogram."""
    pg, app = _pg()
    d = data["result"].displacement
    length = np.hypot(d[..., 0], d[..., 1])
    scale = float(np.percentile(length, 95))
    widget = pg.GraphicsLayoutWidget()
    widget.resize(1200, 400)
    caption = f"d(u): hue = direction, saturation = length (full at {scale:.0f} px)"
    _image_panel(widget, flow_colours(d, scale), caption, 0, 0)
    arrows = _image_panel(widget, data["guide"] * 0.6 + 0.4, "d(u) every 8 px, over the guide", 0, 1)
    rows, cols = np.mgrid[step // 2:d.shape[0]:step, step // 2:d.shape[1]:step]
    seg = np.empty((rows.size * 2, 2), np.float32)
    seg[0::2] = np.stack([cols.ravel(), rows.ravel()], 1) + 0.5
    seg[1::2] = seg[0::2] + np.stack([d[rows, cols, 1].ravel(), d[rows, cols, 0].ravel()], 1)
    arrows.addItem(pg.PlotDataItem(seg[:, 0], seg[:, 1], connect="pairs", pen=pg.mkPen((200, 0, 0), width=1.5)))
    arrows.addItem(pg.ScatterPlotItem(seg[0::2, 0], seg[0::2, 1], size=3, brush=(200, 0, 0), pen=None))
    hist = widget.addPlot(row=0, col=2, title="|d(u)| histogram")
    counts, edges = np.histogram(length, bins=40)
    hist.addItem(pg.PlotDataItem(edges, counts, stepMode="center", fillLevel=0, brush=(80, 120, 200, 150)))
    hist.setLabel("bottom", "displacement length (px)")
    hist.setLabel("left", "pixels")
    _save(widget, path, app)


def pick_pixels(result, n: int = 3) -> list[tuple[int, int]]:
    """Guide pixels whose spectra travelled far: the most displaced ones, spread out."""
    length = np.hypot(result.displacement[..., 0], result.displacement[..., 1])
    h, w = length.shape
    margin = 8
    picked: list[tuple[int, int]] = []
    for flat in np.argsort(length, axis=None)[::-1]:
        r, c = divmod(int(flat), w)
        if margin <= r < h - margin and margin <= c < w - margin and \
                all(max(abs(r - pr), abs(c - pc)) > h // 4 for pr, pc in picked):
            picked.append((r, c))
        if len(picked) == n:
            break
    return picked


def figure_spectra(data: dict, degraded: Cube, clean: Cube, path: Path) -> list[dict]:
    """At guide pixels u: ỹ(u) and the proxy, clean and observed spectra at its main source."""
    pg, app = _pg()
    from PySide6.QtCore import Qt

    result, proxy = data["result"], data["proxy"]
    wl = degraded.wavelengths_or_default()
    widget = pg.GraphicsLayoutWidget()
    widget.resize(1600, 400)
    notes = []
    for col, (r, c) in enumerate(pick_pixels(result)):
        rows, cols, weights = result.sources_of(r, c)
        top = int(np.argmax(weights))
        sr, sc = int(rows[top]), int(cols[top])
        plot = widget.addPlot(row=0, col=col, title=f"guide ({r}, {c}) ← proxy ({sr}, {sc}), weight {weights[top]:.2f}")
        plot.getAxis("left").enableAutoSIPrefix(False)
        plot.addLegend(offset=(5, 5))
        plot.plot(wl, degraded.data[sr, sc], pen=pg.mkPen((170, 170, 170), width=1), name="observed x (source)")
        dashed = pg.mkPen((0, 0, 0), width=2, style=Qt.PenStyle.DashLine)
        plot.plot(wl, clean.data[sr, sc], pen=dashed, name="clean y (source)")
        plot.plot(wl, proxy.data[sr, sc], pen=pg.mkPen((30, 90, 200), width=2), name="proxy p (source)")
        plot.plot(wl, result.synthesized[r, c], pen=pg.mkPen((220, 60, 0), width=2.5), name="synthesized ỹ(u)")
        plot.setLabel("bottom", "wavelength (nm)")
        plot.setLabel("left", "reflectance")
        mixed = np.tensordot(weights, proxy.data[rows, cols], axes=1)
        notes.append({"guide_pixel": [r, c], "main_source": [sr, sc], "sources": int(len(weights)),
                      "max_abs_diff_synth_vs_T_p": float(np.max(np.abs(mixed - result.synthesized[r, c])))})
    _save(widget, path, app)
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scene", type=Path, default=None,
                        help="clean cube with wavelengths, to degrade (default: KAIST scene01, 420–720 nm)")
    parser.add_argument("--size", type=int, default=128, help="centre crop side in pixels (default: 128)")
    parser.add_argument("--generator", default="patchnn", help="guide generator (default: patchnn)")
    parser.add_argument("--model", type=Path, default=None, help="source checkpoint (default: the shipped one)")
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default: docs/figures)")
    args = parser.parse_args(argv)
    import torch

    torch.manual_seed(0)
    degraded, clean, label = scene(args.scene, args.size)
    data = run_method(degraded, args.generator, args.model)
    args.out.mkdir(parents=True, exist_ok=True)
    figure_rgb(data, degraded, clean, args.out / "method_rgb.png")
    figure_displacement(data, args.out / "method_displacement.png")
    spectra = figure_spectra(data, degraded, clean, args.out / "method_spectra.png")
    diagnostics = {k: v for k, v in data["result"].diagnostics.items() if isinstance(v, (int, float, str, bool))}
    record = {"scene": label, "crop": list(degraded.shape), "task": TASK, "generator": args.generator,
              "times_s": {k: round(v, 2) for k, v in data["times"].items()},
              "warp_diagnostics": diagnostics, "spectra": spectra}
    (args.out / "method_figures.json").write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(record["times_s"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
