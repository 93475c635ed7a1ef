-- Figure 13: sampled vs full simulation: per workload and controller, each sampling rate's mean throughput, guest faults, host swap-outs and profit over replicates, and their relative error against rate 1 (NULL where rate 1's value is 0).
-- The claim compares throughput and faults per 1,000 references, which also come per replicate (X_reps).
-- param: sweep = fig13_sampling_validation
WITH per_rate AS (
    SELECT
        "vms.workload" AS workload,
        "hypervisor.policy" AS policy,
        "sampling.rate" AS rate,
        count(*) AS runs,
        avg(throughput_mean) AS throughput,
        avg(guest_faults) AS guest_faults,
        avg(1000.0 * guest_faults / nullif("references", 0)) AS faults_per_1000_refs,
        avg(host_swap_outs) AS host_swap_outs,
        avg(profit_per_host_hour) AS profit,
        avg(wall_seconds) AS wall_seconds,
        list(throughput_mean ORDER BY replicate) AS throughput_reps,
        list(1000.0 * guest_faults / nullif("references", 0) ORDER BY replicate)
            AS faults_per_1000_refs_reps
    FROM completed_runs
    WHERE sweep = $sweep
    GROUP BY ALL
),
full_rate AS (
    SELECT * FROM per_rate WHERE rate = 1.0
)
SELECT
    s.workload,
    s.policy,
    s.rate,
    s.runs,
    s.throughput,
    (s.throughput - f.throughput) / nullif(f.throughput, 0) AS throughput_rel_error,
    s.guest_faults,
    (s.guest_faults - f.guest_faults) / nullif(f.guest_faults, 0) AS guest_faults_rel_error,
    s.faults_per_1000_refs,
    (s.faults_per_1000_refs - f.faults_per_1000_refs) / nullif(f.faults_per_1000_refs, 0)
        AS faults_per_1000_refs_rel_error,
    s.host_swap_outs,
    (s.host_swap_outs - f.host_swap_outs) / nullif(f.host_swap_outs, 0)
        AS host_swap_outs_rel_error,
    s.profit,
    (s.profit - f.profit) / nullif(abs(f.profit), 0) AS profit_rel_error,
    s.wall_seconds,
    s.throughput_reps,
    s.faults_per_1000_refs_reps
FROM per_rate AS s
JOIN full_rate AS f USING (workload, policy)
ORDER BY s.workload, s.policy, s.rate DESC
