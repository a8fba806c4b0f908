"""Argument helpers shared by the subcommands."""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def emit_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout (the machine-readable result of a command)."""
    from hiralign.atomic import _json_default

    json.dump(obj, sys.stdout, indent=2, default=_json_default)
    sys.stdout.write("\n")
    sys.stdout.flush()


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto",
                        help="auto (CUDA when present, else CPU), cpu, cuda or cuda:N (default: auto)")


def add_load_options(parser: argparse.ArgumentParser) -> None:
    """Options every command that reads cubes accepts."""
    parser.add_argument("--var", default=None,
                        help="MAT files: the variable holding the cube when there are several")
    parser.add_argument("--wavelengths", default=None,
                        help="wavelengths in nm for files without them: start:stop:step or a list")
    parser.add_argument("--zero-nonfinite", action="store_true",
                        help="replace NaN/Inf values by 0 instead of refusing the file")
