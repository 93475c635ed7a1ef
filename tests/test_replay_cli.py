"""`balloonlab replay`: every trace format gives the same answer, every bad input one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import OrderedDict

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from harness.cli import main
from harness.traces import write_oracle_general
from sim_core.workloads import make_workload

FRAMES = 40


def run_cli(capsys, *args: str) -> tuple[int, str, str]:
    """Run the real entry point in-process: (exit code, stdout, stderr)."""
    argv = sys.argv
    sys.argv = ["balloonlab", *args]
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    finally:
        sys.argv = argv
    out, err = capsys.readouterr()
    return code, out, err


def reference_lru(pages: np.ndarray, writes: np.ndarray | None, frames: int) -> dict:
    """Faults and write-backs of a plain LRU cache (dirty until evicted)."""
    cache: OrderedDict[int, bool] = OrderedDict()
    faults = writebacks = 0
    for i, page in enumerate(pages.tolist()):
        dirty = bool(writes[i]) if writes is not None else False
        if page in cache:
            cache.move_to_end(page)
            cache[page] = cache[page] or dirty
            continue
        faults += 1
        if len(cache) == frames:
            _, was_dirty = cache.popitem(last=False)
            writebacks += was_dirty
        cache[page] = dirty
    return {"faults": faults, "writebacks": writebacks}


@pytest.fixture(scope="module")
def trace():
    w = make_workload("hotcold", {"hot_mib": 0.25, "cold_mib": 1, "write_ratio": 0.3}, 1, 4)
    w.reset(np.random.default_rng(4))
    pages, writes = w.generate(6000)
    return pages.astype(np.int64) * 3 + 1, writes  # sparse ids: nothing may assume density


@pytest.fixture(scope="module")
def trace_files(trace, tmp_path_factory):
    pages, writes = trace
    d = tmp_path_factory.mktemp("traces")
    pcsv.write_csv(pa.table({"page": pages, "write": writes}), d / "t.csv")
    pq.write_table(pa.table({"page": pages, "write": writes}), d / "t.parquet")
    np.save(d / "t.npy", pages)
    write_oracle_general(d / "t.oracleGeneral", pages)
    pcsv.write_csv(pa.table({"page": pages}), d / "reads.csv")
    return d


def replay_json(capsys, *args: str) -> dict:
    code, out, err = run_cli(capsys, "replay", *args, "--json")
    assert code == 0, err
    assert err == ""
    return json.loads(out)


@pytest.mark.parametrize("name", ["t.csv", "t.parquet", "t.npy", "t.oracleGeneral", "reads.csv"])
def test_each_format_replays_like_a_reference_lru(capsys, trace, trace_files, name):
    pages, writes = trace
    has_writes = name in ("t.csv", "t.parquet")
    out = replay_json(capsys, str(trace_files / name), "--frames", str(FRAMES), "--policy", "lru")
    for key in (
        "policy",
        "frames",
        "references",
        "faults",
        "hits",
        "writebacks",
        "seconds",
        "refs_per_second",
        "compile_seconds",
        "hit_ratio",
    ):
        assert key in out
    assert out["policy"] == "lru" and out["frames"] == FRAMES
    assert out["references"] == pages.size
    assert out["hits"] + out["faults"] == out["references"]
    assert out["hit_ratio"] == pytest.approx(out["hits"] / out["references"])
    expected = reference_lru(pages, writes if has_writes else None, FRAMES)
    assert out["faults"] == expected["faults"]  # the same in every format
    assert out["writebacks"] == expected["writebacks"]
    assert (out["writebacks"] > 0) == has_writes


def test_format_flag_overrides_the_suffix(capsys, trace_files):
    data = trace_files / "renamed.dat"
    data.write_bytes((trace_files / "t.oracleGeneral").read_bytes())
    a = replay_json(capsys, str(data), "--frames", "64", "--format", "oracleGeneral")
    b = replay_json(capsys, str(trace_files / "t.npy"), "--frames", "64")
    assert (a["faults"], a["references"]) == (b["faults"], b["references"])


def test_opt_never_faults_more_than_lru_and_esc_reports_classes(capsys, trace_files):
    path = str(trace_files / "t.csv")
    results = {
        p: replay_json(capsys, path, "-n", str(FRAMES), "-p", p) for p in ("lru", "opt", "esc")
    }
    assert results["opt"]["faults"] <= results["lru"]["faults"]
    classes = results["esc"]["evictions_by_class"]
    assert set(classes) == {"00", "01", "10", "11"}
    # demand paging: once the frames are full, every further fault evicts exactly one page
    assert sum(classes.values()) == results["esc"]["faults"] - FRAMES


def test_human_output(capsys, trace_files):
    code, out, err = run_cli(capsys, "replay", str(trace_files / "t.npy"), "--frames", "64")
    assert code == 0 and err == ""
    assert "policy" in out and "lru" in out and "hit ratio" in out and "faults" in out
    assert "6,000" in out  # references


def test_help_has_an_example_and_names_every_policy(capsys):
    from sim_core.policies import GUEST_POLICIES

    code, out, _ = run_cli(capsys, "replay", "--help")
    assert code == 0
    assert "Example: balloonlab replay" in out
    for name in GUEST_POLICIES:
        assert name in out


def _bad_files(d):
    (d / "neg.csv").write_text("page\n1\n-7\n3\n")
    (d / "ones.csv").write_text("page,write\n1,1\n2,2\n")
    (d / "trace.txt").write_text("page\n1\n")
    (d / "short.oracleGeneral").write_bytes(b"\x01" * 30)
    (d / "none.csv").write_text("addr\n1\n")
    (d / "empty.npy").write_bytes(b"")


@pytest.mark.parametrize(
    "args, message",
    [
        (["missing.csv", "--frames", "8"], "missing.csv: no such file"),
        (["trace.txt", "--frames", "8"], "unknown trace format '.txt'"),
        (["neg.csv", "--frames", "8", "--format", "xml"], "unknown trace format 'xml'"),
        (["neg.csv", "--frames", "8"], "negative page id -7 at reference 1"),
        (["ones.csv", "--frames", "8"], "column 'write' must hold 0/1"),
        (["none.csv", "--frames", "8"], "no 'page' column"),
        (["short.oracleGeneral", "--frames", "8"], "30 bytes is not a whole number"),
        (["empty.npy", "--frames", "8"], "empty trace"),
        (["neg.csv", "--frames", "0"], "--frames must be > 0, got 0"),
        (["neg.csv", "--frames", "-3"], "--frames must be > 0, got -3"),
        (
            ["neg.csv", "--frames", "8", "--policy", "lfu"],
            "unknown policy 'lfu' (known: esc, clock, lru",
        ),
    ],
)
def test_bad_input_is_one_line_and_a_nonzero_exit(capsys, tmp_path, args, message):
    _bad_files(tmp_path)
    args = [str(tmp_path / args[0]), *args[1:]]
    code, out, err = run_cli(capsys, "replay", *args)
    assert code != 0
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("error: ")
    assert message in err
    assert "Traceback" not in err


def test_the_console_script_end_to_end(tmp_path):
    """The installed entry point as a user runs it: JSON out, then one error line."""
    np.save(tmp_path / "t.npy", np.array([1, 2, 3, 1, 2, 4, 1, 5]))
    # exactly what the `balloonlab` console script runs (harness.cli:main)
    cmd = [sys.executable, "-c", "from harness.cli import main; main()", "replay"]
    ok = subprocess.run(
        [*cmd, str(tmp_path / "t.npy"), "--frames", "3", "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert ok.returncode == 0, ok.stderr
    out = json.loads(ok.stdout)
    # LRU by hand: 1 2 3 miss, 1 2 hit, 4 miss (evicts 3), 1 hit, 5 miss (evicts 2)
    assert (out["references"], out["faults"], out["hits"]) == (8, 5, 3)
    bad = subprocess.run(
        [*cmd, str(tmp_path / "t.npy"), "--frames", "3", "--policy", "nope"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode != 0
    assert bad.stderr.count("\n") == 1 and "unknown policy 'nope'" in bad.stderr
    assert "Traceback" not in bad.stderr


# ---- many sizes and policies at once ----------------------------------------------------------


def test_one_row_per_size_and_policy(capsys, trace, trace_files):
    pages, writes = trace
    path = str(trace_files / "t.csv")
    rows = replay_json(capsys, path, "--frames", "20,40,80", "--policy", "lru,clock,opt")
    assert isinstance(rows, list) and len(rows) == 9
    assert [(r["policy"], r["frames"]) for r in rows] == [
        (p, n) for p in ("lru", "clock", "opt") for n in (20, 40, 80)
    ]
    for r in rows:
        assert r["miss_ratio"] == pytest.approx(r["faults"] / r["references"])
        assert r["hit_ratio"] + r["miss_ratio"] == pytest.approx(1.0)
        assert r["cache_mib"] == pytest.approx(r["frames"] * 4 / 1024)
        if r["policy"] == "lru":
            assert r["faults"] == reference_lru(pages, writes, r["frames"])["faults"]
    by = {(r["policy"], r["frames"]): r["faults"] for r in rows}
    for n in (20, 40, 80):
        assert by[("opt", n)] <= min(by[("lru", n)], by[("clock", n)])


def test_sizes_as_memory_and_as_fractions_of_the_footprint(capsys, trace, trace_files):
    pages, _ = trace
    unique = np.unique(pages).size
    path = str(trace_files / "t.npy")
    rows = replay_json(capsys, path, "--cache", "160KiB,1MiB", "--fraction", "0.5,100%")
    assert [r["frames"] for r in rows] == [40, 256, round(0.5 * unique), unique]
    assert rows[-1]["faults"] == unique  # the whole footprint fits: cold misses only
    # 8 KiB pages halve the frames of a memory size
    one = replay_json(capsys, path, "--cache", "160KiB", "--page-kib", "8")
    assert isinstance(one, dict) and one["frames"] == 20


def test_block_requests_are_split_in_replay(capsys, tmp_path):
    path = tmp_path / "blocks.csv"
    path.write_text("offset,size,op\n0,12288,W\n4096,4096,R\n0,1,R\n")
    out = replay_json(capsys, str(path), "--frames", "8")
    assert out["references"] == 5 and out["faults"] == 3 and out["format"] == "csv"
    out = replay_json(capsys, str(path), "--frames", "8", "--page-split", "8192")
    assert out["references"] == 4 and out["faults"] == 2


def test_the_table_for_many_rows(capsys, trace_files):
    code, out, err = run_cli(
        capsys, "replay", str(trace_files / "t.npy"), "--frames", "10,20", "-p", "fifo,lru"
    )
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert "miss ratio" in lines[1] and "hit ratio" in lines[1]
    assert len(lines) == 2 + 4


@pytest.mark.parametrize(
    "args, message",
    [
        (["--frames", "8,x"], "--frames 'x': not a whole number"),
        (["--frames", "8,,9"], "an empty item in the list"),
        (["--cache", "lots"], "--cache 'lots': not a memory size"),
        (["--cache", "1KiB"], "less than one 4 KiB page"),
        (["--fraction", "1.5"], "--fraction must be in (0, 1]"),
        ([], "give the cache size: --frames N, --cache 64MiB or --fraction 0.5"),
        (["--frames", "8", "--policy", "lru,nope"], "unknown policy 'nope'"),
        (["--frames", "8", "--page-split", "0"], "page split must be > 0 bytes"),
    ],
)
def test_bad_size_lists_are_one_line(capsys, trace_files, args, message):
    code, out, err = run_cli(capsys, "replay", str(trace_files / "t.npy"), *args)
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and message in err
