"""Simulation configuration: frozen dataclasses, validation that names the field, dotted overrides.

A config starts as a plain nested dict (from TOML, JSON or code), is patched with dotted
overrides (``host.mem_mib=4096``, ``vms.count=4``, ``vms.workload=db``, ``vms.1.mem_mib=512``)
and is then resolved into a :class:`SimConfig`. ``vms`` is a list of per-VM tables; a
``vms.<field>`` override applies to every VM, ``vms.<i>.<field>`` to one, and ``vms.count``
grows the list (copying the last VM) or shrinks it.

Every field is declared with :func:`knob`: its default, its unit, a one-line doc, the
allowed values where they are a list, and for constants that model the real world the
source they come from. ``balloonlab keys`` prints this table; nothing else documents a key.

Units: memory in MiB, time in the unit the name says (``_ms``, ``_us``, ``_s``), rates per
simulated second unless a name says otherwise.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from sim_core.locks import BALLOON_DRIVERS, DEFAULT_BALLOON_DRIVER


class ConfigError(ValueError):
    """A config value is missing, unknown or out of range; the message names the field."""


def knob(
    default: Any = dataclasses.MISSING,
    unit: str = "",
    doc: str = "",
    *,
    choices: tuple[str, ...] | None = None,
    source: str = "",
    factory: Any = dataclasses.MISSING,
) -> Any:
    """A config field with its documentation: unit ("" for none), one-line doc, allowed
    values, and the published source of a real-world constant."""
    meta = {"unit": unit, "doc": doc, "choices": choices, "source": source}
    if factory is not dataclasses.MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


# QEMU's guest disk cache modes: none (O_DIRECT, the oVirt and OpenStack default) and
# writeback (through the host page cache, under the host's dirty limits; sim_core.host_cache).
GUEST_CACHE_MODES = ("none", "writeback")


@dataclass(frozen=True)
class VMConfig:
    """One guest: its memory, swap area, workload, page replacement, costs and balloon."""

    name: str = knob("", "", "VM name (vm<i> when empty)")
    mem_mib: int = knob(256, "MiB", "guest-physical memory, as configured at boot")
    swap_mib: int = knob(256, "MiB", "guest swap area on the virtual disk")
    workload: str = knob("zipf", "", "reference generator (balloonlab keys --workloads)")
    workload_params: dict = knob(
        unit="", doc="parameters of the workload (balloonlab keys vms.workload_params)",
        factory=dict,
    )  # fmt: skip
    guest_policy: str = knob("esc", "", "the guest's page replacement policy")
    ws_tau_s: float = knob(2.0, "s", "`ws` guest policy: working-set window W(t, tau)")
    free_low_pct: float = knob(
        1.0, "% of guest memory", "guest kswapd wakes under this much free memory",
        source="Linux min_free_kbytes/watermark_scale_factor give low ~0.1-1% (mm/page_alloc.c)",
    )  # fmt: skip
    free_high_pct: float = knob(2.0, "% of guest memory", "... and reclaims up to this much free")
    dirty_ratio: float = knob(
        20.0, "% of guest memory", "writers over this share of dirty + writeback pages are "
        "throttled (balance_dirty_pages)", source="Linux vm.dirty_ratio default 20",
    )  # fmt: skip
    dirty_background_ratio: float = knob(
        10.0, "% of guest memory", "the flusher writes dirty page cache back above this share",
        source="Linux vm.dirty_background_ratio default 10",
    )  # fmt: skip
    ref_us: float = knob(
        1.0, "us", "CPU time of one page-granular memory reference: the accesses a program makes "
        "to one page before it moves on",
        source="~10 DRAM accesses of ~100 ns each (Drepper, 'What every programmer should know "
        "about memory', 2007, sec. 2.2)",
    )  # fmt: skip
    minor_fault_us: float = knob(
        1.0, "us", "CPU time of a minor fault (trap, page-table update, zero-fill of 4 KiB)",
        source="lmbench lat_pagefault ~1 us on x86; clear_page 4 KiB ~0.3 us",
    )  # fmt: skip
    major_fault_us: float = knob(
        10.0, "us", "CPU time of a major fault beyond the device wait (trap, block layer, "
        "virtio exit and interrupt, copy)",
        source="virtio-blk I/O exit + interrupt ~5-20 us (Gordon et al., ELI, ASPLOS 2012)",
    )  # fmt: skip
    host_fault_us: float = knob(
        5.0, "us", "CPU time of a host fault beyond the device wait (EPT violation exit, host "
        "page fault, remap)", source="EPT violation exit ~1-2 us plus host fault handling "
        "(Agesen et al., 'Software techniques for avoiding hardware virtualization exits', "
        "USENIX ATC 2012)",
    )  # fmt: skip
    boot_overhead_bytes_per_page: int = knob(
        64, "bytes per 4 KiB page", "guest kernel structures sized at boot from configured "
        "memory (struct page), unusable by the workload",
        source="Linux struct page is 64 bytes (include/linux/mm_types.h); Waldspurger OSDI 2002 "
        "sec. 3.2 names boot-sized structures as the cost of ballooning",
    )  # fmt: skip
    balloon_batches_per_tick: int = knob(
        8, "batches of 256 pages per tick", "virtio-balloon moves pages in 256-page batches "
        "(VIRTIO_BALLOON_ARRAY_PFNS_MAX); this bounds its rate",
        source="drivers/virtio/virtio_balloon.c",
    )  # fmt: skip
    deflate_on_oom: bool = knob(
        True, "", "the balloon gives pages back before the guest runs out "
        "(VIRTIO_BALLOON_F_DEFLATE_ON_OOM)",
    )  # fmt: skip
    zero_at_boot: bool = knob(
        False, "", "the guest writes every frame of its memory at boot, so the host backs "
        "all of it while the guest holds most of it free: idle memory only the guest knows is "
        "free (capped at what host memory plus host swap can hold)",
        source="the Windows zero page thread touches free memory (Waldspurger OSDI 2002 fig. 6, "
        "'ZPT'); Windows zeroes all guest memory at boot (Virtuozzo, US patent 10761872 B1); "
        "Linux zeroes freed pages with init_on_free=1",
    )  # fmt: skip
    free_page_reporting: bool = knob(
        False, "", "report free 2 MiB chunks to the host, which unbacks them "
        "(VIRTIO_BALLOON_F_REPORTING; off by default as in QEMU)",
        source="mm/page_reporting.c: order >= pageblock_order (9), every 2 s",
    )  # fmt: skip
    shares: float = knob(1.0, "", "proportional-share weight of this VM")
    balloon_mib: int = knob(0, "MiB", "target of the `static` controller")
    min_guarantee_mib: int = knob(
        0, "MiB", "memory the hypervisor promises the guest (libvirt memtune min_guarantee; "
        "MOM's balloon_min): controllers see it, `mom` never shrinks the guest below it",
        source="libvirt domain XML <memtune><min_guarantee>; mom/HypervisorInterfaces",
    )  # fmt: skip


@dataclass(frozen=True)
class HostConfig:
    """Physical host memory, its reserve and watermarks, its page cache and blind swapping."""

    mem_mib: int | None = knob(
        None, "MiB", "physical memory (derived from host.overcommit when only that is given)"
    )
    overcommit: float | None = knob(
        None, "", "sum of guest memory / memory available to guests (mem_mib - reserve_mib)"
    )
    reserve_mib: int = knob(64, "MiB", "host kernel and hypervisor, never available to guests")
    low_watermark_pct: float = knob(2.0, "% of host memory", "host swapping starts under this free")
    high_watermark_pct: float = knob(4.0, "% of host memory", "... and stops over this free")
    swap_policy: str = knob(
        "random", "", "blind victim choice: random (ESX) or clock (accessed bits, Linux-like)",
        choices=("random", "clock"),
        source="Waldspurger OSDI 2002 sec. 4: ESX picks host swap victims at random",
    )  # fmt: skip
    swap_mib: int | None = knob(
        None, "MiB", "host swap capacity, a hard limit (default: equal to host memory)",
        source="RHEL virtualization guide: swap sized with RAM for overcommitted hosts",
    )  # fmt: skip
    cache: str = knob(
        "none", "", "how guest disk images use host memory: none (O_DIRECT; only requests in "
        "flight hold host buffers) or writeback (a host page cache of guest file and swap "
        "blocks, reclaimable, written back under the host's dirty limits)",
        choices=GUEST_CACHE_MODES,
        source="QEMU -drive cache=none|writeback (block/file-posix.c); oVirt uses cache=none",
    )  # fmt: skip
    discard_clean: bool = knob(
        False, "", "VSwapper: the host drops pages that mirror unchanged guest disk blocks "
        "(its Swap Mapper tracks guest disk I/O) instead of swapping them",
        source="Amit, Tsafrir, Schuster, VSwapper, ASPLOS 2014",
    )  # fmt: skip
    pin_guest_swap: bool = knob(
        False, "", "pin a thrashing guest's memory against host reclaim (the nested-swapping "
        "mitigation; with cache=none its swap blocks are never in host memory)",
    )  # fmt: skip
    pin_fault_rate: float = knob(50.0, "faults/s", "guest fault rate over which its swap is pinned")
    dirty_ratio: float = knob(
        20.0, "% of dirtyable memory", "host.cache = writeback: guest writes wait over this "
        "much dirty host page cache (free + cache is dirtyable)",
        source="Linux vm.dirty_ratio default 20 (Documentation/admin-guide/sysctl/vm.rst)",
    )  # fmt: skip
    dirty_background_ratio: float = knob(
        10.0, "% of dirtyable memory", "host.cache = writeback: the host flusher writes back "
        "above this", source="Linux vm.dirty_background_ratio default 10 (sysctl/vm.rst)",
    )  # fmt: skip
    cache_copy_us: float = knob(
        2.0, "us", "host.cache = writeback: a guest request served by the host page cache "
        "(QEMU's pread/pwrite of 4 KiB: syscall plus copy)",
        source="4 KiB memcpy at ~10 GB/s ~0.4 us plus a ~1 us syscall (lmbench bw_mem, "
        "lat_syscall)",
    )  # fmt: skip
    io_buffer_kib: int = knob(
        4, "KiB per request", "host memory held for each guest request in flight (bounce buffers, "
        "virtqueue descriptors); 0 cuts the swap-storm feedback",
    )  # fmt: skip


DEVICE_PRESETS: dict[str, dict[str, Any]] = {
    # Datacenter NVMe, e.g. Intel SSD DC P4510: 4 KiB random read 641k IOPS, write 134k IOPS,
    # read latency 77 us, write 18 us (product brief); many hardware queues and tags.
    "nvme": dict(read_latency_us=80.0, write_latency_us=20.0, iops=500_000.0, queue_depth=32),
    # SATA SSD, e.g. Intel SSD DC S4510: 97k read / 35k write IOPS, ~100 us under the SATA
    # stack; NCQ allows 32 commands, a few served at once.
    "sata_ssd": dict(read_latency_us=100.0, write_latency_us=40.0, iops=90_000.0, queue_depth=8),
    # 7200 rpm disk: ~8.5 ms seek + 4.2 ms rotation on random 4 KiB I/O, ~100-150 IOPS,
    # one request at a time.
    "hdd": dict(read_latency_us=8000.0, write_latency_us=8000.0, iops=150.0, queue_depth=1),
    # Cloud block storage, e.g. AWS EBS gp3: 3,000 IOPS baseline, "single-digit millisecond"
    # latency (~1 ms), deep queues.
    "network": dict(read_latency_us=1000.0, write_latency_us=1000.0, iops=3000.0, queue_depth=64),
}


@dataclass(frozen=True)
class DiskConfig:
    """The one block device under guest disk images and host swap, with Linux's mq-deadline
    scheduler. Fields left unset come from ``preset``; each can be overridden."""

    preset: str = knob(
        "nvme", "", "named device: nvme, sata_ssd, hdd, network (cloud block storage)",
        choices=tuple(DEVICE_PRESETS),
    )  # fmt: skip
    read_latency_us: float | None = knob(None, "us", "service time of one 4 KiB read")
    write_latency_us: float | None = knob(None, "us", "service time of one 4 KiB write")
    iops: float | None = knob(None, "requests/s", "the device's cap on dispatched requests")
    queue_depth: int | None = knob(None, "requests", "requests the device serves at once")
    nr_requests: int = knob(
        256, "requests", "the scheduler's request table; a full table blocks the submitter, "
        "and writes may hold at most 3/4 of it (async_depth)",
        source="block/mq-deadline.c dd_depth_updated: async_depth = 3 * nr_requests / 4",
    )  # fmt: skip
    write_expire_ms: float = knob(
        5000.0, "ms", "a write waiting longer is dispatched ahead of reads",
        source="block/mq-deadline.c: write_expire = 5 * HZ",
    )  # fmt: skip
    writes_starved: int = knob(
        2, "read batches", "read batches dispatched while writes wait before a write batch",
        source="block/mq-deadline.c: writes_starved = 2",
    )  # fmt: skip
    fifo_batch: int = knob(
        16, "requests", "requests dispatched in one batch of one direction",
        source="block/mq-deadline.c: fifo_batch = 16",
    )  # fmt: skip


@dataclass(frozen=True)
class HypervisorConfig:
    """The hypervisor: its balloon controller, how often it looks, and the lock protocol.
    A controller's own parameters are ``hypervisor.params.<name>``
    (``balloonlab keys --controllers``)."""

    policy: str = knob(
        "none", "", "balloon controller: a registered name (balloonlab keys --controllers), "
        "'package.module:Class', or an entry point in group balloonlab.controllers",
    )  # fmt: skip
    params: dict = knob(
        unit="", doc="parameters of the controller (balloonlab keys --controllers)", factory=dict
    )
    interval_s: float | None = knob(
        None, "s", "time between controller decisions (default: the controller's own, e.g. "
        "mom 5 s: its monitor interval, tmo 1 s: senpai's tick)",
        source="MOM guest-monitor-interval 5 (doc/mom-balloon.conf); senpai.py ticks 1 s",
    )  # fmt: skip
    stats_period_s: float = knob(
        5.0, "s", "balloon statistics are polled this often and are stale in between "
        "(QEMU guest-stats-polling-interval)",
        source="MOM guest-monitor-interval 5 (doc/mom-balloon.conf)",
    )  # fmt: skip
    lock_order: str = knob(
        "natural", "", "balloon lock protocol: natural, or hostmem_first (global lock order)",
        choices=("natural", "hostmem_first"),
    )  # fmt: skip
    lock_contention: float = knob(
        0.0, "probability per tick", "chance that a host reclaim thread calls back into a guest "
        "that is ballooning at the same time (0 disables the lock model)",
    )  # fmt: skip


@dataclass(frozen=True)
class EconomicsConfig:
    """Prices and SLA. ~$0.005 per GiB-hour is the memory share of a public-cloud
    general-purpose instance; the host's cost per GiB-hour covers hardware, power and
    space. The SLA is judged per window, as cloud SLAs count minutes of downtime: a window
    in which a VM's throughput is under ``sla_threshold`` of its native throughput is a
    violated window, and the violated share of a VM's windows sets its credit by the
    uptime tiers of the EC2 instance-level SLA (10% of the bill under 99.5% uptime, 30%
    under 99%, 100% under 95%)."""

    price_per_gib_hour: float = knob(
        0.005, "$ per guest GiB-hour", "revenue per configured guest GiB-hour",
        source="memory share of public-cloud general-purpose instance prices",
    )  # fmt: skip
    host_cost_per_gib_hour: float = knob(0.003, "$ per host GiB-hour", "cost of a host GiB-hour")
    sla_window_s: float = knob(
        60.0, "s", "length of an SLA window: a window is violated or not as a whole; a run "
        "shorter than a window is one window",
        source="uptime counted in minutes: Amazon Compute SLA ('percentage of minutes ... "
        "Unavailable'), Azure VM SLA ('Maximum Available Minutes')",
    )  # fmt: skip
    sla_threshold: float = knob(
        0.9, "fraction of native throughput", "a window in which a VM's throughput is under "
        "this is a violated window (the VM counts as unavailable in it)",
    )  # fmt: skip
    sla_uptime_pct: float = knob(
        99.5, "% of windows", "a VM with less uptime (windows not violated) earns the first "
        "credit", source="Amazon Compute SLA, instance-level: 99.5% monthly uptime",
    )  # fmt: skip
    sla_credit_fraction: float = knob(
        0.10, "fraction of revenue", "credited back in the first tier",
        source="Amazon Compute SLA, instance-level: 10% under 99.5%",
    )  # fmt: skip
    sla_uptime_pct_2: float = knob(
        99.0, "% of windows", "second tier", source="Amazon Compute SLA: under 99.0%"
    )
    sla_credit_fraction_2: float = knob(
        0.30, "fraction of revenue", "credited back in tier 2", source="Amazon Compute SLA: 30%"
    )
    sla_uptime_pct_3: float = knob(
        95.0, "% of windows", "third tier", source="Amazon Compute SLA: under 95.0%"
    )
    sla_credit_fraction_3: float = knob(
        1.0, "fraction of revenue", "credited back in tier 3", source="Amazon Compute SLA: 100%"
    )


@dataclass(frozen=True)
class ReplayConfig:
    """``mode = "replay"``: VM 0's reference stream through one cache, no host."""

    policy: str = knob("lru", "", "replacement policy of the cache")
    cache_mib: float = knob(64.0, "MiB", "cache size")
    references: int = knob(1_000_000, "references", "references replayed")


