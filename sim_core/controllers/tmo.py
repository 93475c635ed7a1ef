"""``tmo``: Meta's TMO / Senpai (Weiner et al., ASPLOS 2022), ``senpai.py`` rule for rule.

Source: github.com/facebookincubator/senpai, ``senpai.py``; our defaults are its argparse defaults.
Senpai lowers a cgroup's ``memory.high`` until the cgroup's memory pressure (PSI ``some``
total, in microseconds) reaches a target, and raises it when pressure exceeds the target.
Every tick (1 s) it adds the PSI delta to an ``integral``, then:

    if integral > pressure:            # back off at once, exponentially in the error
        adj = min((integral / pressure / coeff_backoff) ** 2 * max_backoff, max_backoff)
        limit = limit * (1 + adj); integral = 0; grace = interval - 1
    elif grace: grace -= 1             # wait out the interval
    else:                              # probe: reclaim, harder the lower the pressure
        adj = min((pressure / max(integral, 1) / coeff_probe) ** 2 * max_probe, max_probe)
        limit = limit * (1 - adj); integral = 0; grace = interval - 1

``limit`` is clamped to [min_size, max_size] and rounded down to a page; when the limit
found is not the one Senpai set (at start, or a race), it restarts from
``memory.current``. The first interval waits ``interval`` ticks (grace starts there).

In a VM the limit is the guest's memory: the balloon is ``maximum - limit``; one Senpai
per guest. Divergences:
1. The balloon instead of ``memory.high``: a hard size the guest's own reclaim meets,
   not a throttling limit; the limit read back is the hypervisor's balloon target.
   ``memory.current`` is the guest's used memory, ``actual - unused`` (caches and
   kernel included, as memory.current counts them). The reset takes the free memory and
   so drives the guest to its watermarks and into reclaim; memory.high at current does
   not force reclaim.
2. Pressure is the guest's PSI as the hypervisor polls it (``hypervisor.stats_period_s``,
   5 s), not read live: a delta is taken only when ``polled_s`` changed (between polls
   it is 0 and the stall shows up whole at the next poll). A tick is one decision
   (``hypervisor.interval_s``, default 1 s).
3. A probe waits for the first fresh poll after the interval, so that it judges the
   whole interval; probe and backoff then compare against ``pressure`` stretched by the
   ticks waited, pressure * (interval + waited) / interval (the same stall rate). With
   5 s polls probes come every 10 s against 16.7 ms; with 1 s polls this is Senpai.
4. No ``memory.reclaim`` (the TMO paper's later Senpai reclaims a share of memory
   scaled by ``1 - psi / threshold``); this is the repository's memory.high version.
5. The size floor is ``max(min_size, min_guarantee)``, the ceiling ``min(max_size,
   maximum)``: Senpai's 100 MiB floor knows nothing of a guest kernel's needs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_core.config import ConfigError
from sim_core.controllers.base import Controller, Setup
from sim_core.observation import Observation
from sim_core.params import param

_SENPAI = "senpai.py default"


@dataclass(frozen=True)
class TmoParams:
    """``tmo`` parameters (defaults: senpai.py's argparse defaults)."""

    interval: int = param(6, f"ticks between probes (--interval 6, {_SENPAI})", lo=1,
                          unit="ticks")  # fmt: skip
    pressure_us: float = param(
        10_000.0, f"target PSI some stall per interval (--pressure 10*1000, {_SENPAI})", lo=0,
        lo_open=True, unit="us",
    )  # fmt: skip
    max_probe: float = param(0.01, f"largest probe, share of the limit (--max-probe, {_SENPAI})",
                             lo=0, hi=1)  # fmt: skip
    max_backoff: float = param(
        1.0, f"largest backoff, share of the limit (--max-backoff, {_SENPAI})", lo=0
    )
    coeff_probe: float = param(
        10.0, f"probes are largest at 1/coeff of the target (--coeff-probe, {_SENPAI})", lo=0,
        lo_open=True,
    )  # fmt: skip
    coeff_backoff: float = param(
        20.0, f"backoff is largest at coeff x the target (--coeff-backoff, {_SENPAI})", lo=0,
        lo_open=True,
    )  # fmt: skip
    min_size_mib: float = param(100.0, f"smallest limit (--min-size 100 MiB, {_SENPAI})", lo=0,
                                unit="MiB")  # fmt: skip
    max_size_mib: float = param(102_400.0, f"largest limit (--max-size 100 GiB, {_SENPAI})",
                                lo=0, unit="MiB")  # fmt: skip


class Tmo(Controller):
    """Senpai per guest: shrink the guest while its memory pressure stays under the target,
    grow it back as soon as pressure exceeds it."""

    name = "tmo"
    Params = TmoParams
    interval_s = 1.0  # senpai.py's tick: time.sleep(1)

    @staticmethod
    def check_params(p: TmoParams) -> None:
        if p.min_size_mib > p.max_size_mib:
            raise ConfigError(
                f"hypervisor.params.min_size_mib: must be <= max_size_mib ({p.max_size_mib}), "
                f"got {p.min_size_mib}"
            )

    def __init__(self, params: TmoParams, setup: Setup) -> None:
        super().__init__(params, setup)
        self.limit: np.ndarray | None = None  # KiB: the guest memory Senpai set
        self.polled_s = float("nan")

    def decide(self, obs: Observation) -> np.ndarray | None:
        p, g = self.params, obs.guests
        fresh = g.polled_s != self.polled_s
        self.polled_s = g.polled_s
        total = g.psi_some_us.astype(np.float64)
        if self.limit is None:  # Senpai.__init__: limit from memory.current, grace = interval
            self.limit = np.zeros(obs.n_guests)
            self.last_total = total.copy()
            self.integral = np.zeros(obs.n_guests)
            self.grace = np.full(obs.n_guests, p.interval)
            self.waited = np.zeros(obs.n_guests, np.int64)
            every = np.ones(obs.n_guests, np.bool_)
            self._import(obs, np.full(obs.n_guests, np.nan), every)
            return self._targets(obs, every)
        if fresh:  # a stale reading adds nothing (divergence 2)
            self.integral += total - self.last_total
            self.last_total = total.copy()
        factor = np.zeros(obs.n_guests)
        adjust = np.zeros(obs.n_guests, np.bool_)
        for i in range(obs.n_guests):
            budget = p.pressure_us * (p.interval + self.waited[i]) / p.interval
            if self.integral[i] > budget:  # back off
                err = self.integral[i] / budget
                adj = min((err / p.coeff_backoff) ** 2 * p.max_backoff, p.max_backoff)
                factor[i], adjust[i] = adj, True
            elif self.grace[i]:
                self.grace[i] -= 1
            elif not fresh:
                self.waited[i] += 1  # the probe waits for a poll (divergence 3)
            else:  # probe
                err = budget / max(self.integral[i], 1.0)
                adj = min((err / p.coeff_probe) ** 2 * p.max_probe, p.max_probe)
                factor[i], adjust[i] = -adj, True
        if not adjust.any():
            return None
        limit = self.read_limit(obs)  # Cgroup.scale_limit: x = int(x + x * factor)
        self._import(obs, np.floor(limit + limit * factor), adjust)
        self.integral[adjust] = 0.0  # Senpai.adjust
        self.grace[adjust] = p.interval - 1
        self.waited[adjust] = 0
        return self._targets(obs, adjust)

    @staticmethod
    def read_limit(obs: Observation) -> np.ndarray:
        """``memory.high`` as read back: the guest size the hypervisor's balloon target sets."""
        return (obs.guests.maximum_kib - obs.target_kib).astype(np.float64)

    def _import(self, obs: Observation, limit: np.ndarray, which: np.ndarray) -> None:
        """Senpai's import_limit for the guests in ``which``: restart from memory.current
        where the limit found is not ours; clamp to [min, max]; round down to a page."""
        p, g, page = self.params, obs.guests, obs.page_kib
        assert self.limit is not None
        current = (g.actual_kib - g.unused_kib).astype(np.float64)
        ours = self.read_limit(obs) == self.limit
        limit = np.where(ours & np.isfinite(limit), limit, current)
        top = np.minimum(p.max_size_mib * 1024.0, g.maximum_kib.astype(np.float64))
        floor = np.maximum(p.min_size_mib * 1024.0, g.min_guarantee_kib.astype(np.float64))
        limit = np.maximum(np.minimum(floor, top), np.minimum(top, limit))
        limit = np.maximum(np.floor(limit / page) * page, page)
        self.limit = np.where(which, limit, self.limit)

    def _targets(self, obs: Observation, which: np.ndarray) -> np.ndarray:
        """New balloon targets for the guests in ``which``; the others keep theirs."""
        assert self.limit is not None
        return np.where(which, obs.guests.maximum_kib - self.limit, obs.target_kib).astype(np.int64)
