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
COMMAND_MODULES: list[str] = ["run", "sim", "replay", "deadlock", "bench", "analyze", "doctor"]


@app.callback()
def _root() -> None:
    """Simulate memory overcommitment (guests, balloons, blind host swapping), sweep it on
    Ray, store every run as Parquet, and analyze it with DuckDB SQL.

    Example: balloonlab run smoke && balloonlab query "SELECT count(*) FROM runs"
    """


def main() -> None:
    """Entry point: run the app; bad input becomes one line on stderr, never a traceback."""
    _register()
    try:
        code = app(standalone_mode=False)
    except (UserError, ConfigError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.secho("interrupted", err=True)
        sys.exit(130)
    except Exception as exc:
        # Usage errors come from the click that Typer carries (typer._click or click):
        # recognise them by their interface rather than by class.
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            typer.secho(f"error: {exc.format_message()}", err=True, fg=typer.colors.RED)
            sys.exit(exc.exit_code if isinstance(exc.exit_code, int) else 2)
        if type(exc).__name__ == "Abort":
            typer.secho("aborted", err=True)
            sys.exit(130)
        typer.secho(f"error: {type(exc).__name__}: {exc}", err=True, fg=typer.colors.RED)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    from harness.cli import main as _main  # the app the command modules registered on

    _main()
