"""``pff``: Chu and Opderbeck's page fault frequency rule (AFIPS FJCC 1972), on a balloon.

The rule: at each page fault, if the time since the previous fault (in the process's own
virtual time) is under the critical interval T, the faulting page joins the resident set;
otherwise every page not referenced since the previous fault leaves it first. Memory
follows the fault rate without a fixed window.

Adapted to a balloon, where the resident set is the guest's memory:
1. The hypervisor sees fault counts per statistics poll, not single faults: over a poll,
   n major faults in virtual time v give the mean inter-fault interval v / n (no fault:
   an infinite interval). Virtual time is the poll's wall time less the guest's memory
   stall (its PSI), the time the guest could not run for want of memory.
2. Interval under T: deflate by the n faulting pages (each would have joined the
   resident set). Interval of T or more: inflate by the guest's memory not referenced
   over the last scan period, from idle-page scans every ``scan_period_s`` (the closest
   the host sees to "since the previous fault").
3. Each move is capped at ``max_step_pct`` of guest memory per poll, as MOM caps its
   changes (balloon.rules, 5%); the original applies each change at once, page by page.
4. The guest's min_guarantee bounds the balloon; T is in wall seconds of guest time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_core.controllers.base import Controller, Setup, clamp_targets
from sim_core.observation import Observation
from sim_core.params import param


@dataclass(frozen=True)
class PffParams:
    """``pff`` parameters."""

    critical_interval_ms: float = param(
        10.0, "T: faults closer than this grow the guest. Chu and Opderbeck leave T to the "
        "installation; 100x the default disk's 100 us read, so a guest at T stalls ~1% on "
        "faults", lo=0, lo_open=True, unit="ms",
    )  # fmt: skip
    scan_period_s: float = param(
        10.0, "idle-page scan period: unreferenced means not accessed for one period (ours)",
        lo=0, lo_open=True, unit="s",
    )  # fmt: skip
    max_step_pct: float = param(
        5.0, "largest balloon move per poll (MOM balloon.rules' max change)", lo=0, lo_open=True,
        hi=100, unit="% of guest memory",
    )  # fmt: skip


class PageFaultFrequency(Controller):
    """Grow a guest whose faults come faster than T; shrink one whose faults come slower
    by its unreferenced memory."""

    name = "pff"
    Params = PffParams
    interval_s = 5.0  # one decision per statistics poll (hypervisor.stats_period_s)

    def __init__(self, params: PffParams, setup: Setup) -> None:
        super().__init__(params, setup)
        self.scan_period_s = params.scan_period_s
        self.last: tuple[float, np.ndarray, np.ndarray] | None = None  # polled_s, faults, psi

    def decide(self, obs: Observation) -> np.ndarray | None:
        p, g = self.params, obs.guests
        if self.last is not None and g.polled_s == self.last[0]:
            return None  # no new statistics
        previous, self.last = self.last, (g.polled_s, g.major_fault.copy(), g.psi_some_us.copy())
        if previous is None:
            return None
        wall_s = g.polled_s - previous[0]
        faults = (g.major_fault - previous[1]).astype(np.float64)
        stall_s = (g.psi_some_us - previous[2]) / 1e6
        virtual_s = np.maximum(wall_s - stall_s, 1e-6)
        interval_s = np.where(faults > 0, virtual_s / np.maximum(faults, 1), np.inf)
        maximum = g.maximum_kib.astype(np.float64)
        step = p.max_step_pct / 100.0 * maximum
        grow = np.minimum(faults * obs.page_kib, step)
        unreferenced = np.zeros(obs.n_guests)
        if obs.cold_ages is not None and obs.cold_ages.scans >= 2:
            unreferenced = obs.cold_ages.hist[:, 1:].sum(axis=1) * float(obs.page_kib)
        shrink = np.minimum(unreferenced, step)
        fast = interval_s < p.critical_interval_ms / 1000.0
        target = np.where(fast, obs.target_kib - grow, obs.target_kib + shrink)
        target = np.minimum(target, maximum - g.min_guarantee_kib)
        return clamp_targets(np.maximum(target, 0), obs)
