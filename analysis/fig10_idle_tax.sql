-- Figure 10: per-tick balloon size of the idle VM (VM 0) and the active VM (VM 1) under each idle memory tax rate.
-- Per tick, each run's values too (lists in the order of run_ids): the claim compares per-run means.
-- param: sweep = fig10_idle_tax
SELECT
    r."hypervisor.params.tax_rate" AS tax_rate,
    CASE WHEN t.vm = 0 THEN 'idle' ELSE 'active' END AS role,
    t.tick,
    avg(t.time_s) AS time_s,
    count(*) AS runs,
    avg(t.balloon_mib) AS balloon_mib,
    avg(t.resident_mib) AS resident_mib,
    avg(t.throughput) AS throughput,
    list(r.run_id ORDER BY r.run_id) AS run_ids,
    list(t.balloon_mib ORDER BY r.run_id) AS balloon_mib_reps
FROM ticks_vm AS t
JOIN completed_runs AS r USING (sweep, run_id)
WHERE t.sweep = $sweep
GROUP BY ALL
ORDER BY tax_rate, role, t.tick
