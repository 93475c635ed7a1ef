"""Replacement policies: a contract every policy opts into, hand-derived fault counts on
tiny traces (as cachetools' tests do), OPT as the lower bound, ESC's class order, LRU
against Che's approximation, and the working-set policy against the naive one."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sim_core.constants import ANON, FILE
from sim_core.policies import ESC, GUEST_POLICIES, esc_set, policy_id, victim_esc
from sim_core.replay import replay
from sim_core.state import (
    ESC_N00,
    ESC_N01,
    FB_MOD,
    FB_REF,
    FB_STATE,
    FREE_TOP,
    USED,
    make_world,
)
from sim_core.theory import che_lru_hit_ratio
from sim_core.workloads import make_workload

POLICIES = list(GUEST_POLICIES)

# Belady's anomaly trace: the textbook's reference string.
BELADY = np.array([1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5])


# ---- the contract ----------------------------------------------------------------------------
@pytest.mark.parametrize("policy", POLICIES)
def test_contract(policy):
    rng = np.random.default_rng(3)
    pages = rng.integers(0, 40, 3000)
    writes = rng.random(3000) < 0.3
    distinct = len(np.unique(pages))
    r = replay(pages, 10, policy, writes)
    assert r.faults + r.hits == r.references == 3000
    assert r.faults >= distinct  # every page's first reference misses
    assert 0 <= r.writebacks <= r.faults - 10
    big = replay(pages, 64, policy, writes)  # room for every page: cold misses only
    assert (big.faults, big.writebacks) == (distinct, 0)
    one = replay(pages, 1, policy)  # one frame: every change of page misses
    assert one.faults == 1 + int((pages[1:] != pages[:-1]).sum())
    again = replay(pages, 10, policy, writes)
    assert (again.faults, again.hits, again.writebacks) == (r.faults, r.hits, r.writebacks)


def test_unknown_policy_and_bad_frames_are_refused():
    with pytest.raises(ValueError, match="unknown policy 'mru'"):
        replay(BELADY, 3, "mru")
    with pytest.raises(ValueError, match="frames"):
        replay(BELADY, 0, "lru")
    with pytest.raises(ValueError, match="negative"):
        replay(np.array([1, -2]), 3, "lru")
    assert policy_id("esc") == ESC


# ---- hand-derived fault counts -----------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "frames", "faults"),
    [
        # FIFO shows Belady's anomaly: more frames, more faults.
        ("fifo", 3, 9),
        ("fifo", 4, 10),
        ("lru", 3, 10),
        ("lru", 4, 8),
        ("opt", 3, 7),
        ("opt", 4, 6),
        # CLOCK, 3 frames: 1 2 3 miss; 4 sweeps every R clear and takes 1; 1 takes 2;
        # 2 takes 3; 5 sweeps again and takes 4; 1 2 hit; 3 sweeps, takes 1; 4 takes 2;
        # 5 hits: 3 + 4 + 2 = 9.
        ("clock", 3, 9),
    ],
)
def test_textbook_fault_counts(policy, frames, faults):
    assert replay(BELADY, frames, policy).faults == faults


def test_lru_and_fifo_differ_where_a_hit_refreshes_recency():
    # 2 frames: 1 2 1 3 -> LRU evicts 2 (1 was just used), FIFO evicts 1 (loaded first).
    trace = np.array([1, 2, 1, 3, 1])
    assert replay(trace, 2, "lru").faults == 3  # 1 2 3 miss, last 1 hits
    assert replay(trace, 2, "fifo").faults == 4  # 1 2 3 miss, last 1 misses


def test_file_first_drops_hot_page_cache_before_cold_anonymous_memory():
    # pages 0, 1 are file pages referenced all the time; 2 is anonymous and cold.
    kinds = np.array([FILE, FILE, ANON, FILE], np.int8)
    trace = np.array([2, 0, 1, 0, 1, 3, 0, 1])
    naive = replay(trace, 3, "file_first", kinds=kinds)
    lru = replay(trace, 3, "lru", kinds=kinds)
    assert lru.faults == 4  # 2 0 1 3 miss; 3 takes the cold page 2; 0 1 hit
    # file_first (pages 2, 0, 1 in frames 0, 1, 2, hand at 0): 3 skips anonymous 2 and
    # takes 0; 0 misses and takes 1; 1 misses and takes 3: 2 0 1 3 0 1 = 6 faults.
    assert naive.faults == 6


# ---- OPT is the lower bound ----------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(
    trace=st.lists(st.integers(0, 12), min_size=1, max_size=120),
    frames=st.integers(1, 6),
)
def test_opt_never_faults_more_than_any_policy(trace, frames):
    pages = np.array(trace)
    best = replay(pages, frames, "opt").faults
    for policy in POLICIES:
        assert best <= replay(pages, frames, policy).faults, policy


# ---- ESC -------------------------------------------------------------------------------------
def _esc_world(classes: list[tuple[int, int]]):
    """One guest whose frames hold pages with the given (R, M) classes, hand at frame 0."""
    n = len(classes)
    w = make_world([n], [np.full(n, FILE, np.int8)], [0], [ESC], 0, host_frames=0)
    w.gi[0, FREE_TOP] = 0  # every frame is in use
    for f, (r, m) in enumerate(classes):
        w.fb[f, FB_STATE] = USED
        w.fr[f] = f
        w.fb[f, FB_REF], w.fb[f, FB_MOD] = r, m
        if r == 0:
            w.gi[0, ESC_N00 + m] += 1
            if m == 0:
                esc_set(w.esc00, f, True)
    return w


def _evict(w, f):
    if w.fb[f, FB_REF] == 0:
        w.gi[0, ESC_N00 + w.fb[f, FB_MOD]] -= 1
        esc_set(w.esc00, f, False)
    w.fb[f, FB_STATE] = 0


def test_esc_evicts_00_then_01_then_the_referenced_classes():
    w = _esc_world([(1, 1), (1, 0), (0, 1), (0, 0)])
    order = []
    for _ in range(4):
        f, _cls = victim_esc(w, 0, True)
        order.append(f)
        _evict(w, f)
    # (0,0) first, then (0,1) (its pass clears frames 0 and 1 on the way), then the one
    # that was (1,0), then the one that was (1,1).
    assert order == [3, 2, 1, 0]
    assert w.gi[0, ESC_N00] == 0 and w.gi[0, ESC_N01] == 0


def test_esc_counts_its_evictions_by_class():
    rng = np.random.default_rng(5)
    pages = rng.integers(0, 200, 20_000)
    r = replay(pages, 50, "esc", rng.random(20_000) < 0.3)
    assert sum(r.evictions_by_class.values()) == r.faults - 50
    assert r.evictions_by_class["00"] > 0 and r.evictions_by_class["01"] > 0


def test_esc_writes_back_less_than_clock_on_a_write_heavy_mixed_trace():
    wl = make_workload("zipf", {"footprint_mib": 16, "alpha": 0.8}, 1, 4)
    wl.reset(np.random.default_rng(7))
    pages, _ = wl.generate(300_000)
    writes = pages % 2 == 0  # half the pages are written on every reference, half never
    for frames in (512, 1024, 2048):
        esc = replay(pages, frames, "esc", writes)
        clock = replay(pages, frames, "clock", writes)
        assert esc.writebacks < 0.95 * clock.writebacks, frames


# ---- LRU against Che's approximation -------------------------------------------------
@pytest.mark.parametrize(("alpha", "cache"), [(0.8, 100), (1.0, 50), (0.6, 300)])
def test_lru_hit_ratio_matches_che(alpha, cache):
    wl = make_workload("zipf", {"footprint_mib": 4, "alpha": alpha}, 1, 4)  # 1024 pages
    wl.reset(np.random.default_rng(2))
    pages, _ = wl.generate(400_000)
    simulated = replay(pages, cache, "lru").hit_ratio
    assert abs(simulated - che_lru_hit_ratio(wl.page_probabilities(), cache)) < 0.01


# ---- working set vs page-cache-first on `db` -----------------------------------------
def test_ws_keeps_the_hot_file_cache_that_file_first_throws_away():
    mem = 16 * 256  # a 16 MiB guest
    wl = make_workload("db", {}, mem, 4)
    wl.reset(np.random.default_rng(11))
    pages, writes = wl.generate(400_000)
    cache = slice(*wl.cache_range)
    hot_cache_refs = (pages >= cache.start) & (pages < cache.stop)
    assert hot_cache_refs.mean() > 0.5
    frames = int(0.6 * wl.n_pages)  # the balloon took the rest
    ws = replay(pages, frames, "ws", writes, kinds=wl.page_kind)
    naive = replay(pages, frames, "file_first", writes, kinds=wl.page_kind)
    assert ws.faults < 0.5 * naive.faults


def test_ws_guest_evicts_past_a_run_of_kernel_frames_longer_than_its_scan():
    """The boot's kernel frames (1/64 of a 256 MiB guest: 1024 frames) sit where the hand
    starts; WSClock must pass over them, not give up after WS_SCAN of them and OOM."""
    from sim_core import build_config, run
    from sim_core.policies import WS_SCAN

    cfg = build_config({}, **{"ticks": 30, "vms.count": 1, "vms.mem_mib": 256,
                              "vms.guest_policy": "ws", "vms.workload": "zipf",
                              "vms.workload_params.footprint_mib": 300,
                              "host.mem_mib": 512})  # fmt: skip
    summary = run(cfg).summary
    assert 256 * 256 // 64 > WS_SCAN  # the kernel's frames outnumber one scan
    assert summary["outcome"] == "ok", summary["outcome"]
    assert summary["guest_evictions"] > 0
