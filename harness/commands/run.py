"""Sweep commands: `run`, `show`, `sweeps`, `status`, `compact`."""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from harness import cli_spec, limits, options
from harness.cli import app
from harness.driver import refuse_stale_runs, run_sweeps, stale_run_ids
from harness.errors import UserError
from harness.progress import SweepProgress
from harness.spec import SweepSpec, load_spec
from harness.sweeps_catalog import resolve, shipped
from store import parquet, sweep_lock

EXECUTORS = ("ray", "local")


def _load_specs(args: list[str], max_runs: int | None = None) -> list[SweepSpec]:
    """Load and validate every spec before anything runs (a spec over ``max_runs`` runs is
    refused before it is expanded)."""
    specs = [load_spec(resolve(arg), max_runs=max_runs) for arg in args]
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.name in seen:
            other = seen[spec.name]
            raise UserError(f"{spec.source}: [sweep] name: {spec.name!r} is also {other}'s")
        seen[spec.name] = spec.source
    return specs


# Options of a sweep given without a file (`run` and `show`): see harness/cli_spec.py.
NAME = typer.Option(None, "--name", help="Sweep name, for a sweep given with --grid/--set.")
GRID = typer.Option(
    None, "--grid", "-g", help="key=a,b,... : one [grid] list of the sweep (repeatable)."
)
SET = typer.Option(None, "--set", "-s", help="key=value: one [base] key of the sweep (repeatable).")
REPLICATES = typer.Option(1, "--replicates", help="Replicates per point (with --grid/--set).")
SEED = typer.Option(None, "--seed", help="Sweep seed (with --grid/--set; default 0).")


def _cli_or_files(
    specs: list[str] | None,
    name: str | None,
    grid: list[str] | None,
    sets: list[str] | None,
    replicates: int,
    seed: int | None,
    max_runs: int | None = None,
) -> list[tuple[SweepSpec, str]]:
    """The sweeps to run or show, with their spec text: files/shipped names, or one sweep
    from --name/--grid/--set (never both)."""
    if name is not None or grid or sets:
        if specs:
            raise UserError("give spec files or --name/--grid/--set, not both")
        return [
            cli_spec.spec_from_options(
                name, grid or [], sets or [], replicates, seed, max_runs=max_runs
            )
        ]
    if not specs:
        raise UserError("give a spec file or a shipped sweep (see `balloonlab sweeps`), or --grid")
    loaded = [cli_spec.load_with_text(arg, max_runs) for arg in specs]
    _check_names([spec for spec, _ in loaded])
    return loaded


def _check_names(specs: list[SweepSpec]) -> None:
    seen: dict[str, str] = {}
    for spec in specs:
        if spec.name in seen:
            raise UserError(
                f"{spec.source}: [sweep] name: {spec.name!r} is also {seen[spec.name]}'s"
            )
        seen[spec.name] = spec.source


@contextlib.contextmanager
def _hold_locks(results_dir: Path, names: list[str], wait: bool):
    """One driver per sweep: take every sweep's lock (in name order, so two drivers waiting
    on overlapping sweeps cannot wait on each other), or refuse naming the holder."""

    def waiting(holder: sweep_lock.Holder) -> None:
        typer.echo(f"waiting for {holder.describe()} to finish the sweep ...", err=True)

    with contextlib.ExitStack() as stack:
        for name in sorted(set(names)):
            stack.enter_context(sweep_lock.hold(results_dir, name, wait=wait, on_wait=waiting))
        yield


def _results_dir(results: Path | None) -> Path:
    return results if results is not None else options.default_results()


def _print_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


