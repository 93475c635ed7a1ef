"""`tmo` (Meta's Senpai) and `farmem` (Google's far memory): control laws on hand-built
Observations, then each in a simulation against its own objective."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from test_controllers import MIB, observation, setup

from sim_core.config import ConfigError, build_config
from sim_core.controllers import CONTROLLERS
from sim_core.controllers.farmem import FarMemory, FarMemParams, best_threshold
from sim_core.controllers.tmo import Tmo, TmoParams
from sim_core.observation import ColdAges, Observation
from sim_core.simulation import Simulation

MAX_KIB = 1000 * MIB  # 1024000 KiB


def test_both_are_registered():
    assert CONTROLLERS["tmo"] is Tmo and CONTROLLERS["farmem"] is FarMemory


# ---- tmo: senpai.py's tick, rule for rule (hand-derived) -------------------------------------
def tmo_obs(t: float, psi_us: float, *, polled: float | None = None, target=0) -> Observation:
    obs = observation(host_free_kib=500 * MIB, actual=[MAX_KIB], unused=[200 * MIB],
                      maximum=[MAX_KIB], t=t, polled=t if polled is None else polled,
                      target=[target])  # fmt: skip
    guests = dataclasses.replace(obs.guests, psi_some_us=np.array([psi_us], float))
    return dataclasses.replace(obs, guests=guests)


def test_tmo_probes_below_target_backs_off_above_and_waits_for_a_poll():
    tmo = Tmo(TmoParams(), setup(1))
    # Start: the limit is reset to memory.current = actual - unused = 800 MiB = 819200 KiB:
    # the balloon takes the free 200 MiB (204800 KiB).
    balloon = tmo.decide(tmo_obs(0.0, 0.0))
    assert list(balloon) == [204800]
    b = int(balloon[0])
    for t in range(1, 7):  # grace starts at interval = 6 ticks: nothing happens
        assert tmo.decide(tmo_obs(float(t), 0.0, target=b)) is None
    # Tick 7: integral 5000 us <= 10000: probe. err = 10000 / 5000 = 2, adj = (2 / 10)^2 *
    # 0.01 = 0.0004; limit = int(819200 - 819200 * 0.0004) = int(818872.32) = 818872 KiB,
    # a page multiple (4 KiB); balloon = 1024000 - 818872 = 205128 KiB.
    assert list(tmo.decide(tmo_obs(7.0, 5000.0, target=b))) == [205128]
    b = 205128
    # Tick 8: 40000 us more > 10000: back off. err = 4, adj = (4 / 20)^2 * 1.0 = 0.04;
    # limit = int(818872 * 1.04) = int(851626.88) = 851626 -> page floor 851624 KiB;
    # balloon = 1024000 - 851624 = 172376 KiB.
    assert list(tmo.decide(tmo_obs(8.0, 45000.0, target=b))) == [172376]
    b = 172376
    # No new poll: whatever the (stale) reading says, nothing is added - no backoff.
    assert tmo.decide(tmo_obs(9.0, 1e9, polled=8.0, target=b)) is None
    for t in range(10, 14):  # grace = interval - 1 = 5: ticks 9..13 wait it out
        assert tmo.decide(tmo_obs(float(t), 45000.0, target=b)) is None
    # Tick 14: grace over, but the poll is from tick 13 (stale): the probe waits.
    assert tmo.decide(tmo_obs(14.0, 45000.0, polled=13.0, target=b)) is None
    # Tick 15: fresh, integral 0: probe against 10000 * (6 + 1) / 6 us; err huge -> the
    # full max_probe 0.01: limit = int(851624 * 0.99) = int(843107.76) = 843107 -> 843104;
    # balloon = 1024000 - 843104 = 180896 KiB.
    assert list(tmo.decide(tmo_obs(15.0, 45000.0, target=b))) == [180896]


def test_tmo_restarts_from_memory_current_when_its_limit_was_changed():
    tmo = Tmo(TmoParams(), setup(1))
    tmo.decide(tmo_obs(0.0, 0.0))
    for t in range(1, 7):
        tmo.decide(tmo_obs(float(t), 0.0, target=204800))
    # The target found is not the one set (204800): Senpai's import_limit resets the
    # limit to memory.current (800 MiB) instead of probing from the foreign one.
    assert list(tmo.decide(tmo_obs(7.0, 0.0, target=0))) == [204800]


def test_tmo_never_goes_below_its_floor():
    tmo = Tmo(TmoParams(min_size_mib=900.0), setup(1))
    # memory.current 800 MiB is under the 900 MiB floor: the limit is 900 MiB.
    assert list(tmo.decide(tmo_obs(0.0, 0.0))) == [100 * MIB]


# ---- farmem: the smallest threshold meeting the promotion SLO -----------------------------------
def test_best_threshold_is_the_smallest_meeting_the_slo():
    promotions = np.zeros((2, 64))
    promotions[0, [1, 2, 3, 5]] = [500, 100, 15, 4]
    promotions[1, 63] = 50
    wss = np.array([10000.0, 5000.0])
    # SLO 0.2%/min over 1 minute: guest 0 may promote 20 pages. Pages found accessed at
    # age >= T: T=1: 619, T=2: 119, T=3: 19 <= 20 -> 3. Guest 1 (10 pages): 50 promotions
    # of age 63+ break it at every T -> the largest, 63.
    assert list(best_threshold(promotions, wss, 1.0, 0.2, 1)) == [3, 63]
    assert list(best_threshold(promotions, wss, 1.0, 0.2, 4)) == [4, 63]  # at least t_min
    # Over 10 minutes 200 and 100 pages are allowed: T=2 (119) and T=1 (50).
    assert list(best_threshold(promotions, wss, 10.0, 0.2, 1)) == [2, 1]


def farmem_obs(t: float, scans: int, hist: np.ndarray, promotions: np.ndarray,
               balloon, faults) -> Observation:  # fmt: skip
    actual = [MAX_KIB - b for b in balloon]
    obs = observation(host_free_kib=500 * MIB, actual=actual, unused=[0, 0],
                      maximum=[MAX_KIB] * 2, t=t)  # fmt: skip
    guests = dataclasses.replace(obs.guests, major_fault=np.array(faults, np.int64))
    cold = ColdAges(hist=hist.astype(np.int64), promotions=promotions.astype(np.int64),
                    period_s=10.0, scans=scans)  # fmt: skip
    return dataclasses.replace(obs, guests=guests, cold_ages=cold)


def test_farmem_chooses_thresholds_over_history_and_balloons_the_cold_pages():
    fm = FarMemory(FarMemParams(), setup(2))  # 10 s scans, 60 s windows, K = 98, S = 60 s
    hist = np.zeros((2, 64))
    # Guest 0 (balloon 700 MiB = 179200 pages, 76800 left): 10000 pages accessed in the
    # last scan (the working set), 20000 of age 1, 30000 of age 2, 6800 of 3, 10000 of 63+.
    hist[0, [0, 1, 2, 3, 63]] = [10000, 20000, 30000, 6800, 10000]
    hist[1, [0, 1, 63]] = [5000, 240000, 11000]  # guest 1: no balloon, 256000 pages
    p0 = np.zeros((2, 64))
    p1 = p0.copy()
    p1[0, [1, 2, 3, 5]] = [500, 100, 15, 4]  # best T 3 (see the test above)
    p1[1, 63] = 50  # best T 63
    b0 = [700 * MIB, 0]
    answers = [fm.decide(farmem_obs(10.0 * i, i + 1, hist, p0, b0, [0, 0])) for i in range(7)]
    assert answers == [None] * 7  # no window complete yet (the first starts at scan 2)
    out = fm.decide(farmem_obs(70.0, 8, hist, p1, b0, [1000, 0]))
    assert list(fm.threshold) == [3, 63]
    # balloon + cold - reserve - faulted back; reserve = kernel (0 here) + 2% of 1024000 KiB
    # = 20480 KiB. Guest 0: 716800 + (6800 + 10000) * 4 - 20480 - 1000 * 4 = 759520 KiB
    # (within the 5% step, 51200 KiB). Guest 1: 0 + 11000 * 4 - 20480 = 23520 KiB.
    assert list(out) == [759520, 23520]
    for i in range(8, 13):  # windows run 70..130 s
        fm.decide(farmem_obs(10.0 * i, i + 1, hist, p1, b0, [1000, 0]))
    # Second window: guest 0 promotes 30 pages of age 4, 10 of 5, 5 of 63+: budget 20 ->
    # best 5; guest 1 promotes nothing -> best 1. Thresholds: the 98th percentile of
    # [3, 5] is 5 and of [63, 1] is 63 (the higher neighbour).
    p2 = p1.copy()
    p2[0, [4, 5, 63]] += [30, 10, 5]
    hist2 = hist.copy()
    hist2[0, 63] = 2000  # fewer cold pages in guest 0
    out = fm.decide(farmem_obs(130.0, 14, hist2, p2, [759520, 23520], [6000, 0]))
    assert list(fm.threshold) == [5, 63]
    # Guest 0: 759520 + 2000 * 4 (age >= 5) - 20480 - 5000 * 4 (faulted back) = 727040:
    # the cold amount fell, the balloon deflates. Guest 1: 23520 + 44000 - 20480 = 47040.
    assert list(out) == [727040, 47040]


def test_farmem_does_nothing_during_warmup():
    fm = FarMemory(FarMemParams(warmup_s=200.0), setup(2))
    hist = np.zeros((2, 64))
    hist[:, 63] = 256000
    hist[:, 0] = 1000
    outs = [fm.decide(farmem_obs(10.0 * i, i + 1, hist, np.zeros((2, 64)), [0, 0], [0, 0]))
            for i in range(20)]  # fmt: skip
    assert fm.threshold is not None  # windows ended at 70, 130 and 190 s
    assert all(o is None for o in outs)  # but S = 200 s has not passed (t <= 190 s)


# ---- bad parameters ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "params", "message"),
    [
        ("tmo", {"min_size_mib": 2048.0, "max_size_mib": 1024.0},
         "hypervisor.params.min_size_mib: must be <= max_size_mib (1024.0), got 2048.0"),
        ("tmo", {"max_probe": 2.0}, "hypervisor.params.max_probe: must be <= 1"),
        ("tmo", {"interval": 0}, "hypervisor.params.interval: must be >= 1"),
        ("farmem", {"window_s": 5.0},
         "hypervisor.params.window_s: must be >= scan_period_s (10.0), got 5.0"),
        ("farmem", {"percentile": 101.0}, "hypervisor.params.percentile: must be <= 100"),
        ("farmem", {"slo_pct": 0.2}, "hypervisor.params.slo_pct: unknown parameter"),
    ],
)  # fmt: skip
def test_bad_parameters_are_one_line_naming_the_key(policy, params, message):
    with pytest.raises(ConfigError) as info:
        build_config({"hypervisor": {"policy": policy, "params": params}})
    assert message in str(info.value)
    assert "\n" not in str(info.value)


# ---- in a simulation --------------------------------------------------------------------------
PSI_TARGET = 10_000e-6 / 6.0  # senpai's 10 ms of stall per 6 s interval: 0.167% of the time


@pytest.fixture(scope="module")
def tmo_run():
    # Two db guests on a host overcommitted 1.2x, 400 s: 40 probe intervals (10 s with the
    # default 5 s polls). ~25 s wall.
    cfg = build_config({}, **{"vms.count": 2, "vms.mem_mib": 256, "host.overcommit": 1.2,
                              "vms.workload": "db", "ticks": 4000,
                              "hypervisor.policy": "tmo"})  # fmt: skip
    sim = Simulation(cfg)
    for _ in range(cfg.ticks):
        sim.step()
    cols = sim.tick_columns()
    half = cols["time_s"] > cfg.ticks * cfg.tick_ms / 2000.0
    psi = [float(cols["psi_some"][half & (cols["vm"] == g)].mean()) for g in range(2)]
    balloon = [float(cols["balloon_mib"][half & (cols["vm"] == g)].mean()) for g in range(2)]
    return psi, balloon


def test_tmo_saves_memory_in_a_simulation(tmo_run):
    _, balloon = tmo_run
    assert min(balloon) > 1.0  # MiB per guest, mean over the second half


@pytest.mark.xfail(
    strict=True,
    reason="db, 2 guests, 1.2x, 400 s: second-half PSI some 0.53% and 0.48% vs the 0.167% "
    "target (3.2x, 2.9x). Every page of db is referenced within ~1 s, so pressure is a "
    "cliff at the footprint's edge: probes of 1% per interval reach it every ~90 s, one "
    "backoff of (err/20)^2 (err ~18) undoes the whole ~20 MiB balloon, and it starts over",
)
def test_tmo_holds_psi_near_its_target_in_a_simulation(tmo_run):
    # Tolerance: a factor of 2 either way. Senpai probes from below in ever smaller steps
    # and backs off only above the target, so the mean sits under it on a smooth pressure
    # curve and over it in spikes; a factor 2 separates "held at the target" from missing
    # it by an order of magnitude or never reaching it.
    psi, _ = tmo_run
    for value in psi:
        assert PSI_TARGET / 2 <= value <= 2 * PSI_TARGET, psi


@pytest.fixture(scope="module")
def farmem_run():
    # Two `phases` guests whose 102 MiB working set jumps every 30 M references (~30 s)
    # within 230 MiB, on a host overcommitted 1.2x, 600 s: 60 scans, 10 windows. ~40 s wall.
    cfg = build_config({}, **{"vms.count": 2, "vms.mem_mib": 256, "host.overcommit": 1.2,
                              "vms.workload": "phases", "ticks": 6000,
                              "vms.workload_params": {"phase_refs": 30_000_000},
                              "hypervisor.policy": "farmem"})  # fmt: skip
    sim = Simulation(cfg)
    windows = []  # (time, threshold in use since the previous window, promotions, wss, faults)

    class Spy(FarMemory):
        def end_window(self, obs):
            windows.append((obs.time_s, None if self.threshold is None else self.threshold.copy(),
                            obs.cold_ages.promotions.copy(), obs.cold_ages.hist[:, 0].copy(),
                            obs.guests.major_fault.copy()))  # fmt: skip
            super().end_window(obs)

    sim.controller = Spy(sim.controller.params, sim.controller.setup)
    for _ in range(cfg.ticks):
        sim.step()
    # The promotion rate at the threshold in use, window by window (the paper's SLI), and
    # the pages actually faulted back (guest major faults), both in % of the working set
    # per minute.
    sli, faulted = [], []
    for (t0, _, p0, _, f0), (t1, used, p1, wss, f1) in zip(windows[:-1], windows[1:], strict=True):
        if used is None:
            continue
        minutes = (t1 - t0) / 60.0
        new = p1 - p0
        sli.append([100 * new[g, used[g] :].sum() / minutes / wss[g] for g in range(2)])
        faulted.append(100 * (f1 - f0) / minutes / wss)
    cols = sim.tick_columns()
    balloon = [float(cols["balloon_mib"][cols["vm"] == g].mean()) for g in range(2)]
    return np.array(sli), np.array(faulted), balloon


def test_farmem_reclaims_in_a_simulation(farmem_run):
    *_, balloon = farmem_run
    assert min(balloon) > 1.0  # MiB per guest, mean over the run


@pytest.mark.xfail(
    strict=True,
    reason="phases (30 s phases), 2 guests, 1.2x, 600 s: promotion rate at the threshold "
    "in use 5.7% and 1.5%/min of the working set on average over 8 windows (max 42% and "
    "6.5%), guest major faults 12.6% and 13.9%/min, vs the 0.2%/min SLO: each phase change "
    "touches pages idle longer than the thresholds a short history gives (4-24 scans)",
)
def test_farmem_keeps_promotions_under_the_slo_in_a_simulation(farmem_run):
    sli, faulted, _ = farmem_run
    assert len(sli) >= 5
    slo = FarMemParams().slo_pct_per_min
    assert (sli.mean(axis=0) <= slo).all(), sli.round(3).tolist()
    assert (faulted.mean(axis=0) <= slo).all(), faulted.round(3).tolist()
