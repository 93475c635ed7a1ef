-- SLA violations by policy and overcommit: violated SLA windows (share of VM time), VMs whose uptime earns a credit (mean per run and as a share of the VMs), runs with any, credits paid back ($ per host-hour).
-- param: sweep = fig08_economics
SELECT
    "hypervisor.policy" AS policy,
    "host.overcommit" AS overcommit,
    count(*) AS runs,
    avg(sla_violated_fraction) AS violated_window_share,
    avg(sla_violations) AS sla_violations_mean,
    avg(sla_violations / "vms.count") AS violating_vm_share,
    count(*) FILTER (WHERE sla_violations > 0) AS runs_with_violations,
    avg(sla_credits_per_host_hour) AS sla_credits_per_host_hour,
    avg(profit_per_host_hour) AS profit_per_host_hour
FROM completed_runs
WHERE sweep = $sweep
GROUP BY ALL
ORDER BY policy, overcommit
