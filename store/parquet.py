"""The Parquet store: one file per run and table, hive-partitioned by sweep.

    <results>/runs/sweep=<name>/<run_id>.parquet     one summary row
    <results>/ticks/sweep=<name>/<run_id>.parquet    the run's per-tick rows

Only the driver writes, always to a hidden temporary name unique to the writer in the same
directory (``.<run_id>.parquet.<pid>.<random>.tmp``) and then ``os.replace`` into place, so
a reader never sees half a file and two writers never share a temporary. The ticks file is
written before the summary file. Provenance (config JSON, seed, versions, git commit, host,
Ray node, how many tick rows the run wrote) rides in each file's Parquet key-value metadata.
``compact`` merges a sweep's files into one file per table; every function here reads
per-run files and compacted parts alike.

Integrity on read: every reader goes through ``scan_sweep``, which keeps only files that
pass a cheap check (the Parquet footer opens, the expected columns are there with the
expected types, the ``run_id`` and ``sweep`` inside equal the file name and directory) and
reports the rest as problems (damaged, stray, orphaned, temp) for ``balloonlab doctor``.
A run counts as stored only when its summary file is sound and so is its ticks file (with
the row count the summary recorded); otherwise it is pending and the next ``run`` redoes it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import os
import platform
import re
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from store.errors import StoreError

RUNS = "runs"
TICKS = "ticks"
TABLES = (RUNS, TICKS)
FAILED = "failed"
COMPACT_PREFIX = "part-compact-"
META_PREFIX = "balloonlab."
QUARANTINE = "quarantine"
RUN_ID_RE = re.compile(r"^[0-9a-f]{16}$")  # run ids are 16 hex digits

# Problem kinds (see ``FileProblem``)
DAMAGED = "damaged"  # not a readable Parquet file
STRAY = "stray"  # valid Parquet, but not a file of this store (name, run id, sweep, schema)
ORPHANED = "orphaned"  # ticks without a summary, or a summary whose ticks are missing
TEMP = "temp"  # a writer's temporary (``.*.tmp``): in flight, or left by a killed writer

# The columns (and their kinds) a file of each table must carry to be read.
REQUIRED_COLUMNS: dict[str, dict[str, str]] = {
    RUNS: {"sweep": "string", "run_id": "string", "outcome": "string"},
    TICKS: {"sweep": "string", "run_id": "string", "tick": "integer", "vm": "integer"},
}


class _Config(Protocol):
    def to_json(self) -> str: ...


class Run(Protocol):
    """What the store needs of a run (the harness's ``spec.Run`` has it)."""

    @property
    def sweep(self) -> str: ...
    @property
    def run_id(self) -> str: ...
    @property
    def replicate(self) -> int: ...
    @property
    def seed(self) -> int: ...
    @property
    def overrides(self) -> Mapping[str, Any]: ...
    @property
    def config(self) -> _Config: ...


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
    """Write to a temporary beside ``path``, then rename: all or nothing is visible. The
    temporary's name is unique to this writer (pid and a random suffix), so two writers of
    the same file never remove or rename each other's half-written data."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _temp_name(path)
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


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
    # How many tick rows belong to this run: a reader checks the ticks file against it.
    meta["tick_rows"] = str(ticks.num_rows if ticks is not None and ticks.num_columns else 0)
    if ticks is not None and ticks.num_columns:
        ticks = _prepend(ticks, {"sweep": run.sweep, "run_id": run.run_id})
        _atomic_write(_with_metadata(ticks, meta), run_file(results, TICKS, run.sweep, run.run_id))
    else:  # a failed run has no series; drop any stale one from an earlier attempt
        run_file(results, TICKS, run.sweep, run.run_id).unlink(missing_ok=True)
    row = summary_row(run, summary, node_id=node_id, host=host)
    path = run_file(results, RUNS, run.sweep, run.run_id)
    _atomic_write(_with_metadata(row, meta), path)
    return path


# ---- integrity ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FileProblem:
    """A file the readers skip, and why (one line). ``kind``: DAMAGED, STRAY, ORPHANED, TEMP."""

    path: Path
    kind: str
    reason: str
    sweep: str | None = None


@dataclass(frozen=True)
class FileCheck:
    """The verdict of ``check_file`` on one file. For a per-run file, ``run_id`` is its name
    (checked against the column inside) and, in the runs table, ``outcome`` its outcome."""

    path: Path
    table: str
    problem: FileProblem | None
    rows: int = 0
    run_id: str | None = None
    outcome: str | None = None
    meta: Mapping[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.problem is None

    @property
    def compacted(self) -> bool:
        return self.path.name.startswith(COMPACT_PREFIX)


# check_file results by (path, table, sweep, size, mtime, inode): a rewritten file (always a
# new inode, via os.replace) is checked again; an unchanged one costs a stat.
_CHECKS: dict[tuple, FileCheck] = {}
_READ_ERRORS = (pa.ArrowException, OSError, ValueError, KeyError)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _kind_ok(dtype: pa.DataType, kind: str) -> bool:
    if pa.types.is_dictionary(dtype):
        dtype = dtype.value_type
    if kind == "string":
        return pa.types.is_string(dtype) or pa.types.is_large_string(dtype)
    return pa.types.is_integer(dtype)


def _distinct(path: Path, md: pq.FileMetaData, column: str) -> set[Any]:
    """The distinct values of one column, from the footer's statistics when every row group
    has them (no data read), else from the column itself."""
    values: set[Any] = set()
    for i in range(md.num_row_groups):
        rg = md.row_group(i)
        chunk = next(
            (rg.column(j) for j in range(rg.num_columns) if rg.column(j).path_in_schema == column),
            None,
        )
        stats = chunk.statistics if chunk is not None else None
        if stats is None or not stats.has_min_max or stats.null_count is None:
            if rg.num_rows == 0:
                continue
            return set(pq.read_table(path, columns=[column]).column(column).unique().to_pylist())
        values |= {stats.min, stats.max}
        if stats.null_count:
            values.add(None)
    return values


def check_file(path: Path, table: str, sweep: str) -> FileCheck:
    """The cheap check a file must pass to be read: its Parquet footer opens, it has the
    table's columns (``REQUIRED_COLUMNS``), it is named ``<run_id>.parquet`` (or is a
    compacted part) and the ``run_id`` and ``sweep`` inside agree with its name and
    directory; a summary file has one row. Reads the footer only, unless statistics lack."""
    try:
        st = path.stat()
    except OSError as exc:
        return FileCheck(path, table, FileProblem(path, DAMAGED, _first_line(exc), sweep))
    key = (str(path), table, sweep, st.st_size, st.st_mtime_ns, st.st_ino)
    hit = _CHECKS.get(key)
    if hit is None:
        hit = _CHECKS[key] = _check(path, table, sweep)
    return hit


def _check(path: Path, table: str, sweep: str) -> FileCheck:
    def bad(kind: str, why: str) -> FileCheck:
        return FileCheck(path, table, FileProblem(path, kind, why, sweep))

    try:
        md = pq.read_metadata(path)
        schema = md.schema.to_arrow_schema()
    except _READ_ERRORS as exc:
        return bad(DAMAGED, f"not a readable Parquet file ({_first_line(exc)})")
    raw = md.metadata or {}
    prefix = META_PREFIX.encode()
    meta = {
        k[len(prefix) :].decode(errors="replace"): v.decode(errors="replace")
        for k, v in raw.items()
        if k.startswith(prefix)
    }
    for name, kind in REQUIRED_COLUMNS[table].items():
        if name not in schema.names:
            return bad(STRAY, f"foreign schema: no column {name!r}")
        if not _kind_ok(schema.field(name).type, kind):
            return bad(STRAY, f"foreign schema: column {name!r} is {schema.field(name).type}")
    compacted = path.name.startswith(COMPACT_PREFIX)
    if not compacted and not RUN_ID_RE.match(path.stem):
        return bad(STRAY, "not named <run_id>.parquet")
    try:
        other = _distinct(path, md, "sweep") - {sweep}
        if other:
            return bad(STRAY, f"holds rows of sweep {sorted(map(str, other))[0]!r}")
        if compacted:
            return FileCheck(path, table, None, md.num_rows, meta=meta)
        ids = _distinct(path, md, "run_id")
        if ids - {path.stem}:
            return bad(STRAY, f"holds run_id {sorted(map(str, ids - {path.stem}))[0]!r}")
        outcome = None
        if table == RUNS:
            if md.num_rows != 1:
                return bad(STRAY, f"{md.num_rows} rows, a summary file has one")
            outcome = next(iter(_distinct(path, md, "outcome")), None)
            if not isinstance(outcome, str):
                return bad(STRAY, "no outcome")
    except _READ_ERRORS as exc:
        return bad(DAMAGED, f"unreadable data ({_first_line(exc)})")
    return FileCheck(path, table, None, md.num_rows, path.stem, outcome, meta)


def _listing(results: Path | str, table: str, sweep: str) -> tuple[list[Path], list[Path]]:
    """A sweep's visible Parquet files (compacted parts first: older), and its temporaries."""
    d = sweep_dir(results, table, sweep)
    if not d.is_dir():
        return [], []
    names = sorted(p for p in d.iterdir() if p.is_file())
    temps = [p for p in names if p.name.startswith(".") and p.name.endswith(".tmp")]
    files = [p for p in names if p.suffix == ".parquet" and not p.name.startswith(".")]
    return [p for p in files if p.name.startswith(COMPACT_PREFIX)] + [
        p for p in files if not p.name.startswith(COMPACT_PREFIX)
    ], temps


