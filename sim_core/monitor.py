"""The hypervisor's monitor: builds the ``Observation`` controllers see, and nothing more.

It owns the three ways a host learns about its guests (see ``sim_core.observation``):
polled balloon statistics, ESX-style accessed-bit sampling, and kstaled-style idle-page
scans. The last two share the accessed bit of the host's page tables with host reclaim,
as Linux's idle page tracking does (Documentation/admin-guide/mm/idle_page_tracking.rst):
the bit (``FB_HACC``) holds three flags,

- ``YOUNG`` (1): the hardware accessed bit; every reference sets the byte to 1, which
  also clears the other two flags (an access ends idleness);
- ``IDLE`` (2): PG_idle, set by a sampler or scanner when it clears ``YOUNG``;
- ``WAS_YOUNG`` (4): PG_young, kept so that host reclaim still sees a page as referenced
  after a tracker cleared its accessed bit.

A tracker finds a page accessed unless it is ``IDLE`` and not ``YOUNG``; host reclaim
finds it referenced if ``YOUNG`` or ``WAS_YOUNG`` and clears the byte to 0 (Linux clears
PG_idle when reclaim finds a page referenced).
"""

from __future__ import annotations

import math

import numpy as np

from sim_core import block_device
from sim_core import state as C
from sim_core.observation import AccessSample, ColdAges, GuestStats, HostStats, Observation
from sim_core.sampling import Scale, scale_observation
from sim_core.state import (
    BALLOONED,
    F_HI,
    F_LO,
    FB_HACC,
    FB_KIND,
    FB_STATE,
    FILE,
    FREE_LOW,
    H_FREE,
    H_HIGH,
    H_LOW,
    H_SWAP_CAP,
    H_SWAP_USED,
    H_TOTAL,
    N_BACKED,
    N_BALLOONED,
    N_FREE,
    N_KERNEL,
    USED,
)

YOUNG, IDLE, WAS_YOUNG = 1, 2, 4
AGE_BINS = 64  # cold-age histogram bins, in scans (the last: 63 scans or more)


def mark_idle(acc: np.ndarray) -> np.ndarray:
    """Accessed-bit bytes after a tracker clears YOUNG and sets IDLE (PG_young kept)."""
    was = (acc & (YOUNG | WAS_YOUNG)) != 0
    return (IDLE | np.where(was, WAS_YOUNG, 0)).astype(acc.dtype)


def accessed_since_marked(acc: np.ndarray) -> np.ndarray:
    """True where a page was touched (or found referenced by reclaim) since marked idle."""
    return ~(((acc & IDLE) != 0) & ((acc & YOUNG) == 0))