@app.command("run")
def run_command(
    specs: list[str] | None = typer.Argument(
        None, help="Spec files (*.toml) or names of shipped sweeps (see `balloonlab sweeps`)."
    ),
    name: str | None = NAME,
    grid: list[str] | None = GRID,
    sets: list[str] | None = SET,
    replicates: int = REPLICATES,
    seed: int | None = SEED,
    results: Path | None = options.RESULTS,
    address: str | None = options.ADDRESS,
    executor: str = options.EXECUTOR,
    fresh: bool = typer.Option(False, "--fresh", help="Delete the sweeps' stored runs first."),
    prune: bool = options.PRUNE,
    batch_size: int | None = typer.Option(
        None, "--batch-size", help="Runs per Ray task (default: adaptive)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list, one object per sweep."),
    wait: bool = typer.Option(
        False, "--wait", help="If another driver is running one of the sweeps, wait for it."
    ),
    max_runs: int = typer.Option(
        limits.MAX_RUNS, "--max-runs", help="Refuse a sweep of more runs than this."
    ),
    memory_budget: str | None = typer.Option(
        None,
        "--memory-budget",
        help="Memory one run may use, e.g. 4GiB (default: half this machine's memory over "
        "the runs executing at once).",
    ),
) -> None:
    """Run sweeps and store every run as Parquet, skipping runs already stored.

    Each spec is validated and expanded before anything runs. Results go to
    RESULTS/runs/sweep=<name>/<run_id>.parquet (one summary row) and
    RESULTS/ticks/sweep=<name>/<run_id>.parquet (per-tick rows), written as they
    arrive: an interrupted sweep resumes where it stopped. A run that raises is
    stored with outcome `failed` and its error, and retried next time; the exit
    code is then 1.

    Without a file, --name/--grid/--set/--replicates/--seed build the same spec a
    TOML file would ([grid] lists, [base] keys) and go through the same parser: the
    same run ids. Each spec's text is kept in RESULTS/specs/<name>.toml for `status`.
    A sweep whose store holds runs its spec no longer makes (the spec changed) is refused
    before anything runs, as analyses would mix them in: --prune deletes them.

    Example: balloonlab run smoke --executor local --json

    Example: balloonlab run --name oc --grid host.overcommit=1,1.5,2 --grid hypervisor.policy=none,mom --set vms.count=8 --replicates 3
    """  # noqa: E501 (an example is one command line)
    if executor not in EXECUTORS:
        raise UserError(f"--executor must be ray or local, got {executor!r}")
    if address is not None and executor != "ray":
        raise UserError("--address joins a Ray cluster: use it with --executor ray")
    if batch_size is not None and batch_size < 1:
        raise UserError(f"--batch-size must be >= 1, got {batch_size}")
    budget = limits.budget_from(memory_budget, limits.executor_workers(executor))
    with_text = _cli_or_files(specs, name, grid, sets, replicates, seed, max_runs)
    loaded = [spec for spec, _ in with_text]
    for spec in loaded:  # every run's memory, before any work starts
        limits.check_runs(spec.runs, budget, source=spec.source)
    results_dir = _results_dir(results)
    if not (fresh or prune):  # before the stored spec texts are replaced (the driver rechecks)
        refuse_stale_runs({s.name: stale_run_ids(s, results_dir) for s in loaded}, results_dir)
    for spec, text in with_text:
        cli_spec.write_stored_spec(results_dir, spec.name, text)
    from harness.executors import make_executor  # Ray is imported only when a run needs it

    # With --json, stdout carries the report alone: anything else printed while the sweep
    # runs (Ray prints notices such as a dead worker to stdout) goes to stderr instead.
    quiet_stdout = contextlib.redirect_stdout(sys.stderr) if json_out else contextlib.nullcontext()
    with (
        _hold_locks(results_dir, [s.name for s in loaded], wait),  # before Ray starts
        quiet_stdout,
        make_executor(executor, address=address, batch_size=batch_size) as ex,
        SweepProgress(enabled=None if not json_out else False) as progress,
    ):
        reports = run_sweeps(loaded, ex, results_dir, fresh=fresh, prune=prune, progress=progress)
    if json_out:
        _print_json([asdict(r) for r in reports])
    else:
        table = Table("sweep", "runs", "done", "skipped", "failed", "seconds", "run seconds",
                      title=None)  # fmt: skip
        for r in reports:
            failed = f"[red]{r.failed}[/]" if r.failed else "0"
            table.add_row(
                r.sweep, str(r.runs), str(r.done), str(r.skipped), failed, f"{r.seconds:.1f}",
                f"{r.run_seconds:.1f}",
            )  # fmt: skip
        console = Console()
        console.print(table)
        console.print(f"results in {results_dir}/ (executor: {executor})")
        if any(r.failed for r in reports):
            console.print(
                "[red]some runs failed[/]: their rows hold the error; `balloonlab run` "
                "again retries them"
            )
    if any(r.failed for r in reports):
        # SystemExit, not typer.Exit: click swallows Exit when not in standalone mode
        raise SystemExit(1)


