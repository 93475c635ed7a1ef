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
    read_trace,
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


def expect_error(match: str, path, fmt=None, **options) -> None:
    with pytest.raises(UserError, match=match) as info:
        read_trace(path, fmt, **options) if options else load_trace(path, fmt)
    assert "\n" not in str(info.value)
    flag_error = str(info.value).startswith(("unknown trace format '", "page split"))
    assert flag_error or str(info.value).startswith(str(path))  # the file, first


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


# ---- block requests split into pages, MSR Cambridge, op and time columns ------------------


def test_split_pages_spans_one_two_and_three_pages():
    from harness.traces import split_pages

    # 4 KiB pages: [8192, 12288) is page 2 alone; [4000, 4200) straddles 0|1;
    # [4096, 16384) covers 1, 2, 3; [5000, 13000) touches 1, 2, 3 without covering them.
    offsets = np.array([8192, 4000, 4096, 5000])
    sizes = np.array([4096, 200, 12288, 8000])
    data_path = "unused"
    from harness.traces import _split_counts

    first, counts = _split_counts(data_path, offsets, sizes, 4096)
    assert counts.tolist() == [1, 2, 3, 3]
    assert split_pages(first, counts).tolist() == [2, 0, 1, 1, 2, 3, 1, 2, 3]


def test_block_csv_is_split_with_its_writes_repeated(tmp_path):
    path = tmp_path / "blocks.csv"
    write_csv(path, {"offset": [0, 4095, 8192], "size": [4096, 2, 1], "op": ["R", "w", "Write"]})
    data = read_trace(path)
    assert data.block and data.requests == 3
    assert data.pages.tolist() == [0, 0, 1, 2]  # 4095+2 spans pages 0 and 1
    assert data.writes.tolist() == [0, 1, 1, 1]
    # another split size: 1 KiB pages
    data = read_trace(path, split_bytes=1024)
    assert data.pages.tolist() == [0, 1, 2, 3, 3, 4, 8]
    assert load_trace(path, split_bytes=8192)[0].tolist() == [0, 0, 1]


def test_zero_length_request_touches_the_page_at_its_offset(tmp_path):
    path = tmp_path / "z.csv"
    write_csv(path, {"offset": [12288], "size": [0]})
    assert read_trace(path).pages.tolist() == [3]


MSR_ROWS = (
    "128166372003061629,hm,0,Read,8192,4096,1331\n"
    "128166372003561629,hm,0,Write,4096,8192,210\n"
    "128166372004061629,hm,0,Read,0,12288,50\n"
    "128166372013061629,hm,1,Read,6000,3000,77\n"
)


def test_msr_cambridge_csv_is_read_directly(tmp_path):
    path = tmp_path / "hm_0.csv"
    path.write_text(MSR_ROWS)
    assert trace_format(path) == "msr"  # sniffed from the first line, no header
    data = read_trace(path)
    assert data.fmt == "msr" and data.block and data.requests == 4
    assert data.pages.tolist() == [2, 1, 2, 0, 1, 2, 1, 2]
    assert data.writes.tolist() == [0, 1, 1, 0, 0, 0, 0, 0]
    # Windows filetime: 100 ns ticks; 0.05 s, then 0.1 s, then 1 s after the first request
    np.testing.assert_allclose(data.times_s, [0, 0.05, 0.05, 0.1, 0.1, 0.1, 1.0, 1.0])
    assert read_trace(path, "msr", split_bytes=512).pages[:1].tolist() == [16]


def test_msr_format_flag_and_bad_rows(tmp_path):
    path = tmp_path / "trace.txt"
    path.write_text(MSR_ROWS)
    assert read_trace(path, "msr").requests == 4
    bad = tmp_path / "bad.csv"
    bad.write_text("128166372003061629,hm,0,Read,x,4096,1\n")
    expect_error(r"bad\.csv: cannot read msr", bad, "msr")
    bad.write_text("128166372003061629,hm,0,Move,0,4096,1\n")
    expect_error(r"column 'Type' must hold 0/1 or R/W, found 'Move' at row 0", bad, "msr")


