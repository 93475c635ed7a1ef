"""DuckDB over the Parquet store: views, named queries, and one-line errors.

``connect(results)`` opens an in-memory DuckDB whose views read the store in place::

    runs            one row per stored run (every sweep): config columns with dotted
                    names ("hypervisor.policy"), outcome, totals; plus sweep, run_id
    completed_runs  runs whose outcome is not `failed` (ok, guest_oom, deadlock)
    ticks           the per-tick rows of every run (vm = -1 is the host's row)
    ticks_host      ticks of the host rows only (vm = -1)
    ticks_vm        ticks of the guest rows only (vm >= 0)
    sweeps          per sweep: runs, how many ok / failed / guest_oom / deadlock

Only files that pass the store's integrity check are read (``store.parquet.scan_sweep``:
footer, schema, run id); the others are reported once and never counted, so one damaged
file never blocks the other sweeps. Sessions are read-only by default: only those files
can be opened, and only queries run (``check_read_only``).

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
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from analysis.errors import QueryError
from store import parquet
from store.errors import StoreError

RUNS_DIR = "runs"
TICKS_DIR = "ticks"
COMPACT_PREFIX = "part-compact-"  # the store's merged parts (store/parquet.py)
VIEWS = ("runs", "completed_runs", "ticks", "ticks_host", "ticks_vm", "sweeps")

# Columns of the `ticks` view when no run stored any per-tick rows (replay and lock runs
# have none), so that queries over it still bind and return nothing.
_EMPTY_TICKS = (
    "SELECT NULL::VARCHAR AS sweep, NULL::VARCHAR AS run_id, NULL::BIGINT AS tick, "
    "NULL::BIGINT AS vm, NULL::DOUBLE AS time_s WHERE false"
)


@dataclass(frozen=True)
class QueryResult:
    """Column names and rows of one query."""

    columns: list[str]
    rows: list[tuple[Any, ...]]
    total: int | None = None  # rows the query returned, when ``rows`` holds only the first

    @property
    def hidden(self) -> int:
        """Rows the query returned beyond ``rows`` (cut by a limit)."""
        return 0 if self.total is None else self.total - len(self.rows)

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


def _warn(note: str) -> None:
    print(f"note: {note}", file=sys.stderr)


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


def _table_view(files: list[Path]) -> str:
    """SELECT over an explicit list of checked files (never a glob: a damaged or stray
    file dropped in later is not read); deduplicated by run when a run may be in two."""
    listed = ", ".join(_sql_string(str(p)) for p in files)
    source = f"read_parquet([{listed}], hive_partitioning=true, union_by_name=true"
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


def _set_memory_limit(con: duckdb.DuckDBPyConnection, memory: int) -> None:
    con.execute(f"SET memory_limit = '{max(memory // 2**20, 64)}MiB'")


def _lock_down(con: duckdb.DuckDBPyConnection, files: list[Path]) -> None:
    """Only the store's checked files can be opened, nothing can be written outside the
    session, no extension installed, and the SQL cannot undo any of it."""
    allowed = ", ".join(_sql_string(str(p)) for p in files)
    con.execute(f"SET allowed_paths = [{allowed}]")
    con.execute("SET enable_external_access = false")
    con.execute("SET autoinstall_known_extensions = false")
    con.execute("SET autoload_known_extensions = false")
    con.execute("SET lock_configuration = true")


def connect(
    results: Path | str,
    *,
    read_only: bool = True,
    on_skip: Callable[[str], None] | None = _warn,
    memory_limit_bytes: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the store's views (see the module docstring) over the
    files that pass the store's integrity check (store.parquet.scan_sweep); the others
    are reported once through ``on_skip`` (one line) and never read. ``read_only``: the
    session can open only those files and write nowhere (see ``run_sql`` for statements).
    ``memory_limit_bytes``: DuckDB's memory limit (at least 64 MiB); None: its default.
    Raises StoreError (one line) when ``results`` does not exist or holds no stored run."""
    root = Path(results)
    if not root.is_dir():
        raise StoreError(f"{root}: no such results directory (see --results)")
    scans = [parquet.scan_sweep(root, name) for name in parquet.sweeps(root)]
    run_files = [p.absolute() for scan in scans for p in scan.files[RUNS_DIR]]
    tick_files = [p.absolute() for scan in scans for p in scan.files[TICKS_DIR]]
    note = parquet.skipped_note([p for scan in scans for p in scan.skipped], root)
    if note and on_skip is not None:
        on_skip(note)
    if not run_files:
        raise StoreError(
            f"{root}: no stored runs here; run a sweep first, e.g. "
            f"`balloonlab run smoke --results {root}`"
        )
    con = duckdb.connect(":memory:")
    try:
        # Every view binds over the same files: read each footer once, not once per view.
        con.execute("SET parquet_metadata_cache = true")
        con.execute(f"CREATE VIEW runs AS {_table_view(run_files)}")
        con.execute("CREATE VIEW completed_runs AS SELECT * FROM runs WHERE outcome <> 'failed'")
        ticks = _table_view(tick_files) if tick_files else _EMPTY_TICKS
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
        if memory_limit_bytes is not None:
            _set_memory_limit(con, memory_limit_bytes)
        if read_only:
            _lock_down(con, run_files + tick_files)
    except duckdb.Error as exc:  # one line: never the echoed CREATE VIEW
        con.close()
        raise StoreError(f"{root}: cannot read the store: {_one_line(exc, sql=False)}") from None
    return con


