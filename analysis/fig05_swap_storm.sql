-- Figure 5: the host's per-tick series (free memory, I/O buffers, swap-out rate, disk queue) per hypervisor policy.
-- Per tick, each run's values too (lists in the order of run_ids): the claim compares per-run peaks.
-- param: sweep = fig05_swap_storm
SELECT
    r."hypervisor.policy" AS policy,
    t.tick,
    avg(t.time_s) AS time_s,
    count(*) AS runs,
    avg(t.host_free_mib) AS host_free_mib,
    avg(t.io_buffers_mib) AS io_buffers_mib,
    avg(t.host_swap_outs / (r.tick_ms / 1000.0)) AS host_swap_rate,
    avg(t.io_queue) AS io_queue,
    avg(t.throughput) AS throughput,
    list(r.run_id ORDER BY r.run_id) AS run_ids,
    list(t.host_free_mib ORDER BY r.run_id) AS host_free_mib_reps,
    list(t.io_buffers_mib ORDER BY r.run_id) AS io_buffers_mib_reps,
    list(t.host_swap_outs / (r.tick_ms / 1000.0) ORDER BY r.run_id) AS host_swap_rate_reps
FROM ticks_host AS t
JOIN completed_runs AS r USING (sweep, run_id)
WHERE t.sweep = $sweep
GROUP BY ALL
ORDER BY policy, t.tick
