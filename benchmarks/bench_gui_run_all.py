"""*Run all* on the embedded demo in the desktop application: wall time and GUI stalls per stage.

Each repeat starts a fresh child process that opens the main window offscreen on the demo
(the shipped source model and the demo budget the window picks: 1 guide per proxy, 150
finetuning steps, proxies from the model's 8-view ensemble), runs the start-up warm-up job
as the application does, presses *Run all* and records, per stage, the wall time and the
largest event-loop stall (how late a 10 ms GUI timer fired: the window's responsiveness while the
stage's worker runs). The parent prints medians over the repeats as a Markdown table and
the load average sampled during the runs, since other processes on the machine inflate both
numbers.

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_gui_run_all.py --repeats 3
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STAGES = ("proxy", "generate", "warp", "finetune", "evaluate")


class LoadSampler:
    """The 1-minute load average every ``every_s`` seconds while the run lasts (other jobs inflate stalls)."""

    def __init__(self, every_s: float = 5.0) -> None:
        import threading

        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(every_s,), daemon=True)

    def _run(self, every_s: float) -> None:
        while not self._stop.is_set():
            self.samples.append(os.getloadavg()[0])
            self._stop.wait(every_s)

    def __enter__(self) -> LoadSampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc) -> None:
        self._stop.set()
        self._thread.join()


def child(timeout_s: float) -> dict:
    """Run *Run all* once in this process; return the per-stage timings."""
    sys.path.insert(0, str(REPO))
    from PySide6.QtWidgets import QApplication

    from app.main_window import MainWindow
    from app.settings import Preferences

    app = QApplication.instance() or QApplication([])
    with tempfile.TemporaryDirectory() as folder:
        window = MainWindow(Preferences.at(Path(folder) / "prefs.ini"))
        window.resize(1600, 1000)
        window.show()

        def pump(done, what: str) -> None:
            deadline = time.monotonic() + timeout_s
            while not done():
                app.processEvents()
                time.sleep(0.005)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{what} did not finish within {timeout_s:.0f} s")

        window.warm_up()  # as `python -m app` does at start-up: first-use costs paid before any stage
        window.open_demo()
        pump(lambda: len(window.session.targets) == 4 and not window.jobs.busy, "opening the demo")
        started = time.monotonic()
        with LoadSampler() as load:
            window.pipeline.start("all")
            pump(lambda: not window.runner.busy and not window.jobs.busy, "Run all")
        total = time.monotonic() - started
        errors = [summary for summary, _ in window.errors.history]
        result = {"total_s": total, "stages": dict(window.runner.timings), "errors": errors,
                  "metrics": [t.metrics for t in window.session.targets if t.metrics],
                  "load": os.getloadavg()[:2], "load_during": load.samples,
                  "proxy_source": window.pipeline.config().proxy.source,
                  "torch_threads": __import__("torch").get_num_threads()}
        window.close()
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per Run all")
    parser.add_argument("--out", default=None, help="write every run as JSON here")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.timeout), default=str))
        return 0

    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    runs = []
    for k in range(args.repeats):
        done = subprocess.run([sys.executable, __file__, "--child", "--timeout", str(args.timeout)], env=env,
                              capture_output=True, text=True, timeout=args.timeout + 120)
        if done.returncode != 0:
            print(done.stderr[-3000:], file=sys.stderr)
            return 1
        run = json.loads(done.stdout.strip().splitlines()[-1])
        runs.append(run)
        print(f"run {k + 1}: {run['total_s']:.1f} s, errors {run['errors']}", file=sys.stderr)
    if args.out:
        Path(args.out).write_text(json.dumps(runs, indent=1))

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    during = [v for r in runs for v in r.get("load_during", [])]
    print(f"{os.cpu_count()} CPUs; medians of {len(runs)} runs; 1-min load average during the runs "
          f"{min(during, default=float('nan')):.1f}–{max(during, default=float('nan')):.1f} "
          f"(mean {statistics.fmean(during) if during else float('nan'):.1f}); proxy source "
          f"{runs[0].get('proxy_source')}, torch threads in the workers {runs[0].get('torch_threads')}")
    print("| stage | wall s | max GUI stall ms |\n|---|---|---|")
    for stage in STAGES:
        cells = [r["stages"][stage] for r in runs if stage in r["stages"]]
        if cells:
            print(f"| {stage} | {median([c['seconds'] for c in cells]):.1f} | "
                  f"{median([c['max_stall_ms'] for c in cells]):.0f} "
                  f"(worst {max(c['max_stall_ms'] for c in cells):.0f}) |")
    print(f"| **Run all** | **{median([r['total_s'] for r in runs]):.1f}** | |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
