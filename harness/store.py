"""The Parquet store: one file per run and table, hive-partitioned by sweep.

    <results>/runs/sweep=<name>/<run_id>.parquet     one summary row
    <results>/ticks/sweep=<name>/<run_id>.parquet    the run's per-tick rows

Only the driver writes, always to a hidden temporary name in the same directory
(``.<run_id>.parquet.tmp``) and then ``os.replace`` into place, so a reader never sees half
a file. The ticks file is written before the summary file: a summary file is the mark of a
stored run. Provenance (config JSON, seed, versions, git commit, host, Ray node) rides in
each file's Parquet key-value metadata. ``compact`` merges a sweep's files into one file
per table; every function here reads per-run files and compacted parts alike.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from harness.spec import Run

RUNS = "runs"
TICKS = "ticks"
TABLES = (RUNS, TICKS)
FAILED = "failed"
COMPACT_PREFIX = "part-compact-"
META_PREFIX = "balloonlab."


def default_results() -> Path:
    """Where results go unless --results says otherwise: $BALLOONLAB_RESULTS or ./results."""
    return Path(os.environ.get("BALLOONLAB_RESULTS", "results"))


def sweep_dir(results: Path | str, table: str, sweep: str) -> Path:
    """The hive partition directory of one sweep in one table."""
    return Path(results) / table / f"sweep={sweep}"


def run_file(results: Path | str, table: str, sweep: str, run_id: str) -> Path:
    """The file of one run in one table (before any compaction)."""
    return sweep_dir(results, table, sweep) / f"{run_id}.parquet"


# ---- provenance --------------------------------------------------------------------------


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@functools.cache
def git_commit() -> str | None:
    """HEAD of the checkout this package runs from, or None outside one (cached)."""
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "--verify", "--quiet", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    commit = out.stdout.strip()
    return commit if out.returncode == 0 and commit else None


@functools.cache
def _static_provenance() -> dict[str, str]:
    values = {
        "version": _version("balloonlab"),
        "git_commit": git_commit(),
        "python": platform.python_version(),
        "numpy": _version("numpy"),
        "pyarrow": _version("pyarrow"),
        "ray": _version("ray"),  # the installed version; the store never imports ray
        "driver_host": socket.gethostname(),
    }
    return {k: v for k, v in values.items() if v is not None}


def provenance(run: Run, *, node_id: str | None = None, host: str | None = None) -> dict:
    """Everything needed to trace a stored run back to its config, code and machine."""
    values: dict[str, Any] = {
        "sweep": run.sweep,
        "run_id": run.run_id,
        "replicate": run.replicate,
        "seed": run.seed,
        "config": run.config.to_json(),
        "overrides": json.dumps(run.overrides, sort_keys=True, default=str),
        "host": host,
        "ray_node_id": node_id,
        "written_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    values |= _static_provenance()
    return {k: str(v) for k, v in values.items() if v is not None}


def read_provenance(path: Path | str) -> dict[str, str]:
    """The provenance of a stored file (``balloonlab.*`` metadata keys, prefix dropped). A
    compacted part holds its runs' provenance as JSON under ``provenance``."""
    return _metadata(pq.read_schema(path))


def _metadata(schema: pa.Schema) -> dict[str, str]:
    raw = schema.metadata or {}
    return {
        k.decode()[len(META_PREFIX) :]: v.decode()
        for k, v in raw.items()
        if k.decode().startswith(META_PREFIX)
    }


def _with_metadata(table: pa.Table, meta: Mapping[str, str]) -> pa.Table:
    merged = dict(table.schema.metadata or {})
    merged.update({f"{META_PREFIX}{k}".encode(): v.encode() for k, v in meta.items()})
    return table.replace_schema_metadata(merged)


# ---- writing -----------------------------------------------------------------------------


