"""Subcommands of the ``hiralign`` CLI, one module each (see :mod:`hiralign.cli`)."""
