"""Analysis commands: `query` (SQL over the store), `figures` (draw the paper figures and
check their claims) and `reproduce` (run every figure sweep, draw, write the report)."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import sys
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from harness import limits, options
from harness.cli import app
from harness.errors import UserError

FORMATS = ("table", "csv", "json")


def _results_dir(results: Path | None) -> Path:
    return results if results is not None else options.default_results()


def _params(pairs: list[str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise UserError(f"--param {pair!r}: expected name=value")
        out[key.strip()] = value
    return out


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def format_result(columns: list[str], rows: list[tuple[Any, ...]], fmt: str) -> str:
    """A query result as CSV (header row first) or JSON (a list of objects; NaN -> null)."""
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return buf.getvalue()
    records = [{c: _json_value(v) for c, v in zip(columns, row, strict=True)} for row in rows]
    return json.dumps(records, indent=2, default=str) + "\n"


def _print_table(columns: list[str], rows: list[tuple[Any, ...]]) -> None:
    table = Table()
    for column in columns:
        table.add_column(column, overflow="fold")  # never cut a value short
    for row in rows:
        table.add_row(*("" if v is None else f"{v:.6g}" if isinstance(v, float) else str(v)
                        for v in row))  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"{len(rows)} row{'s' if len(rows) != 1 else ''}", style="dim")


def _list_queries(json_out: bool) -> None:
    from analysis.db import named_queries

    queries = named_queries()
    if json_out:
        typer.echo(
            json.dumps(
                [{"name": q.name, "description": q.description, "params": q.params}
                 for q in queries.values()],
                indent=2,
            )
        )  # fmt: skip
        return
    table = Table()
    for column in ("name", "params", "description"):
        table.add_column(column, overflow="fold")
    for q in queries.values():
        params = ", ".join(f"{k}={v}" for k, v in q.params.items())
        table.add_row(q.name, params, q.description)
    Console().print(table)


@app.command("query")
def query_command(
    sql: str | None = typer.Argument(
        None, help="SQL over the views, or the name of a shipped query (see --list)."
    ),
    results: Path | None = options.RESULTS,
    fmt: str = typer.Option("table", "--format", "-f", help="table (default), csv or json."),
    param: list[str] | None = typer.Option(
        None, "--param", "-p", help="name=value for a named query's $name (repeatable)."
    ),
    list_queries: bool = typer.Option(False, "--list", help="List the shipped named queries."),
    json_out: bool = typer.Option(False, "--json", help="Same as --format json."),
    limit: int = typer.Option(
        10_000,
        "--limit",
        help="Print at most this many rows (0: every row; csv and json stream them).",
    ),
    allow_write: bool = typer.Option(
        False,
        "--allow-write",
        help="Allow statements other than queries (COPY, CREATE, ATTACH, SET, ...) and file "
        "access outside the store.",
    ),
) -> None:
    """Run SQL (DuckDB) over the stored results and print the rows.

    Views: runs (one row per run: dotted config columns such as "hypervisor.policy",
    outcome, totals), completed_runs (outcome not failed), ticks (per-tick rows; vm = -1
    is the host), ticks_host, ticks_vm, sweeps (runs per sweep by outcome). Quote dotted
    column names with double quotes. A shipped query runs by name, with --param for its
    parameters.

    Example: balloonlab query 'SELECT "hypervisor.policy", avg(slowdown) FROM runs GROUP BY 1'
    """
    from analysis import db

    if list_queries:
        _list_queries(json_out or fmt == "json")
        return
    if json_out:
        fmt = "json"
    if fmt not in FORMATS:
        raise UserError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if sql is None:
        raise UserError("give SQL (or a named query; see `balloonlab query --list`)")
    if limit < 0:
        raise UserError(f"--limit must be >= 0, got {limit}")
    params = _params(param)
    if db.is_named_query(sql):
        text, values = db.named_sql(sql.strip(), params)
    else:
        if params:
            raise UserError("--param applies to named queries (see --list)")
        text, values = sql, None
    if not allow_write:
        db.check_read_only(text)  # refused before the store is even opened
    # A read-only session gets this machine's per-run memory budget (--allow-write: none).
    budget = None if allow_write else limits.default_budget()
    con = db.connect(_results_dir(results), read_only=not allow_write, memory_limit_bytes=budget)
    try:
        if limit == 0 and fmt != "table":  # every row, streamed in batches
            columns, batches = db.iter_sql(con, text, values, read_only=not allow_write)
            _stream(columns, batches, fmt)
            return
        result = db.run_sql(con, text, values, limit=limit or None, read_only=not allow_write)
    finally:
        con.close()
    if fmt == "table":
        _print_table(result.columns, result.rows)
    else:
        sys.stdout.write(format_result(result.columns, result.rows, fmt))
    if result.hidden:
        typer.echo(f"... {result.hidden:,} more rows not shown; use --limit N (0: all)", err=True)


def _stream(columns: list[str], batches: Any, fmt: str) -> None:
    """Write every row as CSV or as a JSON list, batch by batch (bounded memory)."""
    out = sys.stdout
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for rows in batches:
            writer.writerows(rows)
        return
    out.write("[")
    first = True
    for rows in batches:
        for row in rows:
            record = {c: _json_value(v) for c, v in zip(columns, row, strict=True)}
            out.write(("\n  " if first else ",\n  ") + json.dumps(record, default=str))
            first = False
    out.write("\n]\n" if not first else "]\n")


def _print_plan(only: str | None, quick: bool, json_out: bool) -> None:
    """The sweeps a reproduction would run, with runs and compute time, and the total."""
    import os

    from harness.reproduce import plan

    planned = plan(only, quick=quick)
    cores = os.cpu_count() or 1
    fast = sum(p.core_seconds[0] for p in planned)
    slow = sum(p.core_seconds[1] for p in planned)
    estimate = sum(p.estimate for p in planned)
    runs = sum(p.runs for p in planned)
    if json_out:
        rows = [{"figure": p.figure, "sweep": p.sweep, "runs": p.runs,
                 "references": p.references, "estimate_core_seconds": p.estimate,
                 "core_seconds": list(p.core_seconds),
                 "error": p.error or None} for p in planned]  # fmt: skip
        total = {"runs": runs, "estimate_core_seconds": estimate,
                 "core_seconds": [fast, slow], "cores": cores}  # fmt: skip
        typer.echo(json.dumps({"sweeps": rows, "total": total}, indent=2))
        return
    table = Table()
    for column in ("sweep", "runs", "guest references", "one core"):
        table.add_column(column, overflow="fold")
    for p in planned:
        lo, hi = p.core_seconds
        span = f"~{limits.duration(p.estimate)} ({limits.duration(lo)} to {limits.duration(hi)})"
        cost = p.error or (span if hi else "< 1 min")
        table.add_row(p.sweep, str(p.runs), f"{p.references / 1e9:.2f}G", cost)
    Console().print(table)
    typer.echo(
        f"total: {runs} runs, ~{limits.duration(estimate)} ({limits.duration(fast)} to "
        f"{limits.duration(slow)}) of one core; on this machine's {cores} cores "
        f"~{limits.duration(estimate / cores)} ({limits.duration(fast / cores)} to "
        f"{limits.duration(slow / cores)}) (host-mode runs at {limits.SECONDS_PER_RUN:.2f} s "
        f"per run + {limits.SECONDS_PER_GUEST_TICK * 1e6:.0f} us per guest-tick + "
        f"{limits.SECONDS_PER_REFERENCE * 1e9:.1f} ns per reference, fitted on "
        f"{limits.FIT_SOURCE}; replay and locks runs are not counted)"
    )


def _verdict_table(outcomes) -> None:
    colors = {"SUPPORTED": "green", "NO DATA": "yellow"}
    table = Table()
    for column in ("figure", "verdict", "sweep", "runs", "png / note"):
        table.add_column(column, overflow="fold")
    for o in outcomes:
        color = colors.get(o.verdict, "red")
        note = str(o.png) if o.png else (o.error or "")
        table.add_row(o.name, f"[{color}]{o.verdict}[/]", o.sweep, str(o.runs), note)
    Console().print(table)


@app.command("figures")
def figures_command(
    results: Path | None = options.RESULTS,
    out: Path = typer.Option(Path("figures"), "--out", help="Directory for the PNG files."),
    only: str | None = typer.Option(
        None, "--only", help="One figure, by name or prefix (e.g. fig04)."
    ),
    quick: bool | None = typer.Option(
        None,
        "--quick/--full",
        help="Draw from the quick (-quick) or the full sweeps. Default: the full sweep when "
        "it has runs, else the quick one.",
        show_default=False,
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list, one per figure."),
) -> None:
    """Draw the paper figures from stored runs and check each figure's claim.

    Each figure NAME reads its sweep (NAME, or NAME-quick) through the named query NAME
    and is written to OUT/NAME.png. A figure without data is reported, not fatal.
    `balloonlab reproduce` runs the sweeps first and writes the report.

    Example: balloonlab figures --only fig04 --out figures
    """
    from analysis.paper import draw_figures, select

    selected = select(only)
    outcomes = draw_figures(
        _results_dir(results),
        out,
        selected,
        quick=quick,
        memory_limit_bytes=limits.default_budget(),
    )
    if json_out:
        typer.echo(json.dumps([o.to_dict() for o in outcomes], indent=2, default=str))
    else:
        _verdict_table(outcomes)
    if all(o.png is None for o in outcomes):
        raise UserError("no figure could be drawn: no data for any (see the notes above)")


@app.command("reproduce")
def reproduce_command(
    quick: bool = typer.Option(
        False, "--quick", help="Shrunken sweeps: minutes on a 2-core laptop."
    ),
    out: Path = typer.Option(
        Path("reproduction"), "--out", help="Directory for the figures and the reports."
    ),
    results: Path | None = options.RESULTS,
    only: str | None = typer.Option(None, "--only", help="One figure, by name or prefix."),
    address: str | None = options.ADDRESS,
    executor: str = options.EXECUTOR,
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object at the end."),
    show_plan: bool = typer.Option(
        False, "--plan", help="Only list the sweeps it would run: runs and compute estimate."
    ),
    prune: bool = options.PRUNE,
) -> None:
    """Run every figure sweep, draw every figure, check its claim, write the report.

    Stored runs are skipped. The report goes to OUT/report.md and OUT/report.html
    (figures inline), beside OUT/<figure>.png. Each verdict (SUPPORTED, NOT
    SUPPORTED or NO DATA) is decided from the data by the check written beside
    the figure. With --quick every sweep is shrunk (stored as <name>-quick) to
    finish in minutes. Runs stored by an earlier version whose sweep has changed stop
    it before anything runs: --prune deletes them (or use another --results).

    Example: balloonlab reproduce --quick --out reproduction

    Example: balloonlab reproduce --plan (what a full reproduction would cost)
    """
    from analysis.paper import select
    from harness.reproduce import reproduce

    if executor not in ("ray", "local"):
        raise UserError(f"--executor must be ray or local, got {executor!r}")
    if address is not None and executor != "ray":
        raise UserError("--address joins a Ray cluster: use it with --executor ray")
    select(only)  # an unknown figure fails before anything runs
    if show_plan:
        _print_plan(only, quick, json_out)
        return

    def log(message: str) -> None:
        typer.echo(message, err=True)

    # With --json, stdout carries the JSON alone: anything printed while the sweeps run
    # (Ray prints some notices to stdout) goes to stderr.
    quiet = contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext()
    with quiet:
        repro = reproduce(
            out,
            _results_dir(results),
            quick=quick,
            only=only,
            executor=executor,
            address=address,
            progress=False if json_out else None,
            log=log,
            prune=prune,
        )
    if json_out:
        typer.echo(json.dumps(repro.to_dict(), indent=2, default=str))
    else:
        _verdict_table(repro.figures)
        typer.echo(f"report: {repro.report_md} and {repro.report_html} ({repro.seconds:.1f} s)")
