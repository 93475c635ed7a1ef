"""The provider's side of overcommitment: revenue, SLA credits and profit, in $ per host-hour.

Revenue is earned per configured guest GiB-hour; the host costs per GiB-hour of its
physical memory; a VM whose throughput falls under ``sla_threshold`` of its native
throughput (the same workload with no memory pressure) has ``sla_credit_fraction`` of its
revenue credited back, more under the deeper tiers, as public-cloud SLAs credit a share
of the bill when a service level is missed. Overcommitting spreads the host's cost over
more sold memory until the credits eat the gain.
"""

from __future__ import annotations

import numpy as np

from sim_core.config import SimConfig


def economics(cfg: SimConfig, throughput: np.ndarray, native: np.ndarray) -> dict[str, float]:
    """Revenue, SLA credits and profit for a run whose guests reached ``throughput``
    (references/s each) against their ``native`` throughput."""
    e = cfg.economics
    hours = cfg.ticks * cfg.tick_ms / 3_600_000.0
    vm_gib = np.array([v.mem_mib for v in cfg.vms], np.float64) / 1024.0
    revenue_per_vm = vm_gib * e.price_per_gib_hour * hours
    ratio = np.divide(throughput, native, out=np.ones_like(throughput), where=native > 0)
    violated = ratio < e.sla_threshold
    credit = np.where(violated, e.sla_credit_fraction, 0.0)
    credit = np.where(ratio < e.sla_threshold_2, e.sla_credit_fraction_2, credit)
    credit = np.where(ratio < e.sla_threshold_3, e.sla_credit_fraction_3, credit)
    credits = float((revenue_per_vm * credit).sum())
    revenue = float(revenue_per_vm.sum())
    host_cost = cfg.host_mem_mib / 1024.0 * e.host_cost_per_gib_hour * hours
    profit = revenue - credits - host_cost
    per_hour = 1.0 / hours if hours > 0 else 0.0
    return {
        "sla_violations": int(violated.sum()),
        "revenue_per_host_hour": revenue * per_hour,
        "sla_credits_per_host_hour": credits * per_hour,
        "host_cost_per_host_hour": host_cost * per_hour,
        "profit_per_host_hour": profit * per_hour,
    }
