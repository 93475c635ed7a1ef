"""Compact state: the simulation holds at most 40 bytes per simulated page (issue 15), on
a config of known size, measured on the real arrays (sim_core.footprint.state_bytes) -
an upper bound on memory, not a timing."""

from __future__ import annotations

import pytest

from sim_core import Simulation, build_config
from sim_core.footprint import (
    WORLD_PARTS,
    bytes_per_page,
    estimated_bytes_per_page,
    guest_pages,
    state_bytes,
)
from sim_core.state import WORLD_FIELDS

LIMIT = 40.0  # bytes per simulated page
KNOWN = {"vms.count": 4, "vms.mem_mib": 1024}  # 1,048,576 pages; default swap and workload


@pytest.fixture(scope="module")
def known():
    cfg = build_config(ticks=3, **KNOWN)
    sim = Simulation(cfg)
    for _ in range(cfg.ticks):
        sim.step()
    return cfg, sim


def test_the_state_is_at_most_40_bytes_per_simulated_page(known):
    cfg, sim = known
    assert guest_pages(cfg) == 4 * 1024 * 256
    measured = bytes_per_page(sim)
    assert measured <= LIMIT, state_bytes(sim)
    # The footprint table mirrors the arrays: widening one without it fails here, widening
    # both fails the limit.
    assert measured - 0.01 <= estimated_bytes_per_page(cfg) <= measured + 0.01


def test_fixed_size_state_does_not_grow_with_memory():
    """Whatever is left out of the per-page count (per-guest tables, reference buffers,
    the device) has the same size for guests of twice the memory."""

    def fixed(mem_mib: int) -> dict[str, int]:
        w = Simulation(build_config(ticks=1, **{"vms.count": 2, "vms.mem_mib": mem_mib})).world
        return {n: getattr(w, n).nbytes for n in WORLD_FIELDS if n not in WORLD_PARTS}

    assert fixed(64) == fixed(128)


@pytest.mark.parametrize(
    "policy, field, needed",
    [("esc", "lk", False), ("esc", "fl", False), ("lru", "lk", True), ("fifo", "lk", True),
     ("ws", "fl", True), ("ws", "lk", False)],
)  # fmt: skip
def test_policy_fields_are_allocated_only_for_the_policies_that_read_them(policy, field, needed):
    cfg = build_config(ticks=1, **{"vms.count": 2, "vms.mem_mib": 16, "vms.1.guest_policy": policy})
    sim = Simulation(cfg)
    rows = getattr(sim.world, field).shape[0]
    assert rows == (sim.world.fr.shape[0] if needed else 1)


def test_bench_reports_bytes_per_page():
    from harness.bench import bench_memory

    out = bench_memory(guests=1, mem_mib=256, ticks=1)
    assert out["guest_pages"] == 256 * 256
    assert out["bytes_per_page"] == pytest.approx(sum(out["by_part"].values()))
    assert out["estimated_bytes_per_page"] == pytest.approx(out["bytes_per_page"], abs=0.01)
    assert out["peak_bytes_per_page"] >= out["bytes_per_page"]
    assert out["target"] == LIMIT
    assert out["meets_target"] == (out["bytes_per_page"] <= LIMIT)


def test_the_host_backing_order_is_round_robin_over_first_touches():
    """boot.round_robin gives the order a lexsort by (rank, guest) would, without its keys."""
    import numpy as np

    from sim_core.boot import round_robin

    rng = np.random.default_rng(1)
    for _ in range(50):
        loaded = [rng.integers(0, 10**6, int(rng.choice([0, 1, 3, 40]))) for _ in range(5)]
        ranks = np.concatenate([np.arange(len(f)) for f in loaded])
        guests = np.concatenate([np.full(len(f), g) for g, f in enumerate(loaded)])
        expected = np.concatenate(loaded)[np.lexsort((guests, ranks))]
        ends = np.cumsum([len(f) for f in loaded]).astype(np.int64)
        np.testing.assert_array_equal(round_robin(np.concatenate(loaded), ends), expected)
