"""`balloonlab sim`: one simulation, its summary printed (or as JSON)."""

from __future__ import annotations

import json
import math
import tomllib
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from harness import limits
from harness.cli import app
from harness.errors import UserError
from harness.overrides import config_file_overrides, parse_overrides

# What the human summary shows; --json prints every column.
LONG_RUN_S = 30.0  # a run that may take longer than this prints its estimate first

HEADLINE = (
    "outcome", "references", "throughput_mean", "native_throughput", "slowdown",
    "guest_faults", "guest_swap_outs", "guest_swap_ins", "writebacks", "file_drops",
    "host_swap_outs", "host_swap_ins", "host_discards", "reclaimed_pages",
    "io_per_reclaimed_page", "nested_faults", "silent_swap_writes", "stale_swap_reads",
    "false_swap_reads", "deadlocks", "host_io_buffers_peak_mib", "balloon_mean_mib",
    "sla_violations", "profit_per_host_hour", "wall_seconds", "refs_per_second",
)  # fmt: skip


def load_config_file(path: Path) -> tuple[dict, dict]:
    """A TOML config file as ``(raw, dotted overrides)``: the same dotted keys as a sweep's
    [base] (``"vms.count" = 8``), tables (``[host]``, ``[vms]``), ``[[vms]]`` lists, or a mix
    (see ``harness.overrides.config_file_overrides``)."""
    if not path.is_file():
        raise UserError(f"{path}: no such config file")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise UserError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"{path}: not valid TOML: {exc}") from None
    return config_file_overrides(data, str(path))


def _jsonable(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None if math.isnan(value) else str(value)
    return value


def _human(value) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"
    return f"{value:,}" if isinstance(value, int) and not isinstance(value, bool) else str(value)


@app.command()
def sim(
    config: Path | None = typer.Option(
        None,
        "--config",
        "-c",
        help='TOML config file: dotted keys as in a sweep\'s [base] ("vms.count" = 8), '
        "tables ([host] mem_mib = 4096), [[vms]] lists, or a mix. --set wins over it.",
    ),
    overrides: list[str] = typer.Option(
        [], "--set", "-s", help="Override a config key: key=value (repeatable)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the whole summary as JSON."),
    ticks_out: Path | None = typer.Option(
        None, "--ticks-out", help="Also write the per-tick series to this Parquet file."
    ),
    memory_budget: str | None = typer.Option(
        None, "--memory-budget", help="Memory the run may use, e.g. 4GiB (default: half of RAM)."
    ),
) -> None:
    """Run one simulation and print its summary.

    Keys and their units, defaults and allowed values: `balloonlab keys`.

    Example: balloonlab sim --set vms.count=4 --set host.overcommit=1.5 --set hypervisor.policy=mom
    """
    import sim_core

    raw, from_file = load_config_file(config) if config else ({}, {})
    dotted = from_file | parse_overrides(overrides)
    limits.check_raw_vm_counts(raw, dotted)  # before building: 100,000 VM tables take seconds
    cfg = sim_core.build_config(raw, **dotted)
    long_run = limits.core_seconds_range(limits.estimated_core_seconds(cfg))[1] > LONG_RUN_S
    try:
        limits.check_config(cfg, limits.budget_from(memory_budget))  # before anything allocates
    except UserError as refusal:
        if long_run:  # one line still: the refusal, then how long the run would have taken
            raise UserError(f"{refusal}; and {limits.time_phrase(cfg)}") from None
        raise
    if long_run:  # what the user is about to wait for
        Console(stderr=True).print(f"balloonlab sim: {limits.estimate_line(cfg)}")
    result = sim_core.run(cfg)
    if ticks_out is not None and result.ticks:
        import pyarrow.parquet as pq

        pq.write_table(result.ticks_table(), ticks_out)
    if as_json:
        typer.echo(json.dumps({k: _jsonable(v) for k, v in result.summary.items()}))
        return
    table = Table(title=f"balloonlab sim ({cfg.mode})", show_header=False)
    for key in HEADLINE:
        if key in result.summary:
            value = result.summary[key]
            table.add_row(key, _human(value))
    Console().print(table)
