"""Balloon controllers: the Observation interface, `mom` rule for rule, plug-ins, bad input."""

from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from pathlib import Path

import numpy as np
import pytest

from harness.driver import run_sweep
from harness.executors import RayExecutor
from harness.spec import load_spec
from sim_core.config import ConfigError, build_config
from sim_core.controllers import CONTROLLERS, ControllerError, Setup, make_controller
from sim_core.controllers.esx import STATE_NAMES
from sim_core.controllers.mom import Mom, MomParams
from sim_core.monitor import IDLE, WAS_YOUNG, YOUNG, accessed_since_marked, mark_idle
from sim_core.observation import GuestStats, HostStats, Observation
from sim_core.simulation import Simulation
from store import parquet

MIB = 1024  # KiB


def observation(*, host_free_kib, actual, unused, maximum, t=10.0, minimum=None,
                target=None, memtotal=1000 * MIB, polled=None) -> Observation:  # fmt: skip
    """A hand-built Observation: guests' sizes in KiB."""
    n = len(actual)
    arr = lambda v: np.asarray(v, np.int64)  # noqa: E731
    zeros = np.zeros(n, np.int64)
    guests = GuestStats(
        name=tuple(f"vm{i}" for i in range(n)),
        maximum_kib=arr(maximum),
        min_guarantee_kib=arr(minimum if minimum is not None else zeros),
        actual_kib=arr(actual),
        unused_kib=arr(unused),
        available_kib=arr(actual),
        usable_kib=arr(unused),
        disk_caches_kib=zeros,
        rss_kib=arr(actual),
        swap_in_kib=zeros,
        swap_out_kib=zeros,
        major_fault=zeros,
        minor_fault=zeros,
        psi_some_us=np.zeros(n),
        psi_full_us=np.zeros(n),
        polled_s=t if polled is None else polled,
    )
    host = HostStats(memtotal_kib=memtotal, total_kib=memtotal, unused_kib=host_free_kib,
                     free_kib=host_free_kib, low_kib=20 * MIB, high_kib=40 * MIB,
                     swap_total_kib=0, swap_used_kib=0, swap_in_kib=0, swap_out_kib=0,
                     psi_some_us=0.0, psi_full_us=0.0, io_inflight=0)  # fmt: skip
    balloon = arr(maximum) - arr(actual)
    return Observation(
        time_s=t, interval_s=5.0, page_kib=4, guests=guests, host=host, balloon_kib=balloon,
        target_kib=balloon if target is None else arr(target), shares=np.ones(n),
        sample=None, cold_ages=None,
    )  # fmt: skip


def setup(n: int, maximum_kib: int = 1000 * MIB) -> Setup:
    return Setup(names=tuple(f"vm{i}" for i in range(n)),
                 maximum_kib=np.full(n, maximum_kib, np.int64),
                 static_balloon_kib=np.zeros(n, np.int64), page_kib=4, tick_s=0.1)  # fmt: skip


def mom_rules(obs: Observation, **params) -> np.ndarray:
    """The memory size MOM's rules give each guest, from one sample (no averaging)."""
    mom = Mom(MomParams(**params), setup(obs.n_guests))
    mom.host_free.append(float(obs.host.free_kib))
    mom.balloon_cur.append(obs.guests.actual_kib.astype(float))
    mom.mem_unused.append(obs.guests.unused_kib.astype(float))
    return mom.rules(obs)


# ---- mom: balloon.rules, case by case (hand-derived) -----------------------------------------
def test_mom_under_pressure_shrinks_by_at_most_five_percent():
    # Host 100 of 1000 MiB free: 10% < 20%, not critical. guest_free_percent = 0.20 *
    # 0.10/0.20 = 0.10. Guest: 800 MiB, 600 unused -> used 200; balloon_min = 200 + 0.1*800
    # = 280; size = 800 * 0.95 = 760 >= 280 -> 760 (the 5% cap binds).
    obs = observation(host_free_kib=100 * MIB, actual=[800 * MIB], unused=[600 * MIB],
                      maximum=[1000 * MIB])  # fmt: skip
    assert mom_rules(obs)[0] == pytest.approx(760 * MIB)


