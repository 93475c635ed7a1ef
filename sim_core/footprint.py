"""How much memory one run needs, from its config alone (nothing is allocated).

``estimate_run_bytes(config)`` is an upper bound on the arrays a run allocates: the world
of ``sim_core.state.make_world`` (frames, pages, swap slots, host units, per-guest tables,
reference buffers, the I/O ring), the workloads' per-page tables, the per-tick rows the
simulation records, and the pressure-free baseline run of one VM that the summary runs
beside it. The harness refuses a run whose estimate exceeds its memory budget before any
work starts (harness.limits). ``footprint_breakdown`` gives the same total by part, so a
refusal can name the config fields that drive it.

The byte counts below MIRROR ``sim_core.state.make_world`` (and the workloads and the tick
recorder): whoever changes that layout updates this table; tests/test_limits.py builds a
real world and fails when the estimate stops being an upper bound within a factor of ~2.
It counts the arrays a run holds; building briefly takes more (the warm start's host
order, a workload's alias-table work lists), which ``balloonlab bench`` measures.

Bytes per simulated page: the state that grows with simulated memory - guest frames,
guest pages, guest swap slots, host units (one per guest frame), the host page cache's
per-block state, the workloads' arrays and the monitor's per-frame scan state - divided
by the guest pages (the VMs' ``mem_mib`` in pages). The rest (per-guest and host tables,
reference buffers, PSI intervals, the device's rings, tick rows) has a fixed size whatever
the memory and is reported apart. ``state_bytes`` measures it on a built simulation,
``estimated_bytes_per_page`` from a config (tests/test_compact_state.py holds it to 40).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

# ---- bytes per element: mirrors sim_core.state.make_world -------------------------------
BYTES = {
    # per guest frame: fr (int32, its page), fb (10 x int8), stk (int32: the free and the
    # balloon stack share it)
    "frame": 4 + 10 * 1 + 4,
    # per frame, only in a world with an LRU or FIFO guest: lk (2 x int32 list links)
    "frame_links": 2 * 4,
    # per frame, only in a world with a WS guest: fl (int64 last use)
    "frame_last_use": 8,
    # per frame, only under a controller that scans accessed bits (kstaled): the monitor's
    # ages (int32) and owning guests (at most int16)
    "frame_scan": 4 + 2,
    # the ESC bitset: one uint64 per 64 frames (plus one)
    "esc_word": 8,
    # per guest page: pg (2 x int32), pb (3 x int8)
    "page": 2 * 4 + 3 * 1,
    # per guest swap slot: sb (1 x int8)
    "slot": 1,
    # per host unit (a guest frame in the host's list): hu (2 x int32); slots have none
    "unit": 2 * 4,
    # per guest: gi (39 x int64), gf (8 x float64), cnt (34 x int64), grng (uint64), and
    # psi_iv (PSI_CAP = 2048 intervals x 2 float64)
    "guest": 39 * 8 + 8 * 8 + 34 * 8 + 8 + 2048 * 2 * 8,
    # host tables hi, hcnt, hrng
    "host": 27 * 8 + 12 * 8 + 8,
    # host.cache = writeback, per guest disk block (file page or swap slot): hcb (2 x int8),
    # hcl (2 x int32); and its copy queue (CACHE_QUEUE = 4096 x (float64 + int64))
    "block": 2 + 2 * 4,
    "copy_queue": 4096 * 16,
    # per reference buffered per guest: ref_page (int32), ref_write (uint8); a guest
    # buffers a tick's worth and a batch more, at least REFILL_REFS
    "ref": 4 + 1,
    # the block device (sim_core.block_device): rings of async_depth (192 by default) and
    # read_slots (4096) entries, 8 bytes each, and its channel table
    "io_ring": (6 * 384 + 4096 + 64) * 8 + 64 * 8,
    # per workload page: page_kind (int8) and the packed alias table (uint64); the
    # probabilities and the permutation are recomputed when asked for, not kept
    "workload_page": 1 + 8,
    # per tick row and column: the recorder's float64 arrays (sim_core.simulation)
    "tick_cell": 8,
    # per replayed reference: pages (int32), writes (uint8), the draws behind them
    # (float64 each), the dense copy (int32) and OPT's next-use array (int64)
    "replay_ref": 4 + 1 + 8 + 8 + 4 + 8,
    # per replay frame: the loop's copies (4 x int8 columns, int32 page, 2 x int32 links)
    # and OPT's next use (int64)
    "replay_frame": 4 + 4 + 2 * 4 + 8,
    # per replayed page: Che's probabilities and the permutation behind them (float64 x 2,
    # int32), and the loop's copies of the page's frame and kind (int32, int8)
    "replay_page": 2 * 8 + 4 + 4 + 1,
}
REFILL_REFS = 8192  # = sim_core.simulation.REFILL_REFS (this module imports nothing of the sim)
LOCKS_BYTES = 1 << 20  # a lock-protocol instance and its schedules: small and fixed

# ---- absolute ceilings, whatever the budget ------------------------------------------------
MAX_VMS = 4096  # a config with more VMs is refused before it is even built
MAX_INDEX = 2**31 - 1  # frames, pages, swap slots and host units are int32 ids


def _pages(config: Any, mib: float) -> int:
    return int(round(mib * 1024 / config.page_kib))


def refs_per_tick(config: Any, vm: Any) -> int:
    """References a VM issues per tick when every one hits: the size of its reference
    buffer (``refs_per_tick``, or ``tick_ms`` over ``ref_us`` where the config gives the
    time of one reference instead). An idle workload issues fewer: an upper bound."""
    if hasattr(vm, "refs_per_tick"):
        return int(vm.refs_per_tick)
    return int(math.ceil(config.tick_ms * 1000.0 / max(float(vm.ref_us), 1e-9)))


def _recorder() -> tuple[int, int]:
    """(tick columns, ticks of the native baseline run), from the simulation itself."""
    from sim_core import simulation

    return len(simulation.TICK_COLUMNS), int(simulation.NATIVE_TICKS)


def workload_pages(config: Any, vm: Any) -> int:
    """Pages of one VM's workload footprint, from its parameters (as the workload would
    size itself: an explicit MiB size, else its fraction of the VM's memory)."""
    from sim_core.workloads import WORKLOADS

    mem_pages = max(1, _pages(config, vm.mem_mib))
    cls = WORKLOADS.get(vm.workload)
    if cls is None:
        return mem_pages
    params = dict(vm.workload_params or {})
    sizes: dict[str, int] = {}
    for f in dataclasses.fields(cls.Params):
        if not f.name.endswith("_mib"):
            continue
        value = params.get(f.name, f.default)
        if value is None:
            frac = f.metadata.get("mem_fraction") or 1.0
            sizes[f.name] = max(1, round(frac * mem_pages))
        else:
            sizes[f.name] = max(0, round(float(value) * 1024 / config.page_kib))
    if not sizes:
        return mem_pages
    # A workload with a footprint sizes itself by it (its other sizes lie inside it);
    # otherwise its footprint is the sum of its parts (hot + cold, cache + cold + heap).
    return sizes["footprint_mib"] if "footprint_mib" in sizes else sum(sizes.values())


