"""The column catalogue: every summary and per-tick column a run writes, with unit and meaning.

One place names what a column means; ``balloonlab columns`` prints it, and a test checks
that every column the simulation writes is here. Config columns (dotted names such as
``host.mem_mib``) are documented by the config's own fields (``balloonlab keys``).
Conventions: ``*_per_vm_*`` is a mean over VMs, a bare name is a host total; money is in
$ per host-hour; counts are totals over the run unless the name says ``_per_s``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    """One output column: its unit ("" for a label or a pure number) and one-line meaning."""

    name: str
    unit: str
    doc: str


def _table(*rows: tuple[str, str, str]) -> dict[str, Column]:
    return {name: Column(name, unit, doc) for name, unit, doc in rows}


SUMMARY_COLUMNS: dict[str, Column] = _table(
    ("run_id", "", "hash of the resolved config and replicate (added by the store)"),
    ("sweep", "", "the sweep the run belongs to (added by the store)"),
    ("replicate", "", "replicate index within the sweep point (added by the store)"),
    ("outcome", "", "ok | guest_oom | host_oom | deadlock | failed"),
    ("error", "", "the exception of a failed run, else empty"),
    ("host_oom_vm", "", "the VM the host's OOM killer killed (outcome host_oom), else empty"),
    ("references", "references", "page references completed by all guests"),
    ("guest_faults", "faults", "guest page faults, minor and major"),
    ("guest_major_faults", "faults", "guest faults that waited for the device"),
    ("guest_minor_faults", "faults", "zero-fill, swap-cache and under-writeback faults"),
    ("guest_swap_outs", "pages", "pages guests wrote to their swap"),
    ("guest_swap_ins", "pages", "pages guests read back from their swap"),
    ("swap_cache_drops", "pages", "anonymous pages evicted with no write (swap copy current)"),
    ("writebacks", "pages", "dirty file pages guests wrote back (flusher and reclaim)"),
    ("file_drops", "pages", "clean file pages guests dropped (no I/O)"),
    ("file_reads", "pages", "file pages guests read from their disks"),
    ("guest_evictions", "pages", "pages reclaim took from guests (guest and balloon)"),
    ("dirty_throttles", "events", "times a writer slept over the dirty limit"),
    ("direct_reclaim_waits", "events", "times a fault waited for guest writeback"),
    ("esc_evict_00", "pages", "ESC evictions of class (R, M) = (0, 0)"),
    ("esc_evict_01", "pages", "ESC evictions of class (0, 1)"),
    ("esc_evict_10", "pages", "ESC evictions of class (1, 0)"),
    ("esc_evict_11", "pages", "ESC evictions of class (1, 1)"),
    ("host_swap_outs", "pages", "guest frames the host wrote to host swap"),
    ("host_swap_ins", "pages", "host reads of frames it took away (host faults, double paging)"),
    ("host_discards", "pages", "clean mirrored pages the host dropped instead (VSwapper)"),
    ("host_swap_cache_drops", "pages", "host evictions with no write (host swap copy current)"),
    ("host_cache_hits", "requests", "guest reads served by the host page cache (cache=writeback)"),
    ("host_cache_misses", "requests", "guest reads the host page cache did not hold"),
    ("host_cache_throttles", "events", "guest writes held back by the host's dirty limit"),
    ("host_faults", "faults", "guest touches of a frame the host had taken away"),
    ("host_direct_waits", "events", "guest faults that waited for a host swap write"),
    ("disk_reads", "requests", "reads served by the device, every cause"),
    ("disk_writes", "requests", "writes served by the device, every cause"),
    ("guest_reclaimed_pages", "pages", "pages guest reclaim (kswapd, direct) evicted"),
    ("guest_reclaim_writes", "requests", "writes guest reclaim issued"),
    ("guest_refault_reads", "requests", "reads of pages guest reclaim had evicted"),
    ("guest_io_per_reclaimed_page", "requests per page", "guest reclaim writes + refaults"),
    ("balloon_reclaimed_pages", "pages", "frames balloons handed to the host"),
    ("balloon_reclaim_writes", "requests", "writes of evictions balloon inflation forced"),
    ("balloon_refault_reads", "requests", "reads of pages balloon-forced reclaim evicted"),
    ("balloon_io_per_reclaimed_page", "requests per page", "balloon writes + refaults"),
    ("host_reclaimed_pages", "pages", "frames host reclaim took (swap-outs, discards, drops)"),
    ("host_reclaim_writes", "requests", "host swap writes"),
    ("host_refault_reads", "requests", "reads host reclaim caused (host faults, double paging)"),
    ("host_io_per_reclaimed_page", "requests per page", "host reclaim writes + refaults"),
    ("reclaimed_pages", "pages", "pages reclaimed by guests, balloons and the host"),
    ("reclaim_io", "requests", "reclaim writes plus refault reads, every reclaimer"),
    ("io_per_reclaimed_page", "requests per page", "reclaim_io / reclaimed_pages"),
    ("double_paging", "pages", "guest write-outs of frames the host had swapped: read first"),
    ("nested_faults", "pages", "guest evictions of frames the host had taken away"),
    ("silent_swap_writes", "pages", "host swap-outs of clean page-cache pages (VSwapper)"),
    ("stale_swap_reads", "pages", "host swap-ins of frames the guest then refills (VSwapper)"),
    ("false_swap_reads", "pages", "host swap-ins of frames the guest zero-fills (VSwapper)"),
    ("reported_free_mib", "MiB", "guest memory unbacked by free page reporting"),
    ("deadlocks", "events", "lock-protocol deadlocks"),
    ("deadlocked_vms", "VMs", "guests stopped by a deadlock"),
    ("guest_oom_vms", "VMs", "guests that ran out of memory"),
    ("throughput_mean", "references/s per VM", "mean over VMs of their throughput"),
    ("throughput_p5", "references/s per VM", "5th percentile of per-tick VM throughput"),
    ("throughput_steady", "references/s per VM", "mean VM throughput over the second half"),
    ("native_throughput", "references/s per VM", "mean VM throughput without memory pressure"),
    ("slowdown", "", "native throughput / throughput, summed over VMs"),
    ("psi_some_avg", "fraction of time", "guest memory PSI some, mean over ticks and VMs"),
    ("psi_full_avg", "fraction of time", "guest memory PSI full, mean over ticks and VMs"),
    ("host_psi_some_avg", "fraction of time", "host memory PSI some (vCPUs), mean over ticks"),
    ("host_psi_full_avg", "fraction of time", "host memory PSI full (vCPUs), mean over ticks"),
    ("balloon_mib_per_vm_mean", "MiB per VM", "balloon size, mean over ticks and VMs"),
    ("host_swap_used_mib_end", "MiB", "host swap in use at the end"),
    ("host_swap_peak_mib", "MiB", "most host swap in use at a tick's end"),
    ("host_io_buffers_peak_mib", "MiB", "most host memory held for I/O in flight"),
    ("host_cache_peak_mib", "MiB", "most host memory in the page cache of guest blocks"),
    ("disk_queue_peak", "requests", "most device requests in the table at a tick's end"),
    ("host_free_min_mib", "MiB", "least host free memory at a tick's end"),
    ("simulated_seconds", "s", "simulated time of the run"),
    ("sla_windows", "windows per VM", "SLA windows of economics.sla_window_s in the run"),
    ("sla_violated_windows", "VM-windows", "windows in which a VM was under the SLA threshold"),
    ("sla_violated_fraction", "fraction of VM time", "share of the run in violated windows"),
    ("sla_violations", "VMs", "VMs whose uptime earns an SLA credit (under the first tier)"),
    ("revenue_per_host_hour", "$ per host-hour", "revenue"),
    ("sla_credits_per_host_hour", "$ per host-hour", "credits paid back under the SLA"),
    ("host_cost_per_host_hour", "$ per host-hour", "cost of the host"),
    ("profit_per_host_hour", "$ per host-hour", "revenue - credits - host cost"),
    ("wall_seconds", "s", "simulator wall time"),
    ("refs_per_second", "references per wall second", "simulator speed"),
    # mode = replay
    ("replay_faults", "faults", "replay: misses"),
    ("replay_hits", "references", "replay: hits"),
    ("replay_writebacks", "pages", "replay: dirty evictions"),
    ("hit_ratio", "", "replay: hits / references"),
    ("che_hit_ratio", "", "replay: Che's approximation of the LRU hit ratio"),
    ("footprint_pages", "pages", "replay: pages of the workload"),
    ("cache_pages", "pages", "replay: cache size"),
    ("compile_seconds", "s", "replay: numba compile time in this process"),
    # mode = locks
    ("lock_trials", "schedules", "locks: random schedules run"),
    ("lock_deadlocked", "schedules", "locks: schedules that deadlocked"),
    ("deadlock_probability", "", "locks: deadlocked / trials"),
    ("concurrent_ops", "operations", "locks: (guests + host_threads + oom_tasks) x ops"),
    ("lock_deadlocked_hostmem", "schedules", "locks: deadlocks with hostmem in the cycle"),
    ("lock_deadlocked_oom", "schedules", "locks: deadlocks with balloon(g) in the cycle"),
)

TICK_COLUMNS: dict[str, Column] = _table(
    ("tick", "ticks", "tick index"),
    ("vm", "", "guest index; -1 is the host's row"),
    ("time_s", "s", "simulated time at the end of the tick"),
    ("references", "references", "references completed in the tick"),
    ("throughput", "references/s", "references per simulated second (host row: all guests)"),
    ("faults", "faults", "guest faults"),
    ("major_faults", "faults", "guest faults that waited for the device"),
    ("minor_faults", "faults", "guest minor faults"),
    ("host_faults", "faults", "touches of frames the host had taken away"),
    ("swap_outs", "pages", "guest swap-outs"),
    ("swap_ins", "pages", "guest swap-ins"),
    ("writebacks", "pages", "dirty file pages written back"),
    ("file_drops", "pages", "clean file pages dropped"),
    ("double_paging", "pages", "guest write-outs of frames the host had swapped"),
    ("balloon_mib", "MiB", "balloon size (host row: sum)"),
    ("balloon_target_mib", "MiB", "balloon target (host row: sum)"),
    ("resident_mib", "MiB", "guest memory holding mapped pages"),
    ("free_mib", "MiB", "guest free memory"),
    ("guest_swap_mib", "MiB", "guest swap slots in use (swap cache included)"),
    ("dirty_mib", "MiB", "dirty page cache"),
    ("writeback_mib", "MiB", "guest pages with a write in flight"),
    ("backed_mib", "MiB", "guest memory in host memory"),
    ("host_swapped_mib", "MiB", "guest memory in host swap or discarded"),
    ("stalled", "", "guest stop cause (1 deadlock, 2 guest OOM, 3 killed); host row: count"),
    ("psi_some", "fraction of the tick", "memory PSI some (guest rows: its vCPU; host: vCPUs)"),
    ("psi_full", "fraction of the tick", "memory PSI full"),
    ("host_free_mib", "MiB", "host free memory (host row)"),
    ("io_queue", "requests", "device requests queued or in flight (host row)"),
    ("io_buffers_mib", "MiB", "host memory held for requests in flight (host row)"),
    ("host_swap_used_mib", "MiB", "host swap in use (host row)"),
    ("host_swap_outs", "pages", "host swap-outs"),
    ("host_swap_ins", "pages", "host swap-ins"),
    ("host_discards", "pages", "host discards of clean pages"),
    ("disk_reads", "requests", "device reads (host row)"),
    ("disk_writes", "requests", "device writes (host row)"),
    ("host_cache_mib", "MiB", "host page cache of guest disk blocks (host row)"),
    ("host_cache_dirty_mib", "MiB", "of which dirty or being written back (host row)"),
)