def test_mom_under_pressure_stops_at_used_plus_scaled_free_margin():
    # Same host (guest_free_percent 0.10). Guest 800 MiB, 50 unused -> used 750;
    # balloon_min = 750 + 80 = 830 > 760 -> size 830 > current 800: the shrink-only guard
    # leaves the guest alone (its target stays what it was).
    obs = observation(host_free_kib=100 * MIB, actual=[800 * MIB], unused=[50 * MIB],
                      maximum=[1000 * MIB])  # fmt: skip
    assert mom_rules(obs)[0] == pytest.approx(800 * MIB)
    # 80 MiB unused -> used 720, balloon_min = 800: not below current, not a big change.
    obs = observation(host_free_kib=100 * MIB, actual=[800 * MIB], unused=[75 * MIB],
                      maximum=[1000 * MIB])  # fmt: skip
    # used 725 + 80 = 805 > 800: guard again.
    assert mom_rules(obs)[0] == pytest.approx(800 * MIB)
    obs = observation(host_free_kib=100 * MIB, actual=[800 * MIB], unused=[100 * MIB],
                      maximum=[1000 * MIB])  # fmt: skip
    # used 700 + 80 = 780 in (760, 800]: shrink to 780.
    assert mom_rules(obs)[0] == pytest.approx(780 * MIB)


def test_mom_critical_pressure_forces_the_guest_below_its_used_memory():
    # Host 40 of 1000 MiB free: 4% <= 5% critical: guest_free_percent = 0.04 - 0.05 =
    # -0.01. Guest 800 MiB, 10 unused -> used 790; balloon_min = 790 - 8 = 782 < 800 but
    # the 5% cap (760) is lower: size 782, below the guest's used memory.
    obs = observation(host_free_kib=40 * MIB, actual=[800 * MIB], unused=[10 * MIB],
                      maximum=[1000 * MIB])  # fmt: skip
    assert mom_rules(obs)[0] == pytest.approx(782 * MIB)


def test_mom_respects_the_guaranteed_minimum():
    # Pressure as in the first case (size would be 760), but min_guarantee 790 MiB.
    obs = observation(host_free_kib=100 * MIB, actual=[800 * MIB], unused=[600 * MIB],
                      maximum=[1000 * MIB], minimum=[790 * MIB])  # fmt: skip
    assert mom_rules(obs)[0] == pytest.approx(790 * MIB)


def test_mom_without_pressure_grows_five_percent_or_to_the_free_margin():
    # Host 300 of 1000 MiB free: 30% >= 20%: grow. Guest 600 of 1000 MiB, 500 unused ->
    # used 100; balloon_min = 100 + 0.2*600 = 220; size = 600 * 1.05 = 630.
    obs = observation(host_free_kib=300 * MIB, actual=[600 * MIB], unused=[500 * MIB],
                      maximum=[1000 * MIB])  # fmt: skip
    assert mom_rules(obs)[0] == pytest.approx(630 * MIB)
    # 10 unused -> used 590; balloon_min = 590 + 120 = 710 > 630: grows to 710 at once.
    obs = observation(host_free_kib=300 * MIB, actual=[600 * MIB], unused=[10 * MIB],
                      maximum=[1000 * MIB])  # fmt: skip
    assert mom_rules(obs)[0] == pytest.approx(710 * MIB)
    # Never past balloon_max: 990 * 1.05 > 1000 -> 1000.
    obs = observation(host_free_kib=300 * MIB, actual=[990 * MIB], unused=[500 * MIB],
                      maximum=[1000 * MIB])  # fmt: skip
    assert mom_rules(obs)[0] == pytest.approx(1000 * MIB)


def test_mom_skips_changes_under_the_minimum_step():
    # Grow: 999 MiB -> min(999 * 1.05, 1000) = 1000, a change of 1 MiB <= 0.0025 * 999 =
    # 2.4975 MiB: not made, the guest keeps its current target.
    obs = observation(host_free_kib=300 * MIB, actual=[999 * MIB], unused=[500 * MIB],
                      maximum=[1000 * MIB], target=[5 * MIB])  # fmt: skip
    assert mom_rules(obs)[0] == pytest.approx(995 * MIB)  # maximum - target: unchanged


