"""The Parquet store: layout, provenance, atomic writes (no half file is ever visible),
stored/failed run ids, and compaction that keeps every row."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness.executors import execute_run
from harness.spec import load_spec
from store import parquet

SPEC = """
[sweep]
name = "st"
seed = 11

[base]
ticks = {ticks}
"vms.count" = 2
"vms.mem_mib" = 16

[grid]
"host.overcommit" = [{overcommits}]
"disk.iops" = [1000.0, 666.0]
"""


def make_runs(tmp_path: Path, n_overcommit: int = 3, ticks: int = 5):
    overcommits = ", ".join(str(1.0 + 0.1 * i) for i in range(n_overcommit))
    path = tmp_path / "st.toml"
    path.write_text(SPEC.format(ticks=ticks, overcommits=overcommits))
    return load_spec(path).runs


def store_all(results: Path, runs, run_fn) -> None:
    for run in runs:
        summary, ticks, _ = execute_run(run, run_fn)
        parquet.write_run(results, run, summary, ticks, node_id=None, host="testhost")


def all_parquet(results: Path) -> list[Path]:
    return sorted(results.rglob("*.parquet"))


def test_layout_columns_and_provenance(tmp_path, stand_in):
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    ok = next(r for r in runs if r.config.disk.iops != 666.0)
    summary, ticks, _ = execute_run(ok, stand_in)
    path = parquet.write_run(results, ok, summary, ticks, node_id="node-abc", host="h1")

    assert path == results / "runs" / "sweep=st" / f"{ok.run_id}.parquet"
    ticks_path = results / "ticks" / "sweep=st" / f"{ok.run_id}.parquet"
    assert ticks_path.is_file()

    row = pq.read_table(path)
    assert row.num_rows == 1
    assert row.column_names[:3] == ["sweep", "run_id", "replicate"]
    got = row.to_pylist()[0]
    assert (got["sweep"], got["run_id"], got["replicate"]) == ("st", ok.run_id, 0)
    assert (got["ray_node_id"], got["worker_host"]) == ("node-abc", "h1")
    assert got["host.overcommit"] == ok.config.host.overcommit and got["seed"] == ok.seed

    series = pq.read_table(ticks_path)
    assert series.num_rows == ticks.num_rows == 5 * 3
    assert set(series.column("run_id").to_pylist()) == {ok.run_id}

    meta = parquet.read_provenance(path)
    assert meta["config"] == ok.config.to_json()
    assert (meta["seed"], meta["run_id"], meta["sweep"]) == (str(ok.seed), ok.run_id, "st")
    assert meta["replicate"] == "0" and meta["ray_node_id"] == "node-abc"
    assert meta["outcome"] == "ok"
    for key in ("version", "python", "numpy", "pyarrow", "ray", "host", "driver_host"):
        assert meta.get(key), key
    commit = meta.get("git_commit")
    assert commit is None or (len(commit) == 40 and int(commit, 16) >= 0)
    assert parquet.read_provenance(ticks_path)["run_id"] == ok.run_id


def test_failed_runs_are_stored_and_count_as_missing(tmp_path, stand_in):
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    store_all(results, runs, stand_in)
    failed = {r.run_id for r in runs if r.config.disk.iops == 666.0}
    ok = {r.run_id for r in runs} - failed
    assert failed and ok

    assert parquet.stored_run_ids(results, "st") == ok
    assert parquet.failed_run_ids(results, "st") == failed
    one = next(r for r in runs if r.run_id in failed)
    row = pq.read_table(parquet.run_file(results, "runs", "st", one.run_id)).to_pylist()[0]
    assert row["outcome"] == "failed" and row["error"] == "ValueError: injected failure"
    assert not parquet.run_file(results, "ticks", "st", one.run_id).exists()

    # retried successfully: the same file is overwritten, the run now counts as stored
    summary, ticks, _ = execute_run(one, lambda cfg: stand_in(_with_iops(cfg, 1.0)))
    parquet.write_run(results, one, summary, ticks)
    assert one.run_id in parquet.stored_run_ids(results, "st")
    assert len(list((results / "runs" / "sweep=st").glob("*.parquet"))) == len(runs)


def _with_iops(config, iops):
    import dataclasses

    return dataclasses.replace(config, disk=dataclasses.replace(config.disk, iops=iops))


def test_a_writer_that_dies_mid_write_leaves_no_file(tmp_path, stand_in, monkeypatch):
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    run = runs[0]
    summary, ticks, _ = execute_run(run, stand_in)
    parquet.write_run(results, run, summary, ticks)
    before = {p: p.read_bytes() for p in all_parquet(results)}

    def half_write(table, where, *args, **kwargs):
        with open(where, "wb") as f:  # the magic bytes and a bit, then the disk "fills"
            f.write(b"PAR1" + b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="No space"):
        parquet.write_run(results, run, summary, ticks)  # overwrite of a stored run
    with pytest.raises(OSError, match="No space"):
        parquet.write_run(results, runs[1], *execute_run(runs[1], stand_in)[:2])  # a new run
    monkeypatch.undo()

    # the earlier files are untouched, the new run left nothing, no temporaries remain
    assert {p: p.read_bytes() for p in all_parquet(results)} == before
    assert [p for p in results.rglob("*") if p.is_file() and p.suffix != ".parquet"] == []
    for path in all_parquet(results):
        pq.read_table(path)


def test_readers_never_see_a_half_written_file(tmp_path, stand_in):
    """A reader polling results/ while runs with large series are stored: every visible
    .parquet file reads completely."""
    results = tmp_path / "results"
    runs = make_runs(tmp_path, n_overcommit=6, ticks=20_000)  # 60k tick rows per run
    done = threading.Event()
    errors: list[BaseException] = []

    def writer():
        try:
            store_all(results, runs, stand_in)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            done.set()

    thread = threading.Thread(target=writer)
    thread.start()
    reads = 0
    while not done.is_set():
        for path in all_parquet(results):
            try:
                table = pq.read_table(path)
            except FileNotFoundError:  # replaced between listing and reading: fine
                continue
            assert table.num_rows in (1, 20_000 * 3), path
            reads += 1
    thread.join()
    assert not errors
    assert reads > 0
    assert len(all_parquet(results)) == len(runs) + len(runs) // 2  # failed runs: no ticks


def test_compact_keeps_every_row_and_stored_ids(tmp_path, stand_in):
    results = tmp_path / "results"
    runs = make_runs(tmp_path, n_overcommit=4)
    store_all(results, runs, stand_in)
    before = {t: _sorted(parquet.read_table(results, t, "st")) for t in parquet.TABLES}
    outcomes = parquet.stored_outcomes(results, "st")

    reports = parquet.compact(results, "st")
    for table, report in zip(parquet.TABLES, reports, strict=True):
        files = list((results / table / "sweep=st").glob("*.parquet"))
        assert files == [report.path] and report.path.name.startswith("part-compact-")
        assert report.rows == before[table].num_rows
        after = _sorted(pq.read_table(report.path).replace_schema_metadata(None))
        assert after.num_rows == before[table].num_rows
        assert _same_rows(after, before[table])
    assert parquet.stored_outcomes(results, "st") == outcomes  # failed rows kept, too
    prov = json.loads(parquet.read_provenance(reports[0].path)["provenance"])
    assert set(prov) == {r.run_id for r in runs}
    assert prov[runs[0].run_id]["config"] == runs[0].config.to_json()

    # later runs land in their own files again, next to the compacted part
    (tmp_path / "more").mkdir()
    new = [r for r in make_runs(tmp_path / "more", n_overcommit=5) if r.run_id not in outcomes]
    assert len(new) == 2
    store_all(results, new, stand_in)
    new_ok = {r.run_id for r in new if r.config.disk.iops != 666.0}
    assert (
        parquet.stored_run_ids(results, "st")
        == (set(outcomes) - set(parquet.failed_run_ids(results, "st"))) | new_ok
    )
    assert len(parquet.stored_outcomes(results, "st")) == len(runs) + 2
    parquet.compact(results, "st")
    merged = parquet.read_table(results, "runs", "st")
    assert merged.num_rows == len(runs) + 2
    assert len(set(merged.column("run_id").to_pylist())) == merged.num_rows


def test_a_retried_run_replaces_its_compacted_failed_row(tmp_path, stand_in):
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    store_all(results, runs, stand_in)
    parquet.compact(results, "st")
    failed = sorted(parquet.failed_run_ids(results, "st"))
    one = next(r for r in runs if r.run_id == failed[0])

    parquet.drop_runs(results, "st", [one.run_id], compacted_only=True)
    assert one.run_id not in parquet.stored_outcomes(results, "st")
    summary, ticks, _ = execute_run(one, lambda cfg: stand_in(_with_iops(cfg, 1.0)))
    parquet.write_run(results, one, summary, ticks)

    for table in parquet.TABLES:
        rows = parquet.read_table(results, table, "st")
        ids = rows.column("run_id").to_pylist()
        assert one.run_id in ids
    runs_table = parquet.read_table(results, "runs", "st")
    assert runs_table.num_rows == len(runs)
    assert parquet.failed_run_ids(results, "st") == set(failed[1:])
    parquet.compact(results, "st")
    assert parquet.read_table(results, "runs", "st").num_rows == len(runs)


def test_crash_between_compaction_and_cleanup_duplicates_nothing_for_readers(tmp_path, stand_in):
    """If the driver dies after the merged part is in place but before the sources are
    deleted, each run is visible twice on disk; reading and re-compacting keep one copy."""
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    store_all(results, runs, stand_in)
    sources = {p: p.read_bytes() for p in all_parquet(results)}
    parquet.compact(results, "st")
    for path, data in sources.items():  # resurrect the sources, as if never deleted
        path.write_bytes(data)
    assert parquet.read_table(results, "runs", "st").num_rows == len(runs)
    parquet.compact(results, "st")
    assert len(all_parquet(results)) == 2
    assert parquet.read_table(results, "runs", "st").num_rows == len(runs)
    assert parquet.read_table(results, "ticks", "st").num_rows == (len(runs) // 2) * 5 * 3


def test_temp_files_are_hidden_and_cleaned(tmp_path):
    d = parquet.sweep_dir(tmp_path, "runs", "st")
    d.mkdir(parents=True)
    stale = d / ".abc.parquet.tmp"
    stale.write_bytes(b"PAR1")
    assert parquet.stored_outcomes(tmp_path, "st") == {}
    assert parquet.clean_temp_files(tmp_path, "st", older_than=3600) == 0
    assert parquet.clean_temp_files(tmp_path, "st", older_than=-1) == 1
    assert not stale.exists()


def _sorted(table: pa.Table) -> pa.Table:
    keys = [("run_id", "ascending")] + (
        [("tick", "ascending"), ("vm", "ascending")] if "tick" in table.column_names else []
    )
    return table.sort_by(keys)


def _same_rows(a: pa.Table, b: pa.Table) -> bool:
    assert set(a.column_names) == set(b.column_names)
    return (
        a.select(sorted(a.column_names)).to_pylist() == b.select(sorted(b.column_names)).to_pylist()
    )


# ---- integrity on read ---------------------------------------------------------------------


def _stored(tmp_path: Path, stand_in, ticks: int = 5):
    """A sweep `st` stored by the store itself: 6 runs, 3 ok (with ticks), 3 failed."""
    results = tmp_path / "results"
    runs = make_runs(tmp_path, ticks=ticks)
    store_all(results, runs, stand_in)
    ok = sorted(r.run_id for r in runs if r.config.disk.iops != 666.0)
    return results, runs, ok


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def test_a_truncated_summary_file_is_skipped_and_reported(tmp_path, stand_in):
    results, runs, ok = _stored(tmp_path, stand_in)
    victim = parquet.run_file(results, "runs", "st", ok[0])
    _truncate(victim)
    scan = parquet.scan_sweep(results, "st")
    assert ok[0] not in scan.outcomes and len(scan.outcomes) == len(runs) - 1
    kinds = {p.path: p.kind for p in scan.problems}
    assert kinds[victim] == parquet.DAMAGED
    # its ticks file is now an orphan: listed, not counted
    assert kinds[parquet.run_file(results, "ticks", "st", ok[0])] == parquet.ORPHANED
    assert victim not in scan.files["runs"]
    assert parquet.read_table(results, "runs", "st").num_rows == len(runs) - 1
    note = parquet.skipped_note(scan.problems, results)
    assert note.startswith("2 damaged or stray files skipped") and "balloonlab doctor" in note
    assert "runs/sweep=st/" in note and "\n" not in note


def test_a_truncated_ticks_file_makes_its_run_pending(tmp_path, stand_in):
    results, runs, ok = _stored(tmp_path, stand_in)
    victim = parquet.run_file(results, "ticks", "st", ok[1])
    _truncate(victim)
    assert ok[1] not in parquet.stored_run_ids(results, "st")
    assert parquet.stored_run_ids(results, "st") == set(ok) - {ok[1]}
    problems = {p.path: p for p in parquet.scan_sweep(results, "st").problems}
    assert problems[victim].kind == parquet.DAMAGED
    summary = parquet.run_file(results, "runs", "st", ok[1])
    assert problems[summary].kind == parquet.ORPHANED and "damaged" in problems[summary].reason


def test_a_ticks_file_with_fewer_rows_than_recorded_is_damaged(tmp_path, stand_in):
    results, runs, ok = _stored(tmp_path, stand_in)
    path = parquet.run_file(results, "ticks", "st", ok[0])
    table = pq.read_table(path)
    pq.write_table(table.slice(0, 3).replace_schema_metadata(table.schema.metadata), path)
    problems = {p.path: p for p in parquet.scan_sweep(results, "st").problems}
    assert problems[path].kind == parquet.DAMAGED and "recorded 15" in problems[path].reason
    assert ok[0] not in parquet.stored_run_ids(results, "st")


def test_garbage_backup_and_foreign_files_are_never_counted(tmp_path, stand_in):
    results, runs, ok = _stored(tmp_path, stand_in)
    d = parquet.sweep_dir(results, "runs", "st")
    (d / "x.parquet").write_bytes(b"this is not parquet at all")
    (d / "backup.parquet").write_bytes(parquet.run_file(results, "runs", "st", ok[0]).read_bytes())
    # a copy under another run's name: its run_id inside disagrees with the name
    (d / "0123456789abcdef.parquet").write_bytes((d / f"{ok[0]}.parquet").read_bytes())
    pq.write_table(pa.table({"a": [1, 2], "b": ["x", "y"]}), d / "fedcba9876543210.parquet")
    # a file of another sweep dropped in here
    other = tmp_path / "o"
    other.mkdir()
    src = make_runs(other)[0]
    import dataclasses

    foreign_run = dataclasses.replace(src, sweep="elsewhere")
    parquet.write_run(tmp_path / "elsewhere", foreign_run, *execute_run(foreign_run, stand_in)[:2])
    moved = parquet.run_file(tmp_path / "elsewhere", "runs", "elsewhere", src.run_id)
    (d / "aaaaaaaaaaaaaaaa.parquet").write_bytes(moved.read_bytes())

    scan = parquet.scan_sweep(results, "st")
    assert set(scan.outcomes) == {r.run_id for r in runs}  # 6 runs, not 11
    reasons = {p.path.name: (p.kind, p.reason) for p in scan.problems}
    assert reasons["x.parquet"][0] == parquet.DAMAGED
    assert reasons["backup.parquet"] == (parquet.STRAY, "not named <run_id>.parquet")
    assert reasons["0123456789abcdef.parquet"][0] == parquet.STRAY
    assert ok[0] in reasons["0123456789abcdef.parquet"][1]
    assert reasons["fedcba9876543210.parquet"] == (
        parquet.STRAY,
        "foreign schema: no column 'sweep'",
    )
    assert reasons["aaaaaaaaaaaaaaaa.parquet"] == (parquet.STRAY, "holds rows of sweep 'elsewhere'")
    assert parquet.read_table(results, "runs", "st").num_rows == len(runs)


def test_orphan_ticks_are_listed_not_counted(tmp_path, stand_in):
    results, runs, ok = _stored(tmp_path, stand_in)
    parquet.run_file(results, "runs", "st", ok[2]).unlink()
    scan = parquet.scan_sweep(results, "st")
    orphan = parquet.run_file(results, "ticks", "st", ok[2])
    assert [(p.path, p.kind) for p in scan.problems] == [(orphan, parquet.ORPHANED)]
    assert orphan not in scan.files["ticks"]
    assert parquet.read_table(results, "ticks", "st").num_rows == 2 * 15


def test_compaction_never_merges_or_deletes_a_bad_file(tmp_path, stand_in):
    results, runs, ok = _stored(tmp_path, stand_in)
    d = parquet.sweep_dir(results, "runs", "st")
    (d / "backup.parquet").write_bytes(parquet.run_file(results, "runs", "st", ok[0]).read_bytes())
    parquet.compact(results, "st")
    assert (d / "backup.parquet").exists()
    assert parquet.read_table(results, "runs", "st").num_rows == len(runs)
    assert set(parquet.stored_outcomes(results, "st")) == {r.run_id for r in runs}


def test_two_writers_of_one_run_never_collide_on_a_temporary(tmp_path, stand_in):
    """The fixed temporary name made a second writer's rename fail (FileNotFoundError)."""
    results = tmp_path / "results"
    run = make_runs(tmp_path)[0]
    summary, ticks, _ = execute_run(run, stand_in)
    errors: list[BaseException] = []

    def writer():
        try:
            for _ in range(30):
                parquet.write_run(results, run, summary, ticks)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert parquet.stored_run_ids(results, "st") == {run.run_id}
    assert [p for p in results.rglob("*") if p.name.endswith(".tmp")] == []
    name = parquet._temp_name(parquet.run_file(results, "runs", "st", run.run_id)).name
    assert name.startswith(f".{run.run_id}.parquet.{__import__('os').getpid()}.")