def _files(results: Path | str, table: str, sweep: str) -> list[Path]:
    """A sweep's sound files of one table holding stored runs (see ``scan_sweep``)."""
    return scan_sweep(results, sweep).files[table]


def _ticks_wanted(outcome: str, meta: Mapping[str, str]) -> tuple[bool, int | None]:
    """(must a ticks file exist, with how many rows if known) for a summary's run. Files
    written before ``tick_rows`` was recorded: a full simulation (mode host) has ticks."""
    if outcome == FAILED:
        return False, 0
    if "tick_rows" in meta:
        try:
            rows = int(meta["tick_rows"])
        except ValueError:
            return True, None
        return rows > 0, rows
    try:
        mode = json.loads(meta.get("config", "{}")).get("mode", "host")
    except (ValueError, AttributeError):
        mode = "host"
    return mode == "host", None


@dataclass
class SweepScan:
    """What ``scan_sweep`` found in one sweep. ``outcomes``: run_id -> outcome of every
    stored run (summary sound and, unless failed, ticks sound with the recorded rows);
    ``files``: per table, the sound files that hold stored runs, in reading order
    (compacted parts first, then per-run files: a later file wins); ``problems``: the
    files every reader skips."""

    sweep: str
    outcomes: dict[str, str]
    files: dict[str, list[Path]]
    problems: list[FileProblem]

    @property
    def skipped(self) -> list[FileProblem]:
        """The problems a reader reports (temporaries are normal while a sweep runs)."""
        return [p for p in self.problems if p.kind != TEMP]