@dataclass(frozen=True)
class LocksConfig:
    """``mode = "locks"``: random schedules of the balloon lock protocol (order from
    ``hypervisor.lock_order``; the model and its OOM deadlock: :mod:`sim_core.locks`)."""

    guests: int = knob(1, "threads", "guest threads ballooning at once")
    host_threads: int = knob(1, "threads", "host reclaim threads calling back into guests")
    ops: int = knob(1, "operations per thread", "operations per thread, back to back")
    trials: int = knob(1000, "schedules", "random schedules")
    oom_tasks: int = knob(
        0, "threads", "guest tasks out of memory that hold a fs lock while their allocation "
        "runs the OOM notifier, which deflates the balloon (task i in guest i % guests; "
        "0: no balloon or fs lock, the OOM deadlock cannot arise)",
    )  # fmt: skip
    balloon_driver: str = knob(
        DEFAULT_BALLOON_DRIVER, "", "fill_balloon in a guest with an OOM task: "
        "alloc_under_lock (allocates holding balloon_lock: deadlocks with the OOM notifier) "
        "or alloc_outside_lock (the fix: allocates first, then locks to enqueue)",
        choices=BALLOON_DRIVERS,
        source="Linux c7cdff0e8647 'virtio_balloon: fix deadlock on OOM' (v4.15-rc1, 2017)",
    )  # fmt: skip


