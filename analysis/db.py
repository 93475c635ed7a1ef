"""DuckDB over the Parquet store: views, named queries, and one-line errors.

``connect(results)`` opens an in-memory DuckDB whose views read the store in place::

    runs            one row per stored run (every sweep): config columns with dotted
                    names ("hypervisor.policy"), outcome, totals; plus sweep, run_id
    completed_runs  runs whose outcome is not `failed` (ok, guest_oom, deadlock)
    ticks           the per-tick rows of every run (vm = -1 is the host's row)
    ticks_host      ticks of the host rows only (vm = -1)
    ticks_vm        ticks of the guest rows only (vm >= 0)
    sweeps          per sweep: runs, how many ok / failed / guest_oom / deadlock

Files are read with ``hive_partitioning`` (the ``sweep=<name>`` directories) and
``union_by_name`` (sweeps and run modes have different columns). Should a compaction have
crashed between writing its merged part and deleting its sources, a run is in two files;
the views then keep the copy the store itself treats as current (a per-run file over a
compacted part), so no run is counted twice.

Named queries are the ``*.sql`` files beside this module. A file starts with comment lines:
the first is its description, and ``-- param: name = default`` lines declare the
``$name`` parameters it takes.
"""

from __future__ import annotations

import importlib.resources
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from harness.errors import UserError

RUNS_DIR = "runs"
TICKS_DIR = "ticks"
COMPACT_PREFIX = "part-compact-"  # the store's merged parts (harness/store.py)
VIEWS = ("runs", "completed_runs", "ticks", "ticks_host", "ticks_vm", "sweeps")

# Columns of the `ticks` view when no run stored any per-tick rows (replay and lock runs
# have none), so that queries over it still bind and return nothing.
_EMPTY_TICKS = (
    "SELECT NULL::VARCHAR AS sweep, NULL::VARCHAR AS run_id, NULL::BIGINT AS tick, "
    "NULL::BIGINT AS vm, NULL::DOUBLE AS time_s WHERE false"
)


class StoreError(UserError):
    """The results directory is missing or holds no runs."""


class QueryError(UserError):
    """DuckDB refused a query; the message is its first line (plus any hint)."""


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of one query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts keyed by column name."""
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


@dataclass(frozen=True)
class NamedQuery:
    """A ``.sql`` file of this package: its name (file stem), description and parameters."""

    name: str
    description: str
    sql: str
    params: dict[str, str] = field(default_factory=dict)  # name -> default value


# ---- the store -----------------------------------------------------------------------------


def _parquet_files(directory: Path) -> list[Path]:
    """Visible Parquet files under a table directory (temporaries start with a dot)."""
    if not directory.is_dir():
        return []
    return [p for p in directory.glob("sweep=*/*.parquet") if not p.name.startswith(".")]


def _may_hold_duplicates(files: list[Path]) -> bool:
    """True when some sweep has a compacted part beside other files: only then can a run
    be stored twice (a compaction that crashed before removing its sources)."""
    by_sweep: dict[Path, list[Path]] = {}
    for path in files:
        by_sweep.setdefault(path.parent, []).append(path)
    return any(
        len(group) > 1 and any(p.name.startswith(COMPACT_PREFIX) for p in group)
        for group in by_sweep.values()
    )


def _sql_string(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_view(directory: Path, files: list[Path]) -> str:
    """SELECT over one table's files; deduplicated by run when a run may be in two files."""
    glob = _sql_string(str(directory / "sweep=*" / "*.parquet"))
    source = f"read_parquet({glob}, hive_partitioning=true, union_by_name=true"
    if not _may_hold_duplicates(files):
        return f"SELECT * FROM {source})"
    # The store's rule: the latest file holding a run wins, per-run files after compacted
    # parts, each group in name order. Keep every row of that file for the run.
    is_part = f"contains(filename, '/{COMPACT_PREFIX}')"
    return (
        f"SELECT * EXCLUDE (filename) FROM {source}, filename=true) "
        f"QUALIFY filename = first_value(filename) OVER ("
        f"PARTITION BY sweep, run_id ORDER BY {is_part} ASC, filename DESC)"
    )


