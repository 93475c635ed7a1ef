"""The hypervisor's balloon policies: given what a real hypervisor sees, a balloon target
per guest. Each is a small class behind one interface, registered in ``CONTROLLERS``.

A controller sees only an ``Observation``: host free memory and watermarks; per guest its
memory, current balloon, free memory (balloon driver stats), fault rate, and the active
fraction from sampling random pages' accessed bits. Sizes are in pages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar

import numpy as np


@dataclass(frozen=True)
class Observation:
    """What the hypervisor knows at a decision point (sizes in pages)."""

    tick: int
    period_s: float  # simulated seconds since the last decision
    host_total: int  # host frames for guests, I/O buffers and cached guest-swap blocks
    host_free: int
    host_low: int  # host reclaim starts under this many free frames
    host_high: int
    mem: np.ndarray  # guest memory, frames
    balloon: np.ndarray  # current balloon size
    target: np.ndarray  # current balloon target
    free: np.ndarray  # guest free frames (balloon stats)
    fault_rate: np.ndarray  # guest page faults per second over the last period
    active: np.ndarray  # sampled fraction of the guest's usable memory touched last period
    shares: np.ndarray
    busy: np.ndarray  # fraction of the period each guest's vCPU ran rather than waited on I/O
    disk_backlog_s: float  # seconds of work queued at the disk


class Controller(ABC):
    """A balloon policy. ``targets`` returns the balloon size wanted per guest (pages), or
    None to leave the balloons alone."""

    name: ClassVar[str]
    needs_history: ClassVar[bool] = False  # True: waits one period for rates and samples

    def __init__(self, hv) -> None:  # hv: sim_core.config.HypervisorConfig
        self.hv = hv

    @abstractmethod
    def targets(self, obs: Observation) -> np.ndarray | None: ...


class NoBalloon(Controller):
    """No balloon: the host copes by swapping alone."""

    name = "none"

    def targets(self, obs: Observation) -> np.ndarray | None:
        return None


class Static(Controller):
    """Fixed per-VM balloons (``vms.balloon_mib``), set once."""

    name = "static"

    def __init__(self, hv, fixed: np.ndarray) -> None:
        super().__init__(hv)
        self.fixed = fixed

    def targets(self, obs: Observation) -> np.ndarray | None:
        return self.fixed


class Proportional(Controller):
    """Waldspurger's share-based allocation with the idle memory tax (ESX, OSDI 2002).
    When the host needs memory, it is taken from the guest with the fewest shares per
    page, rho = S / (P * (f + k * (1 - f))) with k = 1 / (1 - tau): idle pages cost more."""

    name = "proportional"
    needs_history = True

    def targets(self, obs: Observation) -> np.ndarray | None:
        k = 1.0 / (1.0 - self.hv.tax_rate)
        alloc = (obs.mem - obs.balloon).astype(np.float64)
        used = obs.host_total - obs.host_free
        # Aim to keep the host over its high watermark, with the balloons doing the work.
        excess = used - (obs.host_total - 2 * obs.host_high)
        floor = 0.05 * obs.mem
        if excess <= 0:
            give = min(-excess, float((obs.mem - alloc).sum()))
            return self._give_back(obs, alloc, give)
        step = np.maximum(obs.mem * 0.01, 1.0)
        f = np.clip(obs.active, 0.0, 1.0)
        taken = 0.0
        while taken < excess:
            rho = obs.shares / (np.maximum(alloc, 1.0) * (f + k * (1.0 - f)))
            rho[alloc - step < floor] = np.inf
            v = int(np.argmin(rho))
            if not np.isfinite(rho[v]):
                break
            alloc[v] -= step[v]
            taken += step[v]
        return np.maximum(obs.mem - alloc, 0).astype(np.int64)

    @staticmethod
    def _give_back(obs, alloc, give):
        """No shortage: deflate, richest in shares-per-page first."""
        target = obs.mem - alloc
        order = np.argsort(-(obs.shares / np.maximum(alloc, 1.0)))
        for v in order:
            back = min(target[v], give)
            target[v] -= back
            give -= back
        return np.maximum(target, 0).astype(np.int64)


class Mom(Controller):
    """oVirt MOM's balloon rules (balloon.rules) with their defaults: under host pressure
    shrink each guest toward used memory plus a free margin that scales with the host's
    free fraction (negative when critical, forcing guest reclaim), at most 5% a step;
    without pressure grow guests back 5% a step."""

    name = "mom"

    def targets(self, obs: Observation) -> np.ndarray | None:
        hv = self.hv
        host_free_pct = obs.host_free / obs.host_total
        cur = (obs.mem - obs.balloon).astype(np.float64)  # balloon_cur: guest's memory now
        used = cur - obs.free
        new = cur.copy()
        if host_free_pct < hv.mom_pressure_threshold:
            if host_free_pct <= hv.mom_pressure_critical:
                guest_free_pct = -0.05 + host_free_pct
            else:
                guest_free_pct = hv.mom_min_guest_free_pct * (
                    host_free_pct / hv.mom_pressure_threshold
                )
            balloon_min = used + guest_free_pct * cur
            size = cur * (1.0 - hv.mom_max_balloon_change_pct)
            new = np.maximum(size, balloon_min)
            new = np.minimum(new, obs.mem)
        else:
            balloon_min = used + hv.mom_min_guest_free_pct * cur
            size = np.minimum(cur * (1.0 + hv.mom_grow_pct), obs.mem)
            new = np.where(cur < obs.mem, np.maximum(size, balloon_min), cur)
            new = np.minimum(new, obs.mem)
        big_enough = np.abs(new - cur) > hv.mom_min_balloon_change_pct * cur
        new = np.where(big_enough, new, cur)
        return np.clip(obs.mem - np.round(new), 0, obs.mem - 1).astype(np.int64)


class WorkingSet(Controller):
    """Balloon = guest memory - estimated working set - headroom, while the host is short
    of memory (with plenty free, balloons drain back 10% of guest memory a decision).
    The working set is the sampled active fraction of the guest's usable memory, smoothed
    so it falls slowly and rises at once, plus the pages the guest faulted in over the
    period: sampling cannot see what a squeezed guest fails to keep resident. A guest
    faulting over ``pff_upper`` (or over ``pff_lower`` while it waits on I/O most of the
    time) is deflated whatever the estimate says; nothing inflates while the disk is more
    than 0.5 s behind."""

    name = "ws"
    needs_history = True

    def __init__(self, hv) -> None:
        super().__init__(hv)
        self.slow: np.ndarray | None = None

    def targets(self, obs: Observation) -> np.ndarray | None:
        usable = (obs.mem - obs.balloon).astype(np.float64)
        active = obs.active if self.slow is None else np.maximum(obs.active, self.slow)
        self.slow = active if self.slow is None else 0.7 * self.slow + 0.3 * obs.active
        wss = active * usable + np.minimum(obs.fault_rate * obs.period_s, usable)
        want = wss * (1.0 + self.hv.ws_headroom_pct / 100.0)
        target = obs.mem - want
        if obs.host_free >= 4 * obs.host_high:  # no pressure: give memory back
            target = np.minimum(target, obs.balloon - 0.10 * obs.mem)
        if obs.disk_backlog_s > 0.5:  # the disk is far behind: inflating would queue writes
            target = np.minimum(target, obs.balloon)
        # A guest that thrashes in its own memory, or waits on I/O most of the time while
        # faulting itself, gets memory back at once: a slowed guest touches fewer pages, so
        # sampling alone would squeeze it further. (Host faults are the host's doing.)
        hv = self.hv
        starving = (obs.fault_rate > hv.pff_upper) | (
            (obs.busy < 0.5) & (obs.fault_rate > hv.pff_lower)
        )
        target = np.where(starving, obs.balloon - 0.10 * obs.mem, target)
        # Move at most 5% of guest memory per decision, so a wrong estimate is cheap.
        limit = 0.05 * obs.mem
        target = np.clip(target, obs.balloon - limit, obs.balloon + limit)
        return np.clip(np.round(target), 0, obs.mem - 1).astype(np.int64)


class PageFaultFrequency(Controller):
    """Chu and Opderbeck's page fault frequency: deflate a guest faulting above U per
    second, inflate one faulting below L, by a fixed step."""

    name = "pff"
    needs_history = True

    def targets(self, obs: Observation) -> np.ndarray | None:
        hv = self.hv
        step = np.round(obs.mem * hv.pff_step_pct / 100.0)
        target = obs.target.astype(np.float64).copy()
        target = np.where(obs.fault_rate > hv.pff_upper, target - step, target)
        target = np.where(obs.fault_rate < hv.pff_lower, target + step, target)
        return np.clip(target, 0, obs.mem - 1).astype(np.int64)


class Aggressive(Controller):
    """The swap-storm trigger: on any host shortage, inflate every guest at once, evenly,
    by enough to cover the whole overcommitment, blind to working sets."""

    name = "aggressive"

    def targets(self, obs: Observation) -> np.ndarray | None:
        if obs.host_free >= 2 * obs.host_high:
            return obs.target
        overcommitted = float(obs.mem.sum()) - obs.host_total + 2 * obs.host_high
        share = max(overcommitted, 0.0) / len(obs.mem)
        target = np.maximum(obs.target, np.round(share))
        return np.clip(target, 0, obs.mem - 1).astype(np.int64)


CONTROLLERS: dict[str, type[Controller]] = {
    c.name: c
    for c in (NoBalloon, Static, Proportional, Mom, WorkingSet, PageFaultFrequency, Aggressive)
}
