"""The command line (``neuroerp-ci``): parses arguments, runs the core and maps results to
exit codes. :mod:`~neuroerp_ci.cli.commands` holds the commands."""

from neuroerp_ci.cli.commands import app, main

__all__ = ["app", "main"]
