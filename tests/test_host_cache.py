"""The host page cache of guest disk blocks (host.cache = "writeback") on a tiny world,
with numbers derived by hand; and what it does to a swap storm."""

from __future__ import annotations

import numpy as np
import pytest
from test_emergent import mean_over_seeds
from test_mechanisms import HDD_WRITE_MS, page_of_kind, tiny, touch

from sim_core import state as S
from sim_core.block_device import DV_READS, DV_WRITES
from sim_core.faults import background
from sim_core.guest_reclaim import evict
from sim_core.host_cache import block_of_page, dirty_limits, host_flush
from sim_core.host_memory import FREED, SUBMITTED, host_reclaim_one
from sim_core.invariants import violations
from sim_core.writeback import reap, submit_write

COPY_MS = 0.002  # host.cache_copy_us default, 2 us
HDD_READ_MS = 8.0


def cached(**overrides):
    return tiny(**{"host.cache": "writeback", **overrides})


def swap_out(sim, p, t):
    """Dirty anonymous page p, then evict it: its write goes to the host page cache."""
    w = sim.world
    t = touch(sim, p, True, t)
    f = int(w.pg[p, S.PG_FRAME])
    assert evict(w, 0, f, t, S.EVICTOR_GUEST) == SUBMITTED
    return f, t


def test_a_guest_write_completes_into_the_cache_and_the_flusher_writes_it_later():
    sim = cached()
    w = sim.world
    p = page_of_kind(sim, S.ANON)
    f, t = swap_out(sim, p, 0.0)
    assert w.dvi[DV_WRITES] == 0, "a cached write must not reach the device at once"
    assert w.hi[S.H_CACHE] == 1 and w.hi[S.H_CACHE_DIRTY] == 1
    reap(w, t + COPY_MS - 1e-6)
    assert w.fb[f, S.FB_STATE] == S.RECLAIM, "complete before its copy"
    reap(w, t + COPY_MS)
    assert w.fb[f, S.FB_STATE] == S.FREE and w.pb[p, S.PB_STATE] == S.SWAPPED
    b = block_of_page(w, p, True)
    assert b == w.hi[S.H_BLOCK_SWAP0] + w.pg[p, S.PG_SLOT]
    assert w.hcb[b, S.HCB_STATE] == S.HCB_DIRTY
    # The flusher writes back only over the background ratio of dirtyable memory.
    limit, background_blocks = dirty_limits(w)
    free = int(w.hi[S.H_FREE])
    assert limit == (free + 1) * 2000 // 10000 and background_blocks == (free + 1) * 1000 // 10000
    host_flush(w, t + 1.0)
    assert w.dvi[DV_WRITES] == 0  # 1 dirty block, far under 10% of ~20,000 blocks
    w.hi[S.H_DIRTY_BG_X100] = 0  # any dirty block is over a zero threshold
    host_flush(w, t + 1.0)
    assert w.dvi[DV_WRITES] == 1 and w.hcb[b, S.HCB_STATE] == S.HCB_WB
    reap(w, t + 1.0 + HDD_WRITE_MS)
    assert w.hcb[b, S.HCB_STATE] == S.HCB_CLEAN and w.hi[S.H_CACHE_DIRTY] == 0
    assert not violations(w)


def test_a_read_of_a_cached_block_needs_no_device_read():
    sim = cached()
    w = sim.world
    p = page_of_kind(sim, S.ANON)
    f, t = swap_out(sim, p, 0.0)
    reap(w, t + COPY_MS)
    reads = int(w.dvi[DV_READS])
    start = t + 1.0
    done = touch(sim, p, False, start)
    assert w.dvi[DV_READS] == reads and w.hcnt[S.HC_CACHE_HITS] == 1
    # the fault's CPU time (major_fault_us 10 us) plus the copy, no 8 ms disk read
    assert done - start == pytest.approx(0.010 + COPY_MS, abs=1e-4)
    assert not violations(w)


