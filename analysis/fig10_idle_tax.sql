-- Figure 10: per-tick balloon size of the idle VM (VM 0) and the active VM (VM 1) under each idle memory tax rate.
-- param: sweep = fig10_idle_tax
SELECT
    r."hypervisor.params.tax_rate" AS tax_rate,
    CASE WHEN t.vm = 0 THEN 'idle' ELSE 'active' END AS role,
    t.tick,
    avg(t.time_s) AS time_s,
    count(*) AS runs,
    avg(t.balloon_mib) AS balloon_mib,
    avg(t.resident_mib) AS resident_mib,
    avg(t.throughput) AS throughput
FROM ticks_vm AS t
JOIN completed_runs AS r USING (sweep, run_id)
WHERE t.sweep = $sweep
GROUP BY ALL
ORDER BY tax_rate, role, t.tick
