"""``python -m app``: open the hiralign application.

Flags follow silx's viewer: ``--fresh`` forgets saved preferences, ``--debug`` turns on
verbose logs; ``--smoke`` opens the window and the demo, runs the proxy stage on it with
the shipped source model, then quits (exit 0 when every demo target got its proxy and no
error was reported), for packaging checks. Files given on the command line open as the target set;
without any, the embedded demo opens.
"""
from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path
from typing import Sequence


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m app", description="The hiralign desktop application.")
    parser.add_argument("files", nargs="*", help="target cubes to open (ENVI .hdr, .mat, .npy, CAVE folder)")
    parser.add_argument("--fresh", action="store_true", help="reset saved preferences (recent files, folders…)")
    parser.add_argument("--debug", action="store_true", help="verbose logs on stderr")
    parser.add_argument("--no-demo", action="store_true", help="start with an empty target set")
    parser.add_argument("--settings", type=Path, default=None, help="keep preferences in this INI file")
    parser.add_argument("--smoke", action="store_true",
                        help="open the window and the demo, run the proxy stage, then quit (exit 0 on success)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from app._compat import protect_singletons

    protect_singletons()  # also when ``app`` was imported as a namespace package (see app._compat)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.captureWarnings(True)
    started = time.monotonic()

    try:
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:  # the core installs without Qt; the window needs the gui extra
        print(f"hiralign: the desktop application needs PySide6 and pyqtgraph ({exc}); install them with\n"
              '    pip install "hiralign[gui]"    (from a checkout: pip install -e ".[gui]", or make run)\n'
              "On Linux, Qt also needs system libraries: make system-deps (see the README).", file=sys.stderr)
        return 2

    app = QApplication.instance() or QApplication(sys.argv[:1])
    app.setOrganizationName("hiralign")
    app.setApplicationName("hiralign")

    from app.errors import install_excepthooks
    from app.main_window import MainWindow
    from app.settings import Preferences

    prefs = Preferences.at(args.settings) if args.settings else Preferences()
    if args.fresh:
        prefs.clear()
    window = MainWindow(prefs)
    install_excepthooks(window.errors)
    window.show()
    window.warm_up()
    if args.files:
        window.open_paths(args.files)
    elif not args.no_demo:
        window.open_demo()

    shown_after = time.monotonic() - started
    loaded_after: list[float] = []
    window.session.targets_changed.connect(lambda: loaded_after.append(time.monotonic() - started))

    if args.smoke:
        _smoke(app, window, started, shown_after, loaded_after)
    return app.exec()


def _smoke(app, window, started: float, shown_after: float, loaded_after: list[float]) -> None:
    """Wait for the demo, run the proxy stage on it, report and exit (0 when all went well)."""
    from PySide6.QtCore import QTimer

    timeout_s = 300.0
    proxy_started: list[float] = []

    def step() -> None:
        elapsed = time.monotonic() - started
        targets = window.session.targets
        if elapsed < timeout_s and (window.jobs.busy or not targets):
            QTimer.singleShot(100, step)
            return
        if not proxy_started and targets and not window.errors.history and elapsed < timeout_s:
            proxy_started.append(elapsed)
            window.pipeline.start("proxy")
            QTimer.singleShot(100, step)
            return
        proxies = sum(t.proxy is not None for t in targets)
        ok = bool(targets) and proxies == len(targets) and not window.errors.history
        for summary, _details in window.errors.history:
            print(f"smoke: error reported: {summary}", file=sys.stderr)
        print(f"smoke: window shown after {shown_after:.1f} s, demo loaded after "
              f"{loaded_after[0] if loaded_after else float('nan'):.1f} s, proxy stage "
              f"{proxies}/{len(targets)} targets after {elapsed - (proxy_started or [elapsed])[0]:.1f} s, "
              f"max event-loop stall {window.jobs.max_stall_ms:.0f} ms; {'ok' if ok else 'FAILED'}",
              file=sys.stderr)
        app.exit(0 if ok else 1)

    QTimer.singleShot(100, step)


if __name__ == "__main__":
    sys.exit(main())
