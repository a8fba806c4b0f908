"""Where shipped resources (source models, the embedded demo) live.

In a source checkout or editable install they sit in ``resources/`` beside the package; in
a PyInstaller bundle under the bundle's data folder.
"""
from __future__ import annotations

import sys
from pathlib import Path

from hiralign.errors import ModelError


def resources_dir() -> Path:
    """The folder holding ``models/`` and ``demo/``.

    A PyInstaller bundle's data folder; else ``resources/`` beside the package (a source
    checkout or an editable install); else ``<prefix>/share/hiralign/resources``, where
    ``pip install .`` puts them (``setup.py``'s data files).
    """
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        return Path(bundle) / "resources"
    checkout = Path(__file__).resolve().parents[1] / "resources"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "hiralign" / "resources"


#: Suffix of the folders of the shipped band-agnostic models (``models/<task>-any/``).
BAND_AGNOSTIC_SUFFIX = "-any"


def shipped_model(task: str, band_agnostic: bool = False) -> Path:
    """The shipped source model bundle for ``task``.

    Args:
        task: a degradation task name.
        band_agnostic: the model that takes any band layout without resampling
            (``models/<task>-any/``) instead of the 31-band one (``models/<task>/``).

    Raises:
        ModelError: no model of that kind ships for that task.
    """
    folder = resources_dir() / "models" / (task + BAND_AGNOSTIC_SUFFIX if band_agnostic else task)
    if not (folder / "config.json").is_file():
        available = sorted(p.name for p in (resources_dir() / "models").glob("*") if (p / "config.json").is_file())
        kind = "band-agnostic source model" if band_agnostic else "source model"
        raise ModelError(f"no shipped {kind} for task {task!r} (shipped: {', '.join(available) or 'none'}); "
                         "pass --model CKPT")
    return folder


def demo_dir() -> Path:
    """The embedded demo target set (degraded cubes, clean references, manifest.json)."""
    return resources_dir() / "demo"
