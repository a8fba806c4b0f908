"""``python -m app``: open the hiralign application.

Flags follow silx's viewer: ``--fresh`` forgets saved preferences, ``--debug`` turns on
verbose logs; ``--smoke`` opens the window and the demo, then quits (exit 0 when the demo
loaded), for packaging checks. Files given on the command line open as the target set;
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
                        help="open the window and the demo, then quit (exit 0 when it loaded)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from app._compat import protect_singletons

    protect_singletons()  # also when ``app`` was imported as a namespace package (see app._compat)
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.captureWarnings(True)
    started = time.monotonic()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

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
        def finish() -> None:
            if window.jobs.busy and time.monotonic() - started < 60:
                QTimer.singleShot(100, finish)
                return
            ok = bool(window.session.targets) and not window.errors.history
            print(f"smoke: window shown after {shown_after:.1f} s, first target after "
                  f"{loaded_after[0] if loaded_after else float('nan'):.1f} s, {len(window.session.targets)} "
                  f"targets, idle after {time.monotonic() - started:.1f} s "
                  f"(warm-up stall {window.jobs.max_stall_ms:.0f} ms); {'ok' if ok else 'FAILED'}", file=sys.stderr)
            app.exit(0 if ok else 1)

        QTimer.singleShot(100, finish)
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
