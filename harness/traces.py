"""Page-reference trace files: read them into arrays, write the oracleGeneral format.

Formats (chosen by suffix, or by name with ``fmt``):

- ``csv``, ``parquet``: a column ``page`` (non-negative integers) and optionally ``write``
  (0/1 or true/false, one per reference).
- ``npy``: a 1-D NumPy array of page ids.
- ``oracleGeneral``: the binary format of the cache-research community (libCacheSim):
  24-byte little-endian records ``u32 timestamp, u64 object id, u32 size, i64 next access``
  (the index of the object's next request, -1 if none). The object id is the page id.

Every problem with a file raises :class:`harness.errors.UserError` with one line that names
the file and what is wrong.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from harness.errors import UserError

TRACE_FORMATS = ("csv", "parquet", "npy", "oracleGeneral")

ORACLE_GENERAL_DTYPE = np.dtype(
    [("timestamp", "<u4"), ("obj_id", "<u8"), ("size", "<u4"), ("next_access", "<i8")]
)
assert ORACLE_GENERAL_DTYPE.itemsize == 24  # packed: no alignment padding

_SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".npy": "npy"}
_COMPRESSED = (".zst", ".gz", ".xz", ".bz2", ".lz4")
_INT64_MAX = np.iinfo(np.int64).max


def trace_format(path: str | Path, fmt: str | None = None) -> str:
    """The format of ``path``: ``fmt`` if given (case-insensitive), else from the suffix."""
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
        return _SUFFIXES[suffix]
    if ".oraclegeneral" in path.name.lower():  # libCacheSim names: x.oracleGeneral[.bin]
        return "oracleGeneral"
    raise UserError(
        f"{path}: unknown trace format '{path.suffix or path.name}' "
        f"(use .csv, .parquet, .npy or .oracleGeneral, or give --format)"
    )


def load_trace(path: str | Path, fmt: str | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a trace: page ids (int64, non-negative) and writes (uint8 0/1) or None."""
    path = Path(path)
    kind = trace_format(path, fmt)
    if not path.exists():
        raise UserError(f"{path}: no such file")
    if path.is_dir():
        raise UserError(f"{path}: is a directory, not a trace file")
    if path.stat().st_size == 0:
        raise UserError(f"{path}: empty trace (the file is empty)")
    reader = {
        "csv": _read_table,
        "parquet": _read_table,
        "npy": _read_npy,
        "oracleGeneral": _read_oracle_general,
    }[kind]
    pages, writes = reader(path, kind)
    if pages.size == 0:
        raise UserError(f"{path}: empty trace (no references)")
    negative = np.flatnonzero(pages < 0)
    if negative.size:
        i = int(negative[0])
        raise UserError(f"{path}: negative page id {int(pages[i])} at reference {i}")
    return pages, writes


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


def _read_table(path: Path, kind: str) -> tuple[np.ndarray, np.ndarray | None]:
    import pyarrow as pa
    import pyarrow.compute as pc

    try:
        if kind == "csv":
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(path)
        else:
            import pyarrow.parquet as pq

            names = pq.read_schema(path).names
            table = pq.read_table(path, columns=[c for c in ("page", "write") if c in names])
    except (pa.ArrowException, OSError) as exc:
        raise UserError(f"{path}: cannot read {kind}: {_first_line(exc)}") from None
    if table.num_rows == 0:
        raise UserError(f"{path}: empty trace (no rows)")
    if "page" not in table.column_names:
        found = ", ".join(table.column_names) or "none"
        raise UserError(f"{path}: no 'page' column (columns: {found})")
    page_col = table.column("page")
    if page_col.null_count:
        raise UserError(f"{path}: column 'page' has {page_col.null_count} empty values")
    if not pa.types.is_integer(page_col.type):
        raise UserError(f"{path}: column 'page' must hold integers, found {page_col.type}")
    pages = _to_page_ids(path, page_col.to_numpy(), "page id")
    if "write" not in table.column_names:
        return pages, None
    write_col = table.column("write")
    if write_col.null_count:
        raise UserError(f"{path}: column 'write' has {write_col.null_count} empty values")
    if pa.types.is_boolean(write_col.type):
        write_col = pc.cast(write_col, pa.uint8())
    elif not pa.types.is_integer(write_col.type):
        raise UserError(f"{path}: column 'write' must hold 0/1, found {write_col.type}")
    writes = write_col.to_numpy()
    bad = np.flatnonzero((writes != 0) & (writes != 1))
    if bad.size:
        i = int(bad[0])
        raise UserError(f"{path}: column 'write' must hold 0/1, found {writes[i]} at row {i}")
    return pages, writes.astype(np.uint8)


def _read_npy(path: Path, kind: str) -> tuple[np.ndarray, None]:
    try:
        values = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise UserError(f"{path}: not a readable .npy file: {_first_line(exc)}") from None
    if not isinstance(values, np.ndarray) or values.ndim != 1:
        shape = getattr(values, "shape", "?")
        raise UserError(f"{path}: a .npy trace must be a 1-D array of page ids, got shape {shape}")
    return _to_page_ids(path, values, "page id"), None


def _read_oracle_general(path: Path, kind: str) -> tuple[np.ndarray, None]:
    size = path.stat().st_size
    if size % ORACLE_GENERAL_DTYPE.itemsize:
        raise UserError(
            f"{path}: {size} bytes is not a whole number of 24-byte oracleGeneral records"
        )
    records = np.fromfile(path, dtype=ORACLE_GENERAL_DTYPE)
    return _to_page_ids(path, records["obj_id"], "object id"), None


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
