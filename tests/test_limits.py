"""Limits that refuse work the machine cannot do, before it starts: a run's memory from its
config (sim_core.footprint, checked against a real world), the absolute ceilings, a
sweep's size computed without expanding it, and the `deadlock` explorer's bounds. Each
refusal is one line, exit code 2, names the field or option, and takes well under a second."""

from __future__ import annotations

import re
import time

import numpy as np
import pytest

from harness import limits
from harness.errors import UserError
from harness.spec import count_runs, load_spec, parse_spec
from sim_core import Simulation, build_config
from sim_core.footprint import estimate_run_bytes, footprint_breakdown
from sim_core.simulation import _native_config
from sim_core.state import WORLD_FIELDS


def _allocated(cfg) -> int:
    """Bytes a real run of ``cfg`` holds: its world's arrays, its tick rows and its
    workloads' arrays, plus the baseline run of its largest VM."""

    def one(config) -> int:
        sim = Simulation(config)
        world = sum(getattr(sim.world, name).nbytes for name in WORLD_FIELDS)
        ticks = sum(a.nbytes for a in sim._rows.values())
        workloads = sum(
            v.nbytes for wl in sim.workloads for v in vars(wl).values() if isinstance(v, np.ndarray)
        )
        return world + ticks + workloads

    largest = max(range(len(cfg.vms)), key=lambda g: cfg.vms[g].mem_mib)
    return one(cfg) + one(_native_config(cfg, largest))


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"vms.count": 3, "vms.mem_mib": 64, "ticks": 40},
        {"vms.workload": "db", "vms.mem_mib": 96, "vms.swap_mib": 512},
        {"vms.workload": "hotcold", "vms.count": 2, "ticks": 300},
        {"vms.count": 2, "vms.1.mem_mib": 200, "vms.workload_params": {"footprint_mib": 100}},
    ],
)
def test_the_estimate_bounds_a_real_world_within_a_factor_of_two(overrides):
    """If the world's layout (sim_core.state.make_world) changes, this catches the
    constants of sim_core.footprint drifting away from it."""
    cfg = build_config(**overrides)
    real = _allocated(cfg)
    estimate = estimate_run_bytes(cfg)
    assert real <= estimate <= 2 * real, (real, estimate, footprint_breakdown(cfg))


def test_the_estimate_allocates_nothing_and_scales():
    small = build_config(**{"vms.count": 4})
    big = build_config(**{"vms.count": 4, "vms.mem_mib": 256 * 1000})
    start = time.perf_counter()
    assert estimate_run_bytes(big) > 900 * estimate_run_bytes(small) / 2
    assert time.perf_counter() - start < 0.1


@pytest.mark.parametrize(
    "text, value",
    [("4GiB", 4 * 2**30), ("512MiB", 512 * 2**20), ("1.5G", int(1.5 * 2**30)), ("2e9", 2e9),
     ("100", 100), ("3 gb", 3 * 10**9)],
)  # fmt: skip
def test_sizes_parse(text, value):
    assert limits.parse_size(text) == int(value)


@pytest.mark.parametrize("text", ["", "GiB", "4 parsecs", "-1GiB", "0"])
def test_bad_sizes_are_refused(text):
    with pytest.raises(UserError, match="--memory-budget"):
        limits.parse_size(text)


def test_the_default_budget_is_a_share_of_this_machine():
    total = limits.machine_memory()
    assert total > 2**28
    assert limits.default_budget(1) == int(total * limits.BUDGET_FRACTION)
    assert limits.default_budget(4) == int(total * limits.BUDGET_FRACTION / 4)


def _refused(balloonlab_cli, *args: str) -> str:
    start = time.perf_counter()
    code, out, err = balloonlab_cli(*args)
    seconds = time.perf_counter() - start
    assert code == 2, (out, err)
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert seconds < 1.0, seconds
    return err


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--set", "vms.count=100000"], "vms.count=100,000"),
        (["--set", "vms.mem_mib=10000000"], "vms.mem_mib=10,000,000"),
        (["--set", "vms.count=2000"], "vms.count=2,000 x vms.mem_mib=256"),
        (["--set", "ticks=1000000000"], "ticks=1,000,000,000"),
        (["--set", "vms.workload_params={footprint_mib=5000000}"], "footprint_mib"),
        (["--set", "mode=replay", "--set", "replay.references=100000000000"], "replay.references"),
        (["--set", "vms.mem_mib=64", "--memory-budget", "1MiB"], "budget 1.0 MiB"),
        (["--memory-budget", "lots"], "--memory-budget"),
        (["--set", "mode=locks", "--set", "locks.trials=1000000000000"], "locks.trials="),
        (["--set", "mode=locks", "--set", "locks.guests=1000000"], "locks.guests=1,000,000"),
    ],
)
def test_sim_refuses_an_oversized_config_before_allocating(args, needle, balloonlab_cli):
    if "--memory-budget" not in args:  # the same verdict on any machine
        args = [*args, "--memory-budget", "4GiB"]
    err = _refused(balloonlab_cli, "sim", *args)
    assert needle in err, err


