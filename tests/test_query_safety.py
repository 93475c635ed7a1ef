"""`balloonlab query` is read-only by default (COPY, ATTACH, INSTALL, writes and settings
are refused unless --allow-write), caps what it prints (--limit) instead of materialising
millions of rows, and every store or query error is one line with exit code 2."""

from __future__ import annotations

import json
import resource

import pytest

from analysis import db
from harness import executors, limits
from store import parquet

SPEC = """
[sweep]
name = "q"
seed = 3

[base]
ticks = 50
"vms.count" = 1

[grid]
"host.overcommit" = [1.0, 1.2, 1.4, 1.6]
"""


@pytest.fixture
def results(tmp_path, monkeypatch, balloonlab_cli, stand_in):
    monkeypatch.setattr(executors, "_default_run_fn", lambda: stand_in)
    spec = tmp_path / "q.toml"
    spec.write_text(SPEC)
    out = tmp_path / "results"
    code, _, err = balloonlab_cli("run", str(spec), "--executor", "local", "--results", str(out))
    assert code == 0, err
    monkeypatch.chdir(tmp_path)
    return out


def _one_line_refusal(balloonlab_cli, results, *args):
    code, out, err = balloonlab_cli("query", *args, "--results", str(results))
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO 'out.csv'",
        "COPY runs TO 'out.csv'",
        "ATTACH 'out.db' AS x",
        "INSTALL httpfs",
        "LOAD httpfs",
        "EXPORT DATABASE 'out'",
        "CREATE TABLE t AS SELECT 1",
        "INSERT INTO runs VALUES (1)",
        "DROP VIEW runs",
        "SET enable_external_access = true",
        "PRAGMA enable_profiling",
        "SELECT 1; COPY (SELECT 1) TO 'out.csv'",
        "EXPLAIN ANALYZE COPY (SELECT 1) TO 'out.csv'",
    ],
)
def test_writes_are_refused_by_default(sql, results, balloonlab_cli, tmp_path):
    err = _one_line_refusal(balloonlab_cli, results, sql)
    assert "--allow-write" in err
    assert not (tmp_path / "out.csv").exists() and not (tmp_path / "out.db").exists()


def test_a_query_cannot_reach_files_outside_the_store(results, balloonlab_cli):
    err = _one_line_refusal(balloonlab_cli, results, "SELECT * FROM read_csv('/etc/passwd')")
    assert "disabled" in err or "Permission" in err


def test_allow_write_lets_copy_through(results, balloonlab_cli, tmp_path):
    code, out, err = balloonlab_cli(
        "query", "COPY (SELECT 1 AS x) TO 'out.csv'", "--results", str(results), "--allow-write"
    )
    assert code == 0, err
    assert (tmp_path / "out.csv").read_text().split() == ["x", "1"]


def test_reads_still_work(results, balloonlab_cli):
    for sql in ["DESCRIBE runs", "SHOW TABLES", "SUMMARIZE runs", "EXPLAIN SELECT 1",
                "FROM sweeps", "WITH a AS (SELECT 1 AS x) SELECT * FROM a"]:  # fmt: skip
        code, out, err = balloonlab_cli("query", sql, "--results", str(results), "--json")
        assert code == 0, (sql, err)


def test_rows_are_capped_with_a_note(results, balloonlab_cli):
    code, out, err = balloonlab_cli(
        "query", "SELECT * FROM ticks", "--results", str(results), "--json", "--limit", "7"
    )
    assert code == 0, err
    assert len(json.loads(out)) == 7
    assert err.strip() == "... 393 more rows not shown; use --limit N (0: all)"
    code, out, err = balloonlab_cli(
        "query", "SELECT * FROM ticks", "--results", str(results), "-f", "csv", "--limit", "0"
    )
    assert code == 0 and len(out.splitlines()) == 1 + 4 * 50 * 2 and err == ""
    code, out, err = balloonlab_cli(
        "query", "SELECT * FROM ticks", "--results", str(results), "--limit", "0", "--json"
    )
    assert code == 0 and len(json.loads(out)) == 400


def test_a_huge_result_is_counted_not_materialised(results, balloonlab_cli):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, out, err = balloonlab_cli(
        "query", "SELECT range AS a, 'xxxxxxxxxxxxxxxx' AS b FROM range(20000000)",
        "--results", str(results), "-f", "csv",
    )  # fmt: skip
    assert code == 0, err
    assert len(out.splitlines()) == 1 + 10_000
    assert "19,990,000 more rows not shown" in err
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 1500  # 20M Python tuples would take several GiB


@pytest.mark.parametrize(
    "sql, needle",
    [
        ("SELECT nope FROM runs", "nope"),
        ("SELEC 1", "syntax"),
        ("SELECT 'a'::INT", "Conversion"),
    ],
)
def test_query_errors_are_one_line(sql, needle, results, balloonlab_cli):
    err = _one_line_refusal(balloonlab_cli, results, sql)
    assert needle in err and "CREATE VIEW" not in err


def test_a_store_error_is_one_line_without_the_view_sql(results, balloonlab_cli, monkeypatch):
    # the check passes (a sound footer), the data does not: DuckDB fails creating the view
    path = next(parquet.sweep_dir(results, "runs", "q").glob("*.parquet"))
    real = db._table_view
    monkeypatch.setattr(
        db, "_table_view", lambda files: real(files).replace("read_parquet", "nope")
    )
    err = _one_line_refusal(balloonlab_cli, results, "SELECT 1")
    assert "cannot read the store" in err and "CREATE VIEW" not in err
    assert path.exists()


def test_a_spec_that_is_not_utf8_names_the_file(tmp_path, balloonlab_cli):
    spec = tmp_path / "latin.toml"
    spec.write_bytes("[sweep]\nname = 'caf\xe9'\n".encode("latin-1"))
    for command in ("show", "run"):
        code, out, err = balloonlab_cli(command, str(spec))
        assert code == 2 and str(spec) in err and "UTF-8" in err
        assert len(err.strip().splitlines()) == 1


def test_status_on_a_store_of_damaged_files_is_rc_0_with_a_note(results, balloonlab_cli):
    for path in parquet.sweep_dir(results, "runs", "q").glob("*.parquet"):
        path.write_bytes(b"PAR1 broken")
    code, out, err = balloonlab_cli("status", "--results", str(results), "--json")
    assert code == 0 and json.loads(out)[0]["done"] == 0
    assert "4 damaged" in err and "ArrowInvalid" not in err
    code, out, err = balloonlab_cli("query", "SELECT 1", "--results", str(results))
    # the note (one line) and the error (one line)
    assert code == 2 and "no stored runs" in err and len(err.strip().splitlines()) == 2


def _memory_limit(con) -> str:
    return con.execute("SELECT current_setting('memory_limit')").fetchone()[0]


def test_the_memory_limit_is_the_callers_and_the_cli_gives_the_machine_budget(
    results, balloonlab_cli
):
    con = db.connect(results, memory_limit_bytes=256 * 2**20)
    try:
        assert _memory_limit(con) == "256.0 MiB"
    finally:
        con.close()
    con = db.connect(results, memory_limit_bytes=limits.default_budget())
    try:
        budget = _memory_limit(con)
    finally:
        con.close()
    code, out, err = balloonlab_cli(
        "query", "SELECT current_setting('memory_limit') AS m", "--results", str(results),
        "--format", "json",
    )  # fmt: skip
    assert code == 0, err
    assert json.loads(out) == [{"m": budget}]
