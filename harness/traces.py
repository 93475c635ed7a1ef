"""Page-reference trace files: read them into arrays, write the oracleGeneral format.

Formats (chosen by suffix, or by name with ``fmt``):

- ``csv``, ``parquet``: a column ``page`` (non-negative integers) and optionally a write
  flag: a column ``write`` (0/1 or true/false), or an op column ``op``/``type`` (``R``/``W``,
  ``read``/``write``, ``get``/``set``). Block requests instead of pages: columns ``offset``
  and ``size`` in bytes, split into the pages they span (see ``split_bytes``).
  Optional: a time column (``time``/``timestamp``, seconds unless told) and a page-kind
  column (``file``/``anon`` or 1/0).
- ``msr``: an MSR Cambridge block trace (SNIA IOTTA): headerless CSV rows
  ``Timestamp,Hostname,DiskNumber,Type,Offset,Size,ResponseTime`` with Windows filetime
  timestamps (100 ns units), ``Type`` Read/Write, offset and size in bytes. A ``.csv``
  whose first line looks like that is read as ``msr`` without being told.
- ``npy``: a 1-D NumPy array of page ids (memory-mapped, not read into memory).
- ``oracleGeneral``: the binary format of the cache-research community (libCacheSim):
  24-byte little-endian records ``u32 timestamp, u64 object id, u32 size, i64 next access``
  (the index of the object's next request, -1 if none). The object id is the page id; with
  ``split_bytes`` it is a byte offset and ``size`` the request's length. Timestamps: seconds.

A block request of ``size`` bytes at ``offset`` touches pages ``offset // split_bytes``
through ``(offset + max(size, 1) - 1) // split_bytes``: every page it spans, in order.

DAMON: :func:`read_damon_record` reads what ``damo record`` writes (``--output_type json``
or its default, the same JSON zlib-compressed).

Every problem with a file raises :class:`harness.errors.UserError` with one line that names
the file and what is wrong.
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.errors import UserError

TRACE_FORMATS = ("csv", "msr", "parquet", "npy", "oracleGeneral")

ORACLE_GENERAL_DTYPE = np.dtype(
    [("timestamp", "<u4"), ("obj_id", "<u8"), ("size", "<u4"), ("next_access", "<i8")]
)
assert ORACLE_GENERAL_DTYPE.itemsize == 24  # packed: no alignment padding

MSR_COLUMNS = ("Timestamp", "Hostname", "DiskNumber", "Type", "Offset", "Size", "ResponseTime")
DEFAULT_SPLIT_BYTES = 4096  # block traces: split into 4 KiB pages unless told otherwise

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npy": "npy"}
_COMPRESSED = (".zst", ".gz", ".xz", ".bz2", ".lz4")
_INT64_MAX = np.iinfo(np.int64).max
_WRITE_COLUMNS = ("write", "op", "type")  # looked for, in this order, when not named
_TIME_COLUMNS = ("time", "timestamp", "ts")
# Seconds per timestamp unit when not told: MSR counts Windows filetime (100 ns) ticks,
# libCacheSim's oracleGeneral whole seconds; a plain table, seconds.
_TIME_UNIT_S = {"msr": 1e-7, "oracleGeneral": 1.0, "csv": 1.0, "parquet": 1.0, "npy": 1.0}
_READ_WORDS = {"r", "read", "get", "0", "false"}
_WRITE_WORDS = {"w", "write", "set", "put", "1", "true"}


@dataclass(frozen=True)
class TraceData:
    """One trace, one row per page reference (block requests already split into pages).

    ``pages``: int64 page ids; ``writes``: uint8 0/1 or None (all reads); ``times_s``:
    float64 seconds since the first reference, or None; ``file_kind``: uint8 per reference
    (1 = file-backed) or None. ``block``: the trace was of byte requests (a disk's view)."""

    pages: np.ndarray
    writes: np.ndarray | None
    times_s: np.ndarray | None
    file_kind: np.ndarray | None
    fmt: str
    block: bool
    requests: int  # rows of the file (before splitting)


def _head(path: Path) -> str:
    try:
        with path.open("rb") as f:
            return f.readline(4096).decode("utf-8", "replace").strip()
    except OSError:
        return ""


def _msr_header(line: str) -> bool:
    """Whether ``line`` is MSR Cambridge's column names (some copies carry them)."""
    names = [f.strip().lower() for f in line.split(",")]
    return names == [c.lower() for c in MSR_COLUMNS]


def _looks_like_msr(path: Path) -> bool:
    """Whether the first line is an MSR Cambridge row (7 fields, Type Read/Write) or its
    header."""
    line = _head(path)
    fields = line.split(",")
    return _msr_header(line) or (
        len(fields) == len(MSR_COLUMNS)
        and fields[0].strip().isdigit()
        and fields[3].strip().lower() in ("read", "write")
    )


def trace_format(path: str | Path, fmt: str | None = None) -> str:
    """The format of ``path``: ``fmt`` if given (case-insensitive), else from the suffix
    (a ``.csv`` whose first line is an MSR Cambridge row is ``msr``)."""
    path = Path(path)
    if fmt is not None:
        for known in TRACE_FORMATS:
            if fmt.lower() == known.lower():
                return known
        raise UserError(f"unknown trace format '{fmt}' (known: {', '.join(TRACE_FORMATS)})")
    suffix = path.suffix.lower()
    if suffix in _COMPRESSED:
        raise UserError(f"{path}: compressed trace; decompress it first (e.g. zstd -d)")
    if suffix in _SUFFIXES:
        kind = _SUFFIXES[suffix]
        return "msr" if kind == "csv" and _looks_like_msr(path) else kind
    if ".oraclegeneral" in path.name.lower():  # libCacheSim names: x.oracleGeneral[.bin]
        return "oracleGeneral"
    raise UserError(
        f"{path}: unknown trace format '{path.suffix or path.name}' "
        f"(use .csv, .parquet, .npy or .oracleGeneral, or give --format)"
    )


def load_trace(
    path: str | Path, fmt: str | None = None, *, split_bytes: int | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a trace: page ids (int64, non-negative) and writes (uint8 0/1) or None."""
    data = read_trace(path, fmt, split_bytes=split_bytes)
    return data.pages, data.writes


def _check_file(path: Path) -> None:
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a trace file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty trace (the file is empty)")


def read_trace(
    path: str | Path,
    fmt: str | None = None,
    *,
    page_column: str = "page",
    write_column: str | None = None,
    time_column: str | None = None,
    kind_column: str | None = None,
    split_bytes: int | None = None,
    time_unit_s: float | None = None,
) -> TraceData:
    """Read a trace into a :class:`TraceData`. Columns apply to csv and parquet: ``None``
    looks for the usual names (write flag: write, op, type; time: time, timestamp, ts);
    a named column that is missing is an error. ``split_bytes``: page size that block
    requests are split into (default 4096 for block traces; for oracleGeneral, setting it
    reads object ids as byte offsets). ``time_unit_s``: seconds per timestamp unit."""
    path = Path(path)
    kind = trace_format(path, fmt)
    _check_file(path)
    if split_bytes is not None and split_bytes <= 0:
        raise UserError(f"page split must be > 0 bytes, got {split_bytes}")
    cols: dict[str, np.ndarray] = {}
    if kind in ("csv", "parquet", "msr"):
        cols = _read_table(path, kind, page_column, write_column, time_column, kind_column,
                           split_bytes)  # fmt: skip
    elif kind == "npy":
        cols = {"page": _read_npy(path)}
    else:
        cols = _read_oracle_general(path, split_bytes is not None)
    block = "offset" in cols
    if block:
        offsets, sizes = cols.pop("offset"), cols.pop("size")
        requests = offsets.size
        first, counts = _split_counts(path, offsets, sizes, split_bytes or DEFAULT_SPLIT_BYTES)
        cols = {k: np.repeat(v, counts) for k, v in cols.items()}
        cols["page"] = split_pages(first, counts)
    requests = requests if block else cols["page"].size
    pages = cols["page"]
    if pages.size == 0:
        raise UserError(f"{path}: empty trace (no references)")
    negative = np.flatnonzero(pages < 0)
    if negative.size:
        i = int(negative[0])
        raise UserError(f"{path}: negative page id {int(pages[i])} at reference {i}")
    times = cols.get("time")
    if times is not None:
        unit = _TIME_UNIT_S[kind] if time_unit_s is None else time_unit_s
        times = _relative_seconds(path, times, unit)
    return TraceData(pages, cols.get("write"), times, cols.get("kind"), kind, block, requests)


def split_pages(first: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Pages ``first[i], first[i] + 1, ..., first[i] + counts[i] - 1`` for each request,
    concatenated in request order (vectorized: no Python step per request)."""
    total = int(counts.sum())
    starts = np.cumsum(counts) - counts  # where each request's pages begin in the output
    return np.repeat(first - starts, counts) + np.arange(total, dtype=np.int64)


def _split_counts(
    path: Path, offsets: np.ndarray, sizes: np.ndarray, split_bytes: int
) -> tuple[np.ndarray, np.ndarray]:
    """First page and number of pages of each request of ``sizes`` bytes at ``offsets``:
    a request touches every page it spans; a zero-length one the page at its offset."""
    if offsets.size and offsets.min() < 0:
        i = int(np.flatnonzero(offsets < 0)[0])
        raise UserError(f"{path}: negative offset {int(offsets[i])} at request {i}")
    if sizes.size and sizes.min() < 0:
        i = int(np.flatnonzero(sizes < 0)[0])
        raise UserError(f"{path}: negative size {int(sizes[i])} at request {i}")
    first = offsets // split_bytes
    last = (offsets + np.maximum(sizes, 1) - 1) // split_bytes
    return first, last - first + 1


def _relative_seconds(path: Path, times: np.ndarray, unit: float) -> np.ndarray:
    """Timestamps -> float64 seconds since the first; they must not go back."""
    t = times.astype(np.float64)
    back = np.flatnonzero(np.diff(t) < 0)
    if back.size:
        i = int(back[0]) + 1
        raise UserError(f"{path}: timestamps go back at reference {i} ({t[i - 1]:g} -> {t[i]:g})")
    per_second = 1.0 / unit
    if unit < 1 and abs(per_second - round(per_second)) < 1e-6:
        # Divide by a whole number of ticks per second (1e7 for MSR's 100 ns): exact
        # where multiplying by 1e-7 would put a 100 ms step a hair under 100 ms.
        return (t - t[0]) / round(per_second)
    return (t - t[0]) * unit


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _to_page_ids(path: Path, values: np.ndarray, what: str) -> np.ndarray:
    """Integer ids -> int64, refusing floats, booleans and ids beyond int64."""
    if values.dtype.kind == "u":
        if values.size and values.max() > _INT64_MAX:
            raise UserError(f"{path}: {what} {int(values.max())} is too large (max 2^63-1)")
    elif values.dtype.kind != "i":
        raise UserError(f"{path}: {what}s must be integers, found {values.dtype}")
    return values.astype(np.int64, copy=False)


def _find_column(names: list[str], wanted: str | None, candidates: tuple[str, ...]) -> str | None:
    """The column named ``wanted`` (exact, then case-insensitive), else the first of
    ``candidates`` present (case-insensitive); None if there is none."""
    lower = {n.lower(): n for n in names}
    if wanted:
        return wanted if wanted in names else lower.get(wanted.lower())
    return next((lower[c] for c in candidates if c in lower), None)


def _read_raw_table(path: Path, kind: str):
    import pyarrow as pa

    try:
        if kind == "msr":
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(
                path,
                read_options=pcsv.ReadOptions(
                    column_names=list(MSR_COLUMNS), skip_rows=int(_msr_header(_head(path)))
                ),
                convert_options=pcsv.ConvertOptions(
                    column_types={
                        "Offset": pa.int64(),
                        "Size": pa.int64(),
                        "Timestamp": pa.int64(),
                        "Type": pa.string(),
                    },  # fmt: skip
                    include_columns=["Timestamp", "Type", "Offset", "Size"],
                ),
            )
        elif kind == "csv":
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(path)
        else:
            import pyarrow.parquet as pq

            table = pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path}: cannot read {kind}: {_first_line(exc)}") from None
    return table


def _int_column(path: Path, table, name: str, what: str = "") -> np.ndarray:
    import pyarrow as pa

    col = table.column(name)
    if col.null_count:
        raise UserError(f"{path}: column '{name}' has {col.null_count} empty values")
    if not pa.types.is_integer(col.type):
        raise UserError(f"{path}: column '{name}' must hold integers, found {col.type}")
    return _to_page_ids(path, col.to_numpy(), what or f"value of column '{name}'")


def _flag_column(path: Path, table, name: str, zero: set[str], one: set[str], what: str):
    """A 0/1 column from integers 0/1, booleans, or words (case-insensitive)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = table.column(name)
    if col.null_count:
        raise UserError(f"{path}: column '{name}' has {col.null_count} empty values")
    if pa.types.is_boolean(col.type):
        return pc.cast(col, pa.uint8()).to_numpy()
    if pa.types.is_integer(col.type):
        values = col.to_numpy()
        bad = np.flatnonzero((values != 0) & (values != 1))
        if bad.size:
            i = int(bad[0])
            raise UserError(f"{path}: column '{name}' must hold 0/1, found {values[i]} at row {i}")
        return values.astype(np.uint8)
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        words = pc.utf8_lower(pc.utf8_trim_whitespace(col))
        is_one = pc.is_in(words, value_set=pa.array(sorted(one))).to_numpy(zero_copy_only=False)
        is_zero = pc.is_in(words, value_set=pa.array(sorted(zero))).to_numpy(zero_copy_only=False)
        bad = np.flatnonzero(~(is_one | is_zero))
        if bad.size:
            i = int(bad[0])
            raise UserError(
                f"{path}: column '{name}' must hold {what}, found {col[i].as_py()!r} at row {i}"
            )
        return is_one.astype(np.uint8)
    raise UserError(f"{path}: column '{name}' must hold {what}, found {col.type}")


def _read_table(
    path: Path,
    kind: str,
    page_column: str,
    write_column: str | None,
    time_column: str | None,
    kind_column: str | None,
    split_bytes: int | None,
) -> dict[str, np.ndarray]:
    table = _read_raw_table(path, kind)
    if table.num_rows == 0:
        raise UserError(f"{path}: empty trace (no rows)")
    names = table.column_names
    found = ", ".join(names) or "none"
    out: dict[str, np.ndarray] = {}
    offset = _find_column(names, None, ("offset",))
    size = _find_column(names, None, ("size",))
    page = page_column if page_column in names else None
    if kind == "msr" or (offset and size and (split_bytes is not None or page is None)):
        out["offset"] = _int_column(path, table, offset, "offset")
        out["size"] = _int_column(path, table, size, "size")
    elif page is None:
        raise UserError(f"{path}: no '{page_column}' column (columns: {found})")
    elif split_bytes is not None:
        raise UserError(
            f"{path}: splitting requests into pages needs columns 'offset' and 'size' "
            f"in bytes (columns: {found})"
        )
    else:
        out["page"] = _int_column(path, table, page, "page id")
        if out["page"].size == 0:
            raise UserError(f"{path}: empty trace (no rows)")
    for key, wanted, candidates, zero, one, what in (
        ("write", write_column, _WRITE_COLUMNS, _READ_WORDS, _WRITE_WORDS, "0/1 or R/W"),
        ("kind", kind_column, (), {"anon", "anonymous", "0", "false"},
         {"file", "1", "true"}, "file/anon or 1/0"),
    ):  # fmt: skip
        name = _find_column(names, wanted, candidates)
        if wanted and name is None:
            raise UserError(f"{path}: no '{wanted}' column (columns: {found})")
        if name is not None:
            out[key] = _flag_column(path, table, name, zero, one, what)
    name = _find_column(names, time_column, _TIME_COLUMNS)
    if time_column and name is None:
        raise UserError(f"{path}: no '{time_column}' column (columns: {found})")
    if name is not None:
        import pyarrow as pa

        col = table.column(name)
        if col.null_count or not (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
            raise UserError(f"{path}: column '{name}' must hold numeric timestamps")
        out["time"] = col.to_numpy()
    return out


def _read_npy(path: Path) -> np.ndarray:
    try:
        # Memory-mapped: a long trace is paged in as it is used, and shared between the
        # processes of one machine through the page cache.
        values = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy file: {_first_line(exc)}") from None
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        shape = getattr(values, "shape", "?")
        raise UserError(f"{path}: a .npy trace must be a 1-D array of page ids, got shape {shape}")
    return _to_page_ids(path, values, "page id")


def _read_oracle_general(path: Path, split: bool) -> dict[str, np.ndarray]:
    size = path.stat().st_size
    if size % ORACLE_GENERAL_DTYPE.itemsize:
        raise UserError(
            f"{path}: {size} bytes is not a whole number of 24-byte oracleGeneral records"
        )
    records = np.memmap(path, dtype=ORACLE_GENERAL_DTYPE, mode="r")
    ids = _to_page_ids(path, records["obj_id"], "object id")
    out = {"time": np.asarray(records["timestamp"])}
    if split:
        out |= {"offset": ids, "size": records["size"].astype(np.int64)}
    else:
        out["page"] = ids
    return out


def write_oracle_general(path: str | Path, pages: np.ndarray, *, page_bytes: int = 4096) -> None:
    """Write page ids as an oracleGeneral trace: timestamp = reference index, size =
    ``page_bytes``, next access = index of the page's next reference (-1 if none)."""
    pages = np.asarray(pages)
    if pages.ndim != 1 or (pages.size and pages.dtype.kind not in "iu"):
        raise ValueError("pages must be a 1-D array of integer page ids")
    if pages.size and pages.min() < 0:
        raise ValueError("page ids must be non-negative")
    n = pages.size
    records = np.zeros(n, dtype=ORACLE_GENERAL_DTYPE)
    records["timestamp"] = np.arange(n, dtype=np.uint64).astype(np.uint32)  # wraps, like u32
    records["obj_id"] = pages
    records["size"] = page_bytes
    # Next use: sort the references by page (stably, so by time within a page); each
    # reference's successor in that order is the same page's next reference.
    order = np.argsort(pages, kind="stable")
    same = pages[order[1:]] == pages[order[:-1]]
    next_access = np.full(n, -1, np.int64)
    next_access[order[:-1][same]] = order[1:][same]
    records["next_access"] = next_access
    records.tofile(Path(path))


# --------------------------------------------------------------------------------------
# One read per process: a worker that runs many VMs (or many runs) on one trace reads it
# once. Keyed by the file's identity (path, mtime, size) and how it is read, so an edited
# file is read again.
# --------------------------------------------------------------------------------------

_CACHE: dict[tuple, Any] = {}
_CACHE_LIMIT = 8  # traces kept per process; the oldest goes first


def file_key(path: str | Path) -> tuple:
    """(absolute path, mtime_ns, size) of an existing file; UserError if it is not one."""
    path = Path(path)
    try:
        st = path.stat()
    except OSError:
        raise UserError(f"{path}: no such file") from None
    return (os.path.abspath(path), st.st_mtime_ns, st.st_size)


def cached(key: tuple, build):
    """``build()`` once per ``key`` in this process (a small LRU)."""
    if key in _CACHE:
        _CACHE[key] = _CACHE.pop(key)  # most recently used last
        return _CACHE[key]
    value = build()
    _CACHE[key] = value
    while len(_CACHE) > _CACHE_LIMIT:
        _CACHE.pop(next(iter(_CACHE)))
    return value


def cached_trace(path: str | Path, fmt: str | None = None, **options: Any) -> TraceData:
    """:func:`read_trace`, once per process for each file version and options."""
    key = ("trace", *file_key(path), fmt, tuple(sorted(options.items())))
    return cached(key, lambda: read_trace(path, fmt, **options))


# --------------------------------------------------------------------------------------
# DAMON records (damo record)
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DamonSnapshot:
    """One aggregation interval of a DAMON record: its time span (ns, as recorded) and its
    regions ``[start, end)`` (bytes) with ``nr_accesses`` (samples in which the region was
    found accessed) and ``age`` (aggregation intervals its access pattern has held)."""

    start_ns: float
    end_ns: float
    starts: np.ndarray  # int64
    ends: np.ndarray  # int64
    nr_accesses: np.ndarray  # float64
    age: np.ndarray  # float64


def _number(value: Any, keys: tuple[str, ...]) -> float | None:
    """A damo number: plain, a numeric string, or a dict of units (the first key present)."""
    if isinstance(value, dict):
        for k in keys:
            if value.get(k) is not None:
                return _number(value[k], ())
        return None
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.replace(",", ""))
        except ValueError:
            return None
    return None