def _atomic_write(table: pa.Table, path: Path) -> None:
    """Write to ``.<name>.tmp`` beside ``path``, then rename: all or nothing is visible."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _prepend(table: pa.Table, columns: Mapping[str, Any]) -> pa.Table:
    """Put constant key columns first (replacing any of the same name)."""
    rest = [c for c in table.column_names if c not in columns]
    out = table.select(rest)
    for i, (name, value) in enumerate(columns.items()):
        out = out.add_column(i, name, pa.array([value] * len(out)))
    return out


def summary_row(run: Run, summary: pa.Table, *, node_id: str | None, host: str | None):
    """The stored summary row: sweep, run_id, replicate first, then the run's columns, then
    where it ran (``ray_node_id`` is null off Ray)."""
    keys = {"sweep": run.sweep, "run_id": run.run_id, "replicate": run.replicate}
    table = _prepend(summary, keys)
    if "ray_node_id" in table.column_names:
        table = table.drop_columns(["ray_node_id"])
    if "worker_host" in table.column_names:
        table = table.drop_columns(["worker_host"])
    table = table.append_column("ray_node_id", pa.array([node_id] * len(table), pa.string()))
    return table.append_column("worker_host", pa.array([host] * len(table), pa.string()))


def write_run(
    results: Path | str,
    run: Run,
    summary: pa.Table,
    ticks: pa.Table | None = None,
    *,
    node_id: str | None = None,
    host: str | None = None,
) -> Path:
    """Store one run: its ticks (if any), then its summary row. Returns the summary path.
    Overwrites an earlier file of the same run (a retried failure)."""
    if summary.num_rows != 1:
        raise ValueError(f"run {run.run_id}: summary must have one row, got {summary.num_rows}")
    meta = provenance(run, node_id=node_id, host=host)
    meta["outcome"] = str(summary.column("outcome")[0].as_py())
    if ticks is not None and ticks.num_columns:
        ticks = _prepend(ticks, {"sweep": run.sweep, "run_id": run.run_id})
        _atomic_write(_with_metadata(ticks, meta), run_file(results, TICKS, run.sweep, run.run_id))
    else:  # a failed run has no series; drop any stale one from an earlier attempt
        run_file(results, TICKS, run.sweep, run.run_id).unlink(missing_ok=True)
    row = summary_row(run, summary, node_id=node_id, host=host)
    path = run_file(results, RUNS, run.sweep, run.run_id)
    _atomic_write(_with_metadata(row, meta), path)
    return path


# ---- reading -----------------------------------------------------------------------------


def _files(results: Path | str, table: str, sweep: str) -> list[Path]:
    """A sweep's visible files, compacted parts first (older), then per-run files."""
    d = sweep_dir(results, table, sweep)
    if not d.is_dir():
        return []
    files = sorted(p for p in d.glob("*.parquet") if not p.name.startswith("."))
    return [p for p in files if p.name.startswith(COMPACT_PREFIX)] + [
        p for p in files if not p.name.startswith(COMPACT_PREFIX)
    ]


def sweeps(results: Path | str) -> list[str]:
    """Names of the sweeps with a runs partition under ``results``."""
    d = Path(results) / RUNS
    if not d.is_dir():
        return []
    return sorted(p.name[len("sweep=") :] for p in d.iterdir() if p.name.startswith("sweep="))


def stored_outcomes(results: Path | str, sweep: str) -> dict[str, str]:
    """run_id -> outcome of every stored run of a sweep. Per-run files are named by run id,
    so only the outcome column is read; compacted parts are read for both columns. A later
    file wins over an earlier one (a per-run file over a compacted part)."""
    out: dict[str, str] = {}
    for path in _files(results, RUNS, sweep):
        if path.name.startswith(COMPACT_PREFIX):
            t = pq.read_table(path, columns=["run_id", "outcome"])
            ids, outcomes = t.column("run_id").to_pylist(), t.column("outcome").to_pylist()
            out.update(zip(ids, outcomes, strict=True))
        else:
            t = pq.read_table(path, columns=["outcome"])
            out[path.stem] = t.column("outcome")[0].as_py()
    return out


def stored_run_ids(results: Path | str, sweep: str) -> set[str]:
    """Ids of the runs stored and not failed: the ones a resumed sweep skips."""
    return {rid for rid, outcome in stored_outcomes(results, sweep).items() if outcome != FAILED}


def failed_run_ids(results: Path | str, sweep: str) -> set[str]:
    """Ids of the runs stored with outcome ``failed``: retried on the next run."""
    return {rid for rid, outcome in stored_outcomes(results, sweep).items() if outcome == FAILED}


def read_table(results: Path | str, table: str, sweep: str) -> pa.Table:
    """All rows of one table of a sweep, one row set per run id (latest file wins)."""
    files = _files(results, table, sweep)
    if not files:
        return pa.table({})
    owner = _owners(files)
    parts = [_rows_owned(pq.read_table(p), owner, i) for i, p in enumerate(files)]
    return pa.concat_tables(
        [t.replace_schema_metadata(None) for t in parts], promote_options="permissive"
    )


def remove_sweep(results: Path | str, sweep: str) -> None:
    """Delete every stored file of a sweep (``run --fresh``)."""
    for table in TABLES:
        shutil.rmtree(sweep_dir(results, table, sweep), ignore_errors=True)


def clean_temp_files(results: Path | str, sweep: str, older_than: float = 300.0) -> int:
    """Remove temporaries left by a killed driver (older than ``older_than`` seconds, so a
    writer still at work keeps its file). Returns how many were removed."""
    removed = 0
    now = time.time()
    for table in TABLES:
        d = sweep_dir(results, table, sweep)
        if not d.is_dir():
            continue
        for tmp in d.glob(".*.tmp"):
            try:
                if now - tmp.stat().st_mtime > older_than:
                    tmp.unlink()
                    removed += 1
            except FileNotFoundError:
                pass
    return removed


# ---- compaction --------------------------------------------------------------------------


