"""Command-line options that several commands share, defined once."""

from __future__ import annotations

import os
from pathlib import Path

import typer

RESULTS_HELP = "Results directory (default: $BALLOONLAB_RESULTS or ./results)."
ADDRESS_HELP = (
    "Ray cluster to join: auto, host:port or ray://host:port. Default: $RAY_ADDRESS, "
    "else an embedded local Ray on 127.0.0.1."
)

RESULTS = typer.Option(None, "--results", help=RESULTS_HELP)
ADDRESS = typer.Option(None, "--address", help=ADDRESS_HELP)
EXECUTOR = typer.Option("ray", "--executor", help="ray (default) or local.")
PRUNE = typer.Option(
    False,
    "--prune",
    help="Delete stored runs that a sweep's spec no longer makes (it changed since they "
    "ran); without it such runs stop the command before anything runs.",
)


def default_results() -> Path:
    """Where results go unless --results says otherwise: $BALLOONLAB_RESULTS or ./results."""
    return Path(os.environ.get("BALLOONLAB_RESULTS", "results"))
