"""The per-tick control plane: one host, its guests, the balloon and the hypervisor.

``Simulation(config)`` builds the world (guests boot, then an optional warm start);
``step()`` advances one tick; ``run()`` runs every tick and returns a ``RunResult``. Each
tick, in this order:

1. references: the guests run (compiled: ``faults.run_tick``), taking faults, direct
   reclaim, dirty throttling and host faults as they come; every slice the device's
   completed writes are reaped, the flushers and kswapd of guests and host run, and host
   I/O buffers follow the device queue;
2. balloon: the monitor polls statistics, samples and scans accessed bits when due; every
   decision interval the controller, given only an ``Observation``, sets targets; each
   driver moves toward its target by at most its rate, through the balloon lock protocol;
3. pinning of thrashing guests' memory, free page reporting every 2 s;
4. metrics: one row per guest and one for the host (vm = -1), PSI included.
The data plane lives in the modules named after the mechanisms they model: faults,
guest_reclaim, writeback, swap, host_memory, balloon, psi, boot, block_device.
"""

from __future__ import annotations

import copy
import math
import time

import numpy as np

from sim_core import block_device, boot, faults, sampling, state
from sim_core.balloon import BATCH_PAGES, balloon_deflate, balloon_inflate, report_free_pages
from sim_core.config import SimConfig, from_dict
from sim_core.controllers import ControllerError, Setup, check_answer, make_controller
from sim_core.economics import economics
from sim_core.locks import balloon_round
from sim_core.monitor import Monitor
from sim_core.policies import policy_id
from sim_core.psi import host_psi
from sim_core.result import RunResult
from sim_core.state import (
    DEFLATE_ON_OOM,
    DIRTY_BG,
    DIRTY_LIMIT,
    F_LO,
    FREE_HIGH,
    FREE_LOW,
    H_DISCARD,
    H_FREE,
    H_HIGH,
    H_IOBUF,
    H_IOBUF_PER_REQ_PPM,
    H_LOW,
    H_OOM_KILLED,
    H_SWAP_CAP,
    H_SWAP_POLICY,
    H_SWAP_USED,
    H_TOTAL,
    HOST_FAULT_MS,
    MAJOR_MS,
    MINOR_MS,
    N_BACKED,
    N_BALLOONED,
    N_DIRTY,
    N_FREE,
    N_HSWAPPED,
    N_KERNEL,
    N_SWAPPED,
    N_USED,
    N_WRITEBACK,
    PINNED,
    REF_LEN,
    REF_MS,
    REF_POS,
    STALL_BLOCKED,
    STALL_DEADLOCK,
    STALL_MS,
    STALL_OOM,
    STALLED,
    WS_TAU,
    make_world,
)
from sim_core.workloads import Workload, make_workload

SLICES_PER_TICK = 10  # background work (reaping, flushers, kswapd, I/O buffers) per tick
# A guest whose workload keeps no clock of its own draws its references in batches of at
# least this many past the tick's worth (a draw costs ~10 us of Python whatever its size:
# with sampling a tick's worth is ~1,000 references, and the draws were 40% of a tick).
# The stream does not depend on how it is chunked, so the results do not either.
REFILL_REFS = 8192
NATIVE_TICKS = 60  # ticks of the pressure-free reference run that gives native throughput
REPORT_EVERY_MS = 2000.0  # free page reporting delay (mm/page_reporting.c: 2 * HZ)
WARM_REFS_PER_PAGE = 20  # warm start: references drawn per frame to find the first touches
WARM_CHUNK = 1 << 18  # ... drawn this many at a time

C = state  # counter columns are read as C.C_REFS etc.

# Per-tick columns, in order. VM rows and the host row (vm = -1) share them; a column that
# does not apply to a row is 0 there. Units and meanings: sim_core.columns.TICK_COLUMNS.
TICK_COLUMNS = (
    "tick", "vm", "time_s", "references", "throughput", "faults", "major_faults",
    "minor_faults", "host_faults", "swap_outs", "swap_ins", "writebacks", "file_drops",
    "double_paging", "balloon_mib", "balloon_target_mib", "resident_mib", "free_mib",
    "guest_swap_mib", "dirty_mib", "writeback_mib", "backed_mib", "host_swapped_mib",
    "stalled", "psi_some", "psi_full", "host_free_mib", "io_queue", "io_buffers_mib",
    "host_swap_used_mib", "host_swap_outs", "host_swap_ins", "host_discards", "disk_reads",
    "disk_writes", "host_cache_mib", "host_cache_dirty_mib",
)  # fmt: skip

