"""`balloonlab validate-sampling`: sampled against full simulation, on a mid-size host.

Runs the shipped sweep ``fig13_sampling_validation`` (4 guests of 4 GiB, two workloads,
two controllers, at every sampling rate given, with replicates), stores it like any
sweep, and prints the named query of the same name: per workload and controller, the
relative error of each rate's mean throughput, guest faults, host swap-outs and profit
against rate 1's.
"""

from __future__ import annotations

import contextlib
import json
import math
import sys
import tomllib
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from harness import cli_spec, limits, options
from harness.cli import app
from harness.commands.run import EXECUTORS
from harness.driver import run_sweep
from harness.errors import UserError
from harness.overrides import parse_overrides
from harness.progress import SweepProgress
from harness.spec import SweepSpec, parse_spec
from harness.sweeps_catalog import resolve
from store import sweep_lock

SWEEP = "fig13_sampling_validation"
QUERY = "fig13_sampling_validation"
ERRORS = ("throughput", "guest_faults", "host_swap_outs", "profit")


def parse_rates(text: str) -> list[float]:
    """``"1,0.1,0.01"`` -> [1.0, 0.1, 0.01]: each in (0, 1], rate 1 among them."""
    rates: list[float] = []
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            rate = float(item)
        except ValueError:
            raise UserError(f"--rates: {item!r} is not a number") from None
        if not 0 < rate <= 1:
            raise UserError(f"--rates: {item} is not in (0, 1]")
        if rate not in rates:
            rates.append(rate)
    if 1.0 not in rates:
        raise UserError("--rates must include 1: the errors are against the full simulation")
    if len(rates) < 2:
        raise UserError("--rates: give at least one rate under 1 beside 1")
    return sorted(rates, reverse=True)


def validation_spec(
    rates: list[float], replicates: int, ticks: int | None, sets: dict[str, Any] | None = None
) -> tuple[SweepSpec, str]:
    """The shipped validation sweep with its rates, replicates, length and any [base] keys
    replaced."""
    source = resolve(SWEEP)
    data = tomllib.loads(source.read_text(encoding="utf-8"))
    sweep, base, grid = data["sweep"], dict(data.get("base", {})), dict(data.get("grid", {}))
    grid["sampling.rate"] = rates
    base.update(sets or {})
    if ticks is not None:
        base["ticks"] = ticks
    text = cli_spec.spec_toml(
        sweep["name"],
        grid=grid,
        base=base,
        replicates=replicates,
        seed=sweep.get("seed"),
        description=sweep.get("description", ""),
    )
    return parse_spec(tomllib.loads(text), str(source), default_name=SWEEP), text


def _fmt_error(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * value:+.1f}%"


@app.command("validate-sampling")
def validate_sampling_command(
    rates: str = typer.Option("1,0.1,0.01", "--rates", help="Sampling rates, 1 among them."),
    replicates: int = typer.Option(3, "--replicates", help="Seeds per point."),
    ticks: int | None = typer.Option(
        None, "--ticks", help="Run length in ticks (default: the sweep's, 600 = 60 s)."
    ),
    sets: list[str] | None = typer.Option(
        None, "--set", "-s", help="key=value: a [base] key of the scenario (repeatable)."
    ),
    results: Path | None = options.RESULTS,
    address: str | None = options.ADDRESS,
    executor: str = options.EXECUTOR,
    json_out: bool = typer.Option(False, "--json", help="Print the query's rows as JSON."),
) -> None:
    """Run the mid-size scenario at every sampling rate and print each rate's relative
    error against rate 1: throughput, guest faults, host swap-outs, profit.

    Runs already stored are reused (the sweep is `fig13_sampling_validation`; `balloonlab
    figures` draws it). Rate 1 of 4 guests of 4 GiB takes minutes on one core.

    Example: balloonlab validate-sampling --rates 1,0.1 --replicates 2 --ticks 200

    Example: balloonlab validate-sampling --set vms.mem_mib=1024 --set vms.workload=db
    """
    if executor not in EXECUTORS:
        raise UserError(f"--executor must be ray or local, got {executor!r}")
    if replicates < 1:
        raise UserError(f"--replicates must be >= 1, got {replicates}")
    if ticks is not None and ticks < 1:
        raise UserError(f"--ticks must be >= 1, got {ticks}")
    overrides = parse_overrides(sets or [])
    if "sampling.rate" in overrides:
        raise UserError("--set sampling.rate: give the rates with --rates")
    spec, text = validation_spec(parse_rates(rates), replicates, ticks, overrides)
    budget = limits.budget_from(None, limits.executor_workers(executor))
    limits.check_runs(spec.runs, budget, source=spec.source)
    results_dir = results if results is not None else options.default_results()
    cli_spec.write_stored_spec(results_dir, spec.name, text)
    from harness.executors import make_executor

    quiet = contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext()
    with (
        sweep_lock.hold(results_dir, spec.name, wait=False),
        quiet,
        make_executor(executor, address=address) as ex,
        SweepProgress(enabled=None if not json_out else False) as progress,
    ):
        report = run_sweep(spec, ex, results_dir, progress=progress)
    rows = _errors(results_dir)
    if json_out:
        typer.echo(json.dumps(rows, indent=2, default=str))
    else:
        _print(rows)
    if report.failed:
        typer.echo(f"{report.failed} run(s) failed: `balloonlab validate-sampling` retries them",
                   err=True)  # fmt: skip
        raise SystemExit(1)


def _errors(results_dir: Path) -> list[dict[str, Any]]:
    from analysis import db

    con = db.connect(results_dir, read_only=True, memory_limit_bytes=limits.default_budget())
    try:
        return db.run_named(con, QUERY, {"sweep": SWEEP}).records()
    finally:
        con.close()


def _print(rows: list[dict[str, Any]]) -> None:
    table = Table(title="sampled vs full simulation: relative error against rate 1")
    for col in ("workload", "policy", "rate", "runs", *ERRORS, "wall s"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r["workload"]), str(r["policy"]), f"{r['rate']:g}", str(r["runs"]),
            *(_fmt_error(r[f"{name}_rel_error"]) for name in ERRORS),
            f"{r['wall_seconds']:.1f}",
        )  # fmt: skip
    Console().print(table)
