"""Trace- and DAMON-driven guests: the references a guest issues are the trace's, in
order; looping, idling and timestamps; MSR and damo fixtures drive a guest; bad input is
one line naming the file and the problem."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pytest

import sim_core
from sim_core.config import ConfigError
from sim_core.constants import ANON, FILE
from sim_core.simulation import Simulation
from sim_core.state import C_REFS
from sim_core.workloads import check_workload_params, make_workload

MEM_MIB = 16
MEM_PAGES = MEM_MIB * 256  # 4 KiB pages
TRACE = np.array([40, 3, 40, 17, 3, 900, 40, 17, 5, 3], np.int64)  # sparse ids
PACKED = np.searchsorted(np.unique(TRACE), TRACE)  # pack: distinct ids in id order


def started(params: dict, mem_pages: int = MEM_PAGES, name: str = "trace"):
    w = make_workload(name, params, mem_pages, 4)
    w.reset(np.random.default_rng(0))
    return w


def config(params: dict, name: str = "trace", **overrides):
    base = {"vms.count": 1, "vms.mem_mib": MEM_MIB, "vms.workload": name,
            "vms.workload_params": params, "ticks": 12}  # fmt: skip
    return sim_core.build_config({}, **(base | overrides))


def simulate(cfg, ticks: int) -> tuple[Simulation, list[int]]:
    """Run ``ticks`` ticks; the kernel's reference counter after each."""
    sim = Simulation(cfg)
    refs = []
    for _ in range(ticks):
        sim.step()
        refs.append(int(sim.world.cnt[0, C_REFS]))
    return sim, refs


def recording(sim: Simulation) -> list[np.ndarray]:
    """Record every page array the guest's workload hands the simulation."""
    wl, handed = sim.workloads[0], []
    original = wl.generate

    def generate(n, until_ms=float("inf")):
        pages, writes = original(n, until_ms)
        handed.append(np.array(pages))
        return pages, writes

    wl.generate = generate
    return handed


@pytest.fixture
def npy(tmp_path):
    path = tmp_path / "t.npy"
    np.save(path, TRACE)
    return str(path)


# ---- the references are the trace's ---------------------------------------------------------


def test_workload_streams_the_trace_in_order_packed_onto_guest_pages(npy):
    w = started({"path": npy, "at_end": "idle"})
    assert w.n_pages == 5  # distinct ids
    pages, writes = w.generate(4)
    more, _ = w.generate(100)
    np.testing.assert_array_equal(np.concatenate([pages, more]), PACKED)
    assert pages.dtype == np.int32 and writes.dtype == np.uint8 and not writes.any()
    assert w.generate(100)[0].size == 0  # idle at the end
    assert (w.page_kind == ANON).all()  # a page-id trace: anonymous memory by default


def test_loop_starts_the_trace_again(npy):
    w = started({"path": npy, "at_end": "loop"})
    a, _ = w.generate(7)
    b, _ = w.generate(18)
    np.testing.assert_array_equal(np.concatenate([a, b]), np.tile(PACKED, 3)[:25])


def test_direct_and_hash_mappings(npy):
    w = started({"path": npy, "mapping": "direct"})
    assert w.n_pages == MEM_PAGES
    np.testing.assert_array_equal(w.generate(10)[0], TRACE)
    h = started({"path": npy, "mapping": "hash", "footprint_mib": 1})
    assert h.n_pages == 256
    pages = h.generate(10)[0]
    assert pages.max() < 256
    # the same id always lands on the same page, different ids (here) on different ones
    for a in np.unique(TRACE):
        assert len(set(pages[TRACE == a].tolist())) == 1
    assert len(set(pages.tolist())) == len(np.unique(TRACE))


