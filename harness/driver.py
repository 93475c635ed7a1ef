"""The driver loop of a sweep: run what is not stored yet, store each result as it arrives.

`balloonlab run`, `balloonlab reproduce` and `balloonlab bench` all drive sweeps through
``run_sweeps`` (``run_sweep`` for one); only the driver writes to the store."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import UserError
from harness.progress import SweepProgress
from harness.spec import SweepSpec
from store import parquet, sweep_lock


class StaleRuns(UserError):
    """A sweep's store holds runs its spec does not make: the spec changed since they ran.
    Left there, every analysis of the sweep (figures, claims, plots, SQL) would mix them in."""


@dataclass
class SweepReport:
    """What one sweep did in one `balloonlab run`."""

    sweep: str
    runs: int  # in the spec
    done: int  # executed now and stored, outcome not `failed`
    skipped: int  # stored before (not `failed`): not run again
    failed: int  # executed now, stored as `failed` (retried next time)
    retried: int  # of the executed, how many had failed before
    seconds: float  # wall time from the start until its last run was stored
    executor: str
    results: str
    run_seconds: float = 0.0  # the wall times of its executed runs in their workers, summed


def run_sweep(
    spec: SweepSpec,
    executor: Any,
    results: Path | str,
    *,
    fresh: bool = False,
    prune: bool = False,
    progress: SweepProgress | None = None,
    wait: bool = False,
) -> SweepReport:
    """Run the spec's runs that are not stored yet and store each result as it arrives, so
    an interrupted driver loses at most the runs in flight. ``fresh`` deletes the sweep's
    stored files first. Failed runs are stored with their error and retried next time.
    Stored runs the spec does not make are refused (StaleRuns) before anything runs, or
    with ``prune`` deleted. Holds the sweep's lock throughout (store.sweep_lock): another
    live driver of the same sweep makes this refuse (SweepLocked), or with ``wait`` wait
    until it is done."""
    return run_sweeps(
        [spec], executor, results, fresh=fresh, prune=prune, progress=progress, wait=wait
    )[0]


def run_sweeps(
    specs: Sequence[SweepSpec],
    executor: Any,
    results: Path | str,
    *,
    fresh: bool = False,
    prune: bool = False,
    progress: SweepProgress | None = None,
    wait: bool = False,
    on_done: Callable[[SweepReport], None] = lambda _report: None,
) -> list[SweepReport]:
    """``run_sweep`` for several sweeps at once, one report each, in the order given. Their
    pending runs go to the executor as one queue, the sweeps in order: no sweep waits for
    the previous one's last run, so no worker idles at a sweep's end (on a 64-core cluster a
    sweep of 15 runs would leave 49 cores idle until its slowest run ends). Holds every
    sweep's lock throughout. ``on_done`` gets each sweep's report when its last run is
    stored (a sweep with nothing to run: before any run starts)."""
    names = [spec.name for spec in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"a sweep is listed twice: {names}")
    with contextlib.ExitStack() as locks:
        for name in names:
            locks.enter_context(sweep_lock.hold(results, name, wait=wait))
        # One scan of each sweep's store serves the stale-run check and the pending runs.
        outcomes = {spec.name: _stored_outcomes(spec, results, fresh) for spec in specs}
        stale = {spec.name: _not_made(spec, outcomes[spec.name]) for spec in specs}
        if prune:
            for name, ids in stale.items():
                parquet.drop_runs(results, name, ids)
                for rid in ids:
                    del outcomes[name][rid]
        else:
            refuse_stale_runs(stale, results)
        return _run_locked(specs, executor, results, outcomes, progress, on_done)


def stale_run_ids(spec: SweepSpec, results: Path | str) -> set[str]:
    """Ids of the runs stored under the spec's sweep name that the spec does not make."""
    return _not_made(spec, parquet.stored_outcomes(results, spec.name))


def _not_made(spec: SweepSpec, outcomes: dict[str, str]) -> set[str]:
    made = {r.run_id for r in spec.runs}
    return {rid for rid in outcomes if rid not in made}


def refuse_stale_runs(stale: dict[str, set[str]], results: Path | str) -> None:
    """StaleRuns naming every sweep with stored runs its spec does not make, if any."""
    found = {name: len(ids) for name, ids in stale.items() if ids}
    if not found:
        return
    which = ", ".join(f"{name} ({n} runs)" for name, n in found.items())
    raise StaleRuns(
        f"{results}: stored runs that the spec no longer makes (it changed since they ran): "
        f"{which}; analyses of a sweep read every run stored under its name, so they would "
        "be mixed in. --prune deletes those runs, --fresh the whole sweep; or use another "
        "--results (or, for `run`, another --name)"
    )


def _stored_outcomes(spec: SweepSpec, results: Path | str, fresh: bool) -> dict[str, str]:
    """The sweep's stored run outcomes, after ``fresh`` deleted the sweep and leftover
    temporary files are cleaned."""
    if fresh:
        parquet.remove_sweep(results, spec.name)
    parquet.clean_temp_files(results, spec.name)
    return parquet.stored_outcomes(results, spec.name)


def _pending(
    spec: SweepSpec, results: Path | str, outcomes: dict[str, str]
) -> tuple[list[Any], int, int]:
    """The spec's runs to execute (not stored, or stored as failed), how many of them are
    retries, and how many are stored and skipped."""
    pending = [r for r in spec.runs if outcomes.get(r.run_id, parquet.FAILED) == parquet.FAILED]
    retry = [r.run_id for r in pending if r.run_id in outcomes]
    # A failed row inside a compacted part would outlive its retry: forget it first.
    parquet.drop_runs(results, spec.name, retry, compacted_only=True)
    return pending, len(retry), len(spec.runs) - len(pending)


def _run_locked(
    specs: Sequence[SweepSpec],
    executor: Any,
    results: Path | str,
    outcomes: dict[str, dict[str, str]],
    progress: SweepProgress | None,
    on_done: Callable[[SweepReport], None],
) -> list[SweepReport]:
    start = time.perf_counter()
    progress = progress or SweepProgress(enabled=False)
    executor_name = getattr(executor, "name", type(executor).__name__)
    reports: dict[str, SweepReport] = {}
    left: dict[str, int] = {}  # runs of each sweep still to store
    queue: list[Any] = []
    for spec in specs:
        pending, retried, skipped = _pending(spec, results, outcomes[spec.name])
        left[spec.name] = len(pending)
        reports[spec.name] = SweepReport(
            sweep=spec.name, runs=len(spec.runs), done=0, skipped=skipped, failed=0,
            retried=retried, seconds=0.0, executor=executor_name, results=str(results),
        )  # fmt: skip
        queue += pending
    for name, count in left.items():
        if count == 0:
            reports[name].seconds = round(time.perf_counter() - start, 3)
            on_done(reports[name])
    label = specs[0].name if len(specs) == 1 else f"{len(specs)} sweeps"
    progress.start_sweep(label, len(queue), sum(r.skipped for r in reports.values()))
    for completed in executor.map(queue):
        parquet.write_run(
            results,
            completed.run,
            completed.summary,
            completed.ticks,
            node_id=completed.node_id,
            host=completed.host,
        )
        report = reports[completed.run.sweep]
        report.failed += completed.failed
        report.done += not completed.failed
        report.run_seconds += completed.seconds
        report.seconds = round(time.perf_counter() - start, 3)
        progress.advance(completed.failed)
        left[report.sweep] -= 1
        if left[report.sweep] == 0:
            report.run_seconds = round(report.run_seconds, 3)
            on_done(report)
    return list(reports.values())
