"""``mom``: oVirt MOM's auto-balloon policy, ``doc/balloon.rules``, rule for rule.

MOM samples the host and every guest each monitor interval (5 s), keeps the last
``sample-history-length`` (10) samples, and every policy interval (10 s) runs:

    host_free_percent = StatAvg(Host.mem_free) / Host.mem_available
    if host_free_percent < pressure_threshold: shrink_guest(g) for every guest
    else:                                      grow_guest(g) for every guest

shrink_guest: guest_free_percent = host_free_percent - 0.05 when host_free_percent <=
pressure_critical (forcing the guest to swap), else min_guest_free_percent *
host_free_percent / pressure_threshold; used = StatAvg(balloon_cur) -
StatAvg(mem_unused); balloon_min = max(guest.balloon_min, used + guest_free_percent *
balloon_cur); size = max(balloon_cur * (1 - max_balloon_change_percent), balloon_min);
set the target only if size <= balloon_cur and the change is big enough.

grow_guest (only if balloon_cur < balloon_max): balloon_min = max(guest.balloon_min,
used + min_guest_free_percent * balloon_cur); size = max(balloon_cur * (1 +
max_balloon_change_percent), balloon_min), at most balloon_max; set it if big enough.

change_big_enough: |size - balloon_cur| > min_balloon_change_percent * balloon_cur.

``balloon_cur`` is the guest's current memory (libvirt ``actual``), the target is a memory
size (libvirt setMemory); we return the balloon ``maximum - size``. Sources:
github.com/oVirt/mom doc/balloon.rules, doc/mom-balloon.conf (intervals, history),
mom/Collectors/HostMemory.py (mem_free = MemFree + Buffers + Cached, mem_available =
MemTotal), mom/HypervisorInterfaces/libvirtInterface.py (balloon_min = memtune
min_guarantee, balloon_max = maxMemory; mem_unused = dommemstat ``unused``).

Divergences from the rules file:
1. The monitor and the policy run in one object: ``decide`` is called every monitor
   interval (``hypervisor.interval_s``, default 5 s) to take a sample, and runs the rules
   every ``policy_interval_s`` (10 s). MOM's threads sample host and guests separately.
2. Host ``mem_free`` counts the host page cache as free, as MOM's collector does; with
   ``host.cache = none`` there is none. ``mem_available`` is MemTotal including the
   hypervisor's reserve, as in MOM.
3. Guests without statistics yet (before the first poll) are not touched; MOM skips
   guests whose collectors are not ready.
4. No KSM or CPU rules (``ksm.rules``, ``cputune.rules``) and no guest-specific rules.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from sim_core.config import ConfigError
from sim_core.controllers.base import Controller, Setup
from sim_core.observation import Observation
from sim_core.params import param

_RULES = "oVirt MOM doc/balloon.rules"


@dataclass(frozen=True)
class MomParams:
    """``mom`` parameters (defaults from oVirt MOM)."""

    pressure_threshold: float = param(
        0.20, f"host under pressure below this free share of MemTotal ({_RULES})", lo=0, hi=1
    )
    pressure_critical: float = param(
        0.05, f"pressure is critical at or below this free share ({_RULES})", lo=0, hi=1
    )
    min_guest_free_percent: float = param(
        0.20, f"free share an unconstrained guest keeps ({_RULES})", lo=0, hi=1
    )
    max_balloon_change_percent: float = param(
        0.05, f"largest change per decision, share of current memory ({_RULES})", lo=0, hi=1
    )
    min_balloon_change_percent: float = param(
        0.0025, f"smaller changes are not made, share of current memory ({_RULES})", lo=0, hi=1
    )
    policy_interval_s: float = param(
        10.0, "seconds between runs of the rules (policy-engine-interval, mom-balloon.conf)",
        lo=0, lo_open=True, unit="s",
    )  # fmt: skip
    sample_history_length: int = param(
        10, "samples StatAvg averages (sample-history-length, mom-balloon.conf)", lo=1,
        unit="samples",
    )  # fmt: skip


class Mom(Controller):
    """oVirt MOM's balloon.rules: shrink every guest toward its used memory plus a free
    margin scaled by host pressure, at most 5% a decision; grow back when the host has
    20% free."""

    name = "mom"
    Params = MomParams
    interval_s = 5.0  # MOM's host- and guest-monitor-interval (doc/mom-balloon.conf)

    @staticmethod
    def check_params(p: MomParams) -> None:
        if p.pressure_critical > p.pressure_threshold:
            raise ConfigError(
                "hypervisor.params.pressure_critical: must be <= pressure_threshold "
                f"({p.pressure_threshold}), got {p.pressure_critical}"
            )

    def __init__(self, params: MomParams, setup: Setup) -> None:
        super().__init__(params, setup)
        p = params
        self.host_free: deque[float] = deque(maxlen=p.sample_history_length)
        self.balloon_cur: deque[np.ndarray] = deque(maxlen=p.sample_history_length)
        self.mem_unused: deque[np.ndarray] = deque(maxlen=p.sample_history_length)
        self.last_polled = -1.0
        self.next_policy_s: float | None = None

    def decide(self, obs: Observation) -> np.ndarray | None:
        p = self.params
        self.host_free.append(float(obs.host.free_kib))
        if obs.guests.polled_s != self.last_polled:  # a new guest sample
            self.last_polled = obs.guests.polled_s
            self.balloon_cur.append(obs.guests.actual_kib.astype(np.float64))
            self.mem_unused.append(obs.guests.unused_kib.astype(np.float64))
        if self.next_policy_s is None:
            self.next_policy_s = obs.time_s + p.policy_interval_s
            return None
        if obs.time_s < self.next_policy_s - 1e-9:
            return None
        self.next_policy_s += p.policy_interval_s
        size = self.rules(obs)
        return obs.guests.maximum_kib - size

    def rules(self, obs: Observation) -> np.ndarray:
        """The new memory size per guest (KiB): balloon.rules' main script."""
        p, g = self.params, obs.guests
        host_free_percent = float(np.mean(self.host_free)) / obs.host.memtotal_kib
        cur = g.actual_kib.astype(np.float64)  # guest.balloon_cur: the latest sample
        used = np.mean(self.balloon_cur, axis=0) - np.mean(self.mem_unused, axis=0)
        minimum = g.min_guarantee_kib.astype(np.float64)
        maximum = g.maximum_kib.astype(np.float64)
        size = cur.copy()
        big_enough = lambda new: np.abs(new - cur) > p.min_balloon_change_percent * cur  # noqa: E731
        if host_free_percent < p.pressure_threshold:  # shrink_guest
            if host_free_percent <= p.pressure_critical:
                guest_free_percent = -0.05 + host_free_percent
            else:
                guest_free_percent = p.min_guest_free_percent * (
                    host_free_percent / p.pressure_threshold
                )
            balloon_min = np.maximum(minimum, used + guest_free_percent * cur)
            new = np.maximum(cur * (1 - p.max_balloon_change_percent), balloon_min)
            take = (new <= cur) & big_enough(new)
        else:  # grow_guest
            balloon_min = np.maximum(minimum, used + p.min_guest_free_percent * cur)
            new = np.maximum(cur * (1 + p.max_balloon_change_percent), balloon_min)
            new = np.minimum(new, maximum)
            take = (cur < maximum) & big_enough(new)
        size = np.where(take, new, self._current_target(obs))
        return np.clip(size, 0, maximum)

    @staticmethod
    def _current_target(obs: Observation) -> np.ndarray:
        """The memory size the hypervisor asked for last (an untouched guest keeps it)."""
        return (obs.guests.maximum_kib - obs.target_kib).astype(np.float64)