def test_the_kernel_receives_exactly_the_trace(npy):
    """First N references read back from the kernel's counter, and what the workload
    handed over is the trace, in order."""
    cfg = config({"path": npy, "at_end": "idle"}, warm_start=False)
    sim = Simulation(cfg)
    handed = recording(sim)
    refs = []
    for _ in range(3):
        sim.step()
        refs.append(int(sim.world.cnt[0, C_REFS]))
    assert refs == [TRACE.size] * 3  # all of it in the first tick, then idle
    np.testing.assert_array_equal(np.concatenate(handed), PACKED)
    summary = sim_core.run(cfg).summary
    assert summary["references"] == TRACE.size
    assert summary["outcome"] == "ok"
    assert summary["guest_faults"] == np.unique(TRACE).size  # each page faults once, cold


def test_a_looping_trace_keeps_the_guest_busy_like_a_synthetic_one(npy):
    _, refs = simulate(config({"path": npy}), 3)
    per_tick = np.diff([0, *refs])
    synthetic = simulate(config({}, name="zipf"), 3)[1]
    assert (per_tick > 1000).all()  # far more than one pass of the trace
    assert refs[-1] == pytest.approx(synthetic[-1], rel=0.2)


def test_timestamps_are_honoured_tick_by_tick(tmp_path):
    # one reference every 150 ms of trace time, 100 ms ticks
    path = tmp_path / "timed.csv"
    n = 10
    pcsv.write_csv(pa.table({"page": np.arange(n), "time": np.arange(n) * 0.150}), path)
    params = {"path": str(path), "timing": "timestamps", "at_end": "idle"}
    _, refs = simulate(config(params), 8)
    # due before the end of tick k (k+1) x 100 ms: references at 0, 150, 300, ... ms
    expected = [int(np.sum(np.arange(n) * 150 < (k + 1) * 100)) for k in range(8)]
    assert refs == expected == [1, 2, 2, 3, 4, 4, 5, 6]
    # twice as fast: time_scale 0.5
    _, fast = simulate(config(params | {"time_scale": 0.5}), 4)
    assert fast == [int(np.sum(np.arange(n) * 75 < (k + 1) * 100)) for k in range(4)]
    # looping: the second pass starts one mean gap after the last reference
    w = started({"path": str(path), "timing": "timestamps", "at_end": "loop"})
    assert w.generate(100, 1499.0)[0].size == n  # 0 .. 1350 ms, the loop lasts 1500 ms
    assert w.generate(100, 1501.0)[0].size == 1
    assert w.generate(100, 1651.0)[0].size == 1  # 1500 + 150 ms


def test_rate_timing_issues_refs_per_second(npy):
    params = {"path": npy, "timing": "rate", "refs_per_s": 30}
    _, refs = simulate(config(params), 3)
    assert refs == [3, 6, 9]  # 30 per second: 3 per 100 ms tick


def test_timing_timestamps_without_timestamps_is_an_error(npy):
    with pytest.raises(ConfigError, match=r"wp\.timing: .*t\.npy: .* has no timestamps"):
        make_workload("trace", {"path": npy, "timing": "timestamps"}, MEM_PAGES, 4, "wp")


def test_writes_kinds_and_file_range(tmp_path):
    path = tmp_path / "k.csv"
    pcsv.write_csv(pa.table({"page": [10, 11, 10, 12], "op": ["R", "W", "W", "R"],
                             "kind": ["file", "anon", "anon", "file"]}), path)  # fmt: skip
    w = started({"path": str(path), "kind_column": "kind"})
    pages, writes = w.generate(4)
    assert pages.tolist() == [0, 1, 0, 2] and writes.tolist() == [0, 1, 1, 0]
    assert w.page_kind.tolist() == [FILE, ANON, FILE]  # a page's first reference says
    r = started({"path": str(path), "file_range": "11:13"})
    assert r.page_kind.tolist() == [ANON, FILE, FILE]
    f = started({"path": str(path), "kind": "file"})
    assert (f.page_kind == FILE).all()


