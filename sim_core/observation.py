"""What a hypervisor sees: the one argument every balloon controller gets.

A controller is a program on the host, like oVirt MOM or ESX's memory scheduler, so it
sees what such a program can read and nothing of the simulator's internals:

- per guest, the virtio-balloon statistics as libvirt's ``dommemstat`` reports them
  (``actual``, ``swap_in``, ``swap_out``, ``major_fault``, ``minor_fault``, ``unused``,
  ``available``, ``usable``, ``disk_caches``, and ``rss`` from the host's side), plus the
  guest's memory PSI as a guest agent would read ``/proc/pressure/memory``. These are
  *polled*: QEMU refreshes them every ``hypervisor.stats_period_s`` (its
  ``guest-stats-polling-interval``) and a reader between polls gets the last values;
- per guest, what the hypervisor's own page tables tell it: the active fraction from
  sampling accessed bits (ESX's statistical sampling) and cold-age histograms from
  idle-page scans (Google's kstaled), each only when the controller asks for them;
- per host, ``/proc/meminfo``, ``/proc/vmstat`` and ``/proc/pressure/memory`` read live:
  total and free memory, swap, the device's requests in flight, PSI;
- what the hypervisor itself decided: configured sizes, the balloon targets it set, shares.

Units are libvirt's: memory in KiB, faults as counts, swap traffic in KiB, PSI as
cumulative microseconds (the kernel's ``total=``). Counters are cumulative since boot;
a controller takes differences between observations as MOM's collectors do.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class GuestStats:
    """Per-guest arrays (one entry per guest, in ``vms`` order), as of the last poll."""

    name: tuple[str, ...]
    maximum_kib: np.ndarray  # configured memory (libvirt maxMemory; MOM balloon_max)
    min_guarantee_kib: np.ndarray  # libvirt memtune min_guarantee (MOM balloon_min)
    actual_kib: np.ndarray  # memory the guest has now: maximum - balloon (libvirt actual)
    unused_kib: np.ndarray  # free memory, caches excluded (VIRTIO_BALLOON_S_MEMFREE)
    available_kib: np.ndarray  # total memory the guest sees (VIRTIO_BALLOON_S_MEMTOT)
    usable_kib: np.ndarray  # free plus reclaimable cache (VIRTIO_BALLOON_S_AVAIL)
    disk_caches_kib: np.ndarray  # page cache (VIRTIO_BALLOON_S_CACHES)
    rss_kib: np.ndarray  # guest memory resident in host memory (the QEMU process's RSS)
    swap_in_kib: np.ndarray  # cumulative (VIRTIO_BALLOON_S_SWAP_IN)
    swap_out_kib: np.ndarray  # cumulative (VIRTIO_BALLOON_S_SWAP_OUT)
    major_fault: np.ndarray  # cumulative (VIRTIO_BALLOON_S_MAJFLT)
    minor_fault: np.ndarray  # cumulative (VIRTIO_BALLOON_S_MINFLT)
    psi_some_us: np.ndarray  # cumulative time some task stalled on memory
    psi_full_us: np.ndarray  # cumulative time all tasks stalled on memory
    polled_s: float  # simulated time of the poll these values come from


@dataclass(frozen=True)
class HostStats:
    """The host, read live at the decision."""

    memtotal_kib: int  # MemTotal: all of the host's memory
    total_kib: int  # memory for guests (MemTotal less the hypervisor's reserve)
    unused_kib: int  # MemFree
    free_kib: int  # MemFree + Buffers + Cached (MOM's ``mem_free``)
    low_kib: int  # the host's reclaim watermarks (/proc/zoneinfo low, high)
    high_kib: int
    swap_total_kib: int
    swap_used_kib: int
    swap_in_kib: int  # cumulative (pswpin)
    swap_out_kib: int  # cumulative (pswpout)
    psi_some_us: float  # cumulative
    psi_full_us: float
    io_inflight: int  # requests queued or in service at the device (/sys/block/*/inflight)


@dataclass(frozen=True)
class AccessSample:
    """ESX-style statistical sampling: of ``pages`` random guest frames whose accessed
    bits were cleared at the start of a sampling period, the fraction touched by its end.
    ``active`` is NaN until the first period completes."""

    active: np.ndarray  # per guest, fraction in [0, 1]
    pages: int  # frames sampled per guest and period
    period_s: float
    completed_s: float  # simulated time the last period ended (NaN: none yet)


@dataclass(frozen=True)
class ColdAges:
    """Idle-page scans (kstaled, Lagar-Cavilla et al., ASPLOS 2019): every ``period_s``
    the scanner reads and clears each guest frame's accessed bit; a frame's age is the
    number of scans since it was last found accessed. ``hist[g, k]`` counts guest g's
    host-resident frames of age k scans (the last bin: k or more). ``promotions[g, k]``
    counts, cumulatively, frames found accessed whose age before the access was k: the
    pages that would have been promoted back had every page of age >= k been reclaimed."""

    hist: np.ndarray  # (guests, bins) int64
    promotions: np.ndarray  # (guests, bins) int64, cumulative
    period_s: float
    scans: int  # scans done so far


@dataclass(frozen=True)
class Observation:
    """Everything a controller may know at a decision."""

    time_s: float  # simulated time of the decision
    interval_s: float  # seconds since the previous decision
    page_kib: int
    guests: GuestStats
    host: HostStats
    balloon_kib: np.ndarray  # current balloon sizes (maximum - actual, live)
    target_kib: np.ndarray  # the balloon targets the hypervisor set last
    shares: np.ndarray  # per-guest memory shares (admin configuration)
    sample: AccessSample | None  # None unless the controller asks (``sample_pages``)
    cold_ages: ColdAges | None  # None unless the controller asks (``scan_period_s``)

    @property
    def n_guests(self) -> int:
        return len(self.guests.name)
