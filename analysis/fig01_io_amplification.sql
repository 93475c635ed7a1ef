-- Figure 1: total reclaim I/O (writes caused by reclaim + refault reads, every reclaimer counted alike), throughput, and reclaim I/O per reclaimed page, by mechanism and overcommit.
-- Each averaged column X compared by the claim also comes per replicate, as the list X_reps.
-- param: sweep = fig01_io_amplification
SELECT
    CASE
        WHEN "host.discard_clean" THEN 'host discard'
        WHEN "hypervisor.policy" = 'none' THEN 'host swapping'
        ELSE 'balloon'
    END AS mechanism,
    "hypervisor.policy" AS policy,
    "host.overcommit" AS overcommit,
    count(*) AS runs,
    avg(reclaim_io) AS reclaim_io,
    list(reclaim_io ORDER BY replicate) AS reclaim_io_reps,
    avg(reclaim_io / simulated_seconds) AS reclaim_io_per_s,
    list(reclaim_io / simulated_seconds ORDER BY replicate) AS reclaim_io_per_s_reps,
    avg(throughput_mean) AS throughput,
    list(throughput_mean ORDER BY replicate) AS throughput_reps,
    avg(io_per_reclaimed_page) AS io_per_page,
    avg((guest_reclaim_writes + balloon_reclaim_writes + host_reclaim_writes)
        / greatest(reclaimed_pages, 1)) AS writes_per_page,
    avg((guest_refault_reads + balloon_refault_reads + host_refault_reads)
        / greatest(reclaimed_pages, 1)) AS reads_per_page,
    list(io_per_reclaimed_page ORDER BY replicate) AS io_per_page_reps,
    list((guest_reclaim_writes + balloon_reclaim_writes + host_reclaim_writes)
        / greatest(reclaimed_pages, 1) ORDER BY replicate) AS writes_per_page_reps,
    avg(reclaimed_pages) AS reclaimed_pages,
    avg(host_swap_outs) AS host_swap_outs,
    avg(host_discards) AS host_discards,
    avg(balloon_reclaimed_pages) AS balloon_reclaimed_pages,
    avg(silent_swap_writes) AS silent_swap_writes
FROM completed_runs
WHERE sweep = $sweep
GROUP BY ALL
ORDER BY overcommit, mechanism
