"""``make bench``: every benchmark script in its quick mode, one after another.

Quick modes check that each script still runs end to end on this machine (minutes in
all, not the published numbers: those come from each script's full run, see its
``--help`` and docs/benchmarks.md). Each script runs in its own process (one heavy job at
a time, as the 2-core machines need); a failing one is reported and the others still run.
Outputs go to ``bench-out/quick/``.

Usage::

    .venv/bin/python benchmarks/run_all.py              # all quick modes
    .venv/bin/python benchmarks/run_all.py --list       # what would run
    .venv/bin/python benchmarks/run_all.py --only memory seams
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
OUT = REPO / "bench-out" / "quick"

#: name -> command line (after the Python interpreter), each the script's quick mode.
QUICK = {
    "memory": ["benchmarks/bench_memory.py", "--quick", "--json", f"{OUT}/memory.json"],
    "seams": ["benchmarks/bench_seams.py", "--quick", "--json", f"{OUT}/seams.json"],
    "backbones": ["benchmarks/bench_backbones.py", "--rounds", "1", "--json", f"{OUT}/backbones.json"],
    "generate": ["benchmarks/bench_generate.py", "--quick", "--repeats", "1", "--json", f"{OUT}/generate.json"],
    "warp": ["benchmarks/bench_warp.py", "--sizes", "128", "--motions", "elastic", "--indexes", "default",
             "--repeats", "1"],
    "adaptation": ["benchmarks/adaptation.py", "--quick", "--out", f"{OUT}/adaptation"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", nargs="+", choices=list(QUICK), help="run only these")
    parser.add_argument("--list", action="store_true", help="print the commands and exit")
    parser.add_argument("--timeout", type=float, default=1800.0, help="seconds per script")
    args = parser.parse_args()
    names = args.only or list(QUICK)
    if args.list:
        for name in names:
            print(f"{name:11} {sys.executable} {' '.join(QUICK[name])}")
        return 0
    OUT.mkdir(parents=True, exist_ok=True)
    results = []
    for name in names:
        script = REPO / QUICK[name][0]
        if not script.is_file():
            results.append((name, "missing", 0.0))
            print(f"== {name}: {script} does not exist", flush=True)
            continue
        print(f"== {name}: {' '.join(QUICK[name])}", flush=True)
        start = time.perf_counter()
        try:
            code = subprocess.run([sys.executable, *QUICK[name]], cwd=REPO, timeout=args.timeout).returncode
            status = "ok" if code == 0 else f"exit {code}"
        except subprocess.TimeoutExpired:
            status = f"timeout after {args.timeout:.0f} s"
        results.append((name, status, time.perf_counter() - start))
    print("\nbenchmark    status          seconds")
    for name, status, seconds in results:
        print(f"{name:12} {status:15} {seconds:7.1f}")
    return 0 if all(status == "ok" for _, status, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
