"""The `balloonlab` command line. Each command lives in its own module under
harness/commands/; this file only assembles them and turns user errors into one line."""

from __future__ import annotations

import sys

import typer

from harness.errors import UserError
from sim_core.config import ConfigError

app = typer.Typer(
    name="balloonlab",
    help="Simulate memory overcommitment (guests, balloons, blind host swapping), sweep it on "
    "Ray, store every run as Parquet, and analyze it with DuckDB SQL.",
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
COMMAND_MODULES: list[str] = ["deadlock", "run", "replay"]


def main() -> None:
    """Entry point: run the app, print UserError/ConfigError as one line, exit 2."""
    _register()
    try:
        app(standalone_mode=False)
    except (UserError, ConfigError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:
        typer.secho("aborted", err=True)
        sys.exit(130)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # click's usage errors and anything unforeseen: one line
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            sys.exit(exc.exit_code)
        typer.secho(f"error: {type(exc).__name__}: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)


if __name__ == "__main__":
    main()