@dataclass(frozen=True)
class SamplingConfig:
    """Spatially hashed sampling of guest pages (sim_core.sampling): simulate a fraction
    of every guest's pages, with memory, costs and the device scaled to match."""

    rate: float = knob(
        1.0, "fraction of pages", "share of each guest's pages simulated, chosen by a "
        "seeded spatial hash; memory scales by it, per-event costs by its inverse, and "
        "reported counts are scaled back (1: no sampling, the exact model)",
        source="Waldspurger et al., 'Efficient MRC Construction with SHARDS', FAST 2015",
    )  # fmt: skip


MODES = ("host", "replay", "locks")


@dataclass(frozen=True)
class SimConfig:
    """One run: the full host simulation (``mode = "host"``), a trace replay of one
    workload through one cache (``"replay"``), or the lock protocol alone (``"locks"``)."""

    mode: str = knob("host", "", "what one run simulates", choices=MODES)
    ticks: int = knob(200, "ticks", "length of the run")
    seed: int = knob(0, "", "the seed every random choice derives from")
    tick_ms: float = knob(100.0, "ms", "simulated time per tick")
    page_kib: int = knob(4, "KiB", "page size", choices=("4", "8", "16", "64"))
    warm_start: bool = knob(
        True, "", "start as after a while of running: each guest's pages loaded in its own "
        "first-touch order, the host backing them first touch first and swapping blindly "
        "past its memory",
    )  # fmt: skip
    host: HostConfig = knob(unit="", doc="the host", factory=HostConfig)
    disk: DiskConfig = knob(unit="", doc="the block device", factory=DiskConfig)
    hypervisor: HypervisorConfig = knob(unit="", doc="balloon policy", factory=HypervisorConfig)
    economics: EconomicsConfig = knob(unit="", doc="prices and SLA", factory=EconomicsConfig)
    replay: ReplayConfig = knob(unit="", doc="mode = replay", factory=ReplayConfig)
    locks: LocksConfig = knob(unit="", doc="mode = locks", factory=LocksConfig)
    sampling: SamplingConfig = knob(
        unit="", doc="spatially hashed sampling (mode = host)", factory=SamplingConfig
    )
    vms: tuple[VMConfig, ...] = knob(
        unit="", doc="the guests", factory=lambda: (VMConfig(name="vm0"),)
    )

    # ---- derived quantities -------------------------------------------------------------
    def pages(self, mib: float) -> int:
        """MiB -> pages of ``page_kib``."""
        return int(round(mib * 1024 / self.page_kib))

    @property
    def host_mem_mib(self) -> int:
        assert self.host.mem_mib is not None  # resolved by build_config
        return self.host.mem_mib

    def to_dict(self) -> dict[str, Any]:
        """The fully resolved config as plain data (JSON-able). An unsampled config
        (``sampling.rate = 1``, the default) leaves the section out, so its canonical JSON,
        and the run ids derived from it, are those it had before sampling existed."""
        data = dataclasses.asdict(self) | {"vms": [dataclasses.asdict(v) for v in self.vms]}
        if self.sampling == SamplingConfig():
            del data["sampling"]
        return data

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; the basis of run ids."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def flat(self) -> dict[str, Any]:
        """Config columns with dotted names for the summary row. A per-VM field appears as
        ``vms.<field>`` when every VM agrees; else that column is None and the field has one
        column per VM, ``vms.<i>.<field>`` (the override's name), so a query can select by it."""
        out: dict[str, Any] = {}
        for name in _TOP_SCALARS:
            out[name] = getattr(self, name)
        for section in _SECTIONS:
            for key, value in dataclasses.asdict(getattr(self, section)).items():
                if isinstance(value, dict):  # hypervisor.params: one column per parameter
                    for name, item in sorted(value.items()):
                        out[f"{section}.{key}.{name}"] = item
                    continue
                out[f"{section}.{key}"] = value
        out["vms.count"] = len(self.vms)
        for f in fields(VMConfig):
            if f.name == "name":
                continue
            values = [getattr(v, f.name) for v in self.vms]
            if f.name == "workload_params":
                values = [json.dumps(v, sort_keys=True) for v in values]
            if all(v == values[0] for v in values):
                out[f"vms.{f.name}"] = values[0]
                continue
            out[f"vms.{f.name}"] = None
            for i, value in enumerate(values):
                out[f"vms.{i}.{f.name}"] = value
        return out


