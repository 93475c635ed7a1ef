"""DuckDB over a small real store (the `smoke` sweep run in-process): each view and its
columns, deduplication after a crashed compaction, named queries, and `balloonlab query`
in each output format, with one-line errors for bad SQL and an empty store."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from analysis import db
from harness.driver import run_sweep
from harness.executors import LocalExecutor
from harness.spec import load_spec
from harness.sweeps_catalog import resolve
from sim_core.simulation import TICK_COLUMNS
from store import parquet


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> tuple[Path, int, int]:
    """A store holding the shipped `smoke` sweep, run with the real simulation in this
    process. Returns (results, runs, ticks per run)."""
    results = tmp_path_factory.mktemp("analysis") / "results"
    spec = load_spec(resolve("smoke"))
    report = run_sweep(spec, LocalExecutor(), results)
    assert report.failed == 0
    return results, len(spec.runs), spec.runs[0].config.ticks


@pytest.fixture
def balloonlab(balloonlab_cli):
    """The real entry point in-process; returns (exit code, stdout, stderr)."""
    return balloonlab_cli


def scalar(results: Path, sql: str):
    [[value]] = db.query(results, sql).rows
    return value


# ---- views ---------------------------------------------------------------------------------


def test_views_and_their_columns(smoke):
    results, n_runs, n_ticks = smoke
    con = db.connect(results)
    columns = {
        view: [r[0] for r in con.execute(f"DESCRIBE {view}").fetchall()] for view in db.VIEWS
    }
    for key in ("sweep", "run_id", "replicate", "outcome", "hypervisor.policy",
                "host.overcommit", "references", "guest_faults", "throughput_mean",
                "profit_per_host_hour", "wall_seconds"):  # fmt: skip
        assert key in columns["runs"], key
    assert columns["completed_runs"] == columns["runs"]
    assert set(TICK_COLUMNS) | {"sweep", "run_id"} <= set(columns["ticks"])
    assert columns["ticks_host"] == columns["ticks"] == columns["ticks_vm"]
    assert columns["sweeps"] == ["sweep", "runs", "ok", "failed", "guest_oom", "deadlock"]

    n_vms = 2  # smoke.toml
    assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == n_runs
    assert con.execute("SELECT count(*) FROM completed_runs").fetchone()[0] == n_runs
    assert con.execute("SELECT count(*) FROM ticks").fetchone()[0] == n_runs * n_ticks * (n_vms + 1)
    assert con.execute("SELECT count(*), min(vm), max(vm) FROM ticks_host").fetchone() == (
        n_runs * n_ticks, -1, -1
    )  # fmt: skip
    assert con.execute("SELECT count(*), min(vm), max(vm) FROM ticks_vm").fetchone() == (
        n_runs * n_ticks * n_vms, 0, n_vms - 1
    )  # fmt: skip
    assert con.execute("SELECT sweep, runs, ok, failed FROM sweeps").fetchall() == [
        ("smoke", n_runs, n_runs, 0)
    ]
    # The view and the store agree on the numbers, run by run.
    table = parquet.read_table(results, "runs", "smoke")
    expected = dict(zip(table["run_id"].to_pylist(), table["references"].to_pylist(), strict=True))
    got = dict(con.execute('SELECT run_id, "references" FROM runs').fetchall())
    assert got == expected
    # The host row's per-tick swap-outs add up to the run's total.
    mismatched = con.execute(
        "SELECT count(*) FROM runs r JOIN (SELECT run_id, sum(host_swap_outs) s FROM ticks_host "
        "GROUP BY run_id) t USING (run_id) WHERE r.host_swap_outs <> t.s"
    ).fetchone()[0]
    assert mismatched == 0
    con.close()


def test_a_run_stored_twice_after_a_crashed_compaction_counts_once(smoke, tmp_path):
    results = tmp_path / "results"
    shutil.copytree(smoke[0], results)
    before_ticks = scalar(results, "SELECT count(*) FROM ticks")
    parquet.compact(results, "smoke")
    assert scalar(results, "SELECT count(*) FROM runs") == smoke[1]  # compacted parts read
    # A crash between writing the merged part and deleting its sources leaves a run in a
    # per-run file as well; the store treats the per-run file as current.
    part = next((results / "runs" / "sweep=smoke").glob("part-compact-*.parquet"))
    rows = pq.read_table(part)
    victim = rows["run_id"][0].as_py()
    row = rows.filter(pc.equal(rows["run_id"], victim))
    zero = pc.multiply(row["references"], 0).cast(row["references"].type)
    row = row.set_column(row.schema.get_field_index("references"), "references", zero)
    pq.write_table(row, results / "runs" / "sweep=smoke" / f"{victim}.parquet")
    tpart = next((results / "ticks" / "sweep=smoke").glob("part-compact-*.parquet"))
    ticks = pq.read_table(tpart)
    pq.write_table(
        ticks.filter(pc.equal(ticks["run_id"], victim)),
        results / "ticks" / "sweep=smoke" / f"{victim}.parquet",
    )
    assert scalar(results, "SELECT count(*) FROM runs") == smoke[1]
    assert scalar(results, f"SELECT \"references\" FROM runs WHERE run_id = '{victim}'") == 0
    assert scalar(results, "SELECT count(*) FROM ticks") == before_ticks


def test_records_turn_nan_into_none(smoke):
    con = db.connect(smoke[0])
    result = db.run_sql(con, "SELECT 'nan'::DOUBLE AS x, 1.5 AS y")
    assert db.records(result) == [{"x": None, "y": 1.5}]
    con.close()


def test_empty_or_missing_store_is_a_user_error(tmp_path):
    with pytest.raises(db.StoreError, match="no such results directory"):
        db.connect(tmp_path / "nowhere")
    (tmp_path / "empty" / "runs").mkdir(parents=True)
    with pytest.raises(db.StoreError, match="no stored runs"):
        db.connect(tmp_path / "empty")


# ---- named queries -------------------------------------------------------------------------


def test_every_figure_has_a_named_query_with_a_sweep_parameter():
    from analysis.claims import CHECKS

    queries = db.named_queries()
    for figure in CHECKS:
        assert figure in queries, figure
        assert queries[figure].params == {"sweep": figure}
        assert queries[figure].description
    assert {"overview", "failed_runs"} <= set(queries)


def test_named_query_runs_with_defaults_and_overrides(smoke):
    con = db.connect(smoke[0])
    [row] = db.records(db.run_named(con, "overview"))
    assert (row["sweep"], row["runs"], row["ok"], row["failed"]) == ("smoke", smoke[1], smoke[1], 0)
    # A figure's query over another sweep: the smoke sweep has no discard runs, so it
    # groups into host swapping (policy none) and balloon (policy ws) at two overcommits.
    rows = db.records(db.run_named(con, "fig01_io_amplification", {"sweep": "smoke"}))
    assert sorted((r["mechanism"], r["overcommit"]) for r in rows) == [
        ("balloon", 1.0), ("balloon", 2.0), ("host swapping", 1.0), ("host swapping", 2.0)
    ]  # fmt: skip
    assert db.run_named(con, "fig01_io_amplification").rows == []  # its own sweep: not stored
    with pytest.raises(db.QueryError, match="unknown parameter 'sweeps'"):
        db.run_named(con, "overview", {"sweeps": "x"})
    with pytest.raises(db.QueryError, match="no such named query"):
        db.run_named(con, "no_such_query")
    con.close()


# ---- the CLI -------------------------------------------------------------------------------


def test_query_prints_each_format(smoke, balloonlab):
    results, n_runs, _ = smoke
    sql = 'SELECT run_id, "hypervisor.policy" AS policy, "references" FROM runs ORDER BY run_id'
    code, out, err = balloonlab("query", sql, "--results", str(results), "--format", "csv")
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["run_id", "policy", "references"] and len(rows) == n_runs + 1
    assert {r[1] for r in rows[1:]} == {"none", "ws"}

    code, out, err = balloonlab("query", sql, "--results", str(results), "--format", "json")
    assert code == 0, err
    records = json.loads(out)
    assert [r["run_id"] for r in records] == [r[0] for r in rows[1:]]
    assert all(isinstance(r["references"], int) and r["references"] > 0 for r in records)

    code, out, err = balloonlab("query", sql, "--results", str(results))  # table
    assert code == 0, err
    assert "policy" in out and f"{n_runs} rows" in out
    assert all(r[0] in out for r in rows[1:])

    code, out, _ = balloonlab("query", "overview", "--results", str(results), "--json")
    assert code == 0 and json.loads(out)[0]["runs"] == n_runs
    code, out, _ = balloonlab("query", "--list")
    assert code == 0 and "fig11_che_validation" in out


def test_results_default_to_the_environment(smoke, balloonlab, monkeypatch):
    monkeypatch.setenv("BALLOONLAB_RESULTS", str(smoke[0]))
    code, out, _ = balloonlab("query", "SELECT count(*) AS n FROM runs", "--format", "json")
    assert code == 0 and json.loads(out) == [{"n": smoke[1]}]


@pytest.mark.parametrize(
    "args, needle",
    [
        (["query", "SELEC nothing"], "syntax error"),
        (["query", "SELECT no_such_column FROM runs"], "no_such_column"),
        (["query", "SELECT 1", "--format", "xml"], "--format"),
        (["query", "overview", "--param", "x"], "name=value"),
        (["query", "SELECT 1", "--param", "a=b"], "named queries"),
        (["query", "fig01_io_amplification", "--param", "bogus=1"], "bogus"),
    ],
)
def test_bad_query_is_one_line(args, needle, smoke, balloonlab):
    code, out, err = balloonlab(*args, "--results", str(smoke[0]))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and needle in err, err
    assert "Traceback" not in out + err


@pytest.mark.parametrize("where", ["missing", "empty"])
def test_query_on_an_empty_store_is_one_line(where, tmp_path, balloonlab):
    results = tmp_path / where
    if where == "empty":
        (results / "runs").mkdir(parents=True)
    code, out, err = balloonlab("query", "SELECT 1", "--results", str(results))
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and str(results) in err
    assert "Traceback" not in out + err


@pytest.mark.parametrize("command", ["query", "figures", "reproduce"])
def test_help_has_an_example(command, balloonlab):
    code, out, _ = balloonlab(command, "--help")
    assert code == 0 and "Example: balloonlab" in out