def _run_ids_in(path: Path) -> list[str]:
    if path.name.startswith(COMPACT_PREFIX):
        return pq.read_table(path, columns=["run_id"]).column("run_id").to_pylist()
    return [path.stem]


def _owners(files: list[Path]) -> dict[str, int]:
    """run_id -> index of the file whose rows count: the latest file holding that run."""
    owner: dict[str, int] = {}
    for i, path in enumerate(files):
        for rid in _run_ids_in(path):
            owner[rid] = i
    return owner


def _rows_owned(table: pa.Table, owner: Mapping[str, int], index: int) -> pa.Table:
    mine = [rid for rid, i in owner.items() if i == index]
    if "run_id" not in table.column_names:
        return table
    return table.filter(pc.is_in(table.column("run_id"), value_set=pa.array(mine, pa.string())))


def _conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Reorder/cast ``table`` to ``schema``, filling columns it lacks with nulls."""
    columns = [
        table.column(f.name).cast(f.type)
        if f.name in table.column_names
        else pa.nulls(len(table), f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata())


@dataclass(frozen=True)
class CompactReport:
    """What one table's compaction did."""

    table: str
    files_before: int
    rows: int
    path: Path | None


def _compact_table(results: Path | str, table: str, sweep: str) -> CompactReport:
    files = _files(results, table, sweep)
    if not files or (len(files) == 1 and files[0].name.startswith(COMPACT_PREFIX)):
        rows = pq.read_metadata(files[0]).num_rows if files else 0
        return CompactReport(table, len(files), rows, files[0] if files else None)
    owner = _owners(files)
    schemas = [pq.read_schema(p) for p in files]
    schema = pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")
    meta = {"sweep": sweep, "compacted_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    if table == RUNS:  # keep each run's provenance, keyed by run id
        merged: dict[str, dict[str, str]] = {}
        for i, (path, file_schema) in enumerate(zip(files, schemas, strict=True)):
            merged |= _provenance_of(path, file_schema, owner, i)
        meta["provenance"] = json.dumps(merged, sort_keys=True)
    schema = _with_metadata(schema.empty_table(), meta).schema
    digest = hashlib.sha256("\n".join(sorted(owner)).encode()).hexdigest()[:16]
    target = sweep_dir(results, table, sweep) / f"{COMPACT_PREFIX}{digest}.parquet"
    tmp = target.with_name(f".{target.name}.tmp")
    expected = 0
    try:
        with pq.ParquetWriter(tmp, schema) as writer:
            for i, path in enumerate(files):  # one source at a time: bounded memory
                part = _rows_owned(pq.read_table(path), owner, i)
                expected += part.num_rows
                if part.num_rows:
                    writer.write_table(_conform(part, schema))
        written = pq.read_metadata(tmp).num_rows
        if written != expected:  # never trade rows for fewer files
            raise RuntimeError(f"compaction of {sweep}/{table} wrote {written} of {expected}")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    # Only after the merged file is in place do the sources go. A crash in between leaves
    # runs twice (never zero times); readers and the next compaction keep the latest copy.
    for path in files:
        if path != target:
            path.unlink(missing_ok=True)
    return CompactReport(table, len(files), expected, target)


def _provenance_of(
    path: Path, schema: pa.Schema, owner: Mapping[str, int], index: int
) -> dict[str, dict[str, str]]:
    meta = _metadata(schema)
    if not path.name.startswith(COMPACT_PREFIX):
        return {path.stem: meta} if owner.get(path.stem) == index else {}
    earlier = json.loads(meta.get("provenance", "{}"))
    return {rid: p for rid, p in earlier.items() if owner.get(rid) == index}


def compact(results: Path | str, sweep: str) -> list[CompactReport]:
    """Merge a sweep's files into one ``part-compact-<hash>.parquet`` per table, without
    losing a row; the merged file replaces the sources atomically."""
    if sweep not in sweeps(results):
        raise FileNotFoundError(f"no sweep {sweep!r} under {results}")
    return [_compact_table(results, table, sweep) for table in TABLES]


def drop_runs(
    results: Path | str, sweep: str, run_ids: Iterable[str], *, compacted_only: bool = False
) -> None:
    """Forget runs in both tables: delete their per-run files (unless ``compacted_only``)
    and rewrite any compacted part holding them. The driver calls this before retrying
    failed runs, so a compacted `failed` row cannot outlive its retry."""
    drop = set(run_ids)
    if not drop:
        return
    for table in TABLES:
        for path in _files(results, table, sweep):
            if not path.name.startswith(COMPACT_PREFIX):
                if path.stem in drop and not compacted_only:
                    path.unlink(missing_ok=True)
                continue
            data = pq.read_table(path)
            keep = pc.invert(pc.is_in(data.column("run_id"), pa.array(sorted(drop), pa.string())))
            if pc.all(keep).as_py():
                continue
            _atomic_write(data.filter(keep), path)
