"""The `balloonlab` command line. Each command lives in its own module under
harness/commands/; this file only assembles them and turns user errors into one line."""

from __future__ import annotations

import os
import sys

import typer

from harness import interrupts
from harness.errors import ONE_LINE
from sim_core.config import ConfigError

# The top-level help is the docstring of _root below (with its example).
app = typer.Typer(
    name="balloonlab",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    """Import each command module; each adds its commands to `app`."""
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"harness.commands.{name}")


# One module per command family; the order is the order of `balloonlab --help`.
COMMAND_MODULES: list[str] = [
    "run", "sim", "replay", "trace", "deadlock", "bench", "validate_sampling", "analyze", "plot",
    "keys", "doctor",
]  # fmt: skip


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("balloonlab")
    except PackageNotFoundError:  # a source checkout that was never installed
        return "unknown"


def _print_version(value: bool) -> None:
    if value:
        typer.echo(f"balloonlab {_version()}")
        raise SystemExit(0)  # not typer.Exit: click swallows Exit outside standalone mode


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_print_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Simulate memory overcommitment (guests, balloons, blind host swapping), sweep it on
    Ray, store every run as Parquet, and analyze it with DuckDB SQL.

    A study from the command line, then its plot:

    Example: balloonlab run --name oc --grid host.overcommit=1,1.5,2 --grid hypervisor.policy=none,mom --set vms.count=8 --replicates 3

    Then: balloonlab plot oc --x host.overcommit --y profit_per_host_hour --hue hypervisor.policy
    """  # noqa: E501 (an example is one command line)


def main() -> None:
    """Entry point: run the app; bad input becomes one line on stderr, never a traceback."""
    _register()
    # A plug-in controller named 'module:Class' may live in the current directory, as an
    # app does for uvicorn or gunicorn; appended, so it never shadows an installed module.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    # SIGTERM takes the same way out as Ctrl-C: the executor shuts Ray down on the way.
    interrupts.begin()
    try:
        code = app(standalone_mode=False)
    except (*ONE_LINE, ConfigError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except (KeyboardInterrupt, interrupts.Terminated) as exc:
        sys.exit(interrupts.report(exc))
    except Exception as exc:
        # Usage errors come from the click that Typer carries (typer._click or click):
        # recognise them by their interface rather than by class.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.secho(f"error: {exc.format_message()}", err=True, fg=typer.colors.RED)
            sys.exit(exc.exit_code if isinstance(exc.exit_code, int) else 2)
        if type(exc).__name__ == "Abort":
            # Click turns KeyboardInterrupt (and our SIGTERM) into Abort: say what is kept.
            sys.exit(interrupts.report(exc.__cause__ or exc.__context__ or exc))
        typer.secho(f"error: {type(exc).__name__}: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    if code == 130 and interrupts.received() is not None:
        # Typer (outside standalone mode) turns KeyboardInterrupt into a bare return of 130.
        sys.exit(interrupts.report(None))
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    from harness.cli import main as _main  # the app the command modules registered on

    _main()
