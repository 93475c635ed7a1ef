"""What the model must produce from its mechanisms, over seeds: monotone responses, no
freeze, invariants on generated configs, and the field's central results (reported as
the model gives them: a claim it does not support is an expected failure with its
numbers, not a skipped test)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import sim_core
from sim_core import Simulation, build_config
from sim_core.invariants import violations

SEEDS = (0, 1, 2)


def mean_over_seeds(keys: tuple[str, ...], seeds=SEEDS, **overrides) -> dict[str, float]:
    rows = [sim_core.run(build_config({}, **overrides, seed=s)).summary for s in seeds]
    return {k: float(np.mean([r[k] for r in rows])) for k in keys}


SMALL_DB = {"vms.count": 2, "ticks": 60, "vms.mem_mib": 64, "vms.workload": "db"}


def test_a_larger_static_balloon_never_lowers_faults_nor_raises_throughput():
    runs = [
        mean_over_seeds(
            ("guest_faults", "throughput_mean"),
            **SMALL_DB,
            **{"hypervisor.policy": "static", "vms.balloon_mib": b},
        )
        for b in (0, 8, 16, 32)
    ]
    faults = [r["guest_faults"] for r in runs]
    throughput = [r["throughput_mean"] for r in runs]
    assert all(b >= a for a, b in zip(faults, faults[1:], strict=False)), faults
    assert all(b <= a for a, b in zip(throughput, throughput[1:], strict=False)), throughput
    assert faults[-1] > 10 * max(faults[0], 1)  # the balloon cut into the working set


def test_a_higher_overcommit_never_raises_throughput_without_a_balloon():
    throughput = [
        mean_over_seeds(("throughput_mean",), **SMALL_DB, **{"host.overcommit": r})[
            "throughput_mean"
        ]
        for r in (1.0, 1.2, 1.4, 1.6)
    ]
    assert all(b <= a for a, b in zip(throughput, throughput[1:], strict=False)), throughput
    assert throughput[-1] < throughput[0]


def test_a_guest_ballooned_into_its_working_set_thrashes_but_never_stops():
    cfg = build_config(
        {}, **(SMALL_DB | {"ticks": 80, "hypervisor.policy": "static", "vms.balloon_mib": 40})
    )
    ticks = sim_core.run(cfg).ticks
    vm = ticks["vm"] >= 0
    per_second = {}
    for t, v, refs in zip(ticks["tick"][vm], ticks["vm"][vm], ticks["references"][vm], strict=True):
        key = (int(v), int(t) // 10)  # 10 ticks of 100 ms: one simulated second
        per_second[key] = per_second.get(key, 0) + int(refs)
    assert len(per_second) == 2 * 8
    assert min(per_second.values()) > 0, per_second
    assert ticks["psi_some"][vm].mean() > 0.3  # it does thrash


CONFIGS = st.fixed_dictionaries(
    {
        "vms.count": st.integers(1, 3),
        "vms.mem_mib": st.sampled_from([8, 16, 24]),
        "vms.swap_mib": st.sampled_from([1, 8, 16]),
        "vms.workload": st.sampled_from(["zipf", "db", "hotcold", "phases", "scan"]),
        "vms.guest_policy": st.sampled_from(["esc", "clock", "lru", "fifo", "ws"]),
        "vms.dirty_ratio": st.sampled_from([2.0, 20.0]),
        "vms.free_page_reporting": st.booleans(),
        "vms.zero_at_boot": st.booleans(),
        "hypervisor.policy": st.sampled_from(
            ["none", "mom", "aggressive", "ws", "static", "esx", "pff"]
        ),
        "vms.balloon_mib": st.sampled_from([0, 4]),
        "host.overcommit": st.sampled_from([0.9, 1.3, 1.8, 2.5]),
        "host.swap_mib": st.sampled_from([2, 64]),
        "host.swap_policy": st.sampled_from(["random", "clock"]),
        "host.discard_clean": st.booleans(),
        "host.cache": st.sampled_from(["none", "writeback"]),
        "disk.preset": st.sampled_from(["nvme", "hdd", "network"]),
        "seed": st.integers(0, 3),
    }
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIGS)
def test_invariants_hold_every_tick_on_generated_configs(overrides):
    overrides = overrides | {"vms.dirty_background_ratio": overrides["vms.dirty_ratio"] / 2}
    sim = Simulation(build_config({}, ticks=8, **overrides))
    for _ in range(sim.cfg.ticks):
        sim.step()
        broken = violations(sim.world)
        assert not broken, broken
    summary = sim.summary(0.0)
    assert summary["outcome"] in ("ok", "guest_oom", "host_oom")


# ---- the field's central results -----------------------------------------------------------
# 60 s: MOM runs its rules every 10 s and ws samples every 30 s (their published
# intervals), so both have acted several times before the steady half of the run.
# Busy hosts: footprints of 90% of guest memory, touched throughout; at 1.3 the host holds
# 378 MiB for 469 MiB of footprints and kernels.
BUSY_HOSTS = {
    "db": {"vms.count": 4, "ticks": 600, "vms.mem_mib": 128, "vms.workload": "db"},
    "zipf": {
        "vms.count": 4,
        "ticks": 600,
        "vms.mem_mib": 128,
        "vms.workload": "zipf",
        "vms.workload_params.footprint_mib": 115,
    },
}
# Hosts with idle guest memory: each guest zeroes its memory at boot (so the host backs all
# of it) and then uses 60% of it, the default zipf footprint; db's regions are scaled to the
# same 60% in their default proportions (cache 45 : cold 40 : heap 5).
IDLE_HOSTS = {
    "idle-zipf": {"vms.count": 4, "ticks": 600, "vms.mem_mib": 128, "vms.workload": "zipf",
                  "vms.zero_at_boot": True},
    "idle-db": {"vms.count": 4, "ticks": 600, "vms.mem_mib": 128, "vms.workload": "db",
                "vms.workload_params.cache_mib": 38.4, "vms.workload_params.cold_mib": 34.133,
                "vms.workload_params.heap_mib": 4.267, "vms.zero_at_boot": True},
}  # fmt: skip
BUSY_REASON = (
    "NOT SUPPORTED by the model (measured 2026-12-07 after the warm-start fix, 5 seeds, "
    "overcommit 1.3, 60 s): steady throughput none 234k/279k refs/s (db/zipf) vs mom "
    "191k/277k, ws 234k/279k (identical to none: it never inflates, the workloads touch ~90% "
    "of memory per 30-s sample), esx 154k/223k; total reclaim I/O none 3.00M/3.18M vs mom "
    "2.91M/3.26M, esx 2.13M/2.21M. Over 300 s mom converges to 35 MiB balloons (what stops "
    "host swapping: 4 x 117 MiB needed, 378 MiB held) and is slower still (149k/217k vs "
    "234k/279k): the guests swap the same shortfall the host did, and their ESC prefers clean "
    "pages. Over the issue's whole range (2026-12-08, 5 replicates; db/zipf, steady k refs/s, "
    "none vs mom): 1.2x 378/445 vs 277/391, 1.4x 174/209 vs 144/204, 1.6x 115/138 vs 98/140 "
    "(zipf at 1.6: +1.2%, with 3.0% more reclaim I/O); ws equals none everywhere and esx is "
    "slower everywhere. Cause: on these footprints ESC is no better than the host's random "
    "choice (replayed db trace at 90% of the footprint: esc 2.09%, random 2.19%, clock 1.24% "
    "of references miss), so moving the shortfall into the guest buys nothing, and balloons "
    "leave free reserves in guest and host. With clock guests mom gains 2.3%/0.9% on "
    "throughput (240k vs 234k, 282k vs 279k) and still costs 1.4%/2.3% more reclaim I/O; with "
    "LRU guests mom is within 0.6% of none."
)
IDLE_REASON = (
    "NOT SUPPORTED by the model (measured 2026-12-07, 5 seeds, overcommit 1.3, 60 s): every "
    "policy runs at native speed in the steady half (zipf 1.00M refs/s; db 999.5k, esx "
    "999.5k), and mom and ws are identical to none in reclaim I/O (zipf 125k, db 110k; esx "
    "107k/89k): the host cannot hold every zeroed frame at boot, and its blind choice settles "
    "within 5 s (zipf, none: all 57.5k host swap-outs and the only slowdown, 699k refs/s, fall "
    "in the first 5 s; native after), before mom's first decision at 10 s. Over the issue's "
    "whole range (2026-12-08, 5 replicates): native under every policy at 1.2x and 1.4x, and "
    "under none, mom and ws at 1.6x (esx 871k/956k); reclaim I/O of mom within 1.1% of none at "
    "1.2x and 1.4x and 5.2%/3.6% under it at 1.6x (db 325k vs 343k, zipf 425k vs 441k), of "
    "ws within 0.5% everywhere: a tie on throughput is not a win."
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "host",
    [
        *(pytest.param(h, id=k, marks=pytest.mark.xfail(strict=True, reason=BUSY_REASON))
          for k, h in BUSY_HOSTS.items()),
        *(pytest.param(h, id=k, marks=pytest.mark.xfail(strict=True, reason=IDLE_REASON))
          for k, h in IDLE_HOSTS.items()),
    ],
)  # fmt: skip
def test_cooperative_ballooning_beats_blind_host_swapping(host):
    keys = ("throughput_steady", "reclaim_io")
    seeds = range(5)
    none = mean_over_seeds(keys, seeds, **host, **{"host.overcommit": 1.3})
    for policy in ("mom", "ws", "esx"):
        got = mean_over_seeds(
            keys, seeds, **host, **{"host.overcommit": 1.3, "hypervisor.policy": policy}
        )
        assert got["throughput_steady"] > none["throughput_steady"], (policy, got, none)
        assert got["reclaim_io"] < none["reclaim_io"], (policy, got, none)


def test_a_guest_zeroing_its_memory_gives_the_host_idle_memory_to_reclaim():
    """The idle hosts above have what their name says: at 1.3 the host must reclaim, and
    without zeroing at boot it would not have to (the footprints fit)."""
    host = IDLE_HOSTS["idle-zipf"] | {"ticks": 20, "host.overcommit": 1.3}
    zeroed = sim_core.run(build_config({}, **host, seed=0)).summary
    plain = sim_core.run(build_config({}, **host | {"vms.zero_at_boot": False}, seed=0)).summary
    assert zeroed["host_swap_outs"] > 1000 and plain["host_swap_outs"] == 0


@pytest.mark.xfail(
    strict=True,
    reason="NOT SUPPORTED (measured 2026-12-07 after the warm-start fix, 3 seeds): the "
    "bounded request table holds at most ~1 MiB of host I/O buffers, so cutting them changes "
    "nothing - cache=none: 268.7k vs 270.3k refs/s with io_buffer_kib=0, host swap-outs "
    "166.7k vs 167.6k; cache=writeback: 264.7k vs 266.0k, 188.0k vs 187.7k. In the model the "
    "storm's feedback through host memory is the host page cache holding guest writes "
    "(test_host_cache.py::test_the_host_page_cache_feeds_the_swap_storm: cache=writeback "
    "raises host swap-outs from 166.7k to 188.0k), not the request buffers.",
)
def test_cutting_the_io_buffer_feedback_weakens_the_storm():
    storm = {
        "vms.count": 4,
        "ticks": 80,
        "host.overcommit": 1.5,
        "vms.workload": "zipf",
        "vms.workload_params.footprint_mib": 200,
        "hypervisor.policy": "aggressive",
    }
    keys = ("throughput_mean", "host_swap_outs")
    fed = mean_over_seeds(keys, **storm)
    cut = mean_over_seeds(keys, **storm, **{"host.io_buffer_kib": 0})
    assert cut["throughput_mean"] > 1.1 * fed["throughput_mean"], (cut, fed)
    assert cut["host_swap_outs"] < 0.9 * fed["host_swap_outs"], (cut, fed)
