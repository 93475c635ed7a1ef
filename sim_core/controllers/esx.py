"""``esx``: VMware ESX Server's memory scheduler (Waldspurger, OSDI 2002, sec. 5 and 6.3).

Free-memory states (sec. 6.3), thresholds as shares of host memory: high 6%, soft 4%,
hard 2%, low 1%. In *high* no memory is reclaimed; in *soft* the balloon reclaims and the
host does not swap; in *hard* host swapping reclaims as well; in *low* host swapping goes
on and every VM above its target allocation is blocked. "The system transitions back to
the next higher state only after significantly exceeding the higher threshold": we enter
a state when free memory falls under its threshold and leave it upward only once free
memory exceeds the threshold of the state above (soft is left over 6%, hard over 4%, low
over 2%), so the 2-point gaps are the hysteresis.

Target allocations (sec. 5.1-5.3): reclaiming a page at a time from the VM with the
fewest adjusted shares per page, rho = S / (P * (f + k * (1 - f))), k = 1 / (1 - tau),
with P the VM's pages, f its active fraction and tau the idle memory tax (0.75); enough
is reclaimed to bring free memory back to the high threshold. f comes from statistical
sampling (100 pages per 30 s, max of a fast and a slow moving average; see
``activity``). Balloon targets are ``maximum - allocation``.

Divergences:
1. Free memory is counted against the memory for guests (``host.total_kib``, the host
   less its reserve), the base of the host's own swap watermarks, so that ESX's hard
   threshold (2%) and the host's default low watermark (2%) coincide.
2. Host swapping is the host's blind reclaim held back in high and soft (it starts only
   under the host's min watermark) and left to its watermarks in hard and low; ESX's
   swapper instead pages out each VM toward its own target.
3. Reclamation is computed from current sizes every decision (1 s) in steps of 0.5% of a
   VM's memory; ESX recomputes targets periodically. In high state memory above the high
   threshold is handed back, to the VM with the most adjusted shares per page first.
4. A VM's balloon is capped at 65% of its memory (vSphere's ``Mem.CtlMaxPercent``
   default) and never takes it below its ``min_guarantee`` (ESX's min size).
5. No content-based page sharing (sec. 4) and no per-VM max below configured memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim_core.config import ConfigError
from sim_core.controllers.activity import ActiveFraction
from sim_core.controllers.base import Controller, Decision, Setup, clamp_targets
from sim_core.observation import Observation
from sim_core.params import param

_ESX = "Waldspurger OSDI 2002"
HIGH, SOFT, HARD, LOW = 0, 1, 2, 3
STATE_NAMES = ("high", "soft", "hard", "low")
STEP_SHARE = 0.005  # revocation granularity, share of a VM's memory (numerics, not a model)


@dataclass(frozen=True)
class EsxParams:
    """``esx`` parameters (defaults from ESX Server, OSDI 2002)."""

    high_pct: float = param(6.0, f"high free-memory threshold ({_ESX} sec. 6.3)", lo=0, hi=100,
                            unit="% of host memory")  # fmt: skip
    soft_pct: float = param(4.0, f"soft threshold: balloon under it ({_ESX} sec. 6.3)", lo=0,
                            hi=100, unit="% of host memory")  # fmt: skip
    hard_pct: float = param(2.0, f"hard threshold: host swaps under it ({_ESX} sec. 6.3)", lo=0,
                            hi=100, unit="% of host memory")  # fmt: skip
    low_pct: float = param(1.0, f"low threshold: VMs over target block ({_ESX} sec. 6.3)", lo=0,
                           hi=100, unit="% of host memory")  # fmt: skip
    tax_rate: float = param(0.75, f"idle memory tax tau ({_ESX} sec. 5.3 default)", lo=0, hi=0.99)
    sample_pages: int = param(100, f"frames sampled per VM and period ({_ESX} sec. 5.2)", lo=1,
                              unit="pages")  # fmt: skip
    sample_period_s: float = param(30.0, f"sampling period ({_ESX} sec. 5.2)", lo=0,
                                   lo_open=True, unit="s")  # fmt: skip
    fast_alpha: float = param(0.5, "weight of a new sample in the fast average (ours)", lo=0, hi=1)
    slow_alpha: float = param(0.1, "weight of a new sample in the slow average (ours)", lo=0, hi=1)
    balloon_max_pct: float = param(
        65.0, "largest balloon, share of VM memory (vSphere Mem.CtlMaxPercent default)", lo=0,
        hi=100, unit="%",
    )  # fmt: skip

    @property
    def thresholds(self) -> np.ndarray:
        return np.array([self.high_pct, self.soft_pct, self.hard_pct, self.low_pct]) / 100.0


class Esx(Controller):
    """ESX's free-memory states choose ballooning or host swapping; proportional share
    with the idle memory tax chooses whom to reclaim from."""

    name = "esx"
    Params = EsxParams
    interval_s = 1.0

    @staticmethod
    def check_params(p: EsxParams) -> None:
        if not p.high_pct > p.soft_pct > p.hard_pct > p.low_pct:
            raise ConfigError(
                "hypervisor.params.high_pct: thresholds must fall high > soft > hard > low, got "
                f"{p.high_pct}, {p.soft_pct}, {p.hard_pct}, {p.low_pct}"
            )

    def __init__(self, params: EsxParams, setup: Setup) -> None:
        super().__init__(params, setup)
        self.sample_pages = params.sample_pages
        self.sample_period_s = params.sample_period_s
        self.active = ActiveFraction(params.fast_alpha, params.slow_alpha)
        self.state = HIGH
        self.states: list[int] = []  # one per decision, for inspection
        self.polled_s = float("nan")
        self.allocation: np.ndarray | None = None  # KiB of host memory per VM

    def next_state(self, free_share: float) -> int:
        """The state after seeing ``free_share``: down into every state whose threshold it
        is under; up out of a state only past the threshold of the state above."""
        th = self.params.thresholds
        state = self.state
        while state < LOW and free_share < th[state + 1]:
            state += 1
        if state == self.state:
            while state > HIGH and free_share > th[state - 1]:
                state -= 1
        return state

    def decide(self, obs: Observation) -> Decision:
        p, host, g = self.params, obs.host, obs.guests
        self.state = self.next_state(host.unused_kib / host.total_kib)
        self.states.append(self.state)
        f = self.active.update(obs.sample)
        balloon = obs.target_kib
        if g.polled_s != self.polled_s:  # new VM sizes: recompute the allocation
            self.polled_s = g.polled_s
            f = np.ones(obs.n_guests) if f is None else f  # unsampled: all pages active
            rss = g.rss_kib.astype(np.float64)
            others = host.total_kib - host.unused_kib - rss.sum()  # host caches, I/O buffers
            for_vms = (1 - p.thresholds[HIGH]) * host.total_kib - others
            weight = self.cost_per_share(obs.shares, f)
            if self.state == HIGH:
                top = rss + obs.balloon_kib
                self.allocation = fill(rss, weight, top, for_vms - rss.sum())
            else:
                self.allocation = revoke(rss, weight, g.min_guarantee_kib, rss.sum() - for_vms)
            balloon = obs.balloon_kib + (rss - self.allocation)
            cap = np.minimum(p.balloon_max_pct / 100 * g.maximum_kib,
                             g.maximum_kib - g.min_guarantee_kib)  # fmt: skip
            balloon = clamp_targets(np.clip(balloon, 0, cap), obs)
        block = None
        if self.state == LOW and self.allocation is not None:
            block = g.rss_kib > self.allocation + obs.page_kib
        return Decision(balloon_kib=balloon, host_swap=self.state >= HARD, block=block)

    def cost_per_share(self, shares: np.ndarray, f: np.ndarray) -> np.ndarray:
        """w with rho = S / (P * (f + k * (1 - f))) = 1 / (P * w), k = 1 / (1 - tau)
        (sec. 5.3): the lower a VM's rho, the sooner it loses pages."""
        k = 1.0 / (1.0 - self.params.tax_rate)
        return (f + k * (1.0 - f)) / np.maximum(shares, 1e-12)


