-- SLA violations by policy and overcommit: VMs under the first SLA tier (mean per run and as a share of the VMs), runs with any violation, credits paid back.
-- param: sweep = fig08_economics
SELECT
    "hypervisor.policy" AS policy,
    "host.overcommit" AS overcommit,
    count(*) AS runs,
    avg(sla_violations) AS sla_violations_mean,
    avg(sla_violations / "vms.count") AS violating_vm_share,
    count(*) FILTER (WHERE sla_violations > 0) AS runs_with_violations,
    avg(sla_credits) AS sla_credits_mean,
    avg(profit_per_host_hour) AS profit_per_host_hour
FROM completed_runs
WHERE sweep = $sweep
GROUP BY ALL
ORDER BY policy, overcommit
