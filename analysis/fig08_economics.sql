-- Figure 8: profit per host-hour, revenue, SLA credits and host cost vs overcommit, per hypervisor policy.
-- Each averaged column X compared by the claim also comes per replicate, as the list X_reps.
-- param: sweep = fig08_economics
SELECT
    "hypervisor.policy" AS policy,
    "host.overcommit" AS overcommit,
    count(*) AS runs,
    avg(profit_per_host_hour) AS profit_per_host_hour,
    avg(revenue_per_host_hour) AS revenue_per_host_hour,
    avg(sla_credits_per_host_hour) AS sla_credits_per_host_hour,
    avg(host_cost_per_host_hour) AS host_cost_per_host_hour,
    avg(sla_violations) AS sla_violations,
    avg(throughput_mean / native_throughput) AS relative_throughput,
    list(profit_per_host_hour ORDER BY replicate) AS profit_per_host_hour_reps
FROM completed_runs
WHERE sweep = $sweep
GROUP BY ALL
ORDER BY policy, overcommit
