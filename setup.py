"""Installs the shipped resources (source models, the demo) with the package.

pyproject.toml holds the project's metadata; this file only adds ``resources/`` as data
files under ``<prefix>/share/hiralign/resources``, walked at build time so that a new model
folder ships without editing a list. ``hiralign.resources.resources_dir`` looks there when
the package does not sit in a source checkout.
"""
from pathlib import Path

from setuptools import setup


def _resource_files() -> list[tuple[str, list[str]]]:
    root = Path("resources")
    folders = [root, *sorted(p for p in root.rglob("*") if p.is_dir())]
    entries = []
    for folder in folders:
        files = sorted(str(f) for f in folder.iterdir() if f.is_file() and not f.name.startswith("."))
        if files:
            entries.append((str(Path("share") / "hiralign" / folder), files))
    return entries


setup(data_files=_resource_files())