def read_damon_record(path: str | Path) -> list[DamonSnapshot]:
    """The snapshots of a damo record file, in time order. ``damo record`` writes a JSON
    list of records, one per monitoring target, each ``{"intervals": {...}, "target_id":
    ..., "snapshots": [{"start_time": ns, "end_time": ns, "regions": [{"start": addr,
    "end": addr, "nr_accesses": {"samples": n, "percent": p}, "age": {"usec": u,
    "aggr_intervals": a}}]}]}`` (older versions: plain numbers for nr_accesses and age),
    zlib-compressed unless ``--output_type json``. Every target's regions are merged into
    one address space per snapshot index (a VM is one target in the usual use)."""
    path = Path(path)
    _check_file(path)
    raw = path.read_bytes()
    try:
        raw = zlib.decompress(raw)
    except zlib.error:
        pass  # plain JSON
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise UserError(
            f"{path}: not a damo record (neither JSON nor zlib-compressed JSON; "
            "write it with `damo record --output_type json` or damo's default)"
        ) from None
    if isinstance(data, dict) and "damo_records" in data:
        data = data["damo_records"]
    if isinstance(data, dict):
        data = data.get("records", [data])
    if not isinstance(data, list) or not data:
        raise UserError(f"{path}: not a damo record (expected a JSON list of records)")
    merged: dict[int, list] = {}
    for r, record in enumerate(data):
        if not isinstance(record, dict) or not isinstance(record.get("snapshots"), list):
            raise UserError(f"{path}: not a damo record (record {r} has no 'snapshots' list)")
        for s, snap in enumerate(record["snapshots"]):
            where = f"record {r} snapshot {s}"
            if not isinstance(snap, dict) or not isinstance(snap.get("regions"), list):
                raise UserError(f"{path}: not a damo record ({where} has no 'regions' list)")
            t0 = _number(snap.get("start_time"), ())
            t1 = _number(snap.get("end_time"), ())
            if t0 is None or t1 is None:
                raise UserError(f"{path}: {where}: missing start_time or end_time")
            rows = []
            for g, region in enumerate(snap["regions"]):
                if not isinstance(region, dict):
                    raise UserError(f"{path}: {where} region {g}: not a table")
                lo = _number(region.get("start"), ())
                hi = _number(region.get("end"), ())
                nr = _number(region.get("nr_accesses"), ("samples", "percent"))
                age = _number(region.get("age"), ("aggr_intervals", "usec"))
                if lo is None or hi is None or nr is None:
                    raise UserError(f"{path}: {where} region {g}: needs start, end and nr_accesses")
                if hi <= lo or lo < 0 or nr < 0:
                    raise UserError(
                        f"{path}: {where} region {g}: bad region [{lo:.0f}, {hi:.0f}) "
                        f"with nr_accesses {nr:g}"
                    )
                rows.append((lo, hi, nr, age or 0.0))
            merged.setdefault(s, []).append((t0, t1, rows))
    snapshots = []
    for s in sorted(merged):
        parts = merged[s]
        rows = [row for _, _, rs in parts for row in rs]
        if not rows:
            continue
        arr = np.array(rows, np.float64)
        snapshots.append(
            DamonSnapshot(
                min(p[0] for p in parts), max(p[1] for p in parts),
                arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2], arr[:, 3],
            )
        )  # fmt: skip
    if not snapshots:
        raise UserError(f"{path}: damo record without any region")
    snapshots.sort(key=lambda sn: sn.start_ns)
    return snapshots


def cached_damon_record(path: str | Path) -> list[DamonSnapshot]:
    """:func:`read_damon_record`, once per process for each file version."""
    return cached(("damon", *file_key(path)), lambda: read_damon_record(path))


_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1000, "kib": 1 << 10, "m": 1 << 20,
               "mb": 1000**2, "mib": 1 << 20, "g": 1 << 30, "gb": 1000**3, "gib": 1 << 30,
               "t": 1 << 40, "tb": 1000**4, "tib": 1 << 40}  # fmt: skip


def parse_size(text: str, what: str = "size") -> int:
    """Bytes in a memory size: ``64MiB``, ``1.5GiB``, ``512k``, ``4096`` (bytes)."""
    s = text.strip().lower().replace(" ", "")
    digits = len(s) - len(s.lstrip("0123456789."))
    number, unit = s[:digits], s[digits:]
    try:
        value = float(number) * _SIZE_UNITS[unit]
    except (ValueError, KeyError):
        raise UserError(f"{what} {text!r}: not a memory size (e.g. 64MiB, 1GiB, 4096)") from None
    if value <= 0:
        raise UserError(f"{what} {text!r}: must be > 0")
    return int(value)
