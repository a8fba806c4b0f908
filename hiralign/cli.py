"""The ``hiralign`` command.

Each subcommand lives in its own module under :mod:`hiralign.commands` and exposes
``register(subparsers)``, which adds a parser whose ``func(args) -> int`` does the work.
Command modules import heavy libraries (torch, faiss, diffusers) inside ``func`` so that
``hiralign --help`` stays fast. JSON results go to stdout, logs and progress to stderr.

Every :class:`~hiralign.errors.HiralignError` becomes one line on stderr and exit code 2;
cancellation (Ctrl-C) exits 130; anything else is an internal error (exit 1) whose
traceback is shown only with ``--debug``. The message is :func:`hiralign.errors.describe`'s,
the same the GUI shows in its error dialog.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from hiralign import __version__
from hiralign.errors import HiralignError, describe
from hiralign.progress import Cancelled

#: Subcommand modules in :mod:`hiralign.commands`, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "info",
    "degrade",
    "metrics",
    "noise",
    "make_source",
    "make_demo",
    "pretrain",
    "proxy",
    "generate",
    "warp",
    "clip_finetune",
    "finetune",
    "adapt",
    "restore",
    "evaluate",
    "demo",
)

log = logging.getLogger("hiralign")


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser (also used to generate the CLI reference docs)."""
    parser = argparse.ArgumentParser(
        prog="hiralign",
        description="Adapt hyperspectral restoration networks to a target domain (HIR-ALIGN).",
    )
    parser.add_argument("--version", action="version", version=f"hiralign {__version__}")
    parser.add_argument("--debug", action="store_true", help="verbose logs and full tracebacks")
    parser.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"hiralign.commands.{name}")
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.DEBUG if args.debug else (logging.WARNING if args.quiet else logging.INFO)
    logging.basicConfig(level=level, format="%(levelname)s: %(message)s", stream=sys.stderr)
    logging.captureWarnings(True)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except (Cancelled, KeyboardInterrupt):
        print(f"hiralign {args.command}: cancelled", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - the CLI must never show a raw traceback
        summary, details = describe(exc)
        if args.debug and details:
            print(details, file=sys.stderr, end="")
        user_error = isinstance(exc, (HiralignError, MemoryError))
        hint = "" if user_error or args.debug else " (run with --debug for the traceback)"
        print(f"hiralign {args.command}: {_lower_first(summary)}{hint}", file=sys.stderr)
        return 2 if user_error else 1


def _lower_first(summary: str) -> str:
    """The summary as it reads after ``hiralign CMD:``.

    Internal and out-of-memory errors start lower-case; a user error's own message (which
    usually starts with a path) is prefixed ``error:``.
    """
    for prefix in ("Internal error", "Out of memory"):
        if summary.startswith(prefix):
            return summary[0].lower() + summary[1:]
    return f"error: {summary}"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
