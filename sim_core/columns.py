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
    ("references", "references", "page references completed by all guests"),
    ("guest_faults", "faults", "guest page faults, minor and major"),
    ("guest_major_faults", "faults", "guest faults that waited for the device"),
    ("guest_swap_outs", "pages", "pages guests wrote to their swap"),
    ("guest_swap_ins", "pages", "pages guests read back from their swap"),
    ("writebacks", "pages", "dirty file pages guests wrote back"),
    ("file_drops", "pages", "clean file pages guests dropped (no I/O)"),
    ("file_reads", "pages", "file pages guests read from their disks"),
    ("guest_evictions", "pages", "pages guest reclaim evicted"),
    ("esc_evict_00", "pages", "ESC evictions of class (R, M) = (0, 0)"),
    ("esc_evict_01", "pages", "ESC evictions of class (0, 1)"),
    ("esc_evict_10", "pages", "ESC evictions of class (1, 0)"),
    ("esc_evict_11", "pages", "ESC evictions of class (1, 1)"),
    ("host_swap_outs", "pages", "guest frames the host wrote to host swap"),
    ("host_swap_ins", "pages", "host swap-ins (host faults served from host swap)"),
    ("host_discards", "pages", "clean pages the host dropped instead of swapping (VSwapper)"),
    ("host_faults", "faults", "guest touches of a frame the host had taken away"),
    ("host_block_drops", "blocks", "guest disk blocks the host page cache dropped"),
    ("disk_reads", "requests", "reads served by the device, every cause"),
    ("disk_writes", "requests", "writes served by the device, every cause"),
    ("reclaimed_pages", "pages", "pages reclaimed by guests, balloons and the host"),
    ("io_per_reclaimed_page", "requests per page", "reclaim writes plus refault reads per page"),
    ("writes_per_reclaimed_page", "requests per page", "reclaim writes per reclaimed page"),
    ("host_writes_per_reclaimed_page", "requests per page", "host swap writes per page it took"),
    ("balloon_reclaimed_pages", "pages", "guest evictions forced by balloon inflation"),
    ("balloon_writes_per_reclaimed_page", "requests per page", "writes per balloon eviction"),
    ("nested_faults", "faults", "guest swap writes to blocks the host had dropped"),
    ("double_paging", "pages", "guest evictions of pages the host had swapped out"),
    ("silent_swap_writes", "pages", "host swap-outs of clean page-cache pages (VSwapper)"),
    ("stale_swap_reads", "pages", "host swap-ins of frames the guest then overwrites (VSwapper)"),
    ("false_swap_reads", "pages", "host swap-ins of frames the guest zero-fills (VSwapper)"),
    ("deadlocks", "events", "lock-protocol deadlocks"),
    ("deadlocked_vms", "VMs", "guests stopped by a deadlock"),
    ("guest_oom_vms", "VMs", "guests that ran out of memory"),
    ("throughput_mean", "references/s per VM", "mean over VMs of their throughput"),
    ("throughput_p5", "references/s per VM", "5th percentile of per-tick VM throughput"),
    ("native_throughput", "references/s per VM", "mean VM throughput without memory pressure"),
    ("slowdown", "", "native throughput / throughput, summed over VMs"),
    ("balloon_mean_mib", "MiB", "mean over ticks of the host total of balloon sizes"),
    ("host_swap_peak_mib", "MiB", "host swap in use at the end"),
    ("host_io_buffers_peak_mib", "MiB", "largest host memory held for I/O in flight"),
    ("host_used_mib", "MiB", "host memory in use at the end"),
    ("revenue", "$", "revenue of the run"),
    ("sla_violations", "VMs", "VMs under the first SLA tier"),
    ("sla_credits", "$", "credits paid back under the SLA"),
    ("host_cost", "$", "cost of the host over the run"),
    ("profit", "$", "revenue - credits - host cost over the run"),
    ("profit_per_host_hour", "$ per host-hour", "profit per hour of host time"),
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
    ("concurrent_ops", "operations", "locks: operations in flight at once"),
)

TICK_COLUMNS: dict[str, Column] = _table(
    ("tick", "ticks", "tick index"),
    ("vm", "", "guest index; -1 is the host's row"),
    ("time_s", "s", "simulated time at the end of the tick"),
    ("references", "references", "references completed in the tick"),
    ("throughput", "references/s", "references per simulated second (host row: all guests)"),
    ("faults", "faults", "guest faults in the tick"),
    ("major_faults", "faults", "guest faults that waited for the device"),
    ("host_faults", "faults", "touches of frames the host had taken away"),
    ("swap_outs", "pages", "guest swap-outs"),
    ("swap_ins", "pages", "guest swap-ins"),
    ("writebacks", "pages", "dirty file pages written back"),
    ("file_drops", "pages", "clean file pages dropped"),
    ("nested_faults", "faults", "guest swap writes to blocks the host had dropped"),
    ("balloon_mib", "MiB", "balloon size (host row: sum)"),
    ("balloon_target_mib", "MiB", "balloon target (host row: sum)"),
    ("resident_mib", "MiB", "guest memory holding pages"),
    ("free_mib", "MiB", "guest free memory"),
    ("guest_swap_mib", "MiB", "guest swap in use"),
    ("backed_mib", "MiB", "guest memory backed by host frames"),
    ("host_swapped_mib", "MiB", "guest memory in host swap"),
    ("swap_cache_mib", "MiB", "guest disk blocks in host memory"),
    ("stalled", "", "guest stop cause (1 deadlock, 2 OOM); host row: guests stopped"),
    ("host_free_mib", "MiB", "host free memory (host row)"),
    ("io_queue", "requests", "device requests queued or in flight (host row)"),
    ("io_buffers_mib", "MiB", "host memory held for guest I/O in flight (host row)"),
    ("host_swap_outs", "pages", "host swap-outs"),
    ("host_swap_ins", "pages", "host swap-ins"),
    ("host_discards", "pages", "host discards of clean pages"),
    ("disk_reads", "requests", "device reads (host row)"),
    ("disk_writes", "requests", "device writes (host row)"),
)
