"""The provider's side of overcommitment: revenue, SLA credits and profit, in $ per host-hour.

Revenue is earned per configured guest GiB-hour; the host costs per GiB-hour of its
physical memory. The SLA is judged per window of ``sla_window_s`` simulated seconds, as
cloud SLAs count minutes of downtime: a window in which a VM's mean throughput is under
``sla_threshold`` of its native throughput (the same workload with no memory pressure) is
a violated window. A VM's uptime is the share of its run in windows that were not
violated, and its credit is the tier that uptime falls in (the EC2 instance-level SLA: 10%
of the VM's revenue under 99.5%, 30% under 99%, 100% under 95%). The run stands for the
billing month: its violated share is read as the month's. Overcommitting spreads the
host's cost over more sold memory until the credits eat the gain.

A run that is not a whole number of windows ends with a shorter window, weighted by its
length; a run shorter than one window is one window, so the SLA of a short run is a step
function of its whole throughput.
"""

from __future__ import annotations

import numpy as np

from sim_core.config import SimConfig


def window_ticks(cfg: SimConfig) -> int:
    """Ticks per SLA window (at least one)."""
    return max(1, int(round(cfg.economics.sla_window_s * 1000.0 / cfg.tick_ms)))


def violated_windows(cfg: SimConfig, per_tick: np.ndarray, native: np.ndarray) -> tuple:
    """For per-tick throughputs (ticks x VMs, references/s) against each VM's ``native``
    throughput: (windows per VM, violated windows per VM, violated share of each VM's run
    weighted by window length)."""
    ticks = per_tick.shape[0]
    n = len(native)
    if ticks == 0:
        return 0, np.zeros(n, np.int64), np.zeros(n, np.float64)
    size = window_ticks(cfg)
    starts = np.arange(0, ticks, size)
    lengths = np.minimum(starts + size, ticks) - starts
    means = np.add.reduceat(per_tick, starts, axis=0) / lengths[:, None]
    ratio = np.divide(means, native, out=np.ones_like(means), where=native > 0)
    violated = ratio < cfg.economics.sla_threshold  # windows x VMs
    share = (violated * lengths[:, None]).sum(axis=0) / ticks
    return len(starts), violated.sum(axis=0).astype(np.int64), share


def economics(cfg: SimConfig, per_tick: np.ndarray, native: np.ndarray) -> dict[str, float]:
    """Revenue, SLA credits and profit for a run whose guests reached ``per_tick``
    throughputs (ticks x VMs, references/s) against their ``native`` throughput."""
    e = cfg.economics
    hours = cfg.ticks * cfg.tick_ms / 3_600_000.0
    vm_gib = np.array([v.mem_mib for v in cfg.vms], np.float64) / 1024.0
    revenue_per_vm = vm_gib * e.price_per_gib_hour * hours
    windows, violated, share = violated_windows(cfg, per_tick, native)
    uptime_pct = 100.0 * (1.0 - share)
    # A float tolerance: one violated window in 200 is 99.5% uptime, not a hair under it.
    credit = np.where(uptime_pct < e.sla_uptime_pct - 1e-9, e.sla_credit_fraction, 0.0)
    credit = np.where(uptime_pct < e.sla_uptime_pct_2 - 1e-9, e.sla_credit_fraction_2, credit)
    credit = np.where(uptime_pct < e.sla_uptime_pct_3 - 1e-9, e.sla_credit_fraction_3, credit)
    credits = float((revenue_per_vm * credit).sum())
    revenue = float(revenue_per_vm.sum())
    host_cost = cfg.host_mem_mib / 1024.0 * e.host_cost_per_gib_hour * hours
    profit = revenue - credits - host_cost
    per_hour = 1.0 / hours if hours > 0 else 0.0
    return {
        "sla_windows": int(windows),
        "sla_violated_windows": int(violated.sum()),
        "sla_violated_fraction": float(share.mean()) if len(share) else 0.0,
        "sla_violations": int((credit > 0).sum()),
        "revenue_per_host_hour": revenue * per_hour,
        "sla_credits_per_host_hour": credits * per_hour,
        "host_cost_per_host_hour": host_cost * per_hour,
        "profit_per_host_hour": profit * per_hour,
    }