def test_warm_order_and_working_set_come_from_the_trace(npy):
    w = started({"path": npy})
    counts = np.bincount(PACKED)
    order = w.warm_order()
    assert sorted(order.tolist()) == list(range(5))
    assert (np.diff(counts[order]) <= 0).all()  # most referenced first
    assert w.working_set_pages() == 4  # 3 + 3 + 2 + 1 = 9 of 10 references


def test_vms_share_one_read_of_the_trace(npy):
    a = started({"path": npy})
    b = started({"path": npy}, mem_pages=2 * MEM_PAGES)
    assert a._trace_pages is b._trace_pages  # pack mapping does not depend on the VM
    assert not a._trace_pages.flags.writeable  # shared, so nobody may change it


# ---- block traces: MSR Cambridge -------------------------------------------------------------

MSR = (
    "128166372003061629,hm,0,Read,8192,4096,1331\n"
    "128166372003561629,hm,0,Write,4096,8192,210\n"
    "128166372004061629,hm,0,Read,0,12288,50\n"
    "128166372013061629,hm,1,Read,6000,3000,77\n"
)


def test_an_msr_trace_drives_a_guest(tmp_path):
    path = tmp_path / "hm_0.csv"
    path.write_text(MSR)
    params = {"path": str(path), "at_end": "idle", "mapping": "direct"}
    w = started(params)
    pages, writes = w.generate(100)
    assert pages.tolist() == [2, 1, 2, 0, 1, 2, 1, 2]  # each request split into its pages
    assert writes.tolist() == [0, 1, 1, 0, 0, 0, 0, 0]
    assert (w.page_kind == FILE).all()  # a disk's view: page cache
    assert started(params | {"split_bytes": 8192}).generate(100)[0].tolist() == [
        1,
        0,
        1,
        0,
        1,
        0,
        1,
    ]
    _, refs = simulate(config(params | {"timing": "timestamps"}), 11)
    # 0, 50, 100 ms: three requests (6 pages) in the first two ticks; 1 s: the fourth
    assert refs[0] == 3 and refs[1] == 6 and refs[9] == 6 and refs[10] == 8


# ---- DAMON records -----------------------------------------------------------------------------

MIB = 1 << 20


def damo_json(snapshots: list[list[tuple]]) -> list:
    """What `damo record --output_type json` writes: regions (start, end, nr_accesses,
    age) per 100 ms snapshot of one target."""
    snaps = []
    for i, regions in enumerate(snapshots):
        snaps.append({
            "start_time": 5_000_000_000 + i * 100_000_000,
            "end_time": 5_000_000_000 + (i + 1) * 100_000_000,
            "regions": [{"start": lo, "end": hi,
                         "nr_accesses": {"samples": nr, "percent": nr * 5},
                         "age": {"usec": age * 100_000, "aggr_intervals": age},
                         "probe_hits": [], "sz_filter_passed": 0}
                        for lo, hi, nr, age in regions],
            "total_bytes": sum(hi - lo for lo, hi, _, _ in regions),
            "damos_stats": None, "sample_interval_us": 5000,
        })  # fmt: skip
    return [{"kdamond_idx": 0, "context_idx": 0,
             "intervals": {"sample_us": 5000, "aggr_us": 100000, "ops_update_us": 1000000},
             "scheme_idx": None, "target_id": 0, "scheme_filters": [], "snapshots": snaps,
             "data_source": "unknown"}]  # fmt: skip


BASE = 0x7F00_0000_0000  # a process's heap: far from 0, gaps between mappings