def scan_sweep(results: Path | str, sweep: str) -> SweepScan:
    """Check every file of a sweep and decide which runs are stored (see ``SweepScan``)."""
    problems: list[FileProblem] = []
    good: dict[str, list[FileCheck]] = {}
    for table in TABLES:
        files, temps = _listing(results, table, sweep)
        problems += [FileProblem(t, TEMP, "a writer's temporary", sweep) for t in temps]
        good[table] = []
        for path in files:
            check = check_file(path, table, sweep)
            (good[table].append(check) if check.ok else problems.append(check.problem))
    unsound_ticks = {
        p.path.stem for p in problems if p.path.parent.parent.name == TICKS and p.kind != TEMP
    }

    summaries: dict[str, tuple[str, bool, int | None, FileCheck]] = {}
    for check in list(good[RUNS]):
        if not check.compacted:
            wanted = _ticks_wanted(check.outcome or "", check.meta)
            summaries[check.run_id or ""] = (check.outcome or "", *wanted, check)
            continue
        try:
            t = pq.read_table(check.path, columns=["run_id", "outcome"])
            prov = json.loads(check.meta.get("provenance", "{}"))
        except _READ_ERRORS as exc:
            problems.append(FileProblem(check.path, DAMAGED, _first_line(exc), sweep))
            good[RUNS].remove(check)
            continue
        ids, outs = t.column("run_id").to_pylist(), t.column("outcome").to_pylist()
        for rid, outcome in zip(ids, outs, strict=True):
            summaries[rid] = (outcome, *_ticks_wanted(outcome, prov.get(rid, {})), check)

    ticks: dict[str, tuple[int, FileCheck]] = {}
    for check in list(good[TICKS]):
        if not check.compacted:
            ticks[check.run_id or ""] = (check.rows, check)
            continue
        try:
            counts = pq.read_table(check.path, columns=["run_id"]).column("run_id").value_counts()
        except _READ_ERRORS as exc:
            problems.append(FileProblem(check.path, DAMAGED, _first_line(exc), sweep))
            good[TICKS].remove(check)
            continue
        for item in counts.to_pylist():
            ticks[item["values"]] = (item["counts"], check)

    outcomes: dict[str, str] = {}
    for rid, (outcome, required, rows, check) in summaries.items():
        got = ticks.get(rid)
        if outcome == FAILED or (got is None and not required):
            outcomes[rid] = outcome
        elif got is None:
            if not check.compacted:  # the run is pending: its summary goes with its ticks
                why = "damaged" if rid in unsound_ticks else "missing"
                problems.append(
                    FileProblem(check.path, ORPHANED, f"summary whose ticks file is {why}", sweep)
                )
        elif rows is not None and got[0] != rows:
            problems.append(
                FileProblem(
                    got[1].path, DAMAGED, f"{got[0]} tick rows, its summary recorded {rows}", sweep
                )
            )
        else:
            outcomes[rid] = outcome
    for rid, (_, check) in ticks.items():
        if rid not in summaries and not check.compacted:
            problems.append(
                FileProblem(check.path, ORPHANED, "ticks without a summary (runs) file", sweep)
            )

    def stored(check: FileCheck) -> bool:
        return check.compacted or check.run_id in outcomes

    files = {table: [c.path for c in good[table] if stored(c)] for table in TABLES}
    return SweepScan(sweep, outcomes, files, problems)


