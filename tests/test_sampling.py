"""Spatially hashed sampling (``sampling.rate``, sim_core.sampling): which pages, that rate 1
changes nothing, that a sampled run estimates the full one, and that a 512 GiB host fits."""

from __future__ import annotations

import math

import numpy as np
import pytest

from sim_core import ConfigError, Simulation, build_config, sampling
from sim_core.workloads import make_workload

SMALL = {"vms.mem_mib": 64, "ticks": 1}


def _sampled_set(sim: Simulation, g: int) -> np.ndarray:
    return sim.workloads[g].sampled


# ---- which pages ---------------------------------------------------------------------------
def test_the_sampled_set_is_deterministic_and_independent_of_the_guest_count():
    two = Simulation(build_config(**SMALL, **{"vms.count": 2, "sampling.rate": 0.1}))
    again = Simulation(build_config(**SMALL, **{"vms.count": 2, "sampling.rate": 0.1}))
    four = Simulation(build_config(**SMALL, **{"vms.count": 4, "sampling.rate": 0.1}))
    other = Simulation(build_config(**SMALL, **{"vms.count": 2, "sampling.rate": 0.1, "seed": 1}))
    assert np.array_equal(_sampled_set(two, 0), _sampled_set(again, 0))
    assert np.array_equal(_sampled_set(two, 0), _sampled_set(four, 0))
    assert np.array_equal(_sampled_set(two, 1), _sampled_set(four, 1))
    assert not np.array_equal(_sampled_set(two, 0), _sampled_set(other, 0))
    assert not np.array_equal(_sampled_set(two, 0), _sampled_set(two, 1))  # per-guest salt


@pytest.mark.parametrize("rate", [0.5, 0.1, 0.01])
def test_the_sampled_fraction_is_within_a_binomial_tolerance_of_the_rate(rate):
    n = 200_000
    for seed in range(3):
        k = sampling.sampled_pages(n, sampling.salt(seed, 0), rate).size
        sd = math.sqrt(n * rate * (1 - rate))
        assert abs(k - rate * n) < 5 * sd, (seed, k, rate * n)


def test_a_sampled_independent_workload_is_the_full_one_conditioned_on_the_sample():
    full = make_workload("zipf", {"footprint_mib": 16}, 8192, 4)
    full.reset(np.random.default_rng(7))
    probs = full.page_probabilities()
    sampled = sampling.sample_workload(make_workload("zipf", {"footprint_mib": 16}, 8192, 4), 3,
                                       0, 0.2)  # fmt: skip
    sampled.reset(np.random.default_rng(7))  # the same layout stream: the same permutation
    s = sampled.sampled
    assert np.allclose(sampled.page_probabilities(), probs[s] / probs[s].sum(), rtol=1e-12)
    assert sampled.reference_share == pytest.approx(probs[s].sum())
    pages, _ = sampled.generate(200_000)
    assert pages.min() >= 0 and pages.max() < s.size
    freq = np.bincount(pages, minlength=s.size) / pages.size
    assert np.abs(freq - sampled.page_probabilities()).max() < 0.01


def test_a_filtered_workload_is_the_full_stream_with_unsampled_pages_dropped():
    def build():
        return make_workload("scan", {"footprint_mib": 4}, 2048, 4)

    full = build()
    full.reset(np.random.default_rng(5))
    stream, _ = full.generate(20_000)
    wl = sampling.sample_workload(build(), 0, 1, 0.1)
    wl.reset(np.random.default_rng(5))
    a, _ = wl.generate(37)
    b, _ = wl.generate(300)  # chunking does not change the stream
    expected = np.searchsorted(wl.sampled, stream[np.isin(stream, wl.sampled)])
    got = np.concatenate([a, b])
    assert np.array_equal(got, expected[: got.size])
    assert np.array_equal(wl.page_kind, full.page_kind[wl.sampled])


# ---- rate 1 changes nothing ------------------------------------------------------------------
def test_rate_1_is_bit_identical_to_a_config_without_sampling():
    base = {"vms.count": 3, "vms.mem_mib": 128, "host.overcommit": 1.6, "ticks": 30,
            "vms.1.workload": "db", "vms.2.workload": "phases",
            "hypervisor.policy": "mom"}  # fmt: skip
    plain = build_config(**base)
    explicit = build_config(**base, **{"sampling.rate": 1.0})
    assert plain.to_json() == explicit.to_json()  # run ids do not move
    sim = Simulation(explicit)
    assert sim.scale is None and not hasattr(sim.workloads[0], "sampled")
    a, b = Simulation(plain).run(), sim.run()
    volatile = {"wall_seconds", "refs_per_second"}
    assert set(a.summary) == set(b.summary) and "sampling.rate" in a.summary
    for key in set(a.summary) - volatile:
        assert a.summary[key] == b.summary[key] or (a.summary[key] != a.summary[key]), key
    assert set(a.ticks) == set(b.ticks)
    for key, column in a.ticks.items():
        assert column.dtype == b.ticks[key].dtype and np.array_equal(column, b.ticks[key]), key


