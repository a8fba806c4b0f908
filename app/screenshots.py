"""Render every view of the application, populated by a real run, to PNG files (offscreen).

    python -m app.screenshots --out docs/screenshots            # the embedded demo, 1366×768
    python -m app.screenshots --capture ../shared/data/envi/VIS_leaves_FD1_FN0_original.hdr --scene imec_leaves
    python -m app.screenshots --captures-only --capture ../shared/data/remote/salton_sea_roi.mat
    python -m app.screenshots --demo DIR --model CKPT --steps 100 --size 1920x1080

The script opens the demo target set and saves the first screen a new user sees
(``first_screen.png``), presses *Run all* (proxy → generate → warp → finetune → evaluate
through the real workers), clicks and pins pixels, draws an ROI, picks a guide pixel in
the warp view, and saves one PNG per view; with ``--capture`` it then opens each real
capture and saves ``capture_<scene>.png`` and its Noise tab ``capture_<scene>_noise.png``
(``--scene`` names them; ``--captures-only``: just those, no demo run). It prints the
wall time and the largest event-loop stall of every stage as JSON, so the same command
measures how a full run behaves.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import numpy as np


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app.screenshots", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"), help="folder for the PNGs")
    parser.add_argument("--demo", type=Path, default=None, help="target set folder (default: the embedded demo)")
    parser.add_argument("--model", type=Path, default=None, help="source checkpoint (default: the shipped one)")
    parser.add_argument("--steps", type=int, default=None, help="finetune steps (default: the panel's)")
    parser.add_argument("--guides", type=int, default=None, help="guides per proxy (default: the panel's)")
    parser.add_argument("--generator", default=None, help="generator name (default: the panel's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", default="1366x768", help="window size WxH (default: a common laptop screen)")
    parser.add_argument("--capture", type=Path, nargs="+", default=[], metavar="PATH",
                        help="real captures to open after the run, each saved as capture_<scene>.png and "
                             "capture_<scene>_noise.png")
    parser.add_argument("--scene", nargs="+", default=[], metavar="NAME",
                        help="the scene names of the --capture files, in order, for the PNG names (default: the "
                             "file stems; data-file names such as FD1_FN0 are not wanted in the docs)")
    parser.add_argument("--captures-only", action="store_true",
                        help="skip the demo run: open the --capture files in a fresh window and save them")
    parser.add_argument("--timeout", type=float, default=3600.0, help="give up after this many seconds")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QEventLoop
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    from app.demo import DEMO_DIR, load_demo
    from app.main_window import MainWindow
    from app.settings import Preferences
    from app.views.window_layout import fit_docks

    work = Path(tempfile.mkdtemp(prefix="hiralign-screenshots-"))
    window = MainWindow(Preferences.at(work / "prefs.ini"))
    window.runner.work_dir = work / "runs"
    width, height = (int(v) for v in args.size.lower().split("x"))
    window.resize(width, height)
    window.show()
    app.processEvents()
    fit_docks(window)  # Qt keeps the docks' construction sizes through a resize

    def pump(until, what: str) -> None:
        start = time.monotonic()
        while not until():
            app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
            time.sleep(0.01)
            if time.monotonic() - start > args.timeout:
                raise SystemExit(f"screenshots: timed out waiting for {what}")

    if args.scene and len(args.scene) != len(args.capture):
        print("screenshots: give one --scene name per --capture file", file=sys.stderr)
        return 2
    scenes = args.scene or [path.stem for path in args.capture]
    if args.captures_only:
        args.out.mkdir(parents=True, exist_ok=True)
        written = [p for path, scene in zip(args.capture, scenes)
                   for p in shoot_capture(window, path, args.out / f"capture_{scene}.png", pump)]
        print(json.dumps({"screenshots": [str(p) for p in written]}, indent=2))
        window.close()
        return 0
    started = time.monotonic()
    window.warm_up()
    demo = load_demo(args.demo or DEMO_DIR)
    window._demo_loaded(demo)
    panel = window.pipeline
    if args.model is not None:
        panel.set_source_model(args.model)
    if panel.model_box.currentData() is None:
        print(f"screenshots: no source model for task {demo.task!r}; give --model", file=sys.stderr)
        return 2
    panel.device_box.setCurrentText(args.device)
    if args.steps:
        panel.steps_spin.setValue(args.steps)
    if args.guides:
        panel.guides_spin.setValue(args.guides)
    if args.generator:
        panel.generator_box.setCurrentText(args.generator)
    pump(lambda: not window.jobs.busy, "the warm-up")
    warm_up_stall = window.jobs.max_stall_ms
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    first = [save_window(window, out / "first_screen.png")]

    def log_stage(stage: str, state: str) -> None:
        print(f"{stage}: {state} after {time.monotonic() - started:.1f} s", file=sys.stderr, flush=True)

    window.runner.stage_ended.connect(log_stage)
    if panel.start("all") is None:
        return 1
    pump(lambda: not window.runner.busy and not window.jobs.busy, "Run all")
    if window.errors.history:
        print("screenshots: the run failed:", window.errors.history[-1][0], file=sys.stderr)
        return 1

    written = first + shoot_views(window, out, pump)
    written += [p for path, scene in zip(args.capture, scenes)
                for p in shoot_capture(window, path, out / f"capture_{scene}.png", pump)]
    report = {"targets": len(window.session.targets), "task": demo.task,
              "stages": window.runner.timings, "warm_up_max_stall_ms": round(warm_up_stall, 1),
              "max_stall_ms_during_stages": round(max(t["max_stall_ms"] for t in window.runner.timings.values()), 1),
              "screenshots": [str(p) for p in written]}
    print(json.dumps(report, indent=2))
    window.close()
    return 0


def save_window(widget, path: Path) -> Path:
    """A widget (usually the whole window) as a PNG, after pending layout and paint events."""
    from PySide6.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()
    if not widget.grab().save(str(path)):
        raise SystemExit(f"screenshots: cannot write {path}")
    return path


def bright_pixel(cube, margin_share: float = 1 / 6) -> tuple[int, int]:
    """A pixel at the 90th percentile of brightness away from the border (dark ones show little)."""
    h, w = cube.shape[:2]
    margin = int(min(h, w) * margin_share)
    brightness = cube.data[margin:h - margin, margin:w - margin].mean(axis=2)
    flat = int(np.argsort(brightness, axis=None)[int(0.9 * brightness.size)])
    row, col = divmod(flat, brightness.shape[1])
    return row + margin, col + margin


def shoot_capture(window, path: Path, out: Path, pump) -> list[Path]:
    """Open a real capture, click a bright pixel and save the window; then its Noise tab (``<out>_noise.png``)."""
    before = len(window.session.targets)
    window.open_paths([path])
    pump(lambda: len(window.session.targets) > before and not window.jobs.busy, f"opening {path}")
    window.session.set_current(len(window.session.targets) - 1)
    target = window.session.current_target
    pump(lambda: target.analysis is not None and not window.jobs.busy, f"the noise estimate of {path}")
    window.tabs.setCurrentWidget(window.cube_view)
    window.cube_view.roi_check.setChecked(False)  # a demo's ROI would land on paper, not on the scene
    pixel = bright_pixel(target.degraded)
    window._on_pixel_clicked(*pixel, False)
    window.cube_view.set_cursor(*pixel)
    shots = [save_window(window, out)]
    window.tabs.setCurrentWidget(window.noise_view)
    shots.append(save_window(window, out.with_name(f"{out.stem}_noise.png")))
    window.tabs.setCurrentWidget(window.cube_view)
    return shots


def shoot_views(window, out: Path, pump) -> list[Path]:
    """Interact like a user would, then save each view as a PNG."""


    session, tabs = window.session, window.tabs
    session.set_current(0)
    target = session.current_target
    h, w = target.reference_shape()
    written: list[Path] = []
    pixel = bright_pixel(target.proxy)

    def shot(widget, name: str) -> None:
        written.append(save_window(widget, out / f"{name}.png"))

    cube_view = window.cube_view
    tabs.setCurrentWidget(cube_view)
    # The finished run as it first appears: degraded | restored, one pixel's spectra.
    cube_view.select_layer("degraded")
    window._on_pixel_clicked(*pixel, False)
    cube_view.set_cursor(*pixel)
    shot(window, "window")
    # The source model's restoration (proxy) beside the adapted one, with pins and an ROI.
    cube_view.select_layer("proxy")
    for row, col in ((h // 4, w // 4), (3 * h // 4, 2 * w // 3)):
        window._on_pixel_clicked(row, col, True)
    cube_view.roi_check.setChecked(True)
    cube_view.roi.setPos((w // 8, h // 2))
    cube_view.roi.setSize((w // 6, h // 6))
    cube_view.roi_changed.emit(cube_view.roi_bounds())
    shot(cube_view, "cube_rgb")
    shot(window.spectrum, "spectra")
    cube_view.band_slider.setValue(cube_view.cube.band_index(550.0))
    cube_view.mode_box.setCurrentIndex(1)
    shot(cube_view, "cube_band")
    cube_view.mode_box.setCurrentIndex(0)

    compare = window.compare_view
    tabs.setCurrentWidget(compare)
    for mode, name in ((0, "compare_side_by_side"), (1, "compare_swipe"), (2, "compare_difference")):
        compare.mode_box.setCurrentIndex(mode)
        if mode == 2:
            compare.a_box.setCurrentIndex(1)
            compare.b_box.setCurrentIndex(2)
        shot(compare, name)
    compare.mode_box.setCurrentIndex(0)

    warp = window.warp_view
    tabs.setCurrentWidget(warp)
    if warp.warp is not None:
        warp.select_guide_pixel(*pixel)
    shot(warp, "warp")

    tabs.setCurrentWidget(window.training_view)
    shot(window.training_view, "training")
    tabs.setCurrentWidget(window.noise_view)
    shot(window, "noise")  # the blind noise estimate and the no-reference report of the run
    tabs.setCurrentWidget(cube_view)
    return written


if __name__ == "__main__":
    sys.exit(main())
