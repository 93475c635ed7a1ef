"""The driver loop of a sweep: run what is not stored yet, store each result as it arrives.

`balloonlab run`, `balloonlab reproduce` and `balloonlab bench` all drive sweeps through
``run_sweep``; only the driver writes to the store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.progress import SweepProgress
from harness.spec import SweepSpec
from store import parquet, sweep_lock


@dataclass
class SweepReport:
    """What one sweep did in one `balloonlab run`."""

    sweep: str
    runs: int  # in the spec
    done: int  # executed now and stored, outcome not `failed`
    skipped: int  # stored before (not `failed`): not run again
    failed: int  # executed now, stored as `failed` (retried next time)
    retried: int  # of the executed, how many had failed before
    seconds: float
    executor: str
    results: str


def run_sweep(
    spec: SweepSpec,
    executor: Any,
    results: Path | str,
    *,
    fresh: bool = False,
    progress: SweepProgress | None = None,
    wait: bool = False,
) -> SweepReport:
    """Run the spec's runs that are not stored yet and store each result as it arrives, so
    an interrupted driver loses at most the runs in flight. ``fresh`` deletes the sweep's
    stored files first. Failed runs are stored with their error and retried next time.
    Holds the sweep's lock throughout (store.sweep_lock): another live driver of the same
    sweep makes this refuse (SweepLocked), or with ``wait`` wait until it is done."""
    with sweep_lock.hold(results, spec.name, wait=wait):
        return _run_locked(spec, executor, results, fresh=fresh, progress=progress)


def _run_locked(
    spec: SweepSpec,
    executor: Any,
    results: Path | str,
    *,
    fresh: bool,
    progress: SweepProgress | None,
) -> SweepReport:
    start = time.perf_counter()
    progress = progress or SweepProgress(enabled=False)
    if fresh:
        parquet.remove_sweep(results, spec.name)
    parquet.clean_temp_files(results, spec.name)
    outcomes = parquet.stored_outcomes(results, spec.name)
    pending = [r for r in spec.runs if outcomes.get(r.run_id, parquet.FAILED) == parquet.FAILED]
    retry = [r.run_id for r in pending if r.run_id in outcomes]
    # A failed row inside a compacted part would outlive its retry: forget it first.
    parquet.drop_runs(results, spec.name, retry, compacted_only=True)
    skipped = len(spec.runs) - len(pending)
    progress.start_sweep(spec.name, len(pending), skipped)
    done = failed = 0
    for completed in executor.map(pending):
        parquet.write_run(
            results,
            completed.run,
            completed.summary,
            completed.ticks,
            node_id=completed.node_id,
            host=completed.host,
        )
        failed += completed.failed
        done += not completed.failed
        progress.advance(completed.failed)
    return SweepReport(
        sweep=spec.name,
        runs=len(spec.runs),
        done=done,
        skipped=skipped,
        failed=failed,
        retried=len(retry),
        seconds=round(time.perf_counter() - start, 3),
        executor=getattr(executor, "name", type(executor).__name__),
        results=str(results),
    )