def skipped_note(problems: Iterable[FileProblem], results: Path | str | None = None) -> str | None:
    """One line for the files a reader skipped, or None: ``2 damaged files skipped: ...;
    run `balloonlab doctor```. Temporaries are not counted."""
    skipped = [p for p in problems if p.kind != TEMP]
    if not skipped:
        return None

    def name(p: FileProblem) -> str:
        try:
            return str(p.path.relative_to(results)) if results is not None else str(p.path)
        except ValueError:
            return str(p.path)

    kinds: dict[str, int] = {}
    for p in skipped:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    what = ", ".join(f"{n} {k}" for k, n in kinds.items())
    shown = ", ".join(f"{name(p)} ({p.reason})" for p in skipped[:3])
    more = f" and {len(skipped) - 3} more" if len(skipped) > 3 else ""
    s = "s" if len(skipped) != 1 else ""
    return (
        f"{len(skipped)} damaged or stray file{s} skipped ({what}): {shown}{more}; "
        "run `balloonlab doctor`"
    )


def _sweep_names(results: Path) -> list[str]:
    names: set[str] = set()
    for table in TABLES:
        d = results / table
        if d.is_dir():
            names |= {
                p.name[len("sweep=") :]
                for p in d.iterdir()
                if p.is_dir() and p.name.startswith("sweep=")
            }
    return sorted(names)


def diagnose(results: Path | str) -> list[FileProblem]:
    """Every problem of a results directory: each sweep's damaged, stray, orphaned and
    temporary files (``scan_sweep``), and files under runs/ or ticks/ outside any
    ``sweep=<name>`` directory (stray)."""
    root = Path(results)
    problems: list[FileProblem] = []
    for table in TABLES:
        d = root / table
        if not d.is_dir():
            continue
        for entry in sorted(d.iterdir()):
            if entry.is_dir() and entry.name.startswith("sweep="):
                continue
            files = (
                [entry] if entry.is_file() else sorted(p for p in entry.rglob("*") if p.is_file())
            )
            problems += [
                FileProblem(p, STRAY, "not inside a sweep=<name> directory") for p in files
            ]
    for sweep in _sweep_names(root):
        problems += scan_sweep(root, sweep).problems
    return problems