def test_mom_averages_its_samples_and_runs_every_policy_interval():
    mom = Mom(MomParams(), setup(1))
    answers = []
    for i in range(5):  # one call per 5 s monitor interval; the host's free memory drops
        obs = observation(host_free_kib=(300 - 50 * i) * MIB, actual=[800 * MIB],
                          unused=[600 * MIB], maximum=[1000 * MIB], t=5.0 * i)  # fmt: skip
        answers.append(mom.decide(obs))
    # First call schedules the first policy run 10 s later; rules run at t = 10 and 20.
    assert [a is None for a in answers] == [True, True, False, True, False]
    # At t = 10 the host average is (300+250+200)/3 = 250 MiB = 25%: grow 800 -> 840.
    assert answers[2][0] == pytest.approx(160 * MIB)
    # At t = 20: average of 300..100 = 200 MiB = 20%: not < 20%: grow again from 800.
    assert answers[4][0] == pytest.approx(160 * MIB)


def test_mom_refuses_a_critical_level_above_the_threshold():
    with pytest.raises(ConfigError, match="hypervisor.params.pressure_critical"):
        build_config({}, **{"hypervisor.policy": "mom", "hypervisor.params.pressure_critical": 0.5,
                            "hypervisor.params.pressure_threshold": 0.2})  # fmt: skip


# ---- the Observation is all a controller sees --------------------------------------------------
def test_every_controller_decides_from_one_observation_argument():
    for name, cls in CONTROLLERS.items():
        sig = inspect.signature(cls.decide)
        assert list(sig.parameters) == ["self", "obs"], name


FORBIDDEN = {"sim_core.state", "sim_core.simulation", "sim_core.faults", "sim_core.world",
             "sim_core.monitor", "sim_core.host_memory", "sim_core.guest_reclaim",
             "sim_core.writeback", "sim_core.block_device", "sim_core.balloon"}  # fmt: skip