_SECTIONS: dict[str, type] = {
    "host": HostConfig,
    "disk": DiskConfig,
    "hypervisor": HypervisorConfig,
    "economics": EconomicsConfig,
    "replay": ReplayConfig,
    "locks": LocksConfig,
    "sampling": SamplingConfig,
}
_TOP_SCALARS = ("mode", "ticks", "seed", "tick_ms", "page_kib", "warm_start")


def _field_types(cls: type) -> dict[str, Any]:
    return {f.name: f for f in fields(cls)}


def _unknown(key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return ConfigError(f"{key}: unknown config key{hint}")


def _coerce(path: str, value: Any, type_name: str) -> Any:
    """Check one scalar against the declared type of its field, converting int -> float."""
    if type_name in ("dict",):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{path}: must be a table, got {value!r}")
        return dict(value)
    if "bool" in type_name:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{path}: must be true or false, got {value!r}")
    if "None" in type_name and value is None:
        return None
    if "int" in type_name and "float" not in type_name:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{path}: must be an integer, got {value!r}")
        try:
            as_float = float(value)
        except ValueError:
            raise ConfigError(f"{path}: must be an integer, got {value!r}") from None
        if not as_float.is_integer():
            raise ConfigError(f"{path}: must be an integer, got {value!r}")
        return int(as_float)
    if "float" in type_name:
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise ConfigError(f"{path}: must be a number, got {value!r}")
        try:
            number = float(value)
        except ValueError:
            raise ConfigError(f"{path}: must be a number, got {value!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{path}: must be finite, got {value!r}")
        return number
    if "str" in type_name:
        if not isinstance(value, str):
            raise ConfigError(f"{path}: must be a string, got {value!r}")
        return value
    return value


def _build_section(cls: type, raw: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{prefix}: must be a table, got {raw!r}")
    known = _field_types(cls)
    kwargs = {}
    for key, value in raw.items():
        if key not in known:
            raise _unknown(f"{prefix}.{key}", list(known))
        f = known[key]
        kwargs[key] = _coerce(f"{prefix}.{key}", value, str(f.type))
    return cls(**kwargs)


def _require(cond: bool, path: str, why: str, value: Any) -> None:
    if not cond:
        raise ConfigError(f"{path}: {why}, got {value!r}")


def _choice(value: Any, path: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise ConfigError(f"{path}: unknown {value!r}, choose one of {', '.join(choices)}")


def _validate(cfg: SimConfig) -> None:
    from sim_core.controllers import check_controller
    from sim_core.policies import GUEST_POLICIES
    from sim_core.workloads import WORKLOADS, check_workload_params

    _require(cfg.mode in MODES, "mode", f"must be one of {', '.join(MODES)}", cfg.mode)
    _require(cfg.ticks >= 1, "ticks", "must be >= 1", cfg.ticks)
    r = cfg.replay
    _require(
        r.policy in GUEST_POLICIES,
        "replay.policy",
        f"must be one of {', '.join(GUEST_POLICIES)}",
        r.policy,
    )
    _require(r.cache_mib > 0, "replay.cache_mib", "must be > 0", r.cache_mib)
    _require(r.references >= 1, "replay.references", "must be >= 1", r.references)
    lk = cfg.locks
    _require(lk.guests >= 1, "locks.guests", "must be >= 1", lk.guests)
    _require(lk.host_threads >= 0, "locks.host_threads", "must be >= 0", lk.host_threads)
    _require(lk.ops >= 1, "locks.ops", "must be >= 1", lk.ops)
    _require(lk.trials >= 1, "locks.trials", "must be >= 1", lk.trials)
    _require(lk.oom_tasks >= 0, "locks.oom_tasks", "must be >= 0", lk.oom_tasks)
    _choice(lk.balloon_driver, "locks.balloon_driver", BALLOON_DRIVERS)
    _require(cfg.tick_ms > 0, "tick_ms", "must be > 0", cfg.tick_ms)
    _require(cfg.page_kib in (4, 8, 16, 64), "page_kib", "must be 4, 8, 16 or 64", cfg.page_kib)
    _require(cfg.seed >= 0, "seed", "must be >= 0", cfg.seed)
    _require(len(cfg.vms) >= 1, "vms.count", "must be >= 1", len(cfg.vms))
    for i, vm in enumerate(cfg.vms):
        p = f"vms[{i}]"
        _require(vm.mem_mib >= 1, f"{p}.mem_mib", "must be >= 1", vm.mem_mib)
        _require(vm.swap_mib >= 0, f"{p}.swap_mib", "must be >= 0", vm.swap_mib)
        _require(
            vm.workload in WORKLOADS,
            f"{p}.workload",
            f"must be one of {', '.join(sorted(WORKLOADS))}",
            vm.workload,
        )
        _require(
            vm.guest_policy in GUEST_POLICIES and vm.guest_policy != "opt",
            f"{p}.guest_policy",
            "must be one of "
            + ", ".join(sorted(n for n in GUEST_POLICIES if n != "opt"))
            + " (opt needs the future: replay only)",
            vm.guest_policy,
        )
        _require(
            0 <= vm.free_low_pct < vm.free_high_pct < 50,
            f"{p}.free_low_pct",
            "needs 0 <= free_low_pct < free_high_pct < 50",
            vm.free_low_pct,
        )
        for name in ("ref_us", "minor_fault_us", "major_fault_us", "host_fault_us"):
            value = getattr(vm, name)
            _require(value >= 0, f"{p}.{name}", "must be >= 0", value)
        _require(vm.ref_us > 0, f"{p}.ref_us", "must be > 0", vm.ref_us)
        _require(
            0 < vm.dirty_ratio <= 100, f"{p}.dirty_ratio", "must be in (0, 100]", vm.dirty_ratio
        )
        _require(
            0 <= vm.dirty_background_ratio < vm.dirty_ratio,
            f"{p}.dirty_background_ratio",
            f"must be in [0, dirty_ratio = {vm.dirty_ratio})",
            vm.dirty_background_ratio,
        )
        _require(
            0 <= vm.boot_overhead_bytes_per_page < cfg.page_kib * 1024,
            f"{p}.boot_overhead_bytes_per_page",
            "must be in [0, page size)",
            vm.boot_overhead_bytes_per_page,
        )
        _require(vm.ws_tau_s > 0, f"{p}.ws_tau_s", "must be > 0", vm.ws_tau_s)
        _require(
            vm.balloon_batches_per_tick >= 1,
            f"{p}.balloon_batches_per_tick",
            "must be >= 1",
            vm.balloon_batches_per_tick,
        )
        _require(vm.shares > 0, f"{p}.shares", "must be > 0", vm.shares)
        _require(
            0 <= vm.min_guarantee_mib <= vm.mem_mib,
            f"{p}.min_guarantee_mib",
            "must be in [0, mem_mib]",
            vm.min_guarantee_mib,
        )
        _require(
            0 <= vm.balloon_mib < vm.mem_mib,
            f"{p}.balloon_mib",
            "must be in [0, mem_mib)",
            vm.balloon_mib,
        )
        check_workload_params(vm.workload, vm.workload_params, f"{p}.workload_params")
    h = cfg.host
    _require(h.mem_mib is not None and h.mem_mib > 0, "host.mem_mib", "must be > 0", h.mem_mib)
    _require(h.reserve_mib >= 0, "host.reserve_mib", "must be >= 0", h.reserve_mib)
    _require(
        h.mem_mib is None or h.reserve_mib < h.mem_mib,
        "host.reserve_mib",
        "must be smaller than host.mem_mib",
        h.reserve_mib,
    )
    _require(
        0 <= h.low_watermark_pct < h.high_watermark_pct < 100,
        "host.low_watermark_pct",
        "needs 0 <= low < high_watermark_pct < 100",
        h.low_watermark_pct,
    )
    _choice(h.swap_policy, "host.swap_policy", ("random", "clock"))
    _require(h.pin_fault_rate >= 0, "host.pin_fault_rate", "must be >= 0", h.pin_fault_rate)
    _require(h.io_buffer_kib >= 0, "host.io_buffer_kib", "must be >= 0", h.io_buffer_kib)
    _require(
        h.swap_mib is not None and h.swap_mib >= 0, "host.swap_mib", "must be >= 0", h.swap_mib
    )
    _choice(h.cache, "host.cache", GUEST_CACHE_MODES)
    _require(0 < h.dirty_ratio <= 100, "host.dirty_ratio", "must be in (0, 100]", h.dirty_ratio)
    _require(
        0 <= h.dirty_background_ratio < h.dirty_ratio,
        "host.dirty_background_ratio", f"must be in [0, dirty_ratio = {h.dirty_ratio})",
        h.dirty_background_ratio,
    )  # fmt: skip
    _require(h.cache_copy_us >= 0, "host.cache_copy_us", "must be >= 0", h.cache_copy_us)
    d = cfg.disk
    _require(d.read_latency_us > 0, "disk.read_latency_us", "must be > 0", d.read_latency_us)
    _require(d.write_latency_us > 0, "disk.write_latency_us", "must be > 0", d.write_latency_us)
    _require(d.iops > 0, "disk.iops", "must be > 0", d.iops)
    _require(d.queue_depth >= 1, "disk.queue_depth", "must be >= 1", d.queue_depth)
    _require(d.nr_requests >= 4, "disk.nr_requests", "must be >= 4", d.nr_requests)
    _require(d.write_expire_ms > 0, "disk.write_expire_ms", "must be > 0", d.write_expire_ms)
    _require(d.writes_starved >= 0, "disk.writes_starved", "must be >= 0", d.writes_starved)
    _require(d.fifo_batch >= 1, "disk.fifo_batch", "must be >= 1", d.fifo_batch)
    hv = cfg.hypervisor
    check_controller(hv.policy, hv.params)
    _require(
        hv.interval_s is None or hv.interval_s >= cfg.tick_ms / 1000.0,
        "hypervisor.interval_s",
        f"must be at least one tick ({cfg.tick_ms / 1000.0:g} s)",
        hv.interval_s,
    )
    _require(hv.stats_period_s > 0, "hypervisor.stats_period_s", "must be > 0", hv.stats_period_s)
    _require(
        hv.lock_order in ("natural", "hostmem_first"),
        "hypervisor.lock_order",
        "must be natural or hostmem_first",
        hv.lock_order,
    )
    _require(
        0 <= hv.lock_contention <= 1,
        "hypervisor.lock_contention",
        "must be in [0, 1]",
        hv.lock_contention,
    )
    _require(0 < cfg.sampling.rate <= 1, "sampling.rate", "must be in (0, 1]", cfg.sampling.rate)
    e = cfg.economics
    _require(
        0 <= e.sla_threshold <= 1, "economics.sla_threshold", "must be in [0, 1]", e.sla_threshold
    )
    _require(e.sla_window_s > 0, "economics.sla_window_s", "must be > 0", e.sla_window_s)
    for suffix in ("", "_2", "_3"):
        credit = getattr(e, f"sla_credit_fraction{suffix}")
        _require(
            0 <= credit <= 1, f"economics.sla_credit_fraction{suffix}", "must be in [0, 1]", credit
        )
        uptime = getattr(e, f"sla_uptime_pct{suffix}")
        _require(
            0 <= uptime <= 100, f"economics.sla_uptime_pct{suffix}", "must be in [0, 100]", uptime
        )
    _require(
        e.sla_uptime_pct >= e.sla_uptime_pct_2 >= e.sla_uptime_pct_3,
        "economics.sla_uptime_pct",
        "tiers must not rise: sla_uptime_pct >= sla_uptime_pct_2 >= sla_uptime_pct_3",
        (e.sla_uptime_pct, e.sla_uptime_pct_2, e.sla_uptime_pct_3),
    )


def set_dotted(raw: dict[str, Any], key: str, value: Any) -> None:
    """Apply one dotted override to a raw config dict, in place."""
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{key}: malformed key")
    if parts[0] == "vms":
        vms = raw.setdefault("vms", [{}])
        if isinstance(vms, Mapping):  # a single [vms] table: one template VM
            vms = raw["vms"] = [dict(vms)]
        if not isinstance(vms, list) or not all(isinstance(v, Mapping) for v in vms):
            raise ConfigError("vms: must be a list of [[vms]] tables")
        if len(parts) == 1:
            raise ConfigError("vms: give a field, as in vms.mem_mib or vms.count")
        if parts[1] == "count":
            count = _coerce("vms.count", value, "int")
            if count < 1:
                raise ConfigError(f"vms.count: must be >= 1, got {value!r}")
            template = vms[-1] if vms else {}
            raw["vms"] = [dict(v) for v in vms[:count]] + [
                copy.deepcopy(dict(template)) for _ in range(count - len(vms))
            ]
            for i, vm in enumerate(raw["vms"]):
                if i >= len(vms) and "name" in vm:
                    vm["name"] = f"vm{i}"
            return
        if parts[1].isdigit():
            index = int(parts[1])
            if index >= len(vms):
                raise ConfigError(f"{key}: there are only {len(vms)} VMs")
            targets, rest = [vms[index]], parts[2:]
        else:
            targets, rest = vms, parts[1:]
        if not rest:
            raise ConfigError(f"{key}: give a VM field")
        for vm in targets:
            _set_path(vm, rest, value, key)
        return
    _set_path(raw, parts, value, key)


def _set_path(node: dict, parts: list[str], value: Any, key: str) -> None:
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: '{part}' is not a table")
        node = child
    node[parts[-1]] = value


def apply_overrides(raw: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Return a copy of ``raw`` with dotted overrides applied (``vms.count`` first)."""
    out = copy.deepcopy(dict(raw))
    if isinstance(out.get("vms"), list):
        out["vms"] = [dict(v) for v in out["vms"]]
    ordered = sorted(overrides.items(), key=lambda kv: kv[0] != "vms.count")
    for key, value in ordered:
        set_dotted(out, key, value)
    return out


def build_config(raw: Mapping[str, Any] | None = None, **overrides: Any) -> SimConfig:
    """Resolve a raw nested dict (plus dotted overrides, ``__`` for ``.``) into a SimConfig."""
    dotted = {k.replace("__", "."): v for k, v in overrides.items()}
    data = apply_overrides(raw or {}, dotted)
    return from_dict(data)


def from_dict(data: Mapping[str, Any]) -> SimConfig:
    """Build and validate a SimConfig from a nested dict; errors name the field."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"config: must be a table, got {data!r}")
    known = list(_TOP_SCALARS) + list(_SECTIONS) + ["vms"]
    top = _field_types(SimConfig)
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key in _TOP_SCALARS:
            kwargs[key] = _coerce(key, value, str(top[key].type))
        elif key in _SECTIONS:
            kwargs[key] = _build_section(_SECTIONS[key], value, key)
        elif key == "vms":
            vms_raw = [value] if isinstance(value, Mapping) else value
            if not isinstance(vms_raw, list) or not vms_raw:
                raise ConfigError("vms: must be a non-empty list of [[vms]] tables")
            vms = []
            for i, vm_raw in enumerate(vms_raw):
                vm = _build_section(VMConfig, vm_raw, f"vms[{i}]")
                if not vm.name:
                    vm = dataclasses.replace(vm, name=f"vm{i}")
                vms.append(vm)
            kwargs["vms"] = tuple(vms)
        else:
            raise _unknown(key, known)
    cfg = SimConfig(**kwargs)
    cfg = _resolve_host_memory(cfg)
    cfg = _resolve_disk(cfg)
    _validate(cfg)
    return cfg


def _resolve_host_memory(cfg: SimConfig) -> SimConfig:
    """Derive the pair (host.mem_mib, host.overcommit). When overcommit is given it wins:
    host.mem_mib = ceil(sum of guest memory / overcommit) + reserve. With only mem_mib,
    overcommit = sum of guest memory / (mem_mib - reserve). With neither, overcommit 1.0."""
    h = cfg.host
    guest_total = sum(v.mem_mib for v in cfg.vms)
    if h.overcommit is not None or h.mem_mib is None:
        ratio = 1.0 if h.overcommit is None else h.overcommit
        _require(ratio > 0, "host.overcommit", "must be > 0", ratio)
        mem = int(math.ceil(guest_total / ratio)) + h.reserve_mib
        if h.mem_mib is not None and abs(h.mem_mib - mem) <= 1:
            mem = h.mem_mib  # a resolved config read back: the pair already agrees
        swap = mem if h.swap_mib is None else h.swap_mib
        host = dataclasses.replace(h, mem_mib=mem, overcommit=ratio, swap_mib=swap)
        return dataclasses.replace(cfg, host=host)
    available = h.mem_mib - h.reserve_mib
    ratio = guest_total / available if available > 0 else math.inf
    swap = h.mem_mib if h.swap_mib is None else h.swap_mib
    host = dataclasses.replace(h, overcommit=round(ratio, 6), swap_mib=swap)
    return dataclasses.replace(cfg, host=host)


def _resolve_disk(cfg: SimConfig) -> SimConfig:
    """Fill the device fields left unset from ``disk.preset``; fields set by hand win."""
    d = cfg.disk
    _choice(d.preset, "disk.preset", tuple(DEVICE_PRESETS))
    preset = DEVICE_PRESETS[d.preset]
    filled = {k: v for k, v in preset.items() if getattr(d, k) is None}
    return dataclasses.replace(cfg, disk=dataclasses.replace(d, **filled)) if filled else cfg