def quarantine(results: Path | str, path: Path) -> Path:
    """Move one file to ``<results>/quarantine/`` under its path relative to ``results``
    (never deleting: an existing file there is kept, the newcomer gets a ``.N`` suffix).
    Returns where it went."""
    root = Path(results)
    try:
        rel = path.relative_to(root)
    except ValueError:
        rel = Path(path.name)
    target = root / QUARANTINE / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    n = 0
    while True:
        candidate = target if n == 0 else target.with_name(f"{target.name}.{n}")
        try:  # a hard link fails if the name exists: no race can overwrite a quarantined file
            os.link(path, candidate)
        except FileExistsError:
            n += 1
            continue
        except OSError:  # no hard links here (another file system): check, then rename
            if candidate.exists():
                n += 1
                continue
            os.rename(path, candidate)
            return candidate
        path.unlink()
        return candidate


# ---- reading -----------------------------------------------------------------------------


def sweeps(results: Path | str) -> list[str]:
    """Names of the sweeps with a runs partition under ``results``."""
    d = Path(results) / RUNS
    if not d.is_dir():
        return []
    return sorted(
        p.name[len("sweep=") :] for p in d.iterdir() if p.name.startswith("sweep=") and p.is_dir()
    )


def stored_outcomes(results: Path | str, sweep: str) -> dict[str, str]:
    """run_id -> outcome of every stored run of a sweep: its summary file is sound and so is
    its ticks file (see ``scan_sweep``). A later file wins over an earlier one (a per-run
    file over a compacted part). Damaged and stray files are never counted."""
    return scan_sweep(results, sweep).outcomes


def stored_run_ids(results: Path | str, sweep: str) -> set[str]:
    """Ids of the runs stored and not failed: the ones a resumed sweep skips."""
    return {rid for rid, outcome in stored_outcomes(results, sweep).items() if outcome != FAILED}


def failed_run_ids(results: Path | str, sweep: str) -> set[str]:
    """Ids of the runs stored with outcome ``failed``: retried on the next run."""
    return {rid for rid, outcome in stored_outcomes(results, sweep).items() if outcome == FAILED}


def read_table(results: Path | str, table: str, sweep: str) -> pa.Table:
    """All rows of one table of a sweep's stored runs, one row set per run id (latest file
    wins). Damaged and stray files are skipped."""
    files = _files(results, table, sweep)
    if not files:
        return pa.table({})
    owner = _owners(files)
    try:
        parts = [_rows_owned(pq.read_table(p), owner, i) for i, p in enumerate(files)]
    except _READ_ERRORS as exc:
        raise StoreError(f"{sweep}/{table}: cannot read: {_first_line(exc)}") from None
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
    tmp = _temp_name(target)
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
    """Merge a sweep's sound files into one ``part-compact-<hash>.parquet`` per table,
    without losing a row; the merged file replaces the sources atomically. Damaged and
    stray files are left where they are (for ``balloonlab doctor``). Holds the sweep's
    lock: refused (SweepLocked) while another driver runs the sweep."""
    if sweep not in sweeps(results):
        raise FileNotFoundError(f"no sweep {sweep!r} under {results}")
    from store import sweep_lock  # a driver rewriting the sweep meanwhile would race us

    with sweep_lock.hold(results, sweep):
        try:
            return [_compact_table(results, table, sweep) for table in TABLES]
        except _READ_ERRORS as exc:  # a file damaged since it was checked: one line
            raise StoreError(f"{sweep}: compaction stopped: {_first_line(exc)}") from None


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
        if not compacted_only:
            for rid in drop:
                run_file(results, table, sweep, rid).unlink(missing_ok=True)
        for path in _files(results, table, sweep):
            if not path.name.startswith(COMPACT_PREFIX):
                continue
            data = pq.read_table(path)
            keep = pc.invert(pc.is_in(data.column("run_id"), pa.array(sorted(drop), pa.string())))
            if pc.all(keep).as_py():
                continue
            _atomic_write(data.filter(keep), path)
