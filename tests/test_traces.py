"""Trace readers: every format round-trips, every bad file is one clear UserError."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from harness.errors import UserError
from harness.traces import (
    ORACLE_GENERAL_DTYPE,
    load_trace,
    trace_format,
    write_oracle_general,
)

PAGES = np.array([3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9, 3, 2**40], dtype=np.int64)
WRITES = (np.arange(PAGES.size) % 3 == 0).astype(np.uint8)


def write_csv(path, columns: dict) -> None:
    pcsv.write_csv(pa.table(columns), path)


@pytest.mark.parametrize("with_writes", [False, True])
def test_csv_round_trip(tmp_path, with_writes):
    path = tmp_path / "t.csv"
    columns = {"page": PAGES} | ({"write": WRITES} if with_writes else {})
    write_csv(path, columns)
    pages, writes = load_trace(path)
    assert pages.dtype == np.int64
    np.testing.assert_array_equal(pages, PAGES)
    if with_writes:
        assert writes.dtype == np.uint8
        np.testing.assert_array_equal(writes, WRITES)
    else:
        assert writes is None


def test_csv_extra_columns_and_boolean_writes(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("time,page,write\n0,7,true\n1,8,false\n2,7,true\n")
    pages, writes = load_trace(path)
    assert pages.tolist() == [7, 8, 7]
    assert writes.tolist() == [1, 0, 1]


def test_parquet_round_trip(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"page": PAGES, "write": WRITES, "other": PAGES * 2}), path)
    pages, writes = load_trace(path)
    np.testing.assert_array_equal(pages, PAGES)
    np.testing.assert_array_equal(writes, WRITES)


def test_parquet_unsigned_and_narrow_ids(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"page": pa.array([1, 2, 65535], pa.uint16())}), path)
    pages, writes = load_trace(path)
    assert pages.dtype == np.int64 and pages.tolist() == [1, 2, 65535] and writes is None


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint64, np.uint8])
def test_npy_round_trip(tmp_path, dtype):
    path = tmp_path / "t.npy"
    values = PAGES[PAGES < 256] if dtype == np.uint8 else PAGES[PAGES < 2**31]
    np.save(path, values.astype(dtype))
    pages, writes = load_trace(path)
    assert pages.dtype == np.int64 and writes is None
    np.testing.assert_array_equal(pages, values)


def test_oracle_general_round_trip(tmp_path):
    path = tmp_path / "t.oracleGeneral"
    write_oracle_general(path, PAGES)
    assert path.stat().st_size == 24 * PAGES.size
    pages, writes = load_trace(path)
    np.testing.assert_array_equal(pages, PAGES)
    assert writes is None


def test_oracle_general_records_are_what_libcachesim_expects(tmp_path):
    path = tmp_path / "t.oracleGeneral"
    write_oracle_general(path, np.array([10, 20, 10, 30, 20, 10]))
    raw = path.read_bytes()
    # record 0, by hand: u32 timestamp 0, u64 id 10, u32 size 4096, i64 next access 2
    assert raw[:24] == (
        (0).to_bytes(4, "little")
        + (10).to_bytes(8, "little")
        + (4096).to_bytes(4, "little")
        + (2).to_bytes(8, "little", signed=True)
    )
    records = np.fromfile(path, dtype=ORACLE_GENERAL_DTYPE)
    assert records["timestamp"].tolist() == [0, 1, 2, 3, 4, 5]
    assert records["next_access"].tolist() == [2, 4, 5, -1, -1, -1]


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(0, 20), max_size=60))
def test_next_access_is_the_next_reference_to_the_same_page(pages):
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "t.oracleGeneral"
        write_oracle_general(path, np.array(pages, dtype=np.int64))
        records = np.fromfile(path, dtype=ORACLE_GENERAL_DTYPE)
    expected = [
        next((j for j in range(i + 1, len(pages)) if pages[j] == p), -1)
        for i, p in enumerate(pages)
    ]
    assert records["next_access"].tolist() == expected
    assert records["obj_id"].tolist() == pages


def test_format_by_suffix_or_by_name(tmp_path):
    assert trace_format("a.CSV") == "csv"
    assert trace_format("a.pq") == "parquet"
    assert trace_format("w106.oracleGeneral.bin") == "oracleGeneral"
    assert trace_format("anything.dat", "oraclegeneral") == "oracleGeneral"
    path = tmp_path / "trace.bin"
    write_oracle_general(path, PAGES)
    np.testing.assert_array_equal(load_trace(path, fmt="oracleGeneral")[0], PAGES)
    np.save(tmp_path / "x.npy", PAGES)
    (tmp_path / "x.npy").rename(tmp_path / "x.data")
    np.testing.assert_array_equal(load_trace(tmp_path / "x.data", "npy")[0], PAGES)


# ---- bad input: one line naming the problem ------------------------------------------------


def expect_error(match: str, path, fmt=None) -> None:
    with pytest.raises(UserError, match=match) as info:
        load_trace(path, fmt)
    assert "\n" not in str(info.value)


def test_missing_file(tmp_path):
    expect_error(r"nope\.csv: no such file", tmp_path / "nope.csv")


def test_unknown_format(tmp_path):
    path = tmp_path / "t.txt"
    path.write_text("page\n1\n")
    expect_error(r"t\.txt: unknown trace format '\.txt'", path)
    expect_error(
        r"unknown trace format 'xml' \(known: csv, msr, parquet, npy, oracleGeneral\)", path, "xml"
    )


def test_compressed_trace_is_named(tmp_path):
    expect_error(r"compressed trace; decompress it first", tmp_path / "t.oracleGeneral.zst")


def test_directory(tmp_path):
    (tmp_path / "d.csv").mkdir()
    expect_error(r"d\.csv: is a directory", tmp_path / "d.csv")


def test_missing_page_column(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(path, {"addr": [1, 2]})
    expect_error(r"t\.csv: no 'page' column \(columns: addr\)", path)
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({"addr": [1, 2]}), path)
    expect_error(r"t\.parquet: no 'page' column", path)


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy"])
def test_negative_page_id(tmp_path, suffix):
    path = tmp_path / f"t{suffix}"
    values = np.array([5, 6, -3, 7])
    if suffix == ".csv":
        write_csv(path, {"page": values})
    elif suffix == ".parquet":
        pq.write_table(pa.table({"page": values}), path)
    else:
        np.save(path, values)
    expect_error(r"negative page id -3 at reference 2", path)


def test_object_id_beyond_int64(tmp_path):
    path = tmp_path / "t.oracleGeneral"
    records = np.zeros(2, dtype=ORACLE_GENERAL_DTYPE)
    records["obj_id"] = [1, 2**64 - 1]
    records.tofile(path)
    expect_error(r"object id 18446744073709551615 is too large", path)


def test_empty_traces(tmp_path):
    (tmp_path / "a.oracleGeneral").write_bytes(b"")
    expect_error(r"empty trace", tmp_path / "a.oracleGeneral")
    (tmp_path / "b.csv").write_text("page,write\n")
    expect_error(r"b\.csv: empty trace", tmp_path / "b.csv")
    np.save(tmp_path / "c.npy", np.array([], dtype=np.int64))
    expect_error(r"c\.npy: empty trace", tmp_path / "c.npy")
    pq.write_table(pa.table({"page": pa.array([], pa.int64())}), tmp_path / "d.parquet")
    expect_error(r"d\.parquet: empty trace", tmp_path / "d.parquet")


def test_oracle_general_size_not_a_multiple_of_24(tmp_path):
    path = tmp_path / "t.oracleGeneral"
    write_oracle_general(path, PAGES)
    with path.open("ab") as f:
        f.write(b"\x00" * 5)
    expect_error(rf"{24 * PAGES.size + 5} bytes is not a whole number of 24-byte", path)


@pytest.mark.parametrize("values", [[0, 2, 1], [1, -1, 0]])
def test_write_values_not_0_or_1(tmp_path, values):
    path = tmp_path / "t.csv"
    write_csv(path, {"page": [1, 2, 3], "write": values})
    expect_error(rf"column 'write' must hold 0/1, found {values[1]} at row 1", path)


def test_non_integer_pages(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("page\n1.5\n2\n")
    expect_error(r"column 'page' must hold integers, found double", path)
    path = tmp_path / "n.csv"
    path.write_text("page\n1\n\n3\nx\n")
    expect_error(r"n\.csv: column 'page' must hold integers, found string", path)
    path = tmp_path / "e.csv"
    path.write_text("page,write\n,1\n2,0\n")
    expect_error(r"e\.csv: column 'page' has 1 empty values", path)
    path = tmp_path / "r.csv"
    path.write_text("page,write\n1,1\n2\n")
    expect_error(r"r\.csv: cannot read csv: CSV parse error", path)
    np.save(tmp_path / "f.npy", np.array([1.0, 2.0]))
    expect_error(r"page ids must be integers, found float64", tmp_path / "f.npy")
    np.save(tmp_path / "m.npy", np.zeros((2, 2), dtype=np.int64))
    expect_error(r"must be a 1-D array of page ids, got shape \(2, 2\)", tmp_path / "m.npy")


def test_corrupt_files(tmp_path):
    (tmp_path / "t.npy").write_bytes(b"not numpy at all")
    expect_error(r"t\.npy: not a readable \.npy file", tmp_path / "t.npy")
    (tmp_path / "t.parquet").write_bytes(b"not parquet at all")
    expect_error(r"t\.parquet: cannot read parquet", tmp_path / "t.parquet")