def test_sim_names_the_budget_and_the_need(balloonlab_cli):
    err = _refused(balloonlab_cli, "sim", "--set", "vms.count=2000", "--memory-budget", "4GiB")
    assert "a run needs ~" in err and "GiB, budget 4.0 GiB (--memory-budget)" in err


BIG = """
[sweep]
name = "big"
replicates = {replicates}

[base]
ticks = 5
{base}

[grid]
"host.overcommit" = [1.0, 1.5]
{grid}
"""


def _spec(tmp_path, replicates=1, base="", grid="") -> str:
    path = tmp_path / "big.toml"
    path.write_text(BIG.format(replicates=replicates, base=base, grid=grid))
    return str(path)


@pytest.mark.parametrize("command", ["show", "run"])
def test_a_billion_run_sweep_is_refused_without_expanding(command, tmp_path, balloonlab_cli):
    spec = _spec(tmp_path, replicates=10**9)
    err = _refused(balloonlab_cli, command, spec, *(["--executor", "local"] * (command == "run")))
    assert "2,000,000,000 runs" in err and "--max-runs" in err and "big.toml" in err


def test_max_runs_is_an_override(tmp_path, balloonlab_cli):
    spec = _spec(tmp_path, replicates=3)
    err = _refused(balloonlab_cli, "show", spec, "--max-runs", "5")
    assert "6 runs" in err
    code, out, _ = balloonlab_cli("show", spec, "--max-runs", "6", "--json")
    assert code == 0


@pytest.mark.parametrize(
    "base, grid, needle",
    [
        ('"vms.count" = 100000', "", "vms.count=100,000"),
        ("", '"vms.count" = [1, 50000]', "vms.count=50,000"),
        ("", '"vms.mem_mib" = [16, 100000000]', "vms.mem_mib=100,000,000"),
        ("", '"vms.mem_mib" = [16, 3000000]', "run {host.overcommit=1.0, vms.mem_mib=3000000}"),
    ],
)
def test_run_refuses_an_oversized_run_before_work(base, grid, needle, tmp_path, balloonlab_cli):
    spec = _spec(tmp_path, base=base, grid=grid)
    results = tmp_path / "results"
    err = _refused(
        balloonlab_cli, "run", spec, "--executor", "local", "--results", str(results),
        "--memory-budget", "4GiB",
    )  # fmt: skip
    assert needle in err, err
    assert not results.exists()  # nothing started, nothing written


def test_run_takes_a_memory_budget(tmp_path, balloonlab_cli):
    spec = _spec(tmp_path)
    err = _refused(balloonlab_cli, "run", spec, "--executor", "local", "--memory-budget", "2MiB")
    assert "budget 2.0 MiB (--memory-budget)" in err and "host.overcommit" in err


@pytest.mark.parametrize(
    "spec",
    [
        {"sweep": {"replicates": 2}, "grid": {"ticks": [3, 4, 5], "disk.iops": [100.0, 200.0]}},
        {"sweep": {"replicates": 1}, "zip": {"ticks": [3, 4], "disk.iops": [100.0, 200.0]}},
        {
            "sweep": {"replicates": 2, "samples": 3},
            "grid": {"ticks": [3, 4]},
            "random": {"disk.iops": {"uniform": [100, 200]}},
        },
        {"sweep": {"replicates": 4}},
    ],
)
def test_count_runs_equals_the_expansion(spec):
    parsed = parse_spec(spec, "t.toml", default_name="t")
    assert count_runs(parsed) == len(parsed.runs)


def test_shipped_sweeps_are_within_the_limits():
    from harness.sweeps_catalog import shipped

    budget = limits.default_budget(4)
    for resource in shipped().values():
        spec = load_spec(resource)
        limits.check_runs(spec.runs, budget, source=spec.source)


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--guests", "1000000"], "--guests 1,000,000"),
        (["--guests", "1000000", "--trials", "10"], "--guests 1,000,000"),
        (["--trials", "1000000000000"], "--trials 1,000,000,000,000"),
        (["--max-states", "1000000000000000"], "--max-states 1,000,000,000,000,000"),
        (["--guests", "30", "--host-threads", "30"], "use --trials"),
    ],
)
def test_deadlock_refuses_unbounded_work_before_allocating(args, needle, balloonlab_cli):
    err = _refused(balloonlab_cli, "deadlock", *args)
    assert needle in err, err


