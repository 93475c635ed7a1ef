"""The per-tick control plane: one host, its guests, the balloon and the hypervisor.

``Simulation(config)`` builds the world; ``step()`` advances one tick; ``run()`` runs every
tick and returns a ``RunResult``. Each tick goes through the same phases, in this order:

1. workloads: every guest issues references for the tick (compiled: ``kernel.run_tick``),
   taking faults, direct reclaim and host faults as they come;
2. guest reclaim: each guest's kswapd refills its free pages to the high watermark;
3. balloon: every ``hypervisor.period`` ticks the controller sets targets; each driver
   moves toward its target by at most its rate, through the balloon lock protocol;
4. host reclaim: under its low watermark the host swaps blindly up to its high one;
5. I/O: host I/O buffers follow the disk queue;
6. metrics: one row per guest and one for the host (vm = -1).
"""

from __future__ import annotations

import math
import time

import numpy as np

from sim_core import kernel
from sim_core.config import SimConfig, from_dict
from sim_core.controllers import CONTROLLERS, Observation, Static
from sim_core.economics import economics
from sim_core.locks import balloon_round
from sim_core.policies import policy_id
from sim_core.result import RunResult
from sim_core.state import (
    BALLOONED,
    C_BALLOON_RECLAIMS,
    C_BALLOON_WRITES,
    C_DOUBLE_PAGING,
    C_ESC_00,
    C_EVICTIONS,
    C_FALSE_READS,
    C_FAULTS,
    C_FILE_DROPS,
    C_FILE_READS,
    C_HOST_BLOCK_DROPS,
    C_HOST_DISCARDS,
    C_HOST_FAULTS,
    C_HOST_SWAP_OUTS,
    C_MAJOR,
    C_NESTED,
    C_REFS,
    C_SILENT_WRITES,
    C_STALE_READS,
    C_SWAP_INS,
    C_SWAP_OUTS,
    C_WRITEBACKS,
    CLOCK_MS,
    D_LATENCY,
    D_SERVICE,
    DEFLATE_ON_OOM,
    F_HI,
    F_LO,
    FAULT_MS,
    FB_HACC,
    FB_STATE,
    H_DISCARD,
    H_FREE,
    H_IOBUF,
    H_IOBUF_PER_REQ_X1000,
    H_NRES,
    H_SWAP_CAP,
    H_SWAP_POLICY,
    H_SWAP_USED,
    H_TOTAL,
    HC_DISCARDS,
    HC_READS,
    HC_SWAP_INS,
    HC_SWAP_OUTS,
    HC_WRITES,
    N_BACKED,
    N_BALLOONED,
    N_CACHED_BLOCKS,
    N_FREE,
    N_HSWAPPED,
    N_SWAPPED,
    N_USED,
    PINNED,
    REF_LEN,
    REF_MS,
    REF_POS,
    STALLED,
    WS_TAU,
    make_world,
)
from sim_core.workloads import make_workload

SLICES_PER_TICK = 10  # host I/O buffers follow the disk queue every tick_ms / 10
NATIVE_TICKS = 60  # ticks of the pressure-free reference run that gives native throughput

# Per-tick columns, in order. VM rows and the host row (vm = -1) share them; a column that
# does not apply to a row is 0 there.
TICK_COLUMNS = (
    "tick", "vm", "time_s", "references", "throughput", "faults", "major_faults",
    "host_faults", "swap_outs", "swap_ins", "writebacks", "file_drops", "nested_faults",
    "balloon_mib", "balloon_target_mib", "resident_mib", "free_mib", "guest_swap_mib",
    "backed_mib", "host_swapped_mib", "swap_cache_mib", "stalled", "host_free_mib",
    "io_queue", "io_buffers_mib", "host_swap_outs", "host_swap_ins", "host_discards",
    "disk_reads", "disk_writes",
)  # fmt: skip

_COUNTER_COLUMNS = {
    "references": C_REFS,
    "faults": C_FAULTS,
    "major_faults": C_MAJOR,
    "host_faults": C_HOST_FAULTS,
    "swap_outs": C_SWAP_OUTS,
    "swap_ins": C_SWAP_INS,
    "writebacks": C_WRITEBACKS,
    "file_drops": C_FILE_DROPS,
    "nested_faults": C_NESTED,
}