_COUNTER_COLUMNS = {
    "references": C.C_REFS,
    "faults": C.C_FAULTS,
    "major_faults": C.C_MAJOR,
    "minor_faults": C.C_MINOR,
    "host_faults": C.C_HOST_FAULTS,
    "swap_outs": C.C_SWAP_OUTS,
    "swap_ins": C.C_SWAP_INS,
    "writebacks": C.C_WRITEBACKS,
    "file_drops": C.C_FILE_DROPS,
    "double_paging": C.C_DOUBLE_PAGING,
}
_GAUGE_COLUMNS = {
    "balloon_mib": N_BALLOONED,
    "resident_mib": N_USED,
    "free_mib": N_FREE,
    "guest_swap_mib": N_SWAPPED,
    "dirty_mib": N_DIRTY,
    "writeback_mib": N_WRITEBACK,
    "backed_mib": N_BACKED,
    "host_swapped_mib": N_HSWAPPED,
}
# Under sampling (sim_core.sampling) these tick columns are counts, rates or sizes of the
# sampled world, reported / rate; the others (tick, vm, time, stalled, PSI, the device's
# queue length) are not scaled.
# References and throughput are scaled by each guest's reference share instead (below).
_SCALED_TICK_COLUMNS = (
    *(c for c in _COUNTER_COLUMNS if c != "references"), *_GAUGE_COLUMNS,
    "balloon_target_mib", "host_free_mib", "io_buffers_mib", "host_swap_used_mib",
    "host_swap_outs", "host_swap_ins", "host_discards", "disk_reads", "disk_writes",
    "host_cache_mib", "host_cache_dirty_mib",
)  # fmt: skip
_INT_TICK_COLUMNS = ("tick", "vm", "stalled", "io_queue", *_COUNTER_COLUMNS,
                     "host_swap_outs", "host_swap_ins", "host_discards", "disk_reads",
                     "disk_writes")  # fmt: skip