def test_deadlock_within_bounds_still_runs(balloonlab_cli):
    code, out, err = balloonlab_cli("deadlock", "--guests", "2", "--host-threads", "2", "--json")
    assert code == 0, err
    code, out, err = balloonlab_cli("deadlock", "--trials", "200", "--json")
    assert code == 0, err


def test_sim_refuses_by_default_what_exceeds_this_machine(balloonlab_cli):
    ticks = 2 * limits.default_budget(1) // (2 * 30 * 8)  # tick rows alone: twice the budget
    err = _refused(balloonlab_cli, "sim", "--set", f"ticks={ticks}")
    assert f"ticks={ticks:,}" in err and "(--memory-budget)" in err


def test_the_time_estimate_counts_every_guest_busy_every_tick():
    cfg = build_config({}, **{"vms.count": 4, "ticks": 100})  # 10 s, 1 ref/us
    assert limits.estimated_references(cfg) == 4 * 10 * 1_000_000
    # 4 guests x 100 ticks = 400 guest-ticks, and 40M references, each at its fitted cost
    seconds = (limits.SECONDS_PER_RUN + 400 * limits.SECONDS_PER_GUEST_TICK
               + 40e6 * limits.SECONDS_PER_REFERENCE)  # fmt: skip
    assert limits.estimated_core_seconds(cfg) == pytest.approx(seconds)
    lo, hi = limits.core_seconds_range(seconds)
    assert lo < seconds < hi
    line = limits.estimate_line(cfg)
    assert "40M guest references" in line
    assert f"{limits.duration(lo)} to {limits.duration(hi)} of one core" in line
    # sampling cuts the references, not the guest-ticks
    sampled = build_config({}, **{"vms.count": 4, "ticks": 100, "sampling.rate": 0.1})
    assert limits.estimated_core_seconds(sampled) == pytest.approx(
        limits.SECONDS_PER_RUN
        + 400 * limits.SECONDS_PER_GUEST_TICK
        + 4e6 * limits.SECONDS_PER_REFERENCE
    )


def test_the_fitted_cost_model_is_positive_and_sourced():
    assert limits.SECONDS_PER_RUN > 0 and limits.SECONDS_PER_GUEST_TICK > 0
    assert limits.SECONDS_PER_REFERENCE > 0
    assert limits.ESTIMATE_RANGE[0] < 1 < limits.ESTIMATE_RANGE[1]
    assert limits.FIT_SOURCE


def test_a_sampled_run_estimates_its_sampled_references_and_memory():
    full = build_config({}, **{"vms.count": 32, "vms.mem_mib": 16384, "ticks": 600})
    sampled = build_config(full.to_dict() | {"sampling": {"rate": 0.01}})
    assert limits.estimated_references(sampled) == limits.estimated_references(full) // 100
    assert "(sampled at 0.01)" in limits.estimate_line(sampled)
    assert "sampled" not in limits.estimate_line(full)
    # 512 GiB of guests: ~40 bytes a page, 5 GiB in full; well under 1 GiB sampled at 1%
    from sim_core.footprint import estimate_run_bytes

    assert estimate_run_bytes(full) > 4 * 2**30
    assert estimate_run_bytes(sampled) < 2**30


def test_sim_refuses_a_long_run_in_one_line_that_says_how_long_it_would_take(balloonlab_cli):
    err = _refused(balloonlab_cli, "sim", "--set", "vms.count=32", "--set", "vms.mem_mib=16384",
                   "--set", "ticks=36000", "--memory-budget", "1GiB")  # fmt: skip
    refusal, duration = err.split("; and ")
    assert "budget 1.0 GiB" in refusal
    assert "115,200M guest references" in duration  # 32 guests x 3,600 s x 1 ref/us
    assert re.search(r"[\d.]+ (s|min|h) to [\d.]+ (s|min|h) of one core", duration), duration


def test_a_short_run_prints_no_estimate(balloonlab_cli):
    code, _, err = balloonlab_cli("sim", "--set", "ticks=5", "--set", "vms.mem_mib=64")
    assert code == 0 and "this run needs" not in err, err


def test_a_run_that_goes_ahead_past_the_long_run_mark_prints_its_estimate(
    balloonlab_cli, monkeypatch
):
    from harness.commands import sim as sim_command

    monkeypatch.setattr(sim_command, "LONG_RUN_S", 0.0)  # every run counts as long
    code, out, err = balloonlab_cli("sim", "--set", "ticks=5", "--set", "vms.mem_mib=64")
    assert code == 0 and "balloonlab sim" in out, (out, err)
    assert "this run needs ~" in err and "of one core" in err, err
