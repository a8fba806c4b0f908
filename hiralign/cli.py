"""The ``hiralign`` command.

Each subcommand lives in its own module under :mod:`hiralign.commands` and exposes
``register(subparsers)``, which adds a parser whose ``func(args) -> int`` does the work.
Command modules import heavy libraries (torch, faiss, diffusers) inside ``func`` so that
``hiralign --help`` stays fast. JSON results go to stdout, logs and progress to stderr.

Every :class:`~hiralign.errors.HiralignError` becomes one line on stderr and exit code 2;
cancellation (Ctrl-C) exits 130; anything else is an internal error (exit 1) whose
traceback is shown only with ``--debug``.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import Sequence

from hiralign import __version__
from hiralign.errors import HiralignError
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
    except HiralignError as exc:
        if args.debug:
            log.exception("error")
        print(f"hiralign {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except (Cancelled, KeyboardInterrupt):
        print(f"hiralign {args.command}: cancelled", file=sys.stderr)
        return 130
    except MemoryError:
        print(f"hiralign {args.command}: error: out of memory; try a smaller image, tile or batch size",
              file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - the CLI must never show a raw traceback
        if args.debug:
            log.exception("internal error")
        else:
            print(f"hiralign {args.command}: internal error: {type(exc).__name__}: {exc} "
                  "(run with --debug for the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