@app.command("show")
def show_command(
    spec: str | None = typer.Argument(None, help="A spec file or the name of a shipped sweep."),
    name: str | None = NAME,
    grid: list[str] | None = GRID,
    sets: list[str] | None = SET,
    replicates: int = REPLICATES,
    seed: int | None = SEED,
    toml_out: bool = typer.Option(False, "--toml", help="Print the spec as TOML instead."),
    json_out: bool = typer.Option(False, "--json", help="Print one JSON object."),
    max_runs: int = typer.Option(
        limits.MAX_RUNS, "--max-runs", help="Refuse a sweep of more runs than this."
    ),
) -> None:
    """Expand a sweep spec without running it: one row per run with its varying keys.

    Takes a file, a shipped name, or --name/--grid/--set as `run` does.

    Example: balloonlab show smoke

    Example: balloonlab show --name oc --grid host.overcommit=1,1.5 --set vms.count=8 --toml
    """
    [(loaded, text)] = _cli_or_files(
        [spec] if spec else None, name, grid, sets, replicates, seed, max_runs
    )
    if toml_out:
        typer.echo(text, nl=False)
        return
    rows = [
        {"run_id": r.run_id, "replicate": r.replicate, "seed": r.seed, **r.point}
        for r in loaded.runs
    ]
    if json_out:
        _print_json(
            {
                "sweep": loaded.name,
                "description": loaded.description,
                "source": loaded.source,
                "runs": len(loaded.runs),
                "replicates": loaded.replicates,
                "seed": loaded.seed,
                "varying": loaded.varying,
                "base": loaded.base,
                "rows": rows,
            }
        )
        return
    console = Console()
    console.print(f"[bold]{loaded.name}[/]: {loaded.description}")
    console.print(
        f"{len(loaded.runs)} runs ({loaded.replicates} replicate(s), sweep seed "
        f"{loaded.seed}) from {loaded.source}"
    )
    table = Table()
    for column in ["run_id", "replicate", "seed", *loaded.varying]:
        table.add_column(column, overflow="fold")  # never cut a run id short
    for row in rows:
        table.add_row(*(str(row[c]) for c in ["run_id", "replicate", "seed", *loaded.varying]))
    console.print(table)


