"""Each mechanism of the data plane on a tiny hand-built world, with numbers derived by hand.

The world is a real ``Simulation`` with warm start off; the tests call the compiled
mechanisms directly (fault, evict, reap, report) and read the arrays they own.
"""

from __future__ import annotations

import numpy as np
import pytest

import sim_core
from sim_core import Simulation, build_config
from sim_core import state as S
from sim_core.balloon import report_free_pages
from sim_core.block_device import DV_WRITES, dev_next_completion
from sim_core.faults import BLOCKED, DONE, fault
from sim_core.guest_reclaim import evict
from sim_core.host_memory import FREED, SUBMITTED, host_reclaim_one, oom_victim
from sim_core.invariants import violations
from sim_core.writeback import reap

HDD_WRITE_MS = 8.0  # the hdd preset: 8,000 us per write, one at a time


def tiny(**overrides) -> Simulation:
    """One 4 MiB guest (1,024 frames, 16 of them boot-sized kernel structures) on an HDD."""
    base = {
        "ticks": 5,
        "warm_start": False,
        "vms.mem_mib": 4,
        "vms.swap_mib": 4,
        "vms.workload": "zipf",
        "vms.workload_params.footprint_mib": 3,
        "host.mem_mib": 96,
        "host.reserve_mib": 16,
        "disk.preset": "hdd",
    }
    return Simulation(build_config({}, **(base | overrides)))


def page_of_kind(sim: Simulation, kind: int, nth: int = 0) -> int:
    pages = np.flatnonzero(sim.world.pb[:, S.PB_KIND] == kind)
    return int(pages[nth])


def touch(sim: Simulation, p: int, write: bool, t: float) -> float:
    status, t = fault(sim.world, 0, p, int(write), t)
    assert status == DONE
    return t


def test_a_page_under_writeback_keeps_its_frame_until_the_write_completes():
    sim = tiny()
    w = sim.world
    p = page_of_kind(sim, S.ANON)
    t = touch(sim, p, True, 0.0)  # a dirty anonymous page
    f = int(w.pg[p, S.PG_FRAME])
    free_before = int(w.gi[0, S.N_FREE])
    assert evict(w, 0, f, t, S.EVICTOR_GUEST) == SUBMITTED
    assert w.fb[f, S.FB_STATE] == S.RECLAIM and w.gi[0, S.N_FREE] == free_before
    done = dev_next_completion(w)
    assert done == pytest.approx(t + HDD_WRITE_MS, abs=1e-6)
    reap(w, done - 0.001)
    assert w.fb[f, S.FB_STATE] == S.RECLAIM, "reusable before its write completed"
    reap(w, done)
    assert w.fb[f, S.FB_STATE] == S.FREE and w.gi[0, S.N_FREE] == free_before + 1
    assert w.pb[p, S.PB_STATE] == S.SWAPPED
    assert not violations(w)


def test_a_touch_during_writeback_maps_the_page_back_without_io():
    sim = tiny()
    w = sim.world
    p = page_of_kind(sim, S.ANON)
    t = touch(sim, p, True, 0.0)
    f = int(w.pg[p, S.PG_FRAME])
    evict(w, 0, f, t, S.EVICTOR_GUEST)
    reads = int(w.dvi[0])
    t = touch(sim, p, False, t + 1.0)  # the write is still in flight
    assert w.fb[f, S.FB_STATE] == S.USED and w.cnt[0, S.C_MINOR] >= 1
    assert int(w.dvi[0]) == reads  # no read: the page never left memory
    reap(w, t + 2 * HDD_WRITE_MS)
    assert w.fb[f, S.FB_STATE] == S.USED and w.pg[p, S.PG_FRAME] == f
    assert not violations(w)


def test_re_evicting_an_unmodified_swapped_in_page_writes_nothing():
    sim = tiny()
    w = sim.world
    p = page_of_kind(sim, S.ANON)
    t = touch(sim, p, True, 0.0)
    evict(w, 0, int(w.pg[p, S.PG_FRAME]), t, S.EVICTOR_GUEST)
    t = dev_next_completion(w)
    reap(w, t)
    t = touch(sim, p, False, t)  # swap-in: the slot stays with the page
    assert w.cnt[0, S.C_SWAP_INS] == 1 and w.pg[p, S.PG_SLOT] >= 0
    writes = int(w.dvi[DV_WRITES])
    assert evict(w, 0, int(w.pg[p, S.PG_FRAME]), t, S.EVICTOR_GUEST) == FREED
    assert int(w.dvi[DV_WRITES]) == writes and w.cnt[0, S.C_SWAP_OUTS] == 1
    assert w.cnt[0, S.C_SWAPCACHE_DROPS] == 1
    t = touch(sim, p, True, t)  # written again: the swap copy is stale
    assert evict(w, 0, int(w.pg[p, S.PG_FRAME]), t, S.EVICTOR_GUEST) == SUBMITTED
    assert w.cnt[0, S.C_SWAP_OUTS] == 2
    assert not violations(w)


