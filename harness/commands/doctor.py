"""`balloonlab doctor`: find the files the store's readers skip, and move them aside."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from harness import options
from harness.cli import app
from harness.errors import UserError
from store import parquet, sweep_lock


def _rel(results: Path, path: Path) -> str:
    try:
        return str(path.relative_to(results))
    except ValueError:
        return str(path)


def _stale_locks(results: Path) -> list[parquet.FileProblem]:
    d = results / sweep_lock.LOCKS
    if not d.is_dir():
        return []
    out = []
    for path in sorted(d.glob("*.lock")):
        holder = sweep_lock.read_holder(path)
        if sweep_lock.is_stale(holder):
            who = holder.describe() if holder else "nobody readable"
            out.append(parquet.FileProblem(path, "stale_lock", f"held by {who}, not alive"))
    return out


@app.command("doctor")
def doctor_command(
    results: Path | None = options.RESULTS,
    fix: bool = typer.Option(
        False, "--fix", help="Move every listed file to RESULTS/quarantine/ (nothing is deleted)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list, one per file."),
) -> None:
    """List the store's damaged, stray, orphaned and temporary files (and stale locks).

    damaged: not a readable Parquet file, or fewer tick rows than its summary
    recorded; stray: valid Parquet that is not a run file of its sweep (another
    name, another run_id or sweep inside, a foreign schema, e.g. a backup copy);
    orphaned: ticks without their summary, or a summary whose ticks are missing
    or damaged; temp: a writer's temporary. Every reader already skips them.
    --fix moves them to RESULTS/quarantine/ under the same relative path, so the
    next `balloonlab run` redoes those runs; temporaries of a sweep whose driver
    is alive are left alone. Exit code 1 when problems remain (found, not fixed).

    Example: balloonlab doctor --results results --fix
    """
    root = results if results is not None else options.default_results()
    if not root.is_dir():
        raise UserError(f"{root}: no such results directory (see --results)")
    problems = parquet.diagnose(root) + _stale_locks(root)
    rows = []
    remaining = 0
    for p in problems:
        row = {"path": _rel(root, p.path), "kind": p.kind, "reason": p.reason, "sweep": p.sweep}
        moved = None
        if fix:
            live = p.kind == parquet.TEMP and p.sweep and sweep_lock.live_holder(root, p.sweep)
            if live:
                row["note"] = f"left alone: its sweep is being run by {live.describe()}"
            else:
                try:
                    moved = _rel(root, parquet.quarantine(root, p.path))
                except FileNotFoundError:  # gone meanwhile (a writer renamed its temp)
                    row["note"] = "gone meanwhile"
                    rows.append(row)
                    continue
        row["moved_to"] = moved
        remaining += moved is None
        rows.append(row)
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
    elif not rows:
        typer.echo(f"{root}: no damaged, stray, orphaned or temporary files")
    else:
        table = Table("kind", "file", "why", *(["moved to"] if fix else []))
        for r in rows:
            extra = [r["moved_to"] or r.get("note", "-")] if fix else []
            table.add_row(r["kind"], r["path"], r["reason"], *extra)
        Console().print(table)
        if not fix:
            typer.echo(
                "run `balloonlab doctor --fix` to move them to quarantine/ (nothing is deleted)"
            )
    if remaining:
        raise SystemExit(1)
