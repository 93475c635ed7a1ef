"""The Parquet store: layout, provenance, atomic writes (no half file is ever visible),
stored/failed run ids, and compaction that keeps every row."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from harness import store
from harness.executors import execute_run
from harness.spec import load_spec

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
        store.write_run(results, run, summary, ticks, node_id=None, host="testhost")


def all_parquet(results: Path) -> list[Path]:
    return sorted(results.rglob("*.parquet"))


def test_layout_columns_and_provenance(tmp_path, stand_in):
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    ok = next(r for r in runs if r.config.disk.iops != 666.0)
    summary, ticks, _ = execute_run(ok, stand_in)
    path = store.write_run(results, ok, summary, ticks, node_id="node-abc", host="h1")

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

    meta = store.read_provenance(path)
    assert meta["config"] == ok.config.to_json()
    assert (meta["seed"], meta["run_id"], meta["sweep"]) == (str(ok.seed), ok.run_id, "st")
    assert meta["replicate"] == "0" and meta["ray_node_id"] == "node-abc"
    assert meta["outcome"] == "ok"
    for key in ("version", "python", "numpy", "pyarrow", "ray", "host", "driver_host"):
        assert meta.get(key), key
    commit = meta.get("git_commit")
    assert commit is None or (len(commit) == 40 and int(commit, 16) >= 0)
    assert store.read_provenance(ticks_path)["run_id"] == ok.run_id


def test_failed_runs_are_stored_and_count_as_missing(tmp_path, stand_in):
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    store_all(results, runs, stand_in)
    failed = {r.run_id for r in runs if r.config.disk.iops == 666.0}
    ok = {r.run_id for r in runs} - failed
    assert failed and ok

    assert store.stored_run_ids(results, "st") == ok
    assert store.failed_run_ids(results, "st") == failed
    one = next(r for r in runs if r.run_id in failed)
    row = pq.read_table(store.run_file(results, "runs", "st", one.run_id)).to_pylist()[0]
    assert row["outcome"] == "failed" and row["error"] == "ValueError: injected failure"
    assert not store.run_file(results, "ticks", "st", one.run_id).exists()

    # retried successfully: the same file is overwritten, the run now counts as stored
    summary, ticks, _ = execute_run(one, lambda cfg: stand_in(_with_iops(cfg, 1.0)))
    store.write_run(results, one, summary, ticks)
    assert one.run_id in store.stored_run_ids(results, "st")
    assert len(list((results / "runs" / "sweep=st").glob("*.parquet"))) == len(runs)


def _with_iops(config, iops):
    import dataclasses

    return dataclasses.replace(config, disk=dataclasses.replace(config.disk, iops=iops))


def test_a_writer_that_dies_mid_write_leaves_no_file(tmp_path, stand_in, monkeypatch):
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    run = runs[0]
    summary, ticks, _ = execute_run(run, stand_in)
    store.write_run(results, run, summary, ticks)
    before = {p: p.read_bytes() for p in all_parquet(results)}

    def half_write(table, where, *args, **kwargs):
        with open(where, "wb") as f:  # the magic bytes and a bit, then the disk "fills"
            f.write(b"PAR1" + b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", half_write)
    with pytest.raises(OSError, match="No space"):
        store.write_run(results, run, summary, ticks)  # overwrite of a stored run
    with pytest.raises(OSError, match="No space"):
        store.write_run(results, runs[1], *execute_run(runs[1], stand_in)[:2])  # a new run
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
    before = {t: _sorted(store.read_table(results, t, "st")) for t in store.TABLES}
    outcomes = store.stored_outcomes(results, "st")

    reports = store.compact(results, "st")
    for table, report in zip(store.TABLES, reports, strict=True):
        files = list((results / table / "sweep=st").glob("*.parquet"))
        assert files == [report.path] and report.path.name.startswith("part-compact-")
        assert report.rows == before[table].num_rows
        after = _sorted(pq.read_table(report.path).replace_schema_metadata(None))
        assert after.num_rows == before[table].num_rows
        assert _same_rows(after, before[table])
    assert store.stored_outcomes(results, "st") == outcomes  # failed rows kept, too
    prov = json.loads(store.read_provenance(reports[0].path)["provenance"])
    assert set(prov) == {r.run_id for r in runs}
    assert prov[runs[0].run_id]["config"] == runs[0].config.to_json()

    # later runs land in their own files again, next to the compacted part
    (tmp_path / "more").mkdir()
    new = [r for r in make_runs(tmp_path / "more", n_overcommit=5) if r.run_id not in outcomes]
    assert len(new) == 2
    store_all(results, new, stand_in)
    new_ok = {r.run_id for r in new if r.config.disk.iops != 666.0}
    assert (
        store.stored_run_ids(results, "st")
        == (set(outcomes) - set(store.failed_run_ids(results, "st"))) | new_ok
    )
    assert len(store.stored_outcomes(results, "st")) == len(runs) + 2
    store.compact(results, "st")
    merged = store.read_table(results, "runs", "st")
    assert merged.num_rows == len(runs) + 2
    assert len(set(merged.column("run_id").to_pylist())) == merged.num_rows


def test_a_retried_run_replaces_its_compacted_failed_row(tmp_path, stand_in):
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    store_all(results, runs, stand_in)
    store.compact(results, "st")
    failed = sorted(store.failed_run_ids(results, "st"))
    one = next(r for r in runs if r.run_id == failed[0])

    store.drop_runs(results, "st", [one.run_id], compacted_only=True)
    assert one.run_id not in store.stored_outcomes(results, "st")
    summary, ticks, _ = execute_run(one, lambda cfg: stand_in(_with_iops(cfg, 1.0)))
    store.write_run(results, one, summary, ticks)

    for table in store.TABLES:
        rows = store.read_table(results, table, "st")
        ids = rows.column("run_id").to_pylist()
        assert one.run_id in ids
    runs_table = store.read_table(results, "runs", "st")
    assert runs_table.num_rows == len(runs)
    assert store.failed_run_ids(results, "st") == set(failed[1:])
    store.compact(results, "st")
    assert store.read_table(results, "runs", "st").num_rows == len(runs)


def test_crash_between_compaction_and_cleanup_duplicates_nothing_for_readers(tmp_path, stand_in):
    """If the driver dies after the merged part is in place but before the sources are
    deleted, each run is visible twice on disk; reading and re-compacting keep one copy."""
    results = tmp_path / "results"
    runs = make_runs(tmp_path)
    store_all(results, runs, stand_in)
    sources = {p: p.read_bytes() for p in all_parquet(results)}
    store.compact(results, "st")
    for path, data in sources.items():  # resurrect the sources, as if never deleted
        path.write_bytes(data)
    assert store.read_table(results, "runs", "st").num_rows == len(runs)
    store.compact(results, "st")
    assert len(all_parquet(results)) == 2
    assert store.read_table(results, "runs", "st").num_rows == len(runs)
    assert store.read_table(results, "ticks", "st").num_rows == (len(runs) // 2) * 5 * 3


def test_temp_files_are_hidden_and_cleaned(tmp_path):
    d = store.sweep_dir(tmp_path, "runs", "st")
    d.mkdir(parents=True)
    stale = d / ".abc.parquet.tmp"
    stale.write_bytes(b"PAR1")
    assert store.stored_outcomes(tmp_path, "st") == {}
    assert store.clean_temp_files(tmp_path, "st", older_than=3600) == 0
    assert store.clean_temp_files(tmp_path, "st", older_than=-1) == 1
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