# ---- the controller's view -------------------------------------------------------------------
def test_controllers_see_full_scale_units():
    cfg = build_config(**{"vms.count": 2, "vms.mem_mib": 256, "ticks": 10, "sampling.rate": 0.1})
    sim = Simulation(cfg)
    for _ in range(cfg.ticks):
        sim.step()
    obs = sim.monitor.observe(1.0, 1.0, sim.target_kib)
    assert list(obs.guests.maximum_kib) == [256 * 1024, 256 * 1024]
    assert obs.host.memtotal_kib == cfg.host_mem_mib * 1024
    full_total = (cfg.host_mem_mib - cfg.host.reserve_mib) * 1024
    assert obs.host.total_kib == pytest.approx(full_total, rel=0.01)
    full = Simulation(build_config(**{"vms.count": 2, "vms.mem_mib": 256, "ticks": 10}))
    for _ in range(cfg.ticks):
        full.step()
    ref = full.monitor.observe(1.0, 1.0, full.target * cfg.page_kib)
    # Kernel frames and used memory at full scale (estimates: within a few percent).
    assert np.allclose(obs.guests.available_kib, ref.guests.available_kib, rtol=0.01)
    assert np.allclose(obs.guests.rss_kib, ref.guests.rss_kib, rtol=0.05)


# ---- a sampled run estimates the full one -----------------------------------------------------
ACCURACY = {"vms.count": 4, "vms.mem_mib": 512, "host.overcommit": 1.5, "ticks": 100,
            "vms.workload": "zipf", "vms.workload_params": {"footprint_mib": 460},
            "vms.2.workload": "db", "vms.2.workload_params": {},
            "vms.3.workload": "db", "vms.3.workload_params": {}}  # fmt: skip
SEEDS = range(3)


def _mean_outcome(rate: float) -> tuple[float, float]:
    thr, fpk = [], []
    for seed in SEEDS:
        s = Simulation(build_config(**ACCURACY, seed=seed, **{"sampling.rate": rate})).run().summary
        assert s["outcome"] == "ok"
        thr.append(s["throughput_mean"])
        fpk.append(s["guest_faults"] / s["references"] * 1000)
    return float(np.mean(thr)), float(np.mean(fpk))


def test_rate_0_1_is_within_5_percent_of_the_full_run():
    """4 guests of 512 MiB (zipf and db), overcommit 1.5 under blind host swapping, 10 s,
    3 seeds: throughput and guest faults per 1000 references within 5%."""
    full_thr, full_fpk = _mean_outcome(1.0)
    thr, fpk = _mean_outcome(0.1)
    assert abs(thr / full_thr - 1) < 0.05, (thr, full_thr)
    assert abs(fpk / full_fpk - 1) < 0.05, (fpk, full_fpk)


# ---- a 512 GiB host fits -------------------------------------------------------------------
def _array_bytes(obj, seen: set[int]) -> int:
    """Bytes of the NumPy arrays an object holds, through nested workloads (each once)."""
    total = 0
    for value in vars(obj).values():
        if isinstance(value, np.ndarray) and id(value) not in seen:
            seen.add(id(value))
            total += value.nbytes
        elif hasattr(value, "__dict__") and hasattr(value, "generate") and id(value) not in seen:
            seen.add(id(value))
            total += _array_bytes(value, seen)
    return total


def test_a_sampled_512_gib_host_is_built_in_bounded_memory():
    from sim_core.state import WORLD_FIELDS

    cfg = build_config(**{"vms.count": 32, "vms.mem_mib": 16 * 1024, "host.overcommit": 1.0,
                          "ticks": 2, "sampling.rate": 0.01})  # fmt: skip
    sim = Simulation(cfg)
    world = sum(getattr(sim.world, name).nbytes for name in WORLD_FIELDS)
    seen: set[int] = set()
    held = sum(_array_bytes(wl, seen) for wl in sim.workloads) + _array_bytes(sim.monitor, seen)
    assert world + held < 256 * 2**20, (world, held)
    assert int(sim.mem_pages.sum()) == 32 * round(16 * 1024 * 256 * 0.01)
    sim.step()  # and it runs


# ---- validation --------------------------------------------------------------------------------
@pytest.mark.parametrize("rate", [0, -0.5, 1.5, "a"])
def test_a_rate_out_of_range_names_the_field(rate):
    with pytest.raises(ConfigError, match=r"sampling\.rate"):
        build_config(**{"sampling.rate": rate})


def test_a_sampled_host_keeps_one_read_per_guest_context_in_flight():
    # Each guest has at most one synchronous fault read and one double-paging read (its
    # reclaim, on a frame the host swapped out) outstanding. Reclaim used to submit a
    # double-paging read per victim without waiting: with sampling's 1/R-longer reads they
    # piled up (143 at once here; the 512 GiB / 32-guest host at rate 0.01 overflowed the
    # device's read table at tick 478).
    from sim_core import block_device as bd

    n, mem = 4, 1024
    cfg = build_config(
        ticks=400,
        **{
            "host.mem_mib": int(n * mem / 1.5),
            "vms.count": n,
            "vms.mem_mib": mem,
            "hypervisor.policy": "mom",
            "sampling.rate": 0.1,
            "vms.workload_params.footprint_mib": 0.9 * mem,
        },
    )
    sim = Simulation(cfg)
    most = 0
    for _ in range(cfg.ticks):
        sim.step()
        most = max(most, int(sim.world.dvi[bd.DV_RD_N]))
    assert most <= 2 * n