def test_the_host_re_evicts_an_unmodified_swapped_in_frame_without_a_write():
    sim = tiny(**{"host.swap_mib": 64})
    w = sim.world
    p = page_of_kind(sim, S.ANON)
    t = touch(sim, p, True, 0.0)
    f = int(w.pg[p, S.PG_FRAME])
    w.hi[S.H_SWAP_POLICY] = 1  # clock: with one frame unreferenced it is the victim
    w.fb[:, S.FB_HACC] = 1
    w.fb[f, S.FB_HACC] = 0
    assert host_reclaim_one(w, t) == SUBMITTED
    reap(w, dev_next_completion(w))
    assert w.fb[f, S.FB_HSTATE] == S.HOST_SWAPPED
    t = touch(sim, p, False, t + 20.0)  # a host fault reads it back
    assert w.fb[f, S.FB_HSTATE] == S.BACKED and w.fb[f, S.FB_HSLOT] == 1
    writes = int(w.dvi[DV_WRITES])
    w.fb[:, S.FB_HACC] = 1
    w.fb[f, S.FB_HACC] = 0
    assert host_reclaim_one(w, t) == FREED
    assert int(w.dvi[DV_WRITES]) == writes
    assert not violations(w)


def test_a_writer_over_the_dirty_limit_stalls_and_its_pressure_rises():
    def run(dirty_ratio: float) -> dict:
        return sim_core.run(
            build_config(
                {},
                **{
                    "ticks": 20,
                    "vms.mem_mib": 64,
                    "vms.workload": "zipf",
                    "vms.workload_params.file_fraction": 1.0,
                    "vms.workload_params.write_ratio": 1.0,
                    "vms.dirty_ratio": dirty_ratio,
                    "vms.dirty_background_ratio": dirty_ratio / 2,
                    "disk.preset": "hdd",
                },
            )
        ).summary

    tight, loose = run(1.0), run(60.0)
    assert tight["dirty_throttles"] > 0
    assert loose["dirty_throttles"] < tight["dirty_throttles"]
    assert tight["psi_some_avg"] > loose["psi_some_avg"]
    assert tight["throughput_mean"] < loose["throughput_mean"]


def test_the_dirty_limit_holds_every_tick():
    sim = Simulation(
        build_config(
            {},
            **{
                "ticks": 15,
                "vms.mem_mib": 32,
                "vms.workload_params.file_fraction": 1.0,
                "vms.workload_params.write_ratio": 0.5,
                "vms.dirty_ratio": 2.0,
                "vms.dirty_background_ratio": 1.0,
                "disk.preset": "sata_ssd",
            },
        )
    )
    for _ in range(sim.cfg.ticks):
        sim.step()
        gi = sim.world.gi[0]
        assert gi[S.N_DIRTY] + gi[S.N_WRITEBACK] <= gi[S.DIRTY_LIMIT] + 32
        assert not violations(sim.world)


def test_the_host_swap_cap_ends_in_host_oom_killing_the_largest_guest():
    cfg = {
        "ticks": 30,
        "vms.count": 2,
        "vms.0.mem_mib": 32,
        "vms.1.mem_mib": 96,
        "vms.workload_params.footprint_mib": 30,
        "vms.1.workload_params.footprint_mib": 90,
        "host.mem_mib": 80,
        "host.reserve_mib": 16,
        "host.swap_mib": 4,
        "disk.preset": "nvme",
    }
    s = sim_core.run(build_config({}, **cfg)).summary
    assert s["outcome"] == "host_oom"
    assert s["host_oom_vm"] == "vm1"


def test_the_oom_killer_picks_the_guest_with_the_most_resident_memory():
    sim = tiny(**{"vms.count": 3})
    w = sim.world
    w.gi[:, S.N_BACKED] = [10, 30, 20]
    assert oom_victim(w) == 1
    w.gi[1, S.STALLED] = S.STALL_KILLED
    assert oom_victim(w) == 2


def test_free_page_reporting_unbacks_free_2mib_chunks():
    sim = tiny(
        **{
            "warm_start": True,
            "vms.workload_params.file_fraction": 1.0,
            "vms.workload_params.write_ratio": 0.0,
        }
    )
    w = sim.world
    chunk = range(512, 1024)  # the second 2 MiB of guest-physical memory
    for f in chunk:
        if w.fb[f, S.FB_STATE] == S.USED:
            assert evict(w, 0, f, 0.0, S.EVICTOR_GUEST) == FREED  # clean page cache
    backed = int(w.gi[0, S.N_BACKED])
    in_chunk = int(sum(w.fb[f, S.FB_HSTATE] == S.BACKED for f in chunk))
    assert in_chunk > 0
    assert report_free_pages(w, 0) == in_chunk
    assert int(w.gi[0, S.N_BACKED]) == backed - in_chunk
    assert all(w.fb[f, S.FB_HSTATE] == S.UNBACKED for f in chunk)
    assert not violations(w)