# ---- queries -------------------------------------------------------------------------------

# Statement types a read-only query may run (DESCRIBE, SHOW, SUMMARIZE, VALUES, FROM-first
# queries all parse as SELECT).
READ_ONLY_STATEMENTS = ("SELECT", "EXPLAIN")
DEFAULT_LIMIT = 10_000  # rows `balloonlab query` prints unless --limit says otherwise
_EXPLAIN_RE = re.compile(r"^\s*EXPLAIN(\s+ANALYZE)?\s+", re.IGNORECASE)


def _one_line(exc: Exception, *, sql: bool = True) -> str:
    """DuckDB's message is several lines (the error, a hint, the SQL with a caret): keep
    the error and any hint."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    keep = [lines[0]] if lines else [type(exc).__name__]
    keep += [line for line in lines[1:] if line.startswith(("Candidate", "Did you mean", "HINT"))]
    text = " ".join(keep)
    if not sql:  # a message that quotes the statement (a CREATE VIEW of ours): cut it off
        text = re.split(r"\s+(?:LINE \d+:|CREATE VIEW)", text, maxsplit=1)[0]
    return text[:500]


def check_read_only(sql: str) -> None:
    """Refuse any statement but a query (SELECT, or EXPLAIN of one): COPY, ATTACH,
    INSTALL, LOAD, EXPORT, IMPORT, CREATE, INSERT, UPDATE, DELETE, DROP, ALTER, PRAGMA,
    SET, CALL, ... need ``--allow-write``. Uses DuckDB's own parser, not keywords."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    for statement in statements:
        kind = statement.type.name
        if kind == "EXPLAIN":
            inner = _EXPLAIN_RE.sub("", statement.query, count=1)
            if inner != statement.query:
                check_read_only(inner)
                continue
        if kind not in READ_ONLY_STATEMENTS:
            raise QueryError(
                f"{kind} statement refused: queries are read-only (SELECT, DESCRIBE, "
                "SHOW, EXPLAIN); pass --allow-write to run it"
            )


def _plain(value: Any) -> Any:
    """NaN and infinities become None, so JSON and CSV output stay standard (inside the
    per-replicate lists of the figure queries too)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def run_sql(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    limit: int | None = None,
    read_only: bool = True,
) -> QueryResult:
    """Run SQL (the last statement's rows are returned). Raises QueryError in one line.
    ``limit``: keep at most this many rows; the rest are counted while streaming, never
    held (``QueryResult.total``). ``read_only``: see ``check_read_only``."""
    if not sql.strip():
        raise QueryError("empty query")
    if read_only:
        check_read_only(sql)
    try:
        cursor = con.execute(sql, dict(params)) if params else con.execute(sql)
        if cursor.description is None:
            return QueryResult([], [])
        columns = [d[0] for d in cursor.description]
        if limit is None:
            return QueryResult(columns, cursor.fetchall())
        rows = cursor.fetchmany(limit)
        total = len(rows)
        if total == limit:  # count the rest in batches: memory stays bounded
            while batch := cursor.fetchmany(100_000):
                total += len(batch)
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    return QueryResult(columns, rows, total)


def iter_sql(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    read_only: bool = True,
    batch: int = 10_000,
) -> tuple[list[str], Iterator[list[tuple[Any, ...]]]]:
    """Column names and an iterator over batches of rows: every row, streamed, never all
    in memory at once. Raises QueryError in one line."""
    if not sql.strip():
        raise QueryError("empty query")
    if read_only:
        check_read_only(sql)
    try:
        cursor = con.execute(sql, dict(params)) if params else con.execute(sql)
    except duckdb.Error as exc:
        raise QueryError(_one_line(exc)) from None
    if cursor.description is None:
        return [], iter(())
    columns = [d[0] for d in cursor.description]

    def batches() -> Iterator[list[tuple[Any, ...]]]:
        try:
            while rows := cursor.fetchmany(batch):
                yield rows
        except duckdb.Error as exc:
            raise QueryError(_one_line(exc)) from None

    return columns, batches()


def query(
    results: Path | str,
    sql: str,
    params: Mapping[str, Any] | None = None,
    *,
    memory_limit_bytes: int | None = None,
) -> QueryResult:
    """Open the store at ``results`` and run one query over its views."""
    con = connect(results, memory_limit_bytes=memory_limit_bytes)
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
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    limit: int | None = None,
) -> QueryResult:
    """Run a named query; ``params`` override its declared defaults. Unknown parameters
    are refused, naming the ones it takes."""
    sql, values = named_sql(name, params)
    return run_sql(con, sql, values, limit=limit)


def named_sql(
    name: str, params: Mapping[str, Any] | None = None
) -> tuple[str, dict[str, Any] | None]:
    """A named query's SQL and its parameter values: declared defaults, then ``params``.
    Unknown parameters are refused, naming the ones it takes."""
    named = load_query(name)
    given = dict(params or {})
    unknown = sorted(set(given) - set(named.params))
    if unknown:
        takes = ", ".join(named.params) or "none"
        raise QueryError(f"{name}: unknown parameter {unknown[0]!r} (it takes: {takes})")
    return named.sql, (named.params | given) or None


def records(result: QueryResult) -> list[dict[str, Any]]:
    """Rows as dicts with NaN and infinities as None (what figures and checks take)."""
    return [{k: _plain(v) for k, v in row.items()} for row in result.records()]