def _scans(config: Any) -> bool:
    """The controller scans accessed bits (kstaled). A plug-in is not imported to find out:
    it is assumed to scan, an upper bound."""
    from sim_core.controllers import CONTROLLERS

    cls = CONTROLLERS.get(getattr(getattr(config, "hypervisor", None), "policy", None))
    return cls is None or getattr(cls, "scan_period_s", None) is not None


def _frame_bytes(policies: set[str], scans: bool) -> int:
    """Bytes per guest frame of a world whose guests use ``policies``."""
    per = BYTES["frame"]
    per += BYTES["frame_links"] if policies & {"lru", "fifo"} else 0
    per += BYTES["frame_last_use"] if "ws" in policies else 0
    return per + (BYTES["frame_scan"] if scans else 0)


def _sampling_rate(config: Any) -> float:
    return float(getattr(getattr(config, "sampling", None), "rate", 1.0))


def _sampled(full: int, rate: float) -> int:
    """Pages of ``full`` left by sampling at ``rate`` (sim_core.sampling): the size
    scaled, or for a hashed sample its mean plus four binomial deviations (an upper bound)."""
    if rate >= 1.0 or full <= 0:
        return full
    mean = full * rate
    return min(full, int(math.ceil(mean + 4.0 * math.sqrt(mean))) + 1)


# Workloads built over their sampled pages alone (sim_core.sampling); the others are
# filtered and keep their full per-page tables.
_SAMPLED_DIRECTLY = ("zipf", "hotcold", "db", "idle")