def connect(results: Path | str) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the store's views (see the module docstring). Raises
    StoreError when ``results`` does not exist or holds no stored run."""
    root = Path(results)
    if not root.is_dir():
        raise StoreError(f"{root}: no such results directory (see --results)")
    run_files = _parquet_files(root / RUNS_DIR)
    if not run_files:
        raise StoreError(
            f"{root}: no stored runs here; run a sweep first, e.g. "
            f"`balloonlab run smoke --results {root}`"
        )
    tick_files = _parquet_files(root / TICKS_DIR)
    con = duckdb.connect(":memory:")
    con.execute(f"CREATE VIEW runs AS {_table_view(root / RUNS_DIR, run_files)}")
    con.execute("CREATE VIEW completed_runs AS SELECT * FROM runs WHERE outcome <> 'failed'")
    ticks = _table_view(root / TICKS_DIR, tick_files) if tick_files else _EMPTY_TICKS
    con.execute(f"CREATE VIEW ticks AS {ticks}")
    con.execute("CREATE VIEW ticks_host AS SELECT * FROM ticks WHERE vm = -1")
    con.execute("CREATE VIEW ticks_vm AS SELECT * FROM ticks WHERE vm >= 0")
    con.execute(
        "CREATE VIEW sweeps AS SELECT sweep, count(*) AS runs, "
        "count(*) FILTER (WHERE outcome = 'ok') AS ok, "
        "count(*) FILTER (WHERE outcome = 'failed') AS failed, "
        "count(*) FILTER (WHERE outcome = 'guest_oom') AS guest_oom, "
        "count(*) FILTER (WHERE outcome = 'deadlock') AS deadlock "
        "FROM runs GROUP BY sweep ORDER BY sweep"
    )
    return con


# ---- queries -------------------------------------------------------------------------------


def _one_line(exc: Exception) -> str:
    """DuckDB's message is several lines (the error, a hint, the SQL with a caret): keep
    the error and any hint."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    keep = [lines[0]] if lines else [type(exc).__name__]
    keep += [line for line in lines[1:] if line.startswith(("Candidate", "Did you mean", "HINT"))]
    return " ".join(keep)


def _plain(value: Any) -> Any:
    """NaN and infinities become None, so JSON and CSV output stay standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_sql(
    con: duckdb.DuckDBPyConnection, sql: str, params: Mapping[str, Any] | None = None
) -> QueryResult:
    """Run SQL (the last statement's rows are returned). Raises QueryError in one line."""
    if not sql.strip():
        raise QueryError("empty query")
    try:
        cursor = con.execute(sql, dict(params)) if params else con.execute(sql)
        if cursor.description is None:
            return QueryResult([], [])
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    return QueryResult(columns, rows)


def query(results: Path | str, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
    """Open the store at ``results`` and run one query over its views."""
    con = connect(results)
    try:
        return run_sql(con, sql, params)
    finally:
        con.close()


# ---- named queries -------------------------------------------------------------------------

_PARAM_RE = re.compile(r"^--\s*param:\s*([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _parse_named(name: str, text: str) -> NamedQuery:
    description = ""
    params: dict[str, str] = {}
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            if stripped:
                break  # the header ends at the first SQL line
            continue
        match = _PARAM_RE.match(stripped)
        if match:
            params[match.group(1)] = match.group(2)
        elif not description:
            description = stripped.lstrip("-").strip()
    return NamedQuery(name=name, description=description, sql=text, params=params)


def named_queries() -> dict[str, NamedQuery]:
    """Every ``.sql`` file shipped in the ``analysis`` package, by name, sorted."""
    out: dict[str, NamedQuery] = {}
    for entry in importlib.resources.files("analysis").iterdir():
        if entry.name.endswith(".sql") and entry.is_file():
            name = entry.name.removesuffix(".sql")
            out[name] = _parse_named(name, entry.read_text(encoding="utf-8"))
    return dict(sorted(out.items()))


def is_named_query(text: str) -> bool:
    """Whether ``text`` is the name of a shipped query (rather than SQL)."""
    return bool(_NAME_RE.match(text.strip())) and text.strip() in named_queries()


def load_query(name: str) -> NamedQuery:
    """A shipped query by name. Raises QueryError naming the known ones."""
    queries = named_queries()
    if name not in queries:
        raise QueryError(f"{name}: no such named query ({', '.join(queries) or 'none'})")
    return queries[name]


def run_named(
    con: duckdb.DuckDBPyConnection, name: str, params: Mapping[str, Any] | None = None
) -> QueryResult:
    """Run a named query; ``params`` override its declared defaults. Unknown parameters
    are refused, naming the ones it takes."""
    named = load_query(name)
    given = dict(params or {})
    unknown = sorted(set(given) - set(named.params))
    if unknown:
        takes = ", ".join(named.params) or "none"
        raise QueryError(f"{name}: unknown parameter {unknown[0]!r} (it takes: {takes})")
    values = named.params | given
    return run_sql(con, named.sql, values or None)


def records(result: QueryResult) -> list[dict[str, Any]]:
    """Rows as dicts with NaN and infinities as None (what figures and checks take)."""
    return [{k: _plain(v) for k, v in row.items()} for row in result.records()]