class Monitor:
    """Polls the world for the hypervisor. ``poll`` refreshes the balloon statistics,
    ``tick`` advances sampling and scanning, ``observe`` assembles an Observation."""

    def __init__(
        self,
        world,
        cfg,
        rng: np.random.Generator,
        *,
        sample_pages: int,
        sample_period_s: float,
        scan_period_s: float | None,
        scale: Scale | None = None,
    ) -> None:
        self.w, self.cfg, self.rng = world, cfg, rng
        self.page_kib = cfg.page_kib
        n = len(cfg.vms)
        self.n = n
        self.names = tuple(v.name for v in cfg.vms)
        self.maximum_kib = (
            np.array([cfg.pages(v.mem_mib) for v in cfg.vms], np.int64) * cfg.page_kib
        )
        # Sampling: the monitor reads the sampled world in its own units (its frames are
        # the guests' sizes), and observe() rescales the Observation (sim_core.sampling).
        self.scale = scale
        self.config_maximum_kib = self.maximum_kib
        if scale is not None:
            frames = (world.gi[:, F_HI] - world.gi[:, F_LO]).astype(np.int64)
            self.maximum_kib = frames * cfg.page_kib
        self.min_guarantee_kib = np.array(
            [cfg.pages(v.min_guarantee_mib) * cfg.page_kib for v in cfg.vms], np.int64
        )
        self.shares = np.array([v.shares for v in cfg.vms], np.float64)
        self.psi_some_us = np.zeros(n)  # cumulative guest PSI (guest some == full: one task)
        self.host_psi_us = np.zeros(2)  # cumulative host some, full
        self.stats: GuestStats | None = None
        # ESX sampling
        self.sample_pages = sample_pages
        self.sample_period_s = sample_period_s
        self._sample_frames: list[np.ndarray] = []
        self._sample_started = math.nan
        self._active = np.full(n, np.nan)
        self._sample_done = math.nan
        # kstaled scanning
        self.scan_period_s = scan_period_s
        lo = int(world.gi[0, F_LO]) if n else 0
        hi = int(world.gi[n - 1, F_HI]) if n else 0
        self._frames = slice(lo, hi)
        # Per-frame scan state only for a controller that scans (it is per-page memory), in
        # the narrowest type: guest ids of the smallest type that holds them, int32 ages
        # (capped at 2**20 scans)
        scans = scan_period_s is not None
        sizes = [int(world.gi[g, F_HI] - world.gi[g, F_LO]) for g in range(n)] if scans else 0
        self._guest_of = np.repeat(np.arange(n, dtype=np.min_scalar_type(max(n - 1, 0))), sizes)
        self._age = np.zeros(hi - lo if scans else 0, np.int32)
        self._hist = np.zeros((n, AGE_BINS), np.int64)
        self._promotions = np.zeros((n, AGE_BINS), np.int64)
        self._scans = 0
        self._last_scan = math.nan

    # ---- time passes -----------------------------------------------------------------------
    def account_psi(
        self, guest_stall_ms: np.ndarray, host_some: float, host_full: float, tick_ms: float
    ) -> None:
        """Add a tick's stall time to the cumulative PSI totals."""
        self.psi_some_us += np.minimum(guest_stall_ms, tick_ms) * 1000.0
        self.host_psi_us += np.array([host_some, host_full]) * tick_ms * 1000.0

    def tick(self, t_s: float) -> None:
        """At simulated time t_s (end of a tick): poll, sample and scan when due."""
        if (
            self.stats is None
            or t_s - self.stats.polled_s >= self.cfg.hypervisor.stats_period_s - 1e-9
        ):
            self.stats = self._poll(t_s)
        if self.sample_pages > 0:
            if math.isnan(self._sample_started):
                self._start_sample(t_s)
            elif t_s - self._sample_started >= self.sample_period_s - 1e-9:
                self._finish_sample(t_s)
                self._start_sample(t_s)
        if self.scan_period_s is not None and (
            math.isnan(self._last_scan) or t_s - self._last_scan >= self.scan_period_s - 1e-9
        ):
            self._scan(t_s)

    # ---- balloon statistics ----------------------------------------------------------------
    def _poll(self, t_s: float) -> GuestStats:
        w, kib = self.w, self.page_kib
        gi, cnt = w.gi, w.cnt
        file_cache = np.zeros(self.n, np.int64)
        for g in range(self.n):
            lo, hi = int(gi[g, F_LO]), int(gi[g, F_HI])
            fb = w.fb[lo:hi]
            file_cache[g] = int(
                np.count_nonzero((fb[:, FB_STATE] == USED) & (fb[:, FB_KIND] == FILE))
            )
        free = gi[:, N_FREE].astype(np.int64)
        actual = self.maximum_kib - gi[:, N_BALLOONED] * kib
        # MemAvailable (mm/show_mem.c si_mem_available): free pages above the low watermark
        # plus the page cache, less what must stay (we keep all of it reclaimable).
        usable = np.maximum(0, free - gi[:, FREE_LOW]) + file_cache
        return GuestStats(
            name=self.names,
            maximum_kib=self.maximum_kib.copy(),
            min_guarantee_kib=self.min_guarantee_kib.copy(),
            actual_kib=actual.astype(np.int64),
            unused_kib=free * kib,
            available_kib=(actual - gi[:, N_KERNEL] * kib).astype(np.int64),
            usable_kib=usable * kib,
            disk_caches_kib=file_cache * kib,
            rss_kib=gi[:, N_BACKED].astype(np.int64) * kib,
            swap_in_kib=cnt[:, C.C_SWAP_INS].astype(np.int64) * kib,
            swap_out_kib=cnt[:, C.C_SWAP_OUTS].astype(np.int64) * kib,
            major_fault=cnt[:, C.C_MAJOR].astype(np.int64).copy(),
            minor_fault=cnt[:, C.C_MINOR].astype(np.int64).copy(),
            psi_some_us=self.psi_some_us.copy(),
            psi_full_us=self.psi_some_us.copy(),
            polled_s=t_s,
        )

    # ---- ESX statistical sampling ------------------------------------------------------------
    def _start_sample(self, t_s: float) -> None:
        w, frames = self.w, []
        for g in range(self.n):
            lo, hi = int(w.gi[g, F_LO]), int(w.gi[g, F_HI])
            pick = self.rng.integers(lo, hi, size=min(self.sample_pages, hi - lo))
            w.fb[pick, FB_HACC] = mark_idle(w.fb[pick, FB_HACC])
            frames.append(pick)
        self._sample_frames = frames
        self._sample_started = t_s

    def _finish_sample(self, t_s: float) -> None:
        w = self.w
        for g, pick in enumerate(self._sample_frames):
            usable = w.fb[pick, FB_STATE] != BALLOONED  # a ballooned frame is not the guest's
            if usable.any():
                self._active[g] = float(accessed_since_marked(w.fb[pick[usable], FB_HACC]).mean())
            else:
                self._active[g] = 0.0
        self._sample_done = t_s

    # ---- kstaled scans ----------------------------------------------------------------------
    def _scan(self, t_s: float) -> None:
        w, frames = self.w, self._frames
        acc = w.fb[frames, FB_HACC]
        ballooned = w.fb[frames, FB_STATE] == BALLOONED
        touched = accessed_since_marked(acc) if self._scans else np.ones(len(acc), np.bool_)
        touched &= ~ballooned
        if self._scans:
            np.add.at(
                self._promotions,
                (self._guest_of[touched], np.minimum(self._age[touched], AGE_BINS - 1)),
                1,
            )
        self._age = np.where(touched, 0, np.minimum(self._age + 1, 1 << 20))
        self._age[ballooned] = 0
        w.fb[frames, FB_HACC] = mark_idle(acc)
        self._hist[:] = 0
        keep = ~ballooned
        np.add.at(self._hist, (self._guest_of[keep], np.minimum(self._age[keep], AGE_BINS - 1)), 1)
        self._scans += 1
        self._last_scan = t_s

    # ---- the Observation ----------------------------------------------------------------------
    def observe(self, t_s: float, interval_s: float, target_kib: np.ndarray) -> Observation:
        """What the hypervisor knows at t_s: the last poll, the host now, its own targets."""
        w, kib = self.w, self.page_kib
        assert self.stats is not None, "tick() polls before the first decision"
        hi = w.hi
        sample = None
        if self.sample_pages > 0:
            sample = AccessSample(
                active=self._active.copy(),
                pages=self.sample_pages,
                period_s=self.sample_period_s,
                completed_s=self._sample_done,
            )
        cold = None
        if self.scan_period_s is not None:
            cold = ColdAges(
                hist=self._hist.copy(),
                promotions=self._promotions.copy(),
                period_s=self.scan_period_s,
                scans=self._scans,
            )
        unused = int(hi[H_FREE]) * kib
        host = HostStats(
            memtotal_kib=int(self.cfg.host_mem_mib) * 1024,
            total_kib=int(hi[H_TOTAL]) * kib,
            unused_kib=unused,
            free_kib=unused + host_cache_kib(w, kib),
            low_kib=int(hi[H_LOW]) * kib,
            high_kib=int(hi[H_HIGH]) * kib,
            swap_total_kib=int(hi[H_SWAP_CAP]) * kib,
            swap_used_kib=int(hi[H_SWAP_USED]) * kib,
            swap_in_kib=int(w.hcnt[C.HC_SWAP_INS]) * kib,
            swap_out_kib=int(w.hcnt[C.HC_SWAP_OUTS]) * kib,
            psi_some_us=float(self.host_psi_us[0]),
            psi_full_us=float(self.host_psi_us[1]),
            io_inflight=int(block_device.dev_queue_length(w)),
        )
        obs = Observation(
            time_s=t_s,
            interval_s=interval_s,
            page_kib=kib,
            guests=self.stats,
            host=host,
            balloon_kib=w.gi[:, N_BALLOONED].astype(np.int64) * kib,
            target_kib=np.asarray(target_kib, np.int64).copy(),
            shares=self.shares.copy(),
            sample=sample,
            cold_ages=cold,
        )
        if self.scale is not None:
            obs = scale_observation(obs, self.scale, self.config_maximum_kib, target_kib)
        return obs


def host_cache_kib(w, kib: int) -> int:
    """Host page cache holding guest disk blocks (0 with host.cache = none)."""
    return int(w.hi[C.H_CACHE]) * kib