def test_without_the_cache_the_same_read_waits_for_the_disk():
    sim = tiny()
    w = sim.world
    p = page_of_kind(sim, S.ANON)
    t = touch(sim, p, True, 0.0)
    evict(w, 0, int(w.pg[p, S.PG_FRAME]), t, S.EVICTOR_GUEST)
    reap(w, t + HDD_WRITE_MS)
    start = t + 100.0
    done = touch(sim, p, False, start)
    assert done - start >= HDD_READ_MS and w.dvi[DV_READS] == 1


def test_a_read_miss_is_cached_clean_and_host_reclaim_drops_it_before_any_guest_frame():
    sim = cached(**{"vms.workload": "db", "vms.workload_params": {}})
    w = sim.world
    p = page_of_kind(sim, S.FILE)
    touch(sim, p, False, 0.0)  # first read of a file block: a miss, then cached clean
    b = block_of_page(w, p, False)
    assert w.hcnt[S.HC_CACHE_MISSES] == 1 and w.hcb[b, S.HCB_STATE] == S.HCB_CLEAN
    w.hcb[b, S.HCB_ACC] = 0  # not read again since: the first candidate
    swapped = int(w.hcnt[S.HC_SWAP_OUTS])
    assert host_reclaim_one(w, 1.0) == FREED
    assert w.hcb[b, S.HCB_STATE] == S.HCB_NONE and w.hi[S.H_CACHE] == 0
    assert w.hcnt[S.HC_SWAP_OUTS] == swapped, "a guest frame went before the clean cache"
    assert not violations(w)


def test_guest_writes_wait_at_the_hosts_dirty_limit():
    sim = cached(**{"host.dirty_ratio": 0.01, "host.dirty_background_ratio": 0.0})
    w = sim.world
    limit, _ = dirty_limits(w)
    assert limit == 2  # 0.01% of ~20,000 dirtyable blocks, rounded down
    t = 0.0
    for k in range(2):
        swap_out(sim, page_of_kind(sim, S.ANON, k), t)
    p = page_of_kind(sim, S.ANON, 2)
    t = touch(sim, p, True, t)
    f = int(w.pg[p, S.PG_FRAME])
    assert not submit_write(w, 0, f, t), "a write over the dirty limit went through"
    assert w.hcnt[S.HC_CACHE_THROTTLES] == 1
    background(w, t + COPY_MS)  # the flusher writes the two dirty blocks back
    reap(w, t + COPY_MS + 2 * HDD_WRITE_MS)
    assert w.hi[S.H_CACHE_DIRTY] == 0 and submit_write(w, 0, f, t + 20.0)
    assert not violations(w)


STORM = {"vms.count": 4, "ticks": 80, "host.overcommit": 1.5, "vms.workload": "zipf",
         "vms.workload_params.footprint_mib": 200, "hypervisor.policy": "aggressive"}  # fmt: skip


# Measured 2026-12-07, 3 seeds, after the warm-start fix: host swap-outs 188.0k (writeback)
# vs 166.7k (none), +12.8%; throughput 264.7k vs 268.7k refs/s. Between the double-paging
# fix and the warm-start fix it was +9% (189k vs 173k) and this test a strict xfail.
@pytest.mark.slow
def test_the_host_page_cache_feeds_the_swap_storm():
    """Guest swap writes land in host memory under cache=writeback, so the host swaps more
    (by over 10%) and the guests run slower than with cache=none."""
    keys = ("throughput_mean", "host_swap_outs")
    direct = mean_over_seeds(keys, range(3), **STORM, **{"host.cache": "none"})
    cached_ = mean_over_seeds(keys, range(3), **STORM, **{"host.cache": "writeback"})
    assert cached_["host_swap_outs"] > 1.1 * direct["host_swap_outs"], (cached_, direct)
    assert cached_["throughput_mean"] < direct["throughput_mean"], (cached_, direct)


def test_no_cache_state_is_allocated_without_the_cache():
    w = tiny().world
    assert w.hcb.shape[0] == 1 and w.hcq_t.shape[0] == 1
    assert np.count_nonzero(w.hi[S.H_CACHE_ON]) == 0
