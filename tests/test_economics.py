"""Overcommit economics: revenue, SLA credits and profit per host-hour in every run."""

from __future__ import annotations

import numpy as np
import pytest

import sim_core
from sim_core import build_config
from sim_core.economics import economics


def test_no_overcommit_no_pressure_no_credits():
    s = sim_core.run(
        build_config({}, **{"vms.count": 2, "ticks": 40, "host.overcommit": 1.0})
    ).summary
    assert s["sla_violations"] == 0
    assert s["sla_credits_per_host_hour"] == 0.0
    assert s["revenue_per_host_hour"] > 0 and s["profit_per_host_hour"] > 0


def test_profit_rises_with_overcommit_then_falls_once_slas_are_violated():
    ratios = [1.0, 1.25, 1.5, 1.75, 2.0]
    runs = [
        sim_core.run(
            build_config({}, **{"vms.count": 4, "ticks": 60, "host.overcommit": r})
        ).summary
        for r in ratios
    ]
    profit = [s["profit_per_host_hour"] for s in runs]
    best = int(np.argmax(profit))
    assert 0 < best < len(ratios) - 1, profit  # rises at first, then falls
    assert runs[0]["sla_violations"] == 0
    assert runs[-1]["sla_violations"] > 0
    assert profit[-1] < profit[best]


def test_credits_follow_the_tiers():
    cfg = build_config({}, **{"vms.count": 4, "ticks": 10, "vms.mem_mib": 1024})
    native = np.full(4, 100.0)
    got = economics(cfg, np.array([95.0, 85.0, 60.0, 10.0]), native)
    per_vm = 1.0 * cfg.economics.price_per_gib_hour  # $ per host-hour: 1 GiB each
    assert got["sla_violations"] == 3
    assert got["sla_credits_per_host_hour"] == pytest.approx(per_vm * (0.10 + 0.30 + 1.0))
    assert got["revenue_per_host_hour"] == pytest.approx(4 * per_vm)
    host_cost = cfg.host_mem_mib / 1024 * cfg.economics.host_cost_per_gib_hour
    assert got["host_cost_per_host_hour"] == pytest.approx(host_cost)
    assert got["profit_per_host_hour"] == pytest.approx(4 * per_vm - per_vm * 1.4 - host_cost)