@pytest.fixture
def damon_file(tmp_path):
    """An 8 MiB hot region (nr_accesses 20 of 20 samples), 40 MiB cold; after 3 snapshots
    the hot set moves and grows to 16 MiB, and a 1 GiB gap sits between the two mappings."""
    hot, cold = (BASE, BASE + 8 * MIB, 20, 5), (BASE + 8 * MIB, BASE + 24 * MIB, 0, 9)
    far = (BASE + 1024 * MIB, BASE + 1048 * MIB, 0, 9)
    moved = [(BASE, BASE + 24 * MIB, 0, 0), (BASE + 1024 * MIB, BASE + 1040 * MIB, 12, 0),
             (BASE + 1040 * MIB, BASE + 1048 * MIB, 0, 0)]  # fmt: skip
    path = tmp_path / "damon.data"
    path.write_bytes(
        zlib.compress(json.dumps(damo_json([[hot, cold, far]] * 3 + [moved])).encode())
    )
    return str(path)


def test_a_hot_region_yields_a_hot_set_of_its_size(damon_file):
    w = started({"path": damon_file}, mem_pages=64 * 256, name="damon")
    assert w.n_pages == 48 * 256  # 48 MiB of mappings, the 1 GiB gap removed
    pages, writes = w.generate(200_000, 100.0)
    assert set(np.unique(pages).tolist()) == set(range(8 * 256))  # all 2048 hot pages
    assert w.working_set_pages() == 8 * 256
    assert 0.18 < writes.mean() < 0.22  # write_ratio 0.2 by default
    order = w.warm_order()
    assert sorted(order[: 8 * 256].tolist()) == list(range(8 * 256))  # the hot set first


def test_the_working_set_changes_as_the_record_did(damon_file):
    w = started({"path": damon_file}, mem_pages=64 * 256, name="damon")
    w.generate(10, 100.0)
    assert w.working_set_pages() == 2048
    pages, _ = w.generate(100_000, 400.0)  # the fourth snapshot: 300 .. 400 ms
    assert w.working_set_pages() == 16 * 256
    hot = np.arange(24 * 256, 40 * 256)  # the moved hot set, after the gap
    assert set(np.unique(pages).tolist()) == set(hot.tolist())
    # past the end: loop (default) plays the first snapshot again, idle stops
    assert w.generate(10, 450.0)[0].max() < 2048
    idle = started({"path": damon_file, "at_end": "idle"}, name="damon")
    assert idle.generate(10, 450.0)[0].size == 0
    held = started({"path": damon_file, "at_end": "hold"}, name="damon")
    assert held.generate(1000, 10_000.0)[0].min() >= 24 * 256


def test_footprint_scales_the_record_onto_the_guest(damon_file):
    w = started({"path": damon_file, "footprint_mib": 12}, name="damon")
    assert w.n_pages == 12 * 256
    pages, _ = w.generate(50_000, 100.0)
    assert np.unique(pages).size == 2 * 256  # 8 of 48 MiB -> 2 of 12 MiB


def test_a_damon_record_drives_a_guest(damon_file):
    cfg = config({"path": damon_file}, name="damon", **{"vms.mem_mib": 64})
    _, refs = simulate(cfg, 2)
    assert refs[0] > 1000 and refs[1] > refs[0]
    assert sim_core.run(cfg).summary["outcome"] == "ok"


# ---- bad input: one line naming the file and the problem ---------------------------------------


def one_line(exc: pytest.ExceptionInfo, *parts: str) -> None:
    text = str(exc.value)
    assert "\n" not in text
    for part in parts:
        assert part in text, (part, text)


def test_missing_file_is_caught_when_the_config_is_validated(tmp_path):
    missing = str(tmp_path / "nope.npy")
    for name in ("trace", "damon"):
        with pytest.raises(ConfigError) as info:
            check_workload_params(name, {"path": missing}, "vms[0].workload_params")
        one_line(info, "vms[0].workload_params.path", missing, "no such file")
        with pytest.raises(ConfigError) as info:
            config({"path": missing}, name=name)
        one_line(info, missing, "no such file")
    with pytest.raises(ConfigError) as info:
        check_workload_params("trace", {}, "vms[0].workload_params")
    one_line(info, "vms[0].workload_params.path: missing")


