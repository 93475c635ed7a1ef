-- Figure 9: steady-state throughput (second half of each run) of a VM ballooned to m MiB vs one configured with m MiB.
-- Each averaged column X compared by the claim also comes per replicate, as the list X_reps.
-- param: sweep = fig09_balloon_overhead
WITH steady AS (
    SELECT t.sweep, t.run_id, avg(t.throughput) AS throughput
    FROM ticks_vm AS t
    JOIN completed_runs AS r USING (sweep, run_id)
    WHERE t.sweep = $sweep AND t.tick >= r.ticks / 2
    GROUP BY t.sweep, t.run_id
)
SELECT
    CASE WHEN r."vms.balloon_mib" > 0 THEN 'ballooned' ELSE 'configured' END AS kind,
    r."vms.mem_mib" - r."vms.balloon_mib" AS memory_mib,
    count(*) AS runs,
    avg(s.throughput) AS throughput,
    avg(r.throughput_mean) AS throughput_whole_run,
    list(s.throughput ORDER BY r.replicate) AS throughput_reps
FROM completed_runs AS r
JOIN steady AS s USING (sweep, run_id)
GROUP BY ALL
ORDER BY memory_mib, kind
