"""``ws``: balloon each guest down to its sampled working set plus headroom.

The working set is estimated from ESX-style statistical sampling (Waldspurger, OSDI 2002,
sec. 5.2): the active fraction of a guest's current memory, from accessed bits of
``sample_pages`` random frames per ``sample_period_s``, smoothed as ESX does - the larger
of a fast and a slow exponential average, so the estimate rises at once and falls slowly.
While the host is short of memory (free under ``pressure_free_pct`` of its memory), each
guest's balloon moves toward ``maximum - (1 + headroom) * working set``; with the host
not short, balloons drain back. Every move is capped at ``max_step_pct`` of guest memory
per decision, so a wrong estimate is cheap. No other signal is used: a guest slowed by
faults touches fewer pages and is squeezed further, which is this policy's known
weakness (sampling sees what is touched, not what is needed).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_core.controllers.activity import ActiveFraction
from sim_core.controllers.base import Controller, Setup, clamp_targets
from sim_core.observation import Observation
from sim_core.params import param

_ESX = "Waldspurger OSDI 2002 sec. 5.2"


@dataclass(frozen=True)
class WorkingSetParams:
    """``ws`` parameters."""

    headroom_pct: float = param(20.0, "kept above the working-set estimate", lo=0, unit="%")
    sample_pages: int = param(100, f"frames sampled per guest and period ({_ESX})", lo=1,
                              unit="pages")  # fmt: skip
    sample_period_s: float = param(30.0, f"sampling period ({_ESX})", lo=0, lo_open=True, unit="s")
    fast_alpha: float = param(0.5, "weight of a new sample in the fast average", lo=0, hi=1)
    slow_alpha: float = param(0.1, "weight of a new sample in the slow average", lo=0, hi=1)
    pressure_free_pct: float = param(
        8.0, "the host is short of memory under this free share", lo=0, hi=100, unit="%"
    )
    max_step_pct: float = param(
        5.0, "largest balloon move per decision", lo=0, lo_open=True, hi=100,
        unit="% of guest memory",
    )  # fmt: skip


class WorkingSet(Controller):
    """Balloon down to the sampled working set plus headroom while the host is short;
    drain back when it is not."""

    name = "ws"
    Params = WorkingSetParams
    interval_s = 10.0

    def __init__(self, params: WorkingSetParams, setup: Setup) -> None:
        super().__init__(params, setup)
        self.sample_pages = params.sample_pages
        self.sample_period_s = params.sample_period_s
        self.active = ActiveFraction(params.fast_alpha, params.slow_alpha)

    def decide(self, obs: Observation) -> np.ndarray | None:
        p = self.params
        active = self.active.update(obs.sample)
        if active is None:
            return None  # no completed sample yet
        maximum = obs.guests.maximum_kib.astype(np.float64)
        actual = maximum - obs.balloon_kib
        wss = active * actual
        want = maximum - wss * (1.0 + p.headroom_pct / 100.0)
        short = obs.host.unused_kib < p.pressure_free_pct / 100.0 * obs.host.total_kib
        step = p.max_step_pct / 100.0 * maximum
        if not short:
            want = np.minimum(want, obs.balloon_kib - step)  # give memory back
        target = np.clip(want, obs.balloon_kib - step, obs.balloon_kib + step)
        return clamp_targets(np.maximum(target, 0), obs)