def _world_bytes(config: Any, vms: Any, ticks: int, scans: bool = True) -> dict[str, int]:
    rate = _sampling_rate(config)
    frames = sum(_sampled(_pages(config, v.mem_mib), rate) for v in vms)
    pages = sum(_sampled(workload_pages(config, v), rate) for v in vms)
    slots = sum(_sampled(_pages(config, v.swap_mib), rate) for v in vms)
    refs = max(_sampled(refs_per_tick(config, v), rate) for v in vms) + 2  # a tick's worth + 2
    workload = sum(
        _sampled(workload_pages(config, v), rate) * (BYTES["workload_page"] + 8)
        if rate < 1.0 and v.workload in _SAMPLED_DIRECTLY
        else workload_pages(config, v) * BYTES["workload_page"]
        for v in vms
    )  # a sampled one also keeps its probabilities (float64 a page)
    n = len(vms)
    per_frame = _frame_bytes({v.guest_policy for v in vms}, scans)
    return {
        "frames": frames * per_frame + (frames // 64 + 1) * BYTES["esc_word"],
        "pages": pages * BYTES["page"],
        "swap": slots * BYTES["slot"],
        "units": frames * BYTES["unit"],
        "guests": n * BYTES["guest"] + BYTES["host"] + BYTES["io_ring"],
        "refs": n * (2 * refs + REFILL_REFS) * BYTES["ref"],
        "workload": workload,
        "ticks": ticks * (n + 1) * _recorder()[0] * BYTES["tick_cell"],
        "host_cache": (pages + slots) * BYTES["block"] + BYTES["copy_queue"]
        if getattr(getattr(config, "host", None), "cache", "none") == "writeback"
        else 0,
    }


def footprint_breakdown(config: Any) -> dict[str, int]:
    """The estimate of ``estimate_run_bytes`` by part (bytes): frames, pages, swap, units,
    guests, refs, workload, ticks, native (the baseline run), or replay / locks."""
    mode = getattr(config, "mode", "host")
    vms = tuple(config.vms)
    if mode == "locks":
        return {"locks": LOCKS_BYTES}
    if mode == "replay":
        vm = vms[0]
        pages = workload_pages(config, vm)
        cache = max(1, _pages(config, config.replay.cache_mib))
        per_frame = _frame_bytes({config.replay.policy}, False) + BYTES["unit"]
        per_frame += BYTES["replay_frame"]
        return {
            "replay": config.replay.references * BYTES["replay_ref"],
            "workload": pages * (BYTES["workload_page"] + BYTES["page"] + BYTES["replay_page"]),
            "frames": cache * per_frame,
        }
    parts = _world_bytes(config, vms, config.ticks, _scans(config))
    # The summary runs each distinct VM alone for its native throughput (no controller),
    # while the main world is still alive: the largest of those runs counts on top.
    native_ticks = min(config.ticks, _recorder()[1])
    native = max(sum(_world_bytes(config, (v,), native_ticks, False).values()) for v in vms)
    return parts | {"native": native}


PER_PAGE_PARTS = ("frames", "pages", "swap", "units", "workload", "host_cache")


def estimated_bytes_per_page(config: Any) -> float:
    """The estimate's per-page state (``PER_PAGE_PARTS`` of the main world) over the guest
    pages: what ``state_bytes`` measures, from the config alone."""
    parts = _world_bytes(config, tuple(config.vms), config.ticks, _scans(config))
    return sum(parts[p] for p in PER_PAGE_PARTS) / guest_pages(config)


def guest_pages(config: Any) -> int:
    """The simulated pages: every VM's ``mem_mib`` in pages."""
    return max(1, sum(_pages(config, v.mem_mib) for v in config.vms))


# World fields that grow with memory, by part; every other field of the world has a fixed
# size (tests/test_compact_state.py checks that).
WORLD_PARTS = {
    "fr": "frames", "fb": "frames", "fl": "frames", "lk": "frames", "esc00": "frames",
    "stk": "frames", "pg": "pages", "pb": "pages", "sb": "swap",
    "hu": "units", "hcb": "host_cache", "hcl": "host_cache",
}  # fmt: skip


def state_bytes(sim: Any) -> dict[str, int]:
    """Bytes a built ``Simulation`` holds, measured (``nbytes`` of its arrays), by part:
    the world's per-page parts, ``workload`` (every array of its workloads, an array they
    share counted once), ``monitor`` (the monitor's arrays with one entry a frame) and
    ``fixed`` (the rest of the world and of the monitor)."""
    from sim_core.state import WORLD_FIELDS

    out = dict.fromkeys((*PER_PAGE_PARTS, "monitor", "fixed"), 0)
    for name in WORLD_FIELDS:
        out[WORLD_PARTS.get(name, "fixed")] += getattr(sim.world, name).nbytes
    frames = int(sim.world.fr.shape[0])
    seen: set[int] = set()
    for part, objs in (("workload", sim.workloads), ("monitor", [sim.monitor])):
        for obj in objs:
            for v in vars(obj).values():
                if isinstance(v, np.ndarray) and id(v) not in seen:
                    seen.add(id(v))
                    per_frame = part == "workload" or (v.ndim and v.shape[0] == frames)
                    out[part if per_frame else "fixed"] += v.nbytes
    return out


def bytes_per_page(sim: Any) -> float:
    """Measured bytes per simulated page of a built ``Simulation``: every part of
    ``state_bytes`` but ``fixed``, over its guest pages."""
    parts = state_bytes(sim)
    return sum(v for k, v in parts.items() if k != "fixed") / guest_pages(sim.cfg)


def estimate_run_bytes(config: Any) -> int:
    """Upper bound on the bytes of the arrays one run of ``config`` allocates (a pure
    function of the config: nothing is allocated)."""
    return int(sum(footprint_breakdown(config).values()))


def index_counts(config: Any) -> dict[str, int]:
    """How many frames, pages, swap slots and host units the world would index."""
    vms = tuple(config.vms)
    frames = sum(_pages(config, v.mem_mib) for v in vms)
    slots = sum(_pages(config, v.swap_mib) for v in vms)
    return {
        "frames": frames,
        "pages": sum(workload_pages(config, v) for v in vms),
        "swap slots": slots,
        "host units": frames + slots,
    }


def human_bytes(n: float) -> str:
    """``6227020800`` -> ``5.8 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(n) < 1024 or unit == "PiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} PiB"  # pragma: no cover - the loop always returns