@app.command("sweeps")
def sweeps_command(
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """List the sweep specs shipped with balloonlab (usable by name in `run` and `show`).

    Example: balloonlab sweeps
    """
    entries = []
    for name, resource in shipped().items():
        entry: dict[str, Any] = {"name": name, "path": str(resource)}
        try:
            loaded = load_spec(resource)
            entry |= {"runs": len(loaded.runs), "description": loaded.description}
        except UserError as exc:  # list a broken spec rather than hide the others
            entry |= {"runs": None, "description": "", "error": str(exc)}
        entries.append(entry)
    if json_out:
        _print_json(entries)
        return
    table = Table("name", "runs", "description")
    for e in entries:
        desc = e["description"] if "error" not in e else f"[red]invalid: {e['error']}[/]"
        table.add_row(e["name"], str(e["runs"] if e["runs"] is not None else "-"), desc)
    Console().print(table)


def sweep_status(results: Path | str, sweep: str, spec: SweepSpec | None) -> dict[str, Any]:
    """Stored counts of one sweep; with its spec, also how many runs are missing."""
    outcomes = parquet.stored_outcomes(results, sweep)
    if spec is None:
        done = sum(o != parquet.FAILED for o in outcomes.values())
        return {
            "sweep": sweep,
            "runs": None,
            "done": done,
            "failed": len(outcomes) - done,
            "missing": None,
            "not_in_spec": None,
        }
    ids = {r.run_id for r in spec.runs}
    done = sum(1 for rid in ids if outcomes.get(rid, parquet.FAILED) != parquet.FAILED)
    failed = sum(1 for rid in ids if outcomes.get(rid) == parquet.FAILED)
    return {
        "sweep": sweep,
        "runs": len(ids),
        "done": done,
        "failed": failed,
        "missing": len(ids) - done - failed,
        "not_in_spec": sum(1 for rid in outcomes if rid not in ids),
    }


def _shipped_by_name() -> dict[str, SweepSpec]:
    out: dict[str, SweepSpec] = {}
    for resource in shipped().values():
        try:
            loaded = load_spec(resource)
        except UserError:
            continue
        out[loaded.name] = loaded
    return out


@app.command("status")
def status_command(
    specs: list[str] | None = typer.Argument(
        None, help="Specs to compare against (default: every stored sweep)."
    ),
    results: Path | None = options.RESULTS,
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list."),
) -> None:
    """Per sweep: runs done, failed, missing from its spec, and stored but not in it.

    Missing is counted against the given specs, else against the spec the sweep was
    run with (RESULTS/specs/<name>.toml, kept by `run`), else the shipped spec of the
    same name; without any, only stored counts are shown. "Not in spec": runs of an
    earlier version of the spec, which `run --prune` deletes.

    Example: balloonlab status --results results --json
    """
    results_dir = _results_dir(results)
    if specs:
        known = {s.name: s for s in _load_specs(specs)}
        names = list(known)
    else:
        if not (results_dir / parquet.RUNS).is_dir():
            raise UserError(f"{results_dir}: no stored runs here (see --results)")
        # The spec each sweep was last run with wins over a shipped one of the same name.
        known = _shipped_by_name() | cli_spec.stored_specs(results_dir)
        names = parquet.sweeps(results_dir)
    rows = [sweep_status(results_dir, name, known.get(name)) for name in names]
    # Damaged and stray files are never counted; say so once.
    skipped = [p for name in names for p in parquet.scan_sweep(results_dir, name).skipped]
    note = parquet.skipped_note(skipped, results_dir)
    if note:
        typer.echo(f"note: {note}", err=True)
    if json_out:
        _print_json(rows)
        return
    table = Table("sweep", "runs", "done", "failed", "missing", "not in spec")
    for r in rows:
        cells = [r["runs"], r["done"], r["failed"], r["missing"], r["not_in_spec"]]
        table.add_row(r["sweep"], *("-" if c is None else str(c) for c in cells))
    Console().print(table)


@app.command("compact")
def compact_command(
    sweep: str = typer.Argument(..., help="Name of a stored sweep."),
    results: Path | None = options.RESULTS,
    json_out: bool = typer.Option(False, "--json", help="Print a JSON list, one per table."),
) -> None:
    """Merge a sweep's per-run files into one Parquet file per table, keeping every row.

    Runs stored later go to their own files again; `compact` merges them in next time.

    Example: balloonlab compact smoke --results results
    """
    results_dir = _results_dir(results)
    if sweep not in parquet.sweeps(results_dir):
        raise UserError(f"{sweep}: no such sweep under {results_dir}/")
    reports = parquet.compact(results_dir, sweep)
    if json_out:
        _print_json([{**asdict(r), "sweep": sweep} for r in reports])
        return
    for r in reports:
        where = r.path.name if r.path is not None else "-"
        typer.echo(f"{sweep}/{r.table}: {r.files_before} file(s) -> {where} ({r.rows} rows)")
