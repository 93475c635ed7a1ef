"""A store that survives damage: damaged, stray and orphaned files never block or skew
`status`, `query` or `run` (of any sweep), a damaged ticks file makes its run pending again,
and `balloonlab doctor [--fix]` lists them and moves them to quarantine/ (never deletes)."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness import executors
from store import parquet

SPEC = """
[sweep]
name = "{name}"
seed = 5

[base]
ticks = 4
"vms.count" = 2
"vms.mem_mib" = 16

[grid]
"hypervisor.policy" = ["none", "ws"]
"host.overcommit" = [1.0, 1.5]
"""


@pytest.fixture
def balloonlab(monkeypatch, balloonlab_cli, stand_in):
    monkeypatch.setattr(executors, "_default_run_fn", lambda: stand_in)
    return balloonlab_cli


def _run(balloonlab, tmp_path: Path, results: Path, name: str = "dr") -> dict:
    spec = tmp_path / f"{name}.toml"
    spec.write_text(SPEC.format(name=name))
    code, out, err = balloonlab(
        "run", str(spec), "--executor", "local", "--results", str(results), "--json"
    )
    assert code == 0, err
    [report] = json.loads(out)
    return report


def _ids(results: Path, sweep: str = "dr") -> list[str]:
    return sorted(p.stem for p in parquet.sweep_dir(results, "runs", sweep).glob("*.parquet"))


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _status(balloonlab, results: Path) -> tuple[list[dict], str]:
    code, out, err = balloonlab("status", "--results", str(results), "--json")
    assert code == 0, err
    return json.loads(out), err


def _count(balloonlab, results: Path, sql: str) -> tuple[int, str]:
    code, out, err = balloonlab("query", sql, "--results", str(results), "--format", "csv")
    assert code == 0, err
    return int(out.splitlines()[1]), err


def test_a_truncated_ticks_file_is_redone_by_the_next_run(tmp_path, balloonlab):
    results = tmp_path / "results"
    assert _run(balloonlab, tmp_path, results)["done"] == 4
    victim = parquet.run_file(results, "ticks", "dr", _ids(results)[0])
    _truncate(victim)

    rows, err = _status(balloonlab, results)
    assert rows[0]["done"] == 3  # no longer "done 4, rc 0, never repaired"
    assert "damaged" in err and len(err.strip().splitlines()) == 1

    report = _run(balloonlab, tmp_path, results)
    assert (report["done"], report["skipped"]) == (1, 3)
    pq.read_table(victim)  # rewritten whole
    rows, err = _status(balloonlab, results)
    assert rows[0]["done"] == 4 and err == ""


def test_a_truncated_runs_file_blocks_nothing(tmp_path, balloonlab):
    results = tmp_path / "results"
    _run(balloonlab, tmp_path, results)
    _run(balloonlab, tmp_path, results, name="other")
    _truncate(parquet.run_file(results, "runs", "dr", _ids(results)[1]))

    rows, err = _status(balloonlab, results)
    assert {r["sweep"]: r["done"] for r in rows} == {"dr": 3, "other": 4}
    assert err.count("\n") == 1 and "balloonlab doctor" in err
    n, err = _count(balloonlab, results, "SELECT count(*) FROM runs")
    assert n == 7 and "damaged" in err and err.count("\n") == 1
    n, _ = _count(balloonlab, results, "SELECT 1")
    assert n == 1
    n, _ = _count(balloonlab, results, "SELECT count(*) FROM ticks WHERE sweep = 'other'")
    assert n == 4 * 4 * 3
    assert _run(balloonlab, tmp_path, results)["done"] == 1  # redone


def test_garbage_backup_and_foreign_schema_are_not_counted(tmp_path, balloonlab):
    results = tmp_path / "results"
    _run(balloonlab, tmp_path, results)
    d = parquet.sweep_dir(results, "runs", "dr")
    first = _ids(results)[0]
    (d / "x.parquet").write_bytes(b"garbage" * 100)
    (d / "backup.parquet").write_bytes((d / f"{first}.parquet").read_bytes())
    pq.write_table(pa.table({"sweep": ["dr"], "run_id": [1]}), d / "abcdefabcdefabcd.parquet")

    rows, err = _status(balloonlab, results)
    assert rows[0]["done"] == 4  # not 5 or 6
    assert err.startswith("note: 3 damaged or stray files skipped")
    n, _ = _count(balloonlab, results, "SELECT count(*) FROM runs")
    assert n == 4
    n, _ = _count(balloonlab, results, "SELECT count(DISTINCT run_id) FROM ticks")
    assert n == 4
    code, out, err = balloonlab(
        "figures", "--results", str(results), "--out", str(tmp_path / "f"), "--json"
    )
    assert "Traceback" not in err and "ArrowInvalid" not in err
    assert _run(balloonlab, tmp_path, results)["skipped"] == 4


def test_doctor_lists_and_quarantines_without_deleting(tmp_path, balloonlab):
    results = tmp_path / "results"
    _run(balloonlab, tmp_path, results)
    ids = _ids(results)
    runs_dir = parquet.sweep_dir(results, "runs", "dr")
    ticks_dir = parquet.sweep_dir(results, "ticks", "dr")
    _truncate(ticks_dir / f"{ids[0]}.parquet")  # damaged ticks -> orphaned summary
    (runs_dir / f"{ids[1]}.parquet").unlink()  # orphaned ticks
    (runs_dir / "backup.parquet").write_bytes((runs_dir / f"{ids[2]}.parquet").read_bytes())
    temp = runs_dir / f".{ids[3]}.parquet.999.dead.tmp"
    temp.write_bytes(b"PAR1")
    (results / "runs" / "loose.parquet").write_bytes(b"x")
    before = {p.name: p.read_bytes() for p in results.rglob("*") if p.is_file()}

    code, out, err = balloonlab("doctor", "--results", str(results), "--json")
    assert code == 1, err  # problems found, not fixed
    found = {(r["path"], r["kind"]) for r in json.loads(out)}
    assert found == {
        (f"ticks/sweep=dr/{ids[0]}.parquet", "damaged"),
        (f"runs/sweep=dr/{ids[0]}.parquet", "orphaned"),
        (f"ticks/sweep=dr/{ids[1]}.parquet", "orphaned"),
        ("runs/sweep=dr/backup.parquet", "stray"),
        (f"runs/sweep=dr/{temp.name}", "temp"),
        ("runs/loose.parquet", "stray"),
    }
    code, out, _ = balloonlab("doctor", "--results", str(results))
    assert code == 1 and "backup.parquet" in out and "--fix" in out

    code, out, err = balloonlab("doctor", "--results", str(results), "--fix", "--json")
    assert code == 0, err
    for row in json.loads(out):
        assert row["moved_to"] == f"quarantine/{row['path']}"
        assert (results / row["moved_to"]).is_file()
        assert not (results / row["path"]).exists()
    after = {p.name: p.read_bytes() for p in results.rglob("*") if p.is_file()}
    assert all(after.get(name) == data for name, data in before.items())  # nothing deleted

    code, out, _ = balloonlab("doctor", "--results", str(results))
    assert code == 0 and "no damaged" in out
    report = _run(balloonlab, tmp_path, results)
    assert (report["done"], report["skipped"]) == (2, 2)  # the two broken runs are redone
    rows, err = _status(balloonlab, results)
    assert rows[0]["done"] == 4 and err == ""

    # a second quarantine of the same path keeps the first copy
    (runs_dir / "backup.parquet").write_bytes(b"again")
    code, out, _ = balloonlab("doctor", "--results", str(results), "--fix", "--json")
    [row] = json.loads(out)
    assert row["moved_to"] == "quarantine/runs/sweep=dr/backup.parquet.1"
    assert (results / "quarantine/runs/sweep=dr/backup.parquet").read_bytes() == before[
        "backup.parquet"
    ]


def test_doctor_leaves_a_live_writers_temporary_alone(tmp_path, balloonlab):
    from store import sweep_lock

    results = tmp_path / "results"
    _run(balloonlab, tmp_path, results)
    temp = parquet.sweep_dir(results, "ticks", "dr") / ".abc.parquet.1.x.tmp"
    temp.write_bytes(b"PAR1")
    lock = sweep_lock.lock_path(results, "dr")
    lock.write_text(json.dumps({"pid": os.getppid(), "host": os.uname().nodename,
                                "started": time.strftime("%H:%M")}))  # fmt: skip
    code, out, _ = balloonlab("doctor", "--results", str(results), "--fix", "--json")
    [row] = json.loads(out)
    assert row["kind"] == "temp" and row["moved_to"] is None and "being run" in row["note"]
    assert temp.exists() and code == 1


def test_doctor_on_a_missing_directory_is_one_line(tmp_path, balloonlab):
    code, out, err = balloonlab("doctor", "--results", str(tmp_path / "nowhere"))
    assert code == 2 and len(err.strip().splitlines()) == 1 and "nowhere" in err


def test_doctor_help_has_an_example(balloonlab):
    code, out, _ = balloonlab("doctor", "--help")
    assert code == 0 and "Example: balloonlab doctor" in out
