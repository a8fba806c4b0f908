"""The embedded demo target set (``resources/demo``): degraded cubes with clean references.

The set is built by ``hiralign make-demo`` (see :mod:`hiralign.demo`): its
``manifest.json`` lists each observation (``file``) and its clean reference (``clean``)
and records the degradation task in ``config.task``.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path

from hiralign.cube import Cube
from hiralign.progress import Progress
from hiralign.resources import demo_dir

#: The shipped demo (beside the package in a checkout, under <prefix>/share once installed).
DEMO_DIR = demo_dir()


@dataclasses.dataclass(frozen=True)
class DemoTarget:
    degraded: Cube
    clean: Cube | None
    path: Path
    clean_path: Path | None = None


@dataclasses.dataclass(frozen=True)
class Demo:
    """The demo's targets and the task their observations were degraded with."""

    targets: tuple[DemoTarget, ...]
    task: str


def load_demo(folder: Path = DEMO_DIR, progress: Progress | None = None) -> Demo:
    """Read the demo set (runs in a worker).

    Raises:
        MissingFileError / InputError: the folder or its manifest is missing or broken.
    """
    from hiralign.io import load
    from hiralign.source import read_manifest

    manifest = read_manifest(folder)
    entries = manifest.get("cubes") or []
    task = str((manifest.get("config") or {}).get("task", "gaussian"))
    targets = []
    for k, entry in enumerate(entries):
        if progress is not None:
            progress.check()
        path = folder / entry["file"]
        degraded = load(path)
        degraded.name = path.stem
        clean, clean_path = None, None
        if entry.get("clean"):
            clean_path = folder / entry["clean"]
            clean = load(clean_path)
            clean.name = f"{path.stem} clean"
        targets.append(DemoTarget(degraded, clean, path, clean_path))
        if progress is not None:
            progress.report(k + 1, len(entries), f"demo scene {k + 1}/{len(entries)}")
    return Demo(tuple(targets), task)