class Simulation:
    """One host and its guests, advanced a tick at a time."""

    def __init__(self, config: SimConfig) -> None:
        self.cfg = config
        self.reset()

    # ---- construction ------------------------------------------------------------------------
    def reset(self) -> None:
        """Build the world from the config and its seed (Gymnasium-style: same seed, same run)."""
        cfg = self.cfg
        n = len(cfg.vms)
        seeds = np.random.SeedSequence(cfg.seed).spawn(2 * n + 2)
        self.rng = np.random.default_rng(seeds[-1])  # control plane: sampling, lock rounds
        self.tick_s = cfg.tick_ms / 1000.0
        # Sampling (sim_core.sampling): None at rate 1, and then nothing below is scaled.
        sc = self.scale = sampling.make_scale(cfg.sampling.rate)
        self.full_pages = np.array([cfg.pages(v.mem_mib) for v in cfg.vms], np.int64)
        self.mem_pages = (
            self.full_pages
            if sc is None
            else np.array([sc.pages(int(m)) for m in self.full_pages], np.int64)
        )
        self.workloads = [self._workload(g, seeds[g]) for g in range(n)]
        self.ref_ms = np.array(
            [
                vm.ref_us / 1000.0 / max(wl.activity, 1e-6)
                for vm, wl in zip(cfg.vms, self.workloads, strict=True)
            ]
        )
        if sc is not None:  # a sampled reference stands for 1 / share of the guest's
            self.ref_share = np.array([sampling.reference_share(wl, sc) for wl in self.workloads])
            self.ref_ms = self.ref_ms / self.ref_share
        # A tick's worth of references (plus a little): a guest never runs more in a tick,
        # so a buffer holding this many never runs dry. Untimed workloads buffer a batch
        # more (REFILL_REFS); a trace is asked each tick for what is due by its end.
        self.ref_capacity = np.ceil(cfg.tick_ms / self.ref_ms).astype(np.int64) + 2
        untimed = np.array([type(wl).generate is Workload.generate for wl in self.workloads])
        self.ref_buffer = self.ref_capacity + np.where(
            untimed, np.maximum(self.ref_capacity, REFILL_REFS), 0
        )
        # How far one guest may run ahead of the others: dilated like the per-event costs.
        self.quantum_ms = faults.QUANTUM_MS if sc is None else sc.time(faults.QUANTUM_MS)
        host_frames = cfg.pages(cfg.host_mem_mib - cfg.host.reserve_mib)
        if sc is not None:
            host_frames = sc.pages(host_frames)
        self.host_low = max(1, int(host_frames * cfg.host.low_watermark_pct / 100))
        self.host_high = max(
            self.host_low + 1, int(host_frames * cfg.host.high_watermark_pct / 100)
        )
        device_params = block_device.device_params(cfg.disk)
        if sc is not None:
            device_params = sc.device_params(device_params)
        device = block_device.make_device_arrays(**device_params)
        swap_slots = [cfg.pages(v.swap_mib) for v in cfg.vms]
        if sc is not None:
            swap_slots = [sc.pages(s) for s in swap_slots]
        w = self.world = make_world(
            frames=[int(m) for m in self.mem_pages],
            page_kinds=[wl.page_kind for wl in self.workloads],
            swap_slots=swap_slots,
            policies=[policy_id(v.guest_policy) for v in cfg.vms],
            seed=cfg.seed,
            host_frames=host_frames,
            ref_buffer=int(self.ref_buffer.max()),
            device=device,
            host_cache=cfg.host.cache == "writeback",
        )
        for g, vm in enumerate(cfg.vms):
            mem = int(self.mem_pages[g])
            w.gf[g, REF_MS] = self.ref_ms[g]
            w.gf[g, MINOR_MS] = vm.minor_fault_us / 1000.0
            w.gf[g, MAJOR_MS] = vm.major_fault_us / 1000.0
            w.gf[g, HOST_FAULT_MS] = vm.host_fault_us / 1000.0
            w.gf[g, C.CACHE_COPY_MS] = cfg.host.cache_copy_us / 1000.0
            if sc is not None:  # per-event costs: R x fewer events fill the same time
                for col in (MINOR_MS, MAJOR_MS, HOST_FAULT_MS, C.CACHE_COPY_MS):
                    w.gf[g, col] = sc.time(w.gf[g, col])
            w.gi[g, WS_TAU] = max(1, int(vm.ws_tau_s * 1000.0 / self.ref_ms[g]))
            w.gi[g, DEFLATE_ON_OOM] = int(vm.deflate_on_oom)
            w.gi[g, FREE_LOW] = max(1, int(mem * vm.free_low_pct / 100))
            w.gi[g, FREE_HIGH] = max(int(w.gi[g, FREE_LOW]) + 1, int(mem * vm.free_high_pct / 100))
            w.gi[g, DIRTY_LIMIT] = max(1, int(mem * vm.dirty_ratio / 100))
            w.gi[g, DIRTY_BG] = int(mem * vm.dirty_background_ratio / 100)
        w.hi[H_LOW] = self.host_low
        w.hi[H_HIGH] = self.host_high
        w.hi[C.H_DIRTY_RATIO_X100] = int(round(cfg.host.dirty_ratio * 100))
        w.hi[C.H_DIRTY_BG_X100] = int(round(cfg.host.dirty_background_ratio * 100))
        w.hi[H_SWAP_POLICY] = 0 if cfg.host.swap_policy == "random" else 1
        w.hi[H_DISCARD] = int(cfg.host.discard_clean)
        w.hi[H_SWAP_CAP] = cfg.pages(cfg.host.swap_mib)
        iobuf = cfg.host.io_buffer_kib / cfg.page_kib  # frames per request in flight
        if sc is not None:
            w.hi[H_SWAP_CAP] = sc.pages(int(w.hi[H_SWAP_CAP]))
            iobuf = sc.per_event_pages(iobuf)
        w.hi[H_IOBUF_PER_REQ_PPM] = int(round(iobuf * 1_000_000))
        self._boot(seeds[n : 2 * n])
        self.controller = self._make_controller()
        c = self.controller
        interval_s = cfg.hypervisor.interval_s or float(getattr(c, "interval_s", 1.0))
        self.decide_every = max(1, int(round(interval_s / self.tick_s)))
        self.monitor = Monitor(
            w, cfg, self.rng,
            sample_pages=int(getattr(c, "sample_pages", 0) or 0),
            sample_period_s=float(getattr(c, "sample_period_s", 30.0)),
            scan_period_s=getattr(c, "scan_period_s", None),
            scale=sc,
        )  # fmt: skip
        self.target = np.zeros(n, np.int64)
        self.target_kib = np.zeros(n, np.int64)  # sampling: the controller's full-scale targets
        self.tick = 0
        self.deadlocks = 0
        self.deadlocked_vms: set[int] = set()
        self._last_decision_s = 0.0
        self._prev_cnt = w.cnt.copy()
        self._prev_hcnt = w.hcnt.copy()
        self._prev_dev = w.dvi.copy()
        self._psi_host = np.zeros(cfg.ticks, np.float64)
        n_rows = cfg.ticks * (n + 1)
        self._rows = {name: np.zeros(n_rows, np.float64) for name in TICK_COLUMNS}
        self._row = 0
        self._vm_ids = np.arange(len(cfg.vms))

    def _workload(self, g: int, seed: np.random.SeedSequence):
        cfg, vm = self.cfg, self.cfg.vms[g]
        wl = make_workload(
            vm.workload,
            vm.workload_params,
            int(self.full_pages[g]),  # sized for the full guest; sampling restricts it
            cfg.page_kib,
            path=f"vms[{g}].workload_params",
        )
        if self.scale is not None:
            wl = sampling.sample_workload(wl, cfg.seed, g, self.scale.rate)
        wl.reset(np.random.default_rng(seed))
        return wl

    def _boot(self, warm_seeds) -> None:
        """Boot-sized kernel frames, then (warm start) first-touch loading and backing."""
        cfg, w = self.cfg, self.world
        loaded = []
        for g, vm in enumerate(cfg.vms):
            kernel = int(np.ceil(self.mem_pages[g] * vm.boot_overhead_bytes_per_page
                                 / (cfg.page_kib * 1024)))  # fmt: skip
            boot.boot_kernel(w, g, kernel)
            lo = int(w.gi[g, F_LO])
            loaded.append(np.arange(lo, lo + kernel, dtype=np.int64))  # touched at boot
        host_room = int(w.hi[H_TOTAL]) - self.host_high + int(w.hi[H_SWAP_CAP])
        if cfg.warm_start:
            room = np.maximum(0, self.mem_pages - w.gi[:, N_KERNEL] - w.gi[:, FREE_HIGH])
            budget = max(0, host_room - sum(len(x) for x in loaded))
            if room.sum() > budget:  # everything must fit in host memory plus host swap
                room = np.floor(room * budget / room.sum()).astype(np.int64)
            for g in range(len(cfg.vms)):
                order = self._first_touches(g, warm_seeds[g], int(room[g]))
                frames = boot.warm_load(w, g, order, int(room[g]))
                loaded[g] = np.concatenate([loaded[g], frames])
        zeroing = [g for g, vm in enumerate(cfg.vms) if vm.zero_at_boot]
        if zeroing:  # every frame still free was written at boot: the host backs it too
            left = max(0, host_room - sum(len(x) for x in loaded))
            free = {g: boot.free_frames(w, g) for g in zeroing}
            total = sum(len(f) for f in free.values())
            for g, frames in free.items():  # past the host's memory and swap: pro rata
                keep = len(frames) if total <= left else int(len(frames) * left // total)
                loaded[g] = np.concatenate([loaded[g], frames[:keep]])
        # The host backs frames in the order they were first touched, round-robin over
        # guests; what does not fit went to host swap, chosen blindly.
        ends = np.cumsum([len(f) for f in loaded]).astype(np.int64)
        flat = np.concatenate(loaded)
        loaded.clear()  # one copy of the frames at a time: building peaks here
        frames = boot.round_robin(flat, ends)
        del flat
        fit = max(0, int(w.hi[H_TOTAL]) - self.host_high)
        swapped = np.zeros(len(frames), np.bool_)
        if len(frames) > fit:
            swapped[self.rng.choice(len(frames), len(frames) - fit, replace=False)] = True
        boot.warm_host(w, frames, swapped)

    def _first_touches(self, g: int, warm_seed, count: int) -> np.ndarray:
        """The first ``count`` distinct pages of guest g in the order its workload first
        touches them, among its first ``count * WARM_REFS_PER_PAGE`` references. They are
        drawn from a copy of the run's workload (same layout: the same pages are hot) whose
        stream is reseeded with ``warm_seed``, so the warm start neither consumes nor
        foresees the run's own references. Drawn in chunks, which give the same stream: the
        draws of a whole guest's worth at once would take several times the memory of the
        world."""
        if count <= 0:
            return np.zeros(0, np.int32)
        # A copy, not a rebuild: building a sampled workload is O(full guest) (4M pages for
        # 16 GiB). The run's own workload has drawn nothing yet, so the copy is the rebuild.
        wl = copy.deepcopy(self.workloads[g])
        wl.reseed_stream(np.random.default_rng(warm_seed))
        seen = np.zeros(wl.n_pages, np.bool_)
        order = np.empty(min(count, wl.n_pages), np.int32)
        found = 0
        left = count * WARM_REFS_PER_PAGE
        if self.scale is not None:  # as many full references' worth as the full guest draws
            share = sampling.reference_share(wl, self.scale)
            left = int(round(left * share / self.scale.rate))
        while left > 0 and found < len(order):
            pages, _ = wl.generate(min(left, WARM_CHUNK))
            if len(pages) == 0:
                break
            left -= len(pages)
            found = boot.first_touches(pages, seen, order, found)
        return order[:found]

    def _make_controller(self):
        cfg = self.cfg
        setup = Setup(
            names=tuple(v.name for v in cfg.vms),
            maximum_kib=self.full_pages * cfg.page_kib,  # controllers work at full scale
            static_balloon_kib=np.array([cfg.pages(v.balloon_mib) for v in cfg.vms], np.int64)
            * cfg.page_kib,
            page_kib=cfg.page_kib,
            tick_s=self.tick_s,
        )
        return make_controller(cfg.hypervisor.policy, cfg.hypervisor.params, setup)

    # ---- one tick ----------------------------------------------------------------------------
    def step(self) -> None:
        """Advance one tick: references (with faults, reclaim and I/O interleaved), then
        the balloon, pinning, free page reporting, and the tick's metrics."""
        cfg, w = self.cfg, self.world
        t0 = self.tick * cfg.tick_ms
        t_end = t0 + cfg.tick_ms
        self._refill_references()
        faults.run_tick(w, t0, cfg.tick_ms, SLICES_PER_TICK, self.quantum_ms)
        host_was_short = w.hi[H_FREE] < self.host_low
        self.monitor.tick(t_end / 1000.0)
        if self.tick % self.decide_every == 0:
            self._decide(t_end / 1000.0)
        self._move_balloons(t_end, host_was_short)
        self._pin_swap_blocks()
        every = max(1, int(round(REPORT_EVERY_MS / cfg.tick_ms)))
        if (self.tick + 1) % every == 0:
            for g, vm in enumerate(cfg.vms):
                if vm.free_page_reporting and w.gi[g, STALLED] == 0:
                    report_free_pages(w, g)
        self._record(t0, t_end)
        self.tick += 1

    def _refill_references(self) -> None:
        """Top up each guest's reference buffer that holds less than a tick's worth."""
        w = self.world
        gi, ref_page, ref_write = w.gi, w.ref_page, w.ref_write
        pos, length = gi[:, REF_POS], gi[:, REF_LEN]
        until = (self.tick + 1) * self.cfg.tick_ms
        for g in np.flatnonzero(length - pos < self.ref_capacity):
            p, n = int(pos[g]), int(length[g])
            left = n - p
            if left > 0 and p > 0:
                ref_page[g, :left] = ref_page[g, p:n]
                ref_write[g, :left] = ref_write[g, p:n]
            want = int(self.ref_buffer[g]) - left
            pages, writes = self.workloads[g].generate(want, until)
            want = len(pages)  # a trace may have fewer due this tick: the guest idles
            ref_page[g, left : left + want] = pages
            ref_write[g, left : left + want] = writes
            gi[g, REF_POS] = 0
            gi[g, REF_LEN] = left + want

    def _decide(self, t_s: float) -> None:
        """Ask the controller, with nothing but an Observation, and carry out its answer."""
        cfg, w = self.cfg, self.world
        kib = cfg.page_kib
        sc = self.scale
        targets = self.target * kib if sc is None else self.target_kib
        obs = self.monitor.observe(t_s, t_s - self._last_decision_s, targets)
        self._last_decision_s = t_s
        who = cfg.hypervisor.policy
        try:
            answer = self.controller.decide(obs)
        except Exception as exc:
            raise ControllerError(
                f"hypervisor.policy {who!r} raised {type(exc).__name__}: {exc}"
            ) from exc
        decision = check_answer(answer, len(cfg.vms), self.full_pages * kib, who, obs.guests.name)
        if decision.balloon_kib is not None:
            asked = np.asarray(decision.balloon_kib, np.float64)
            if sc is not None:  # full-scale KiB -> the sampled world's
                self.target_kib = np.clip(np.round(asked), 0, self.full_pages * kib)
                self.target_kib = self.target_kib.astype(np.int64)
                asked = sc.kib_to_sampled(asked)
            pages = np.round(asked / kib).astype(np.int64)
            self.target = np.clip(pages, 0, self.mem_pages)
        # ESX's high and soft states: no host swapping above the min watermark.
        hold = decision.host_swap is False
        w.hi[H_LOW] = max(1, self.host_low // 2) if hold else self.host_low
        w.hi[H_HIGH] = max(2, self.host_low // 2 + 1) if hold else self.host_high
        stalled = w.gi[:, STALLED]
        block = decision.block if decision.block is not None else np.zeros(len(cfg.vms), bool)
        stalled[(stalled == STALL_BLOCKED) & ~block] = 0
        stalled[(stalled == 0) & block] = STALL_BLOCKED

    def _move_balloons(self, t: float, host_reclaiming: bool) -> None:
        """Each driver moves toward its target by at most its rate. With the lock model on,
        the moves of this tick race the host's reclaim through the balloon lock protocol;
        guests caught in a deadlock cycle stop for good."""
        w, cfg = self.world, self.cfg
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
            rate = cfg.vms[g].balloon_batches_per_tick * BATCH_PAGES
            if self.scale is not None:  # the batch granularity is lost (sim_core.sampling)
                rate = self.scale.balloon_pages_per_tick(rate)
            delta = int(self.target[g] - w.gi[g, N_BALLOONED])
            if delta > 0:
                balloon_inflate(w, g, min(delta, rate), t)
            elif delta < 0:
                balloon_deflate(w, g, min(-delta, rate))

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
                w.gi[g, STALLED] = STALL_DEADLOCK
                self.deadlocked_vms.add(int(g))

    def _pin_swap_blocks(self) -> None:
        """With ``pin_guest_swap``, a guest faulting faster than the threshold has its
        memory pinned against host reclaim (unpinned again under half of it)."""
        if not self.cfg.host.pin_guest_swap:
            return
        w = self.world
        rate = (w.cnt[:, C.C_FAULTS] - self._prev_cnt[:, C.C_FAULTS]) / self.tick_s
        if self.scale is not None:  # pin_fault_rate is a full-scale rate
            rate = self.scale.count_back(rate)
        threshold = self.cfg.host.pin_fault_rate
        pinned = w.gi[:, PINNED]
        w.gi[:, PINNED] = np.where(rate > threshold, 1, np.where(rate < threshold / 2, 0, pinned))

    # ---- metrics -------------------------------------------------------------------------------
    def _record(self, t0: float, t_end: float) -> None:
        w, cfg = self.world, self.cfg
        mib = cfg.page_kib / 1024.0
        delta = w.cnt - self._prev_cnt
        hdelta = w.hcnt - self._prev_hcnt
        ddelta = w.dvi - self._prev_dev
        self._prev_cnt = w.cnt.copy()
        self._prev_hcnt = w.hcnt.copy()
        self._prev_dev = w.dvi.copy()
        n = len(cfg.vms)
        first, host = self._row, self._row + n
        r = self._rows

        def put(name: str, per_guest: np.ndarray, host_value: float) -> None:
            column = r[name]  # guests' rows, then the host's row
            column[first:host] = per_guest
            column[host] = host_value

        put("tick", self.tick, self.tick)
        put("vm", self._vm_ids, -1)
        put("time_s", (self.tick + 1) * self.tick_s, (self.tick + 1) * self.tick_s)
        for name, col in _COUNTER_COLUMNS.items():
            put(name, delta[:, col], delta[:, col].sum())
        r["throughput"][first : host + 1] = r["references"][first : host + 1] / self.tick_s
        gi = w.gi
        for name, col in _GAUGE_COLUMNS.items():
            put(name, gi[:, col] * mib, gi[:, col].sum() * mib)
        put("balloon_target_mib", self.target * mib, self.target.sum() * mib)
        put("stalled", gi[:, STALLED], (gi[:, STALLED] != 0).sum())
        guest_psi = np.clip(w.gf[:, STALL_MS] / cfg.tick_ms, 0.0, 1.0)
        some, full = host_psi(w, t0, t_end)
        self.monitor.account_psi(w.gf[:, STALL_MS], some, full, cfg.tick_ms)
        put("psi_some", guest_psi, some)
        put("psi_full", guest_psi, full)
        w.gf[:, STALL_MS] = 0.0
        r["host_free_mib"][host] = w.hi[H_FREE] * mib
        r["io_queue"][host] = block_device.dev_queue_length(w)
        r["io_buffers_mib"][host] = w.hi[H_IOBUF] * mib
        r["host_swap_used_mib"][host] = w.hi[H_SWAP_USED] * mib
        r["host_swap_outs"][host] = hdelta[C.HC_SWAP_OUTS]
        r["host_swap_ins"][host] = hdelta[C.HC_SWAP_INS]
        r["host_discards"][host] = hdelta[C.HC_DISCARDS]
        r["disk_reads"][host] = ddelta[block_device.DV_READS]
        r["disk_writes"][host] = ddelta[block_device.DV_WRITES]
        r["host_cache_mib"][host] = w.hi[C.H_CACHE] * mib
        r["host_cache_dirty_mib"][host] = w.hi[C.H_CACHE_DIRTY] * mib
        r["host_swap_outs"][self._row : host] = delta[:, C.C_HOST_SWAP_OUTS]
        r["host_discards"][self._row : host] = delta[:, C.C_HOST_DISCARDS]
        if self.scale is not None:  # the sampled world's counts and sizes, at full scale
            for name in ("references", "throughput"):
                column = r[name]
                column[first:host] = column[first:host] / self.ref_share
                column[host] = column[first:host].sum()
            r["references"][first : host + 1] = np.round(r["references"][first : host + 1])
            for name in _SCALED_TICK_COLUMNS:
                column = r[name]
                column[first : host + 1] = self.scale.count_back(column[first : host + 1])
                if name in _INT_TICK_COLUMNS:
                    column[first : host + 1] = np.round(column[first : host + 1])
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
        for name in _INT_TICK_COLUMNS:
            cols[name] = cols[name].astype(np.int64)
        return cols

    def vm_throughputs(self) -> np.ndarray:
        """Each guest's mean throughput over the run, references per simulated second
        (under sampling: the full-scale estimate)."""
        seconds = max(self.tick, 1) * self.tick_s
        refs = self.world.cnt[:, C.C_REFS]
        return refs / seconds if self.scale is None else refs / self.ref_share / seconds

    def _per_tick(self, name: str) -> np.ndarray:
        """A tick column as (ticks, VMs + 1): the VMs, then the host."""
        return self._rows[name][: self._row].reshape(-1, len(self.cfg.vms) + 1)

    def summary(self, wall_seconds: float) -> dict:
        """The run's one summary row: config columns, outcome, totals (units and meanings:
        sim_core.columns.SUMMARY_COLUMNS)."""
        w, cfg = self.world, self.cfg
        total = w.cnt.sum(axis=0)
        h = w.hcnt
        dvi = w.dvi
        sc = self.scale
        if sc is not None:  # every count at full scale (sim_core.sampling)
            refs_back = int(round(float((w.cnt[:, C.C_REFS] / self.ref_share).sum())))
            total, h, dvi = sc.int_back(total), sc.int_back(h), sc.int_back(dvi)
            total[C.C_REFS] = refs_back
        thr = self.vm_throughputs()
        native = np.array([native_throughput(cfg, g) for g in range(len(cfg.vms))])
        per_tick = self._per_tick("throughput")[:, :-1]
        stalled = w.gi[:, STALLED]
        killed = int(w.hi[H_OOM_KILLED])
        if killed >= 0:
            outcome = "host_oom"
        elif (stalled == STALL_OOM).any():
            outcome = "guest_oom"
        elif (stalled == STALL_DEADLOCK).all():
            outcome = "deadlock"
        else:
            outcome = "ok"
        refs = int(total[C.C_REFS])
        seconds = max(self.tick, 1) * self.tick_s
        guest_pages = int(total[C.C_EVICTIONS] - total[C.C_BALLOON_RECLAIMS])
        guest_writes = int(total[C.C_GUEST_RECLAIM_WRITES])
        guest_reads = int(total[C.C_GUEST_REFAULTS])
        balloon_pages = int(total[C.C_INFLATED])
        balloon_writes = int(total[C.C_BALLOON_WRITES])
        balloon_reads = int(total[C.C_BALLOON_REFAULTS])
        host_pages = int(h[C.HC_SWAP_OUTS] + h[C.HC_DISCARDS] + h[C.HC_SWAPCACHE_DROPS])
        host_writes = int(h[C.HC_SWAP_OUTS])
        host_reads = int(total[C.C_HOST_REFAULTS])
        reclaimed = guest_pages + balloon_pages + host_pages
        reclaim_io = guest_writes + guest_reads + balloon_writes + balloon_reads
        reclaim_io += host_writes + host_reads

        def per(io: int, pages: int) -> float:
            return io / pages if pages else 0.0

        psi = self._per_tick("psi_some")
        psi_full = self._per_tick("psi_full")
        row = dict(cfg.flat())
        row.update(
            outcome=outcome,
            error=None,
            host_oom_vm=cfg.vms[killed].name if killed >= 0 else None,
            references=refs,
            guest_faults=int(total[C.C_FAULTS]),
            guest_major_faults=int(total[C.C_MAJOR]),
            guest_minor_faults=int(total[C.C_MINOR]),
            guest_swap_outs=int(total[C.C_SWAP_OUTS]),
            guest_swap_ins=int(total[C.C_SWAP_INS]),
            swap_cache_drops=int(total[C.C_SWAPCACHE_DROPS]),
            writebacks=int(total[C.C_WRITEBACKS]),
            file_drops=int(total[C.C_FILE_DROPS]),
            file_reads=int(total[C.C_FILE_READS]),
            guest_evictions=int(total[C.C_EVICTIONS]),
            dirty_throttles=int(total[C.C_THROTTLES]),
            direct_reclaim_waits=int(total[C.C_DIRECT_WAITS]),
            esc_evict_00=int(total[C.C_ESC_00]),
            esc_evict_01=int(total[C.C_ESC_01]),
            esc_evict_10=int(total[C.C_ESC_10]),
            esc_evict_11=int(total[C.C_ESC_11]),
            host_swap_outs=int(h[C.HC_SWAP_OUTS]),
            host_swap_ins=int(h[C.HC_SWAP_INS]),
            host_discards=int(h[C.HC_DISCARDS]),
            host_swap_cache_drops=int(h[C.HC_SWAPCACHE_DROPS]),
            host_cache_hits=int(h[C.HC_CACHE_HITS]),
            host_cache_misses=int(h[C.HC_CACHE_MISSES]),
            host_cache_throttles=int(h[C.HC_CACHE_THROTTLES]),
            host_faults=int(total[C.C_HOST_FAULTS]),
            host_direct_waits=int(h[C.HC_DIRECT_WAITS]),
            disk_reads=int(dvi[block_device.DV_READS]),
            disk_writes=int(dvi[block_device.DV_WRITES]),
            guest_reclaimed_pages=guest_pages,
            guest_reclaim_writes=guest_writes,
            guest_refault_reads=guest_reads,
            guest_io_per_reclaimed_page=per(guest_writes + guest_reads, guest_pages),
            balloon_reclaimed_pages=balloon_pages,
            balloon_reclaim_writes=balloon_writes,
            balloon_refault_reads=balloon_reads,
            balloon_io_per_reclaimed_page=per(balloon_writes + balloon_reads, balloon_pages),
            host_reclaimed_pages=host_pages,
            host_reclaim_writes=host_writes,
            host_refault_reads=host_reads,
            host_io_per_reclaimed_page=per(host_writes + host_reads, host_pages),
            reclaimed_pages=reclaimed,
            reclaim_io=reclaim_io,
            io_per_reclaimed_page=per(reclaim_io, reclaimed),
            double_paging=int(total[C.C_DOUBLE_PAGING]),
            nested_faults=int(total[C.C_NESTED]),
            silent_swap_writes=int(total[C.C_SILENT_WRITES]),
            stale_swap_reads=int(total[C.C_STALE_READS]),
            false_swap_reads=int(total[C.C_FALSE_READS]),
            reported_free_mib=float(total[C.C_REPORTED] * cfg.page_kib / 1024.0),
            deadlocks=self.deadlocks,
            deadlocked_vms=len(self.deadlocked_vms),
            guest_oom_vms=int((stalled == STALL_OOM).sum()),
            throughput_mean=float(thr.mean()),
            throughput_p5=float(np.percentile(per_tick, 5)) if per_tick.size else 0.0,
            throughput_steady=float(per_tick[len(per_tick) // 2 :].mean())
            if per_tick.size
            else 0.0,
            native_throughput=float(native.mean()),
            slowdown=float(native.sum() / thr.sum()) if thr.sum() > 0 else math.inf,
            psi_some_avg=float(psi[:, :-1].mean()) if psi.size else 0.0,
            psi_full_avg=float(psi_full[:, :-1].mean()) if psi.size else 0.0,
            host_psi_some_avg=float(psi[:, -1].mean()) if psi.size else 0.0,
            host_psi_full_avg=float(psi_full[:, -1].mean()) if psi.size else 0.0,
            balloon_mib_per_vm_mean=float(self._per_tick("balloon_mib")[:, :-1].mean()),
            host_swap_used_mib_end=float(w.hi[H_SWAP_USED] * cfg.page_kib / 1024.0)
            / (1.0 if sc is None else sc.rate),
            host_swap_peak_mib=float(self._per_tick("host_swap_used_mib")[:, -1].max()),
            host_io_buffers_peak_mib=float(self._per_tick("io_buffers_mib")[:, -1].max()),
            host_cache_peak_mib=float(self._per_tick("host_cache_mib")[:, -1].max()),
            disk_queue_peak=int(self._per_tick("io_queue")[:, -1].max()),
            host_free_min_mib=float(self._per_tick("host_free_mib")[:, -1].min()),
            simulated_seconds=seconds,
            wall_seconds=wall_seconds,
            refs_per_second=refs / wall_seconds if wall_seconds > 0 else 0.0,
        )
        row.update(economics(cfg, per_tick, native))
        return row


def _native_config(cfg: SimConfig, g: int) -> SimConfig:
    """VM g alone on a host with room to spare, no balloon: its pressure-free baseline."""
    data = cfg.to_dict()
    # Named alike, so identical VMs share one baseline (the name labels a VM, nothing more;
    # a sampled guest alone is guest 0, whatever its index, so its sample is the same too).
    data["vms"] = [dict(data["vms"][g], balloon_mib=0, name="native")]
    data["host"] = dict(
        data["host"], mem_mib=None, overcommit=0.5, swap_mib=None, pin_guest_swap=False
    )
    data["hypervisor"] = dict(data["hypervisor"], policy="none", params={}, lock_contention=0.0)
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