def test_times_kinds_and_named_columns(tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(
        pa.table({"addr": [7, 8, 7], "ms": [10, 20, 35], "k": ["file", "anon", "file"],
                  "rw": [True, False, True]}),
        path,
    )  # fmt: skip
    data = read_trace(path, page_column="addr", write_column="rw", time_column="ms",
                      kind_column="k", time_unit_s=1e-3)  # fmt: skip
    assert data.pages.tolist() == [7, 8, 7] and not data.block
    assert data.writes.tolist() == [1, 0, 1]
    np.testing.assert_allclose(data.times_s, [0, 0.010, 0.025])
    assert data.file_kind.tolist() == [1, 0, 1]


def test_a_named_column_that_is_not_there(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(path, {"page": [1, 2]})
    expect_error(r"t\.csv: no 'rw' column \(columns: page\)", path, write_column="rw")
    expect_error(r"t\.csv: no 'when' column", path, time_column="when")
    expect_error(r"t\.csv: no 'addr' column \(columns: page\)", path, page_column="addr")
    expect_error(r"t\.csv: splitting requests into pages needs columns 'offset' and 'size'",
                 path, split_bytes=4096)  # fmt: skip


def test_timestamps_must_not_go_back(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(path, {"page": [1, 2, 3], "time": [5, 4, 6]})
    expect_error(r"t\.csv: timestamps go back at reference 1", path)


def test_negative_offset_and_split_size(tmp_path):
    path = tmp_path / "t.csv"
    write_csv(path, {"offset": [0, -4096], "size": [1, 1]})
    expect_error(r"t\.csv: negative offset -4096 at request 1", path)
    write_csv(path, {"offset": [0], "size": [1]})
    expect_error(r"page split must be > 0 bytes, got 0", path, split_bytes=0)


def test_oracle_general_block_ids_are_byte_offsets_with_a_split(tmp_path):
    path = tmp_path / "b.oracleGeneral"
    records = np.zeros(2, dtype=ORACLE_GENERAL_DTYPE)
    records["obj_id"] = [8192, 4000]
    records["size"] = [4096, 200]
    records["timestamp"] = [100, 103]
    records.tofile(path)
    assert read_trace(path).pages.tolist() == [8192, 4000]  # ids as pages
    data = read_trace(path, split_bytes=4096)
    assert data.pages.tolist() == [2, 0, 1] and data.block
    np.testing.assert_allclose(data.times_s, [0, 3, 3])


def test_npy_is_memory_mapped(tmp_path):
    np.save(tmp_path / "t.npy", np.arange(10, dtype=np.int64))
    pages = read_trace(tmp_path / "t.npy").pages
    assert isinstance(pages, np.memmap) or isinstance(pages.base, np.memmap)


def test_cached_trace_reads_once_and_again_after_a_change(tmp_path):
    import os

    from harness.traces import cached_trace

    path = tmp_path / "t.csv"
    write_csv(path, {"page": [1, 2, 3]})
    a = cached_trace(path)
    assert cached_trace(path) is a  # one read per process
    assert cached_trace(path, split_bytes=None, page_column="page") is not a  # other options
    write_csv(path, {"page": [4, 5, 6, 7]})
    os.utime(path, ns=(1, 1))  # a new mtime even on a coarse clock
    assert cached_trace(path).pages.tolist() == [4, 5, 6, 7]


@pytest.mark.parametrize(
    "text, value",
    [("64MiB", 64 << 20), ("1.5GiB", 3 << 29), ("512k", 512 << 10), ("4096", 4096),
     ("2 MB", 2_000_000)],
)  # fmt: skip
def test_parse_size(text, value):
    from harness.traces import parse_size

    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "MiB", "12XB", "-1MiB", "0"])
def test_parse_size_refuses_what_is_not_a_size(text):
    from harness.traces import parse_size

    with pytest.raises(UserError, match="--cache"):
        parse_size(text, "--cache")


# ---- DAMON records --------------------------------------------------------------------------


def damo_record(snapshots: list[list[tuple]], *, plain_numbers: bool = False) -> list:
    """A damo record (what `damo record --output_type json` writes): one target, snapshots
    of (start, end, nr_accesses, age) regions, 100 ms aggregation intervals."""
    snaps = []
    for i, regions in enumerate(snapshots):
        rs = []
        for lo, hi, nr, age in regions:
            if plain_numbers:
                rs.append({"start": lo, "end": hi, "nr_accesses": nr, "age": age})
            else:
                rs.append({"start": lo, "end": hi,
                           "nr_accesses": {"samples": nr, "percent": nr * 5},
                           "age": {"usec": age * 100_000, "aggr_intervals": age},
                           "probe_hits": [], "sz_filter_passed": 0})  # fmt: skip
        snaps.append({"start_time": 1_000_000_000 + i * 100_000_000,
                      "end_time": 1_000_000_000 + (i + 1) * 100_000_000, "regions": rs,
                      "total_bytes": sum(r[1] - r[0] for r in regions), "damos_stats": None,
                      "sample_interval_us": 5000})  # fmt: skip
    return [{"kdamond_idx": 0, "context_idx": 0,
             "intervals": {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1000000},
             "scheme_idx": None, "target_id": 0, "scheme_filters": [], "snapshots": snaps,
             "data_source": "unknown"}]  # fmt: skip


@pytest.mark.parametrize("compressed", [False, True])
@pytest.mark.parametrize("plain", [False, True])
def test_damon_record_json_and_compressed(tmp_path, compressed, plain):
    import json
    import zlib

    from harness.traces import read_damon_record

    record = damo_record([[(0x1000, 0x3000, 20, 3), (0x3000, 0x9000, 0, 10)],
                          [(0x1000, 0x9000, 4, 0)]], plain_numbers=plain)  # fmt: skip
    text = json.dumps(record).encode()
    path = tmp_path / "damon.data"
    path.write_bytes(zlib.compress(text) if compressed else text)
    snaps = read_damon_record(path)
    assert len(snaps) == 2
    assert snaps[0].starts.tolist() == [0x1000, 0x3000]
    assert snaps[0].nr_accesses.tolist() == [20, 0]
    assert snaps[0].age.tolist() == [3, 10]
    assert snaps[1].start_ns - snaps[0].start_ns == 100_000_000


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\x00\x01not json", r"not a damo record \(neither JSON nor zlib-compressed JSON"),
        (b'{"page": 1}', r"record 0 has no 'snapshots' list"),
        (b"[]", r"not a damo record \(expected a JSON list of records\)"),
        (b'[{"snapshots": [{"start_time": 0, "end_time": 1}]}]', r"has no 'regions' list"),
        (b'[{"snapshots": [{"start_time": 0, "end_time": 1, "regions": [{"start": 9, '
         b'"end": 3, "nr_accesses": 1}]}]}]', r"region 0: bad region \[9, 3\)"),
        (b'[{"snapshots": [{"start_time": 0, "end_time": 1, "regions": [{"start": 0, '
         b'"end": 3}]}]}]', r"region 0: needs start, end and nr_accesses"),
    ],
)  # fmt: skip
def test_what_is_not_a_damo_record(tmp_path, content, message):
    from harness.traces import read_damon_record

    path = tmp_path / "rec.json"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message) as info:
        read_damon_record(path)
    assert str(info.value).startswith(str(path)) and "\n" not in str(info.value)


def test_msr_with_a_header_line(tmp_path):
    path = tmp_path / "hm_1.csv"
    path.write_text(",".join(MSR_COLUMNS_NAMES) + "\n" + MSR_ROWS)
    assert trace_format(path) == "msr"
    data = read_trace(path)
    assert data.requests == 4 and data.pages.tolist()[:3] == [2, 1, 2]


MSR_COLUMNS_NAMES = ("Timestamp", "Hostname", "DiskNumber", "Type", "Offset", "Size",
                     "ResponseTime")  # fmt: skip
