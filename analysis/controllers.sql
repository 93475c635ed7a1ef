-- Controller shoot-out: per controller, workload and overcommit ratio, the mean over replicates of steady-state and p5 throughput (relative to native), SLA violations, guest and host PSI, and profit.
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
    avg(profit_per_host_hour) AS profit_per_host_hour
FROM completed_runs
WHERE sweep = $sweep
GROUP BY ALL
ORDER BY workload, overcommit, policy