def test_a_fault_with_only_writeback_to_wait_for_blocks_and_retries():
    sim = tiny(**{"vms.workload_params.footprint_mib": 4, "vms.workload_params.file_fraction": 0})
    w = sim.world
    anon = np.flatnonzero(w.pb[:, S.PB_KIND] == S.ANON)
    t = 0.0
    while w.gi[0, S.N_FREE] > 0:  # fill every frame with dirty anonymous pages
        t = touch(sim, int(anon[w.gi[0, S.N_USED]]), True, t)
    w.gi[0, S.DIRTY_LIMIT] = 10**6
    status, wake = fault(w, 0, int(anon[w.gi[0, S.N_USED] + 5]), 1, t)
    assert status == BLOCKED and wake > t  # direct reclaim started writes and must wait
    assert w.gi[0, S.N_RECLAIM] > 0 and w.cnt[0, S.C_DIRECT_WAITS] == 1
    assert not violations(w)


def test_the_warm_start_loads_the_pages_the_run_itself_finds_hot():
    """Its first touches come from the run's own workload (same layout), reseeded: a guest
    with room for 30% of a zipf footprint holds most of the run's references. A warm start
    drawn from a differently laid-out copy held about 30% (the regression this catches)."""
    sim = Simulation(
        build_config(
            {},
            ticks=1,
            seed=3,
            **{
                "vms.count": 1,
                "vms.mem_mib": 16,
                "vms.workload": "zipf",
                "vms.workload_params.footprint_mib": 48,
            },
        )
    )
    w, wl = sim.world, sim.workloads[0]
    lo, hi = int(w.gi[0, S.P_LO]), int(w.gi[0, S.P_HI])
    resident = w.pb[lo:hi, S.PB_STATE] == S.RESIDENT
    assert 0.2 < resident.mean() < 0.4  # room for about a third of the footprint
    share = float(wl.page_probabilities()[resident].sum())
    assert share > 0.6, share


def test_first_touches_keep_the_order_of_first_reference_across_chunks():
    from sim_core.boot import first_touches

    seen = np.zeros(10, np.bool_)
    seen[7] = True  # touched in an earlier chunk
    out = np.full(4, -1, np.int32)
    found = first_touches(np.array([5, 3, 5, 7, 3], np.int32), seen, out, 0)
    assert found == 2 and out[:2].tolist() == [5, 3]
    found = first_touches(np.array([3, 1, 1, 9, 2, 0], np.int32), seen, out, found)
    assert found == 4 and out.tolist() == [5, 3, 1, 9]  # full: 2 and 0 are left out
    assert not seen[2] and not seen[0]


def _booted(zero_at_boot: bool, **extra) -> Simulation:
    return Simulation(
        build_config(
            {},
            ticks=40,
            **{
                "vms.count": 1,
                "vms.mem_mib": 16,
                "vms.workload": "zipf",
                "vms.workload_params.footprint_mib": 4,
                "host.overcommit": 0.5,
                "vms.zero_at_boot": zero_at_boot,
            }
            | extra,
        )
    )


def test_a_guest_that_zeroes_its_memory_at_boot_is_all_backed_yet_mostly_free():
    zeroed, plain = _booted(True).world, _booted(False).world
    frames = int(zeroed.gi[0, S.F_HI] - zeroed.gi[0, S.F_LO])  # 4096 frames of 4 KiB
    assert int(zeroed.gi[0, S.N_BACKED]) == frames  # the host backs every frame ...
    assert int(zeroed.gi[0, S.N_FREE]) > frames // 2  # ... most of which the guest holds free
    assert int(plain.gi[0, S.N_BACKED]) < frames // 2  # untouched frames stay unbacked
    assert int(plain.gi[0, S.N_FREE]) == int(zeroed.gi[0, S.N_FREE])
    assert not violations(zeroed)


def test_a_balloon_takes_zeroed_free_memory_from_the_host_without_io():
    """8 MiB of balloon on a guest with 12 MiB free: the host unbacks 2048 frames and the
    guest writes nothing."""
    sim = _booted(True, **{"hypervisor.policy": "static", "vms.balloon_mib": 8})
    backed = int(sim.world.gi[0, S.N_BACKED])
    for _ in range(sim.cfg.ticks):
        sim.step()
    w = sim.world
    assert int(w.gi[0, S.N_BALLOONED]) == 2048
    assert int(w.gi[0, S.N_BACKED]) <= backed - 2048
    summary = sim.summary(0.0)
    assert summary["guest_swap_outs"] == 0 and summary["host_swap_outs"] == 0
