-- Controller shoot-out: per controller, workload and overcommit ratio, the mean over replicates of steady-state and p5 throughput (relative to native), SLA violations, guest and host PSI, and profit.
-- Each averaged column X also comes per replicate, as the list X_reps (the figure's intervals, the claim's comparisons).
-- param: sweep = controllers
SELECT
    "hypervisor.policy" AS policy,
    "vms.workload" AS workload,
    "host.overcommit" AS overcommit,
    count(*) AS runs,
    avg(throughput_steady) AS throughput_steady,
    avg(throughput_p5) AS throughput_p5,
    avg(throughput_steady / native_throughput) AS relative_steady,
    avg(throughput_p5 / native_throughput) AS relative_p5,
    avg(sla_violations) AS sla_violations,
    avg(psi_some_avg) AS psi_some,
    avg(host_psi_some_avg) AS host_psi_some,
    avg(balloon_mib_per_vm_mean) AS balloon_mib,
    avg(profit_per_host_hour) AS profit_per_host_hour,
    list(throughput_steady ORDER BY replicate) AS throughput_steady_reps,
    list(throughput_p5 ORDER BY replicate) AS throughput_p5_reps,
    list(throughput_steady / native_throughput ORDER BY replicate) AS relative_steady_reps,
    list(throughput_p5 / native_throughput ORDER BY replicate) AS relative_p5_reps,
    list(sla_violations ORDER BY replicate) AS sla_violations_reps,
    list(psi_some_avg ORDER BY replicate) AS psi_some_reps,
    list(profit_per_host_hour ORDER BY replicate) AS profit_per_host_hour_reps
FROM completed_runs
WHERE sweep = $sweep
GROUP BY ALL
ORDER BY workload, overcommit, policy