def test_no_controller_module_imports_the_simulator_internals():
    folder = Path(__import__("sim_core.controllers").controllers.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert name not in FORBIDDEN, f"{path.name} imports {name}"


def test_observations_share_no_memory_with_the_simulated_world():
    seen: list[Observation] = []
    base = CONTROLLERS["ws"]

    class Spy(base):  # records what it is given, decides as ws
        def decide(self, obs):
            seen.append(obs)
            return super().decide(obs)

    cfg = build_config({}, **{"vms.count": 2, "vms.mem_mib": 64, "ticks": 40,
                              "host.overcommit": 1.3, "hypervisor.policy": "ws",
                              "hypervisor.params.sample_period_s": 1.0})  # fmt: skip
    sim = Simulation(cfg)
    sim.controller = Spy(sim.controller.params, sim.controller.setup)
    sim.run()
    assert seen
    world_arrays = [v for v in vars(sim.world).values() if isinstance(v, np.ndarray)] if hasattr(
        sim.world, "__dict__") else []  # fmt: skip
    world_arrays += [getattr(sim.world, f) for f in ("gi", "gf", "cnt", "fb", "hi", "hcnt")]
    for obs in seen:
        for part in (obs, obs.guests, obs.host, obs.sample):
            for f in dataclasses.fields(part):
                value = getattr(part, f.name)
                if isinstance(value, np.ndarray):
                    assert not any(np.shares_memory(value, a) for a in world_arrays), f.name


def test_balloon_statistics_are_stale_between_polls():
    cfg = build_config({}, **{"vms.count": 2, "vms.mem_mib": 64, "ticks": 30,
                              "host.overcommit": 1.2, "hypervisor.policy": "none",
                              "hypervisor.stats_period_s": 1.0, "warm_start": False})  # fmt: skip
    sim = Simulation(cfg)
    polls = []
    for _ in range(cfg.ticks):
        sim.step()
        polls.append((sim.monitor.stats.polled_s, sim.monitor.stats.minor_fault.copy()))
    times = sorted({p for p, _ in polls})
    assert times == pytest.approx([0.1, 1.1, 2.1])  # once a second, from the first tick
    for polled, faults in polls:  # every reading between polls is the poll's
        first = next(f for p, f in polls if p == polled)
        assert (faults == first).all()


def test_idle_tracking_keeps_host_reclaims_view_of_a_referenced_page():
    acc = np.array([0, YOUNG, YOUNG | WAS_YOUNG, IDLE, IDLE | WAS_YOUNG], np.int8)
    marked = mark_idle(acc)
    # Cleared accessed bits, idle set; referenced pages keep PG_young for host reclaim.
    assert list(marked) == [IDLE, IDLE | WAS_YOUNG, IDLE | WAS_YOUNG, IDLE, IDLE | WAS_YOUNG]
    assert not accessed_since_marked(marked).any()
    touched = marked.copy()
    touched[[1, 3]] = YOUNG  # the guest references pages 1 and 3
    touched[4] = 0  # host reclaim found page 4 referenced and cleared it (PG_idle too)
    assert list(accessed_since_marked(touched)) == [False, True, False, True, True]


# ---- bad input and failures ---------------------------------------------------------------------
@pytest.mark.parametrize(
    ("policy", "params", "message"),
    [
        ("momm", {}, "hypervisor.policy: unknown controller 'momm' (did you mean 'mom'?"),
        ("no_such_module_xyz:C", {}, "hypervisor.policy: plug-in module 'no_such_module_xyz'"),
        ("json:JSONDecoder", {}, "lacks the controller interface"),
        ("json:nothing_here", {}, "module 'json' has no 'nothing_here'"),
        ("mom", {"pressure": 0.1}, "hypervisor.params.pressure: unknown parameter of controller"),
        ("mom", {"pressure_threshold": 2.0}, "hypervisor.params.pressure_threshold: must be <= 1"),
    ],
)
def test_bad_controller_settings_are_one_line_naming_the_key(policy, params, message):
    raw = {"hypervisor": {"policy": policy, "params": params}}
    with pytest.raises(ConfigError) as info:
        build_config(raw)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


PLUGIN = '''
import numpy as np
from dataclasses import dataclass
from sim_core.controllers.base import Controller
from sim_core.params import param


@dataclass(frozen=True)
class HalfParams:
    share: float = param(0.25, "balloon this share of each guest", lo=0, hi=1)


class Half(Controller):
    """Balloons every guest by a fixed share of its memory."""
    Params = HalfParams
    interval_s = 0.5

    def decide(self, obs):
        return obs.guests.maximum_kib * self.params.share


class Raises(Controller):
    def decide(self, obs):
        raise RuntimeError("controller bug")


class OutOfRange(Controller):
    def decide(self, obs):
        return obs.guests.maximum_kib * 2
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    pkg = tmp_path / "plugs" / "myctl"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(textwrap.dedent(PLUGIN))
    monkeypatch.syspath_prepend(str(tmp_path / "plugs"))
    return tmp_path / "plugs"


def test_a_plugin_controller_runs_in_sim(plugin, balloonlab_cli):
    code, out, err = balloonlab_cli(
        "sim", "--set", "hypervisor.policy=myctl:Half", "--set", "hypervisor.params.share=0.25",
        "--set", "vms.mem_mib=64", "--set", "ticks=20", "--json",
    )  # fmt: skip
    assert code == 0, err
    import json

    summary = json.loads(out)
    assert summary["outcome"] == "ok"
    assert summary["hypervisor.params.share"] == 0.25
    assert summary["balloon_mib_per_vm_mean"] > 5  # moving toward 16 MiB at its rate


def test_a_controller_that_raises_or_answers_out_of_range_fails_the_run(plugin):
    for name, match in (("Raises", "raised RuntimeError: controller bug"),
                        ("OutOfRange", "balloon target for guest vm0")):  # fmt: skip
        cfg = build_config({}, **{"hypervisor.policy": f"myctl:{name}", "ticks": 5})
        with pytest.raises(ControllerError, match=match):
            Simulation(cfg).run()


SWEEP = """
[sweep]
name = "plug"
[base]
ticks = 20
"vms.mem_mib" = 32
"hypervisor.policy" = "myctl:Half"
[grid]
"hypervisor.params.share" = [0.1, 0.3]
[zip]
"""


def test_a_plugin_controller_runs_in_a_sweep_on_embedded_ray(plugin, ray_local, tmp_path):
    bad = SWEEP.replace('"myctl:Half"', '"myctl:Raises"').replace('"plug"', '"plugbad"')
    bad = bad.replace('"hypervisor.params.share" = [0.1, 0.3]', '"vms.swap_mib" = [32, 48]')
    (tmp_path / "plug.toml").write_text(SWEEP.replace("[zip]\n", ""))
    (tmp_path / "plugbad.toml").write_text(bad.replace("[zip]\n", ""))
    results = tmp_path / "results"
    report = run_sweep(load_spec(tmp_path / "plug.toml"), RayExecutor(batch_size=1), results)
    assert report.done == 2 and report.failed == 0
    runs = parquet.read_table(results, "runs", "plug").to_pylist()
    assert sorted(r["hypervisor.params.share"] for r in runs) == [0.1, 0.3]
    assert all(r["outcome"] == "ok" for r in runs)
    report = run_sweep(load_spec(tmp_path / "plugbad.toml"), RayExecutor(batch_size=1), results)
    assert report.failed == 2
    rows = parquet.read_table(results, "runs", "plugbad").to_pylist()
    assert all(r["outcome"] == "failed" and "controller bug" in r["error"] for r in rows)


def test_make_controller_passes_parameters_and_setup():
    c = make_controller("mom", {"pressure_threshold": 0.3}, setup(2))
    assert c.params.pressure_threshold == 0.3 and c.setup.names == ("vm0", "vm1")


# ---- esx: free-memory states with hysteresis, proportional share with the idle tax -----------
def esx_obs(free_share: float, *, t: float = 1.0, polled: float | None = None,
            rss=(800 * MIB, 800 * MIB)) -> Observation:  # fmt: skip
    obs = observation(host_free_kib=int(free_share * 1000 * MIB), actual=[1000 * MIB] * 2,
                      unused=[0, 0], maximum=[1000 * MIB] * 2, t=t, polled=polled)  # fmt: skip
    return dataclasses.replace(obs, guests=dataclasses.replace(obs.guests, rss_kib=np.array(rss)))


def test_esx_states_follow_free_memory_with_hysteresis():
    from sim_core.controllers.esx import Esx, EsxParams

    esx = Esx(EsxParams(), setup(2))
    # Down when under a threshold (soft 4%, hard 2%, low 1%); up only past the threshold
    # of the state above (high 6%, soft 4%, hard 2%).
    trajectory = [
        (0.07, "high"), (0.05, "high"), (0.035, "soft"), (0.05, "soft"), (0.061, "high"),
        (0.03, "soft"), (0.015, "hard"), (0.03, "hard"), (0.045, "soft"), (0.005, "low"),
        (0.015, "low"), (0.021, "hard"), (0.041, "soft"), (0.059, "soft"), (0.061, "high"),
    ]  # fmt: skip
    seen = []
    for i, (free, _) in enumerate(trajectory):
        d = esx.decide(esx_obs(free, t=float(i), polled=0.0))
        seen.append(STATE_NAMES[esx.state])
        # Balloon first, swap as a last resort: the host swaps only in hard and low.
        assert d.host_swap is (esx.state >= 2)
        assert (d.block is not None) is (esx.state == 3)
    assert seen == [name for _, name in trajectory]


def test_esx_tax_reclaims_idle_memory_first():
    from sim_core.controllers.esx import Esx, EsxParams, revoke

    f = np.array([0.0, 1.0])  # guest 0 idle, guest 1 active; equal shares
    pages = np.array([100.0, 100.0])
    for tau, expected in ((0.0, [55.0, 55.0]), (0.75, [22.0, 88.0])):
        esx = Esx(EsxParams(tax_rate=tau), setup(2))
        # rho = S / (P (f + k (1 - f))), k = 1 / (1 - tau): with tau 0.75 an idle page costs
        # 4: revocation takes from the idle VM until 4 P_idle = P_active, then from both:
        # 100 - x = 4 (100 - y), x + y = 90 -> idle 22, active 88. Untaxed: 55 each.
        out = revoke(pages, esx.cost_per_share(np.ones(2), f), np.zeros(2), 90.0)
        np.testing.assert_allclose(out, expected, atol=1e-6)
    # The floor holds: nothing below it, the rest taken from the other VM.
    esx = Esx(EsxParams(), setup(2))
    out = revoke(pages, esx.cost_per_share(np.ones(2), f), np.array([50.0, 0.0]), 90.0)
    np.testing.assert_allclose(out, [50.0, 60.0], atol=1e-6)


def test_esx_balloons_each_vm_by_what_its_allocation_says():
    from sim_core.controllers.esx import Esx, EsxParams

    esx = Esx(EsxParams(tax_rate=0.0), setup(2))
    # Soft state (3% free of 1000 MiB): bring free back to 6%, 30 MiB, taken by
    # proportional share from the VM holding more host memory (rss 820 vs 780 MiB):
    # level L with 820 - L + max(0, 780 - L) = 30 -> L = 790: 30 MiB from guest 0.
    d = esx.decide(esx_obs(0.03, t=1.0, polled=1.0, rss=(820 * MIB, 780 * MIB)))
    assert STATE_NAMES[esx.state] == "soft" and d.host_swap is False
    np.testing.assert_allclose(d.balloon_kib, [30 * MIB, 0], atol=8)
    # Between polls the targets stand.
    d = esx.decide(esx_obs(0.03, t=2.0, polled=1.0, rss=(700 * MIB, 700 * MIB)))
    np.testing.assert_allclose(d.balloon_kib, [0, 0])  # the hand-built target_kib: unchanged


def test_esx_refuses_thresholds_out_of_order():
    with pytest.raises(ConfigError, match=r"hypervisor.params.high_pct: thresholds must fall"):
        build_config({}, **{"hypervisor.policy": "esx", "hypervisor.params.soft_pct": 7.0})


# ---- pff: Chu and Opderbeck's inter-fault interval rule ---------------------------------------
def pff_obs(t: float, faults, psi_us, cold_pages=None) -> Observation:
    from sim_core.observation import ColdAges

    obs = observation(host_free_kib=500 * MIB, actual=[1000 * MIB] * 3, unused=[0] * 3,
                      maximum=[1000 * MIB] * 3, t=t, target=[100 * MIB] * 3)  # fmt: skip
    guests = dataclasses.replace(obs.guests, major_fault=np.array(faults),
                                 psi_some_us=np.array(psi_us, float))  # fmt: skip
    cold = None
    if cold_pages is not None:
        hist = np.zeros((3, 64), np.int64)
        hist[:, 0] = 1000
        hist[:, 5] = cold_pages
        cold = ColdAges(hist=hist, promotions=np.zeros((3, 64), np.int64), period_s=10.0, scans=5)
    return dataclasses.replace(obs, guests=guests, cold_ages=cold)


def test_pff_grows_a_guest_faulting_faster_than_t_and_shrinks_one_faulting_slower():
    from sim_core.controllers.pff import PageFaultFrequency, PffParams

    pff = PageFaultFrequency(PffParams(critical_interval_ms=10.0), setup(3))
    assert pff.decide(pff_obs(5.0, [0, 0, 0], [0, 0, 0], [0, 0, 0])) is None  # first poll
    # Over 5 s: guest 0 faults 1000 times (5 ms apart < T: deflate by the 1000 faulting
    # pages, 4000 KiB); guest 1 faults 10 times (0.5 s apart: inflate by its 2000 cold
    # pages, 8000 KiB); guest 2 faults 400 times in 5 s but stalled 3 s of them, so in its
    # own virtual time they are 2 s / 400 = 5 ms apart: it grows too (by 1600 KiB).
    out = pff.decide(pff_obs(10.0, [1000, 10, 400], [0, 0, 3e6], [0, 2000, 0]))
    np.testing.assert_array_equal(out, [100 * MIB - 4000, 100 * MIB + 8000, 100 * MIB - 1600])
    # No new poll: no decision. Moves are capped at 5% of guest memory (50 MiB).
    assert pff.decide(pff_obs(10.0, [1000, 10, 400], [0, 0, 3e6], [0, 2000, 0])) is None
    out = pff.decide(pff_obs(15.0, [10**6, 10, 400], [0, 0, 3e6], [0, 10**6, 0]))
    np.testing.assert_array_equal(out[:2], [50 * MIB, 150 * MIB])
