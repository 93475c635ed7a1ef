"""The full host/guest simulation: the pathologies it must produce, its invariants, its
determinism and its config validation. Every pathology comes out of the model; the
scenarios only set the stage (sizes, workloads, policies)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import sim_core
from sim_core import ConfigError, Simulation, build_config
from sim_core.invariants import violations


def summary(**overrides) -> dict:
    return sim_core.run(build_config({}, **overrides)).summary


# ---- I/O amplification -------------------------------------------------------------------
PAGE_CACHE_HOST = {
    "vms.count": 4,
    "ticks": 60,
    "host.overcommit": 1.5,
    "vms.workload": "zipf",
    "vms.workload_params.file_fraction": 1.0,  # all page cache ...
    "vms.workload_params.write_ratio": 0.0,  # ... and clean
    "vms.workload_params.footprint_mib": 230,
}


def test_host_swapping_writes_a_page_per_clean_page_the_balloon_drops_for_free():
    host = summary(**PAGE_CACHE_HOST, **{"hypervisor.policy": "none"})
    # MOM runs its rules every 10 s: 25 s give it two shrink steps of 5%.
    balloon = summary(**{**PAGE_CACHE_HOST, "ticks": 250, "hypervisor.policy": "mom"})
    # The blind host writes every page it takes, though nearly all are clean page cache
    # whose copy is on the guest's disk (VSwapper's silent swap writes) ...
    assert host["host_reclaimed_pages"] > 1000
    # (the rest are re-evictions of pages it swapped in unmodified: its swap cache)
    assert host["host_reclaim_writes"] >= 0.5 * host["host_reclaimed_pages"]
    assert (
        host["host_reclaim_writes"] + host["host_swap_cache_drops"] == host["host_reclaimed_pages"]
    )
    assert host["silent_swap_writes"] >= 0.9 * host["host_swap_outs"]
    # ... where the guest, asked by the balloon, drops them for free.
    assert balloon["balloon_reclaimed_pages"] > 1000
    assert balloon["balloon_reclaim_writes"] <= 0.05 * balloon["balloon_reclaimed_pages"]
    assert balloon["balloon_io_per_reclaimed_page"] < 0.5 * host["host_io_per_reclaimed_page"]


def test_host_discard_of_clean_pages_avoids_the_writes():
    discard = summary(
        **PAGE_CACHE_HOST, **{"hypervisor.policy": "none", "host.discard_clean": True}
    )
    assert discard["host_discards"] > 1000
    assert discard["silent_swap_writes"] == 0
    # what it still writes are the frames that mirror no disk block (kernel structures)
    assert discard["host_swap_outs"] < 0.1 * discard["host_discards"]


# ---- push-pull ---------------------------------------------------------------------------
PUSH_PULL = {
    "vms.count": 1,
    "ticks": 150,
    "vms.mem_mib": 256,
    "host.mem_mib": 116,
    "host.reserve_mib": 16,
    "hypervisor.policy": "static",
    "vms.workload": "hotcold",
    "vms.workload_params.hot_mib": 64,  # the working set
    "vms.workload_params.cold_mib": 128,
    "vms.workload_params.hot_prob": 0.999,
    "vms.workload_params.file_fraction": 1.0,
    "vms.workload_params.write_ratio": 0.0,
}


def test_push_pull_balloon_moves_pressure_from_host_to_guest():
    balloons = [0, 60, 120, 160, 200, 230]
    runs = [summary(**PUSH_PULL, **{"vms.balloon_mib": b}) for b in balloons]
    host_swaps = [r["host_swap_outs"] for r in runs]
    faults = [r["guest_faults"] for r in runs]
    # host swapping falls as the balloon grows ...
    assert all(b <= a for a, b in zip(host_swaps, host_swaps[1:], strict=False)), host_swaps
    assert host_swaps[0] > 1000 and host_swaps[-1] == 0
    # ... while the guest is fine until the balloon cuts into its 64 MiB working set
    # (256 - 200 = 56 MiB left), where faults climb steeply.
    before_knee = max(faults[:4])
    assert faults[4] > 10 * max(before_knee, 1), faults
    assert faults[5] >= faults[4]


# ---- I/O buffers follow the device queue --------------------------------------------------
STORM = {
    "vms.count": 4,
    "ticks": 80,
    "host.overcommit": 1.5,
    "vms.workload": "zipf",
    "vms.workload_params.footprint_mib": 200,
}


def test_host_io_buffers_follow_the_requests_in_flight_and_the_table_bounds_them():
    storm = sim_core.run(build_config({}, **STORM, **{"hypervisor.policy": "aggressive"}))
    host = storm.ticks["vm"] == -1
    queue = storm.ticks["io_queue"][host]
    buffers = storm.ticks["io_buffers_mib"][host]
    assert queue.max() > 100  # the guests and the host keep the device busy
    # one 4 KiB buffer per request in flight, never more; the request table bounds both
    assert (buffers <= queue * 4 / 1024 + 1e-9).all()
    assert storm.summary["disk_queue_peak"] <= 192 + 4096
    assert storm.ticks["host_swap_outs"][host].sum() == storm.summary["host_swap_outs"]


# ---- nested swapping -----------------------------------------------------------------------
NESTED = {
    "vms.count": 2,
    "ticks": 100,
    "vms.mem_mib": 128,
    "vms.swap_mib": 128,
    "host.overcommit": 1.6,
    "hypervisor.policy": "none",
    "vms.workload": "zipf",
    "vms.workload_params.footprint_mib": 150,  # bigger than the guest: it swaps
    "vms.workload_params.alpha": 0.6,
}


def test_double_paging_under_host_pressure_and_pinning_removes_most():
    plain = summary(**NESTED)
    pinned = summary(**NESTED, **{"host.pin_guest_swap": True})
    assert plain["guest_swap_outs"] > 1000 and plain["host_swap_outs"] > 1000
    assert plain["double_paging"] > 1000  # the guest writes out frames the host swapped
    assert plain["double_paging"] <= plain["nested_faults"]
    # a thrashing guest's memory pinned against host reclaim: the host stops swapping it
    assert pinned["host_swap_outs"] < 0.1 * plain["host_swap_outs"]
    assert pinned["double_paging"] < 0.5 * plain["double_paging"]


# ---- balloon overhead (Waldspurger, fig. 2) ------------------------------------------------
@pytest.mark.parametrize("m", [96, 128, 192])
def test_ballooned_vm_is_a_little_slower_than_a_vm_configured_with_that_memory(m):
    common = {
        "vms.count": 1,
        "ticks": 60,
        "host.mem_mib": 512,
        "vms.swap_mib": 256,
        "vms.workload": "zipf",
        "vms.workload_params.footprint_mib": 160,
    }
    ballooned = summary(
        **common, **{"vms.mem_mib": 256, "hypervisor.policy": "static", "vms.balloon_mib": 256 - m}
    )
    configured = summary(**common, **{"vms.mem_mib": m, "hypervisor.policy": "none"})
    # Booted with 256 MiB, the ballooned VM keeps struct pages for all of it (64 bytes per
    # 4 KiB page), so it has less usable memory than a VM booted with m MiB: never faster
    # in the steady state, and slower only by a few percent (Waldspurger: 1.4-4.4%).
    gap = ballooned["throughput_steady"] / configured["throughput_steady"] - 1
    assert -0.10 < gap <= 1e-9, gap


# ---- invariants, determinism, validation ----------------------------------------------------
@pytest.mark.parametrize(
    "overrides",
    [
        {"hypervisor.policy": "aggressive", "vms.workload": "db", "host.swap_policy": "clock"},
        {"hypervisor.policy": "aggressive", "vms.workload": "db", "host.cache": "writeback"},
        {
            "hypervisor.policy": "mom",
            "vms.workload": "zipf",
            "host.cache": "writeback",
            "host.discard_clean": True,
            "host.pin_guest_swap": True,
        },
        {"hypervisor.policy": "mom", "vms.guest_policy": "lru", "host.discard_clean": True},
        {"hypervisor.policy": "ws", "vms.guest_policy": "ws", "host.pin_guest_swap": True},
        {"hypervisor.policy": "esx", "vms.guest_policy": "fifo", "vms.workload": "phases"},
        {"hypervisor.policy": "pff", "vms.guest_policy": "random", "vms.workload": "scan"},
        {"hypervisor.policy": "static", "vms.balloon_mib": 40, "vms.guest_policy": "file_first"},
        {"hypervisor.policy": "none", "vms.guest_policy": "clock", "vms.swap_mib": 1},
    ],
)
def test_invariants_hold_after_every_tick(overrides):
    cfg = build_config(
        {},
        **{"vms.count": 3, "ticks": 25, "host.overcommit": 1.8, "vms.mem_mib": 64,
           "vms.swap_mib": 32, **overrides},
    )  # fmt: skip
    sim = Simulation(cfg)
    assert violations(sim.world) == []
    for tick in range(cfg.ticks):
        sim.step()
        assert violations(sim.world) == [], f"tick {tick}"


def test_a_guest_with_nowhere_to_put_its_pages_is_out_of_memory_not_a_crash():
    s = summary(**{"vms.count": 1, "ticks": 20, "vms.mem_mib": 32, "vms.swap_mib": 0,
                   "vms.workload": "zipf", "vms.workload_params.footprint_mib": 64,
                   "vms.deflate_on_oom": False})  # fmt: skip
    assert s["outcome"] == "guest_oom"
    assert s["guest_oom_vms"] == 1


def test_same_config_same_result_and_seed_matters():
    cfg = build_config({}, **{"vms.count": 2, "ticks": 30, "host.overcommit": 2.0,
                              "hypervisor.policy": "mom", "vms.mem_mib": 96,
                              "vms.workload_params.footprint_mib": 90})  # fmt: skip
    a, b = sim_core.run(cfg), sim_core.run(cfg)
    skip = {"wall_seconds", "refs_per_second"}
    assert {k: v for k, v in a.summary.items() if k not in skip} == {
        k: v for k, v in b.summary.items() if k not in skip
    }
    for col in a.ticks:
        np.testing.assert_array_equal(a.ticks[col], b.ticks[col])
    other = sim_core.run(build_config(cfg.to_dict(), seed=cfg.seed + 1))
    assert a.summary["host_faults"] > 0
    assert not np.array_equal(other.ticks["host_faults"], a.ticks["host_faults"])


def test_result_tables_convert_to_arrow():
    r = sim_core.run(build_config({}, **{"ticks": 5, "vms.count": 2, "vms.mem_mib": 32}))
    summary_table, ticks = r.summary_table(), r.ticks_table()
    assert summary_table.num_rows == 1
    assert ticks.num_rows == 5 * 3  # two guests and the host, every tick
    for key in ("outcome", "references", "io_per_reclaimed_page", "profit_per_host_hour",
                "vms.count", "host.mem_mib", "wall_seconds", "refs_per_second"):  # fmt: skip
        assert key in summary_table.column_names
    assert set(np.unique(r.ticks["vm"])) == {-1, 0, 1}


def test_overcommit_derives_host_memory():
    cfg = build_config({}, **{"vms.count": 4, "vms.mem_mib": 256, "host.overcommit": 2.0})
    assert cfg.host.mem_mib == 512 + cfg.host.reserve_mib
    cfg = build_config({}, **{"vms.count": 2, "vms.mem_mib": 256, "host.mem_mib": 1024,
                              "host.reserve_mib": 0})  # fmt: skip
    assert math.isclose(cfg.host.overcommit, 0.5)


def test_vms_overrides_apply_to_every_vm_and_one_vm():
    cfg = build_config({}, **{"vms.count": 3, "vms.mem_mib": 100, "vms.1.mem_mib": 50})
    assert [v.mem_mib for v in cfg.vms] == [100, 50, 100]
    cfg = build_config({"vms": [{"workload": "db"}, {"workload": "idle"}]}, **{"vms.count": 3})
    assert [v.workload for v in cfg.vms] == ["db", "idle", "idle"]


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"ticks": 0}, "ticks"),
        ({"host.swap_policy": "lru"}, "host.swap_policy"),
        ({"hypervisor.policy": "magic"}, "hypervisor.policy"),
        ({"vms.guest_policy": "opt"}, "vms[0].guest_policy"),
        ({"vms.mem_mib": -5}, "vms[0].mem_mib"),
        ({"vms.workload": "bitcoin"}, "vms[0].workload"),
        ({"vms.workload_params.alpha": -1}, "vms[0].workload_params.alpha"),
        ({"host.memmib": 100}, "host.memmib"),
        ({"disk.iops": 0}, "disk.iops"),
        ({"host.overcommit": -1.0}, "host.overcommit"),
        ({"vms.mem_mib": "lots"}, "vms[0].mem_mib"),
        ({"vms.balloon_mib": 300, "vms.mem_mib": 256}, "vms[0].balloon_mib"),
        ({"hypervisor.lock_order": "random"}, "hypervisor.lock_order"),
    ],
)
def test_bad_config_is_rejected_naming_the_field(overrides, field):
    with pytest.raises(ConfigError) as err:
        build_config({}, **overrides)
    assert str(err.value).startswith(field), str(err.value)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"disk.preset": "ssd"},
         "disk.preset: unknown 'ssd', choose one of nvme, sata_ssd, hdd, network"),
        ({"vms.dirty_ratio": 120}, "vms[0].dirty_ratio: must be in (0, 100], got 120"),
        ({"vms.dirty_ratio": 10, "vms.dirty_background_ratio": 20},
         "vms[0].dirty_background_ratio: must be in [0, dirty_ratio = 10.0), got 20"),
        ({"host.dirty_ratio": 120}, "host.dirty_ratio: must be in (0, 100], got 120"),
        ({"host.dirty_ratio": 10, "host.dirty_background_ratio": 20},
         "host.dirty_background_ratio: must be in [0, dirty_ratio = 10.0), got 20"),
    ],
)  # fmt: skip
def test_contradictory_io_settings_are_refused_before_anything_runs(overrides, message):
    with pytest.raises(ConfigError) as err:
        build_config({}, **overrides)
    assert str(err.value).startswith(message), str(err.value)


@pytest.mark.parametrize("mem", [65, 67, 100, 333])
def test_a_resolved_config_reads_back_as_itself(mem):
    from sim_core.config import from_dict

    cfg = build_config({}, **{"host.mem_mib": mem, "host.reserve_mib": 64, "vms.mem_mib": 100})
    assert from_dict(cfg.to_dict()) == cfg


# ---- the balloon lock protocol inside the simulation --------------------------------------
LOCKED = {
    "vms.count": 4,
    "ticks": 100,
    "host.overcommit": 1.6,
    "hypervisor.policy": "mom",
    # heavy ballooning: MOM samples every tick and runs its rules every other tick
    "hypervisor.interval_s": 0.1,
    "hypervisor.params.policy_interval_s": 0.2,
    "hypervisor.lock_contention": 1.0,
}


def test_natural_lock_order_deadlocks_guests_and_hostmem_first_never_does():
    natural = sim_core.run(build_config({}, **LOCKED, **{"hypervisor.lock_order": "natural"}))
    ordered = sim_core.run(build_config({}, **LOCKED, **{"hypervisor.lock_order": "hostmem_first"}))
    assert natural.summary["deadlocks"] >= 1
    assert natural.summary["deadlocked_vms"] >= 1
    t = natural.ticks
    for g in range(4):
        mine = t["vm"] == g
        stalled = t["stalled"][mine] > 0
        if stalled.any():
            first = int(np.argmax(stalled))
            assert stalled[first:].all()  # a deadlocked guest never comes back
            assert t["references"][mine][first + 1 :].sum() == 0
    assert ordered.summary["deadlocks"] == 0
    assert ordered.summary["outcome"] != "deadlock"
    assert (ordered.ticks["stalled"] == 0).all()


def test_identical_guests_share_one_native_baseline(monkeypatch):
    """The pressure-free baseline is a function of the VM's config, not of its name: four
    identical guests (vm0..vm3) cost one baseline run, and a different guest a second."""
    from sim_core import simulation

    monkeypatch.setattr(simulation, "_native_cache", {})
    cfg = build_config(ticks=2, vms__count=4, vms__mem_mib=8, host__overcommit=1.0)
    assert len({vm.name for vm in cfg.vms}) == 4
    values = {simulation.native_throughput(cfg, g) for g in range(4)}
    assert len(simulation._native_cache) == 1 and len(values) == 1
    bigger = build_config(ticks=2, vms__count=4, vms__mem_mib=16, host__overcommit=1.0)
    simulation.native_throughput(bigger, 0)
    assert len(simulation._native_cache) == 2


@pytest.mark.parametrize("workload", ["zipf", "phases", "db"])
@pytest.mark.parametrize("rate", [1.0, 0.05])
def test_drawing_references_a_batch_ahead_does_not_change_a_run(workload, rate):
    # Guests draw their references a batch ahead (Simulation.ref_buffer); the streams do
    # not depend on chunking, so a one-tick buffer (the earlier rule) gives the same run.
    overrides = {"ticks": 40, "vms.count": 2, "vms.mem_mib": 64, "vms.workload": workload,
                 "host.overcommit": 2.0, "hypervisor.policy": "aggressive",
                 "sampling.rate": rate}  # fmt: skip
    cfg = build_config({}, **overrides)
    batched = Simulation(cfg)
    if not (workload == "phases" and rate < 1):  # sampled phases are filtered: timed
        assert (batched.ref_buffer >= 2 * batched.ref_capacity).all()
    one_tick = Simulation(cfg)
    one_tick.ref_buffer = one_tick.ref_capacity.copy()
    a, b = batched.run(), one_tick.run()
    timing = {"wall_seconds", "refs_per_second"}
    assert {k: v for k, v in a.summary.items() if k not in timing} == {
        k: v for k, v in b.summary.items() if k not in timing
    }
    assert a.summary["guest_major_faults"] > 0  # under pressure: the runs are not trivial
    for name in ("references", "major_faults", "host_faults"):
        np.testing.assert_array_equal(a.ticks[name], b.ticks[name])


def test_the_memory_estimate_counts_the_reference_batch():
    from sim_core import footprint, simulation

    assert footprint.REFILL_REFS == simulation.REFILL_REFS
    cfg = build_config({}, **{"vms.count": 3, "sampling.rate": 0.01})
    sim = Simulation(cfg)
    refs = footprint.footprint_breakdown(cfg)["refs"]
    assert refs >= sim.world.ref_page.nbytes + sim.world.ref_write.nbytes
