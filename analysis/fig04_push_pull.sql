-- Figure 4: host swap-out rate and guest fault rate (per simulated second) against balloon size.
-- Each averaged column X compared by the claim also comes per replicate, as the list X_reps.
-- param: sweep = fig04_push_pull
SELECT
    "vms.balloon_mib" AS balloon_mib,
    "vms.mem_mib" AS mem_mib,
    json_extract("vms.workload_params", '$.hot_mib')::DOUBLE AS ws_mib,
    count(*) AS runs,
    avg(host_swap_outs / (ticks * tick_ms / 1000.0)) AS host_swap_rate,
    avg(guest_faults / (ticks * tick_ms / 1000.0)) AS guest_fault_rate,
    avg(throughput_mean) AS throughput,
    list(host_swap_outs / (ticks * tick_ms / 1000.0) ORDER BY replicate) AS host_swap_rate_reps,
    list(guest_faults / (ticks * tick_ms / 1000.0) ORDER BY replicate) AS guest_fault_rate_reps
FROM completed_runs
WHERE sweep = $sweep
GROUP BY ALL
ORDER BY balloon_mib
