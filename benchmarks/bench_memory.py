"""Peak memory and time of large cubes: streamed restore, whole-cube load, info.

Writes float32 BSQ ENVI cubes of 256 MiB, 1 GiB and 2 GiB (1024×512, 2048×1024 and
2048×2048 pixels × 128 bands at 400–700 nm) into ``--work``, then runs each operation in
a fresh child process and reads that child's peak RSS (``ru_maxrss`` from ``wait4``) and
wall time:

* ``restore``: ``hiralign.proxy.restore_file`` with the shipped gaussian model (31 bands:
  each row window is resampled 128 → 31 bands and back, as ``hiralign proxy`` does),
  ENVI output written row window by row window;
* ``restore-in-memory`` (smallest size only, for contrast): ``load`` + ``restore_cube`` +
  ``save``, what the stages did before streaming;
* ``load``: ``hiralign.io.load`` (the whole cube as float32 in memory);
* ``info``: ``hiralign info`` (header + streamed statistics).

Usage::

    .venv/bin/python benchmarks/bench_memory.py                 # all sizes (≈ 4 min, 8 GiB of disk)
    .venv/bin/python benchmarks/bench_memory.py --quick         # 64 MiB only, to check the script runs
    .venv/bin/python benchmarks/bench_memory.py --json out.json

Runs with ``--threads`` torch threads (default 2). Times are single runs (the 2 GiB run
takes minutes); peak RSS is deterministic to a few MiB.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SIZES = {"64 MiB": (512, 256), "256 MiB": (1024, 512), "1 GiB": (2048, 1024), "2 GiB": (2048, 2048)}
BANDS = 128

CHILD = {
    "restore": """
import torch, numpy as np
torch.set_num_threads({threads})
from hiralign.models.checkpoint import load_checkpoint
from hiralign.proxy import restore_file
from hiralign.resources import shipped_model
model, ckpt = load_checkpoint(shipped_model("gaussian"), "cpu")
restore_file(model, {src!r}, {dst!r}, scale=ckpt.scale, model_bands=ckpt.bands, model_wavelengths=ckpt.wavelengths)
""",
    "restore-in-memory": """
import torch, numpy as np
torch.set_num_threads({threads})
from hiralign import io
from hiralign.bands import match_bands, resample_bands
from hiralign.models.checkpoint import load_checkpoint
from hiralign.proxy import restore_cube
from hiralign.resources import shipped_model
model, ckpt = load_checkpoint(shipped_model("gaussian"), "cpu")
target = io.load({src!r})
cube, mapped = match_bands(target, ckpt.bands, np.asarray(ckpt.wavelengths))
out = restore_cube(model, cube, scale=ckpt.scale)
io.save(resample_bands(out, target.wavelengths) if mapped else out, {dst!r})
""",
    "load": """
from hiralign.io import load
load({src!r})
""",
    "info": """
import sys
from hiralign.cli import main
sys.stdout = open("/dev/null", "w")
main(["info", {src!r}])
""",
}


def write_cube(path: Path, height: int, width: int) -> Path:
    """A float32 BSQ cube of smooth spectra plus noise, written band by band (bounded memory)."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    base = 0.5 + 0.25 * np.sin(xx / 37.0) * np.cos(yy / 53.0)
    with open(path.with_suffix(".img"), "wb") as fh:
        for b in range(BANDS):
            band = base * (0.6 + 0.4 * b / BANDS) + rng.normal(0, 0.05, base.shape).astype(np.float32)
            fh.write(band.astype("<f4").tobytes())
    wl = ", ".join(f"{v:.3f}" for v in np.linspace(400, 700, BANDS))
    path.write_text(f"ENVI\nsamples = {width}\nlines = {height}\nbands = {BANDS}\nheader offset = 0\n"
                    f"file type = ENVI Standard\ndata type = 4\ninterleave = bsq\nbyte order = 0\n"
                    f"wavelength units = Nanometers\nwavelength = {{{wl}}}\n")
    return path


def run_child(code: str) -> tuple[float, float, int]:
    """(wall seconds, peak RSS MiB, exit code) of ``code`` run in a fresh Python."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=REPO)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    return wall, usage.ru_maxrss / 1024.0, proc.returncode  # ru_maxrss is in KiB on Linux


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["256 MiB", "1 GiB", "2 GiB"], choices=list(SIZES))
    parser.add_argument("--ops", nargs="+", default=["info", "load", "restore", "restore-in-memory"],
                        choices=list(CHILD))
    parser.add_argument("--quick", action="store_true", help="64 MiB only")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", default=None, help="folder for the cubes (default: a temporary folder)")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    sizes = ["64 MiB"] if args.quick else args.sizes
    work = Path(args.work or tempfile.mkdtemp(prefix="hiralign-bench-memory-"))
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    print(f"{'cube':>9} {'operation':>18} {'time s':>8} {'peak RSS MiB':>13}")
    for size in sizes:
        h, w = SIZES[size]
        src = write_cube(work / f"cube_{h}x{w}.hdr", h, w)
        for op in args.ops:
            if op == "restore-in-memory" and size != sizes[0]:
                continue  # the old path needs several copies of the cube in memory: smallest size only
            dst = work / f"out_{op}.hdr"
            wall, rss, code = run_child(CHILD[op].format(threads=args.threads, src=str(src), dst=str(dst)))
            rows.append({"size": size, "shape": [h, w, BANDS], "operation": op, "seconds": round(wall, 1),
                         "peak_rss_mib": round(rss), "exit_code": code})
            print(f"{size:>9} {op:>18} {wall:8.1f} {rss:13.0f}" + ("" if code == 0 else f"  (exit {code})"))
            for p in (dst, dst.with_suffix(".img")):
                p.unlink(missing_ok=True)
        for p in (src, src.with_suffix(".img")):
            p.unlink(missing_ok=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(r["exit_code"] == 0 for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