class Simulation:
    """One host and its guests, advanced a tick at a time."""

    def __init__(self, config: SimConfig) -> None:
        self.cfg = config
        self.reset()

    # ---- construction ------------------------------------------------------------------------
    def reset(self) -> None:
        """Build the world from the config and its seed (Gymnasium-style: same seed, same run)."""
        cfg = self.cfg
        seeds = np.random.SeedSequence(cfg.seed).spawn(len(cfg.vms) + 2)
        self.rng = np.random.default_rng(seeds[-1])  # control plane: sampling, lock rounds
        self.tick_s = cfg.tick_ms / 1000.0
        self.mem_pages = np.array([cfg.pages(v.mem_mib) for v in cfg.vms], np.int64)
        self.workloads = []
        for i, vm in enumerate(cfg.vms):
            wl = make_workload(
                vm.workload,
                vm.workload_params,
                int(self.mem_pages[i]),
                cfg.page_kib,
                path=f"vms[{i}].workload_params",
            )
            wl.reset(np.random.default_rng(seeds[i]))
            self.workloads.append(wl)
        self.ref_ms = np.array(
            [
                cfg.tick_ms / vm.refs_per_tick / max(wl.activity, 1e-6)
                for vm, wl in zip(cfg.vms, self.workloads, strict=True)
            ]
        )
        self.ref_capacity = np.ceil(cfg.tick_ms / self.ref_ms).astype(np.int64) + 2
        host_frames = cfg.pages(cfg.host_mem_mib - cfg.host.reserve_mib)
        self.host_low = max(1, int(host_frames * cfg.host.low_watermark_pct / 100))
        self.host_high = max(
            self.host_low + 1, int(host_frames * cfg.host.high_watermark_pct / 100)
        )
        w = self.world = make_world(
            frames=[int(m) for m in self.mem_pages],
            page_kinds=[wl.page_kind for wl in self.workloads],
            swap_slots=[cfg.pages(v.swap_mib) for v in cfg.vms],
            policies=[policy_id(v.guest_policy) for v in cfg.vms],
            seed=cfg.seed,
            host_frames=host_frames,
            ref_buffer=int(self.ref_capacity.max()),
        )
        for g, vm in enumerate(cfg.vms):
            w.gf[g, REF_MS] = self.ref_ms[g]
            w.gf[g, FAULT_MS] = vm.fault_ms
            w.gi[g, WS_TAU] = max(1, int(vm.ws_tau_s * 1000.0 / self.ref_ms[g]))
            w.gi[g, DEFLATE_ON_OOM] = int(vm.deflate_on_oom)
        w.hf[D_SERVICE] = 1000.0 / cfg.disk.iops
        w.hf[D_LATENCY] = cfg.disk.latency_ms
        w.hi[H_SWAP_POLICY] = 0 if cfg.host.swap_policy == "random" else 1
        w.hi[H_DISCARD] = int(cfg.host.discard_clean)
        w.hi[H_SWAP_CAP] = cfg.pages(cfg.host.swap_mib)
        w.hi[H_IOBUF_PER_REQ_X1000] = int(round(cfg.host.io_buffer_kib / cfg.page_kib * 1000))
        self.guest_low = np.maximum(
            1, (self.mem_pages * np.array([v.free_low_pct for v in cfg.vms]) / 100).astype(np.int64)
        )
        self.guest_high = np.maximum(
            self.guest_low + 1,
            (self.mem_pages * np.array([v.free_high_pct for v in cfg.vms]) / 100).astype(np.int64),
        )
        if cfg.warm_start:
            self._warm_start()
        self.controller = self._make_controller()
        self.target = np.zeros(len(cfg.vms), np.int64)
        self.tick = 0
        self.deadlocks = 0
        self.deadlocked_vms: set[int] = set()
        self._period_faults = w.cnt[:, C_FAULTS].copy()
        self._period_refs = w.cnt[:, C_REFS].copy()
        self._fault_rate = np.zeros(len(cfg.vms))
        self._sample = self._new_sample()
        self._prev_cnt = w.cnt.copy()
        self._prev_hcnt = w.hcnt.copy()
        n_rows = cfg.ticks * (len(cfg.vms) + 1)
        self._rows = {name: np.zeros(n_rows, np.float64) for name in TICK_COLUMNS}
        self._row = 0

    def _warm_start(self) -> None:
        """Each guest starts with its hottest pages resident (up to its free watermark),
        and the host backs guest frames hottest first, round-robin over guests, while it
        stays over its high watermark; the rest start in host swap, as after a while of
        running overcommitted."""
        w = self.world
        loaded_frames = []
        for g, wl in enumerate(self.workloads):
            room = int(self.mem_pages[g] - self.guest_high[g])
            n = kernel.warm_load(w, g, wl.warm_order().astype(np.int32), room)
            lo = int(w.gi[g, F_LO])
            loaded_frames.append(np.arange(lo + n - 1, lo - 1, -1, dtype=np.int64))  # hottest first
        ranks = np.concatenate([np.arange(len(f)) for f in loaded_frames])
        guests = np.concatenate([np.full(len(f), g) for g, f in enumerate(loaded_frames)])
        frames = np.concatenate(loaded_frames)
        order = np.lexsort((guests, ranks))
        kernel.warm_back(w, frames[order].astype(np.int64), self.host_high)

    def _make_controller(self):
        hv = self.cfg.hypervisor
        cls = CONTROLLERS[hv.policy]
        if cls is Static:
            fixed = np.array([self.cfg.pages(v.balloon_mib) for v in self.cfg.vms], np.int64)
            return Static(hv, fixed)
        return cls(hv)

    # ---- one tick ----------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one tick through the six phases."""
        cfg, w = self.cfg, self.world
        t0 = self.tick * cfg.tick_ms
        t_end = t0 + cfg.tick_ms
        self._refill_references()
        kernel.run_tick(w, t0, cfg.tick_ms, SLICES_PER_TICK)
        for g in range(len(cfg.vms)):
            w.gf[g, CLOCK_MS] = kernel.guest_reclaim(
                w, g, w.gf[g, CLOCK_MS], int(self.guest_low[g]), int(self.guest_high[g])
            )
        host_was_short = w.hi[H_FREE] < self.host_low
        period = cfg.hypervisor.period
        if self.tick % period == 0 and (self.tick > 0 or not self.controller.needs_history):
            self._decide(t_end)
        self._move_balloons(t_end, host_was_short)
        kernel.host_reclaim(w, t_end, self.host_low, self.host_high)
        kernel.update_io_buffers(w, t_end)
        self._pin_swap_blocks()
        self._record(t_end)
        self.tick += 1

    def _refill_references(self) -> None:
        """Top each guest's reference buffer up to a tick's worth (plus a little)."""
        w = self.world
        for g, wl in enumerate(self.workloads):
            pos, length = int(w.gi[g, REF_POS]), int(w.gi[g, REF_LEN])
            left = length - pos
            if left > 0 and pos > 0:
                w.ref_page[g, :left] = w.ref_page[g, pos:length]
                w.ref_write[g, :left] = w.ref_write[g, pos:length]
            want = int(self.ref_capacity[g]) - left
            if want > 0:
                pages, writes = wl.generate(want, (self.tick + 1) * self.cfg.tick_ms)
                want = len(pages)  # a trace may have fewer due this tick: the guest idles
                w.ref_page[g, left : left + want] = pages
                w.ref_write[g, left : left + want] = writes
            w.gi[g, REF_POS] = 0
            w.gi[g, REF_LEN] = left + max(want, 0)

    def _new_sample(self) -> list[np.ndarray]:
        """Pick the frames whose accessed bits the hypervisor watches next period, and
        clear their bits (Waldspurger's statistical sampling)."""
        w, k = self.world, self.cfg.hypervisor.sample_pages
        sample = []
        for g in range(len(self.cfg.vms)):
            lo, hi = int(w.gi[g, F_LO]), int(w.gi[g, F_HI])
            frames = self.rng.integers(lo, hi, size=min(k, hi - lo))
            w.fb[frames, FB_HACC] = 0
            sample.append(frames)
        return sample

    def _observe(self, t: float) -> Observation:
        w, cfg = self.world, self.cfg
        period_s = cfg.hypervisor.period * self.tick_s
        faults = w.cnt[:, C_FAULTS] - self._period_faults
        self._period_faults = w.cnt[:, C_FAULTS].copy()
        self._fault_rate = faults / period_s
        refs = w.cnt[:, C_REFS] - self._period_refs
        self._period_refs = w.cnt[:, C_REFS].copy()
        busy = np.clip(refs * self.ref_ms / (period_s * 1000.0), 0.0, 1.0)
        active = np.zeros(len(cfg.vms))
        for g, frames in enumerate(self._sample):
            usable = w.fb[frames, FB_STATE] != BALLOONED
            if usable.any():
                active[g] = float(w.fb[frames[usable], FB_HACC].mean())
        self._sample = self._new_sample()
        return Observation(
            tick=self.tick,
            period_s=period_s,
            host_total=int(w.hi[H_TOTAL]),
            host_free=int(w.hi[H_FREE]),
            host_low=self.host_low,
            host_high=self.host_high,
            mem=self.mem_pages.copy(),
            balloon=w.gi[:, N_BALLOONED].copy(),
            target=self.target.copy(),
            free=w.gi[:, N_FREE].copy(),
            fault_rate=self._fault_rate.copy(),
            active=active,
            shares=np.array([v.shares for v in cfg.vms], np.float64),
            busy=busy,
            disk_backlog_s=kernel.queue_length(w, t) / cfg.disk.iops,
        )

    def _decide(self, t: float) -> None:
        obs = self._observe(t)
        targets = self.controller.targets(obs)
        if targets is not None:
            self.target = np.clip(np.asarray(targets, np.int64), 0, self.mem_pages - 1)

    def _move_balloons(self, t: float, host_reclaiming: bool) -> None:
        """Each driver moves toward its target by at most its rate. With the lock model on,
        the moves of this tick race the host's reclaim through the balloon lock protocol;
        guests caught in a deadlock cycle stop for good."""
        w, cfg = self.world, self.cfg
        if cfg.hypervisor.policy == "none":
            return
        moving = [
            g
            for g in range(len(cfg.vms))
            if w.gi[g, N_BALLOONED] != self.target[g] and w.gi[g, STALLED] == 0
        ]
        if moving and cfg.hypervisor.lock_contention > 0:
            self._lock_round(moving, host_reclaiming)
        for g in moving:
            if w.gi[g, STALLED] != 0:
                continue
            rate = cfg.vms[g].balloon_batches_per_tick * kernel.BATCH_PAGES
            delta = int(self.target[g] - w.gi[g, N_BALLOONED])
            if delta > 0:
                _, clock = kernel.balloon_inflate(w, g, min(delta, rate), w.gf[g, CLOCK_MS])
                w.gf[g, CLOCK_MS] = clock
            elif delta < 0:
                kernel.balloon_deflate(w, g, min(-delta, rate))

    def _lock_round(self, moving: list[int], host_reclaiming: bool) -> None:
        """Balloon operations and host reclaim callbacks contend for L_vmem and L_hostmem."""
        cfg, w = self.cfg, self.world
        hv = cfg.hypervisor
        if not host_reclaiming:
            return  # no host reclaim thread is calling back into guests this tick
        targets = [g for g in moving if self.rng.random() < hv.lock_contention]
        if not targets:
            return
        result = balloon_round(moving, targets, hv.lock_order, self.rng)
        if result.deadlocked_guests:
            self.deadlocks += 1
            for g in result.deadlocked_guests:
                w.gi[g, STALLED] = kernel.STALL_DEADLOCK
                self.deadlocked_vms.add(int(g))

    def _pin_swap_blocks(self) -> None:
        """With ``pin_guest_swap``, a guest faulting faster than the threshold gets its swap
        file's blocks pinned in host memory (unpinned again under half of it)."""
        if not self.cfg.host.pin_guest_swap:
            return
        w = self.world
        rate = (w.cnt[:, C_FAULTS] - self._prev_cnt[:, C_FAULTS]) / self.tick_s
        threshold = self.cfg.host.pin_fault_rate
        pinned = w.gi[:, PINNED]
        w.gi[:, PINNED] = np.where(rate > threshold, 1, np.where(rate < threshold / 2, 0, pinned))

    # ---- metrics -------------------------------------------------------------------------------
    def _record(self, t_end: float) -> None:
        w, cfg = self.world, self.cfg
        mib = cfg.page_kib / 1024.0
        delta = w.cnt - self._prev_cnt
        hdelta = w.hcnt - self._prev_hcnt
        self._prev_cnt = w.cnt.copy()
        self._prev_hcnt = w.hcnt.copy()
        n = len(cfg.vms)
        rows = slice(self._row, self._row + n + 1)
        r = self._rows
        r["tick"][rows] = self.tick
        r["vm"][rows] = np.arange(-1, n)[np.r_[1 : n + 1, 0]]
        r["time_s"][rows] = (self.tick + 1) * self.tick_s
        for name, col in _COUNTER_COLUMNS.items():
            r[name][rows] = np.r_[delta[:, col], delta[:, col].sum()]
        r["throughput"][rows] = r["references"][rows] / self.tick_s
        r["throughput"][self._row + n] = r["throughput"][self._row : self._row + n].sum()
        gi = w.gi
        for name, col in (
            ("balloon_mib", N_BALLOONED), ("resident_mib", N_USED), ("free_mib", N_FREE),
            ("guest_swap_mib", N_SWAPPED), ("backed_mib", N_BACKED),
            ("host_swapped_mib", N_HSWAPPED), ("swap_cache_mib", N_CACHED_BLOCKS),
        ):  # fmt: skip
            r[name][rows] = np.r_[gi[:, col], gi[:, col].sum()] * mib
        r["balloon_target_mib"][rows] = np.r_[self.target, self.target.sum()] * mib
        r["stalled"][rows] = np.r_[gi[:, STALLED], (gi[:, STALLED] != 0).sum()]
        host = self._row + n
        r["host_free_mib"][host] = w.hi[H_FREE] * mib
        r["io_queue"][host] = kernel.queue_length(w, t_end)
        r["io_buffers_mib"][host] = w.hi[H_IOBUF] * mib
        r["host_swap_outs"][host] = hdelta[HC_SWAP_OUTS]
        r["host_swap_ins"][host] = hdelta[HC_SWAP_INS]
        r["host_discards"][host] = hdelta[HC_DISCARDS]
        r["disk_reads"][host] = hdelta[HC_READS]
        r["disk_writes"][host] = hdelta[HC_WRITES]
        r["host_swap_outs"][self._row : host] = delta[:, C_HOST_SWAP_OUTS]
        r["host_discards"][self._row : host] = delta[:, C_HOST_DISCARDS]
        self._row += n + 1

    # ---- the whole run -------------------------------------------------------------------------
    def run(self) -> RunResult:
        """Run every tick; return the summary row and the per-tick rows."""
        start = time.perf_counter()
        for _ in range(self.cfg.ticks):
            self.step()
        wall = time.perf_counter() - start
        return RunResult(summary=self.summary(wall), ticks=self.tick_columns())

    def tick_columns(self) -> dict[str, np.ndarray]:
        """The per-tick series recorded so far, with integer columns as integers."""
        cols = {k: v[: self._row] for k, v in self._rows.items()}
        for name in (
            "tick",
            "vm",
            "stalled",
            *_COUNTER_COLUMNS,
            "host_swap_outs",
            "host_swap_ins",
            "host_discards",
            "disk_reads",
            "disk_writes",
        ):
            cols[name] = cols[name].astype(np.int64)
        return cols

    def vm_throughputs(self) -> np.ndarray:
        """Each guest's mean throughput over the run, references per simulated second."""
        seconds = max(self.tick, 1) * self.tick_s
        return self.world.cnt[:, C_REFS] / seconds

    def summary(self, wall_seconds: float) -> dict:
        """The run's one summary row: config columns, outcome, totals."""
        w, cfg = self.world, self.cfg
        total = w.cnt.sum(axis=0)
        h = w.hcnt
        thr = self.vm_throughputs()
        native = np.array([native_throughput(cfg, g) for g in range(len(cfg.vms))])
        per_tick = self._rows["throughput"][: self._row].reshape(-1, len(cfg.vms) + 1)[:, :-1]
        reclaimed = int(
            total[C_EVICTIONS] + h[HC_SWAP_OUTS] + h[HC_DISCARDS] + total[C_HOST_BLOCK_DROPS]
        )
        reclaim_writes = int(total[C_SWAP_OUTS] + total[C_WRITEBACKS] + h[HC_SWAP_OUTS])
        host_reclaimed = int(h[HC_SWAP_OUTS] + h[HC_DISCARDS])
        reclaim_reads = int(h[HC_SWAP_INS] + total[C_NESTED])
        stalled = w.gi[:, STALLED]
        if (stalled == kernel.STALL_OOM).any():
            outcome = "guest_oom"
        elif (stalled == kernel.STALL_DEADLOCK).all():
            outcome = "deadlock"
        else:
            outcome = "ok"
        refs = int(total[C_REFS])
        row = dict(cfg.flat())
        row.update(
            outcome=outcome,
            error=None,
            references=refs,
            guest_faults=int(total[C_FAULTS]),
            guest_major_faults=int(total[C_MAJOR]),
            guest_swap_outs=int(total[C_SWAP_OUTS]),
            guest_swap_ins=int(total[C_SWAP_INS]),
            writebacks=int(total[C_WRITEBACKS]),
            file_drops=int(total[C_FILE_DROPS]),
            file_reads=int(total[C_FILE_READS]),
            guest_evictions=int(total[C_EVICTIONS]),
            esc_evict_00=int(total[C_ESC_00]),
            esc_evict_01=int(total[C_ESC_00 + 1]),
            esc_evict_10=int(total[C_ESC_00 + 2]),
            esc_evict_11=int(total[C_ESC_00 + 3]),
            host_swap_outs=int(h[HC_SWAP_OUTS]),
            host_swap_ins=int(h[HC_SWAP_INS]),
            host_discards=int(h[HC_DISCARDS]),
            host_faults=int(total[C_HOST_FAULTS]),
            host_block_drops=int(total[C_HOST_BLOCK_DROPS]),
            disk_reads=int(h[HC_READS]),
            disk_writes=int(h[HC_WRITES]),
            reclaimed_pages=reclaimed,
            io_per_reclaimed_page=(reclaim_writes + reclaim_reads) / reclaimed
            if reclaimed
            else 0.0,
            writes_per_reclaimed_page=reclaim_writes / reclaimed if reclaimed else 0.0,
            host_writes_per_reclaimed_page=float(h[HC_SWAP_OUTS] / host_reclaimed)
            if host_reclaimed
            else 0.0,
            balloon_reclaimed_pages=int(total[C_BALLOON_RECLAIMS]),
            balloon_writes_per_reclaimed_page=float(
                total[C_BALLOON_WRITES] / max(total[C_BALLOON_RECLAIMS], 1)
            )
            if total[C_BALLOON_RECLAIMS]
            else 0.0,
            nested_faults=int(total[C_NESTED]),
            double_paging=int(total[C_DOUBLE_PAGING]),
            silent_swap_writes=int(total[C_SILENT_WRITES]),
            stale_swap_reads=int(total[C_STALE_READS]),
            false_swap_reads=int(total[C_FALSE_READS]),
            deadlocks=self.deadlocks,
            deadlocked_vms=len(self.deadlocked_vms),
            guest_oom_vms=int((stalled == kernel.STALL_OOM).sum()),
            throughput_mean=float(thr.mean()),
            throughput_p5=float(np.percentile(per_tick, 5)) if per_tick.size else 0.0,
            native_throughput=float(native.mean()),
            slowdown=float(native.sum() / thr.sum()) if thr.sum() > 0 else math.inf,
            balloon_mean_mib=float(
                self._rows["balloon_mib"][: self._row].reshape(-1, len(cfg.vms) + 1)[:, -1].mean()
            ),
            host_swap_peak_mib=float(w.hi[H_SWAP_USED] * cfg.page_kib / 1024.0),
            host_io_buffers_peak_mib=float(self._rows["io_buffers_mib"][: self._row].max()),
            host_used_mib=float((w.hi[H_NRES] + w.hi[H_IOBUF]) * cfg.page_kib / 1024.0),
            wall_seconds=wall_seconds,
            refs_per_second=refs / wall_seconds if wall_seconds > 0 else 0.0,
        )
        row.update(economics(cfg, thr, native))
        return row


def _native_config(cfg: SimConfig, g: int) -> SimConfig:
    """VM g alone on a host with room to spare, no balloon: its pressure-free baseline."""
    data = cfg.to_dict()
    data["vms"] = [dict(data["vms"][g], balloon_mib=0)]
    data["host"] = dict(data["host"], mem_mib=None, overcommit=0.5, pin_guest_swap=False)
    data["hypervisor"] = dict(data["hypervisor"], policy="none", lock_contention=0.0)
    data["ticks"] = min(cfg.ticks, NATIVE_TICKS)
    return from_dict(data)


_native_cache: dict[str, float] = {}


def native_throughput(cfg: SimConfig, g: int) -> float:
    """VM g's throughput with no memory pressure (memoized per process: it is a pure
    function of the config, and identical VMs share it)."""
    native = _native_config(cfg, g)
    key = native.to_json()
    if key not in _native_cache:
        sim = Simulation(native)
        for _ in range(native.ticks):
            sim.step()
        _native_cache[key] = float(sim.vm_throughputs()[0])
    return _native_cache[key]
