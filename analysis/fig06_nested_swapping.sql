-- Figure 6: nested faults (guest evictions of frames the host took away) and double paging vs host overcommit, with and without pinning.
-- Nested faults are compared per 1,000 references (throughput falls with overcommit).
-- Each averaged column X compared by the claim also comes per replicate, as the list X_reps.
-- param: sweep = fig06_nested_swapping
SELECT
    "host.overcommit" AS overcommit,
    "host.pin_guest_swap" AS pinned,
    count(*) AS runs,
    avg(nested_faults) AS nested_faults,
    avg(guest_swap_outs) AS guest_swap_outs,
    avg(1000.0 * nested_faults / greatest(guest_swap_outs, 1)) AS nested_per_1000_swap_outs,
    avg(1000.0 * nested_faults / greatest("references", 1)) AS nested_per_1000_refs,
    avg(double_paging) AS double_paging,
    avg(host_swap_outs) AS host_swap_outs,
    avg(throughput_mean) AS throughput,
    list(nested_faults ORDER BY replicate) AS nested_faults_reps,
    list(1000.0 * nested_faults / greatest("references", 1) ORDER BY replicate) AS nested_per_1000_refs_reps,
    list(1000.0 * nested_faults / greatest(guest_swap_outs, 1) ORDER BY replicate) AS nested_per_1000_swap_outs_reps
FROM completed_runs
WHERE sweep = $sweep
GROUP BY ALL
ORDER BY pinned, overcommit