def test_a_column_that_is_not_there(tmp_path):
    path = tmp_path / "t.csv"
    pcsv.write_csv(pa.table({"page": [1, 2]}), path)
    with pytest.raises(ConfigError) as info:
        make_workload("trace", {"path": str(path), "write_column": "rw"}, MEM_PAGES, 4, "wp")
    one_line(info, "wp.path:", str(path), "no 'rw' column (columns: page)")


def test_a_record_that_is_not_damos_format(tmp_path, npy):
    path = tmp_path / "rec.json"
    path.write_text('{"regions": []}')
    with pytest.raises(ConfigError) as info:
        make_workload("damon", {"path": str(path)}, MEM_PAGES, 4, "wp")
    one_line(info, "wp.path:", str(path), "not a damo record")
    with pytest.raises(ConfigError) as info:
        make_workload("damon", {"path": npy}, MEM_PAGES, 4, "wp")
    one_line(info, npy, "not a damo record")


def test_an_offset_beyond_the_guest(tmp_path):
    path = tmp_path / "big.csv"
    path.write_text(MSR.replace("6000,3000", "17179869184,4096"))  # 16 GiB into the disk
    with pytest.raises(ConfigError) as info:
        make_workload("trace", {"path": str(path), "mapping": "direct"}, MEM_PAGES, 4, "wp")
    one_line(info, str(path), "page 4194304 (reference 6) is beyond the guest's 4096 pages")
    # pack and hash fold the same trace into the guest
    assert started({"path": str(path)}).n_pages == 4


def test_bad_parameter_values_name_the_key(npy):
    with pytest.raises(ConfigError, match=r"wp\.file_range: must be 'LO:HI'"):
        check_workload_params("trace", {"path": npy, "file_range": "9:3"}, "wp")
    with pytest.raises(ConfigError, match=r"wp\.timing: must be one of guest, rate, timestamps"):
        check_workload_params("trace", {"path": npy, "timing": "real"}, "wp")
    with pytest.raises(ConfigError, match=r"wp\.at_end: must be one of loop, hold, idle"):
        check_workload_params("damon", {"path": npy, "at_end": "stop"}, "wp")


def test_the_cli_reports_a_bad_trace_in_one_line(tmp_path, capsys):
    import sys

    from harness.cli import main

    path = tmp_path / "t.csv"
    pcsv.write_csv(pa.table({"addr": [1, 2]}), path)
    argv = sys.argv
    sys.argv = ["balloonlab", "sim", "--set", "vms.workload=trace", "--set",
                f"vms.workload_params.path={path}", "--set", "ticks=2"]  # fmt: skip
    try:
        with pytest.raises(SystemExit) as exit_info:
            main()
    finally:
        sys.argv = argv
    err = capsys.readouterr().err
    assert exit_info.value.code != 0
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{path}: no 'page' column (columns: addr)" in err


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".npy", ".oracleGeneral"])
def test_every_trace_format_drives_the_same_guest(tmp_path, suffix):
    import pyarrow.parquet as pq

    from harness.traces import write_oracle_general

    path = tmp_path / f"t{suffix}"
    if suffix == ".csv":
        pcsv.write_csv(pa.table({"page": TRACE}), path)
    elif suffix == ".parquet":
        pq.write_table(pa.table({"page": TRACE}), path)
    elif suffix == ".npy":
        np.save(path, TRACE)
    else:
        write_oracle_general(path, TRACE)
    w = started({"path": str(path), "at_end": "idle"})
    np.testing.assert_array_equal(w.generate(100)[0], PACKED)


def test_bench_compares_trace_driven_and_synthetic_guests():
    from harness.bench import bench_trace_guest

    out = bench_trace_guest(ticks=3)
    assert out["synthetic_refs_per_second"] > 0 and out["trace_refs_per_second"] > 0
    assert out["ratio"] == pytest.approx(
        out["trace_refs_per_second"] / out["synthetic_refs_per_second"]
    )
    assert out["meets_target"] == (out["ratio"] >= 0.8)