def revoke(pages: np.ndarray, weight: np.ndarray, floor: np.ndarray, amount: float
           ) -> np.ndarray:  # fmt: skip
    """Min-funding revocation as water-filling: take ``amount`` KiB, always from the VM
    with the lowest rho (the highest P * w), none below its floor: each VM ends at
    min(P, max(floor, L / w)) for the level L that takes exactly ``amount``."""
    pages = np.asarray(pages, np.float64)
    floor = np.minimum(np.asarray(floor, np.float64), pages)
    if amount <= 0:
        return pages
    at = lambda level: np.minimum(pages, np.maximum(floor, level / weight))  # noqa: E731
    if (pages - floor).sum() <= amount:
        return floor
    lo, hi = 0.0, float(np.max(pages * weight))
    for _ in range(100):  # bisection: taken(level) falls as the level rises
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if (pages - at(mid)).sum() > amount else (lo, mid)
    return at(hi)


def fill(pages: np.ndarray, weight: np.ndarray, top: np.ndarray, amount: float) -> np.ndarray:
    """The reverse: hand ``amount`` KiB back to the VM with the highest rho (the lowest
    P * w) first, none above ``top``: each ends at max(P, min(top, L / w))."""
    pages = np.asarray(pages, np.float64)
    top = np.maximum(np.asarray(top, np.float64), pages)
    if amount <= 0:
        return pages
    at = lambda level: np.maximum(pages, np.minimum(top, level / weight))  # noqa: E731
    if (top - pages).sum() <= amount:
        return top
    lo, hi = 0.0, float(np.max(top * weight))
    for _ in range(100):  # given(level) rises with the level
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if (at(mid) - pages).sum() < amount else (lo, mid)
    return at(lo)
